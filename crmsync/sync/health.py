"""What a connection's adapter knows of the CRM side, for the health page and the API."""

import datetime as dt
import logging

from ..exceptions import AdapterError, ConfigurationError
from ..registry import connections

logger = logging.getLogger(__name__)


def remote_health(alias: str) -> dict:
    """{"blocked_fields": {entity: {field: reason}}, "deferred_until": datetime | None}:
    fields schema drift keeps from syncing (DESIGN §7) and a rate-limit hold the CRM
    asked for. May read the CRM's schema once (the adapter keeps it); a CRM that cannot
    be reached shows nothing here (its error is the connection's last error)."""
    try:
        adapter = connections[alias]
    except ConfigurationError:
        return {"blocked_fields": {}, "deferred_until": None}
    adapter.reload_state()  # a run in another process may have read the schema again
    blocked = {}
    for entity in sorted(adapter.entities):
        try:
            found = adapter.blocked_fields(entity)
        except AdapterError as err:
            logger.info("health of %s: cannot read the %s schema: %s", alias, entity, err)
            continue
        if found:
            blocked[entity] = dict(found)
    until: dt.datetime | None = adapter.deferred_until()
    return {"blocked_fields": blocked, "deferred_until": until}
