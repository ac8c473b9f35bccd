"""The transactional outbox: which local records have changes to push, per connection.

``mark_dirty`` runs inside the transaction of the save that made the change, so a
change acknowledged to a user is recorded even if the process dies right after.
"""

import contextlib
import contextvars
from collections.abc import Iterator

from django.utils import timezone

_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("crmsync_origin", default=None)


def current_origin() -> str | None:
    """The connection whose remote changes are being applied, or None for a user's save."""
    return _origin.get()


@contextlib.contextmanager
def applying_remote_changes(alias: str | None) -> Iterator[None]:
    """Saves inside this block are the engine's: no field-time bump, no outbox entry
    for ``alias`` (it is where the change came from); other connections still get it."""
    token = _origin.set(alias)
    try:
        yield
    finally:
        _origin.reset(token)


def mark_dirty(entity: str, ids, exclude: str | None = None) -> None:
    """Upsert an outbox entry for each record and each connection that syncs ``entity``.

    A re-marked record loses its quarantine and failure count: an edit retries it.
    """
    from .models import OutboxEntry
    from .registry import connections

    aliases = [alias for alias in connections.aliases_for(entity) if alias != exclude]
    if not aliases or not ids:
        return
    now = timezone.now()
    OutboxEntry.objects.bulk_create(
        [
            OutboxEntry(connection=alias, entity=entity, local_id=pk, enqueued_at=now)
            for alias in aliases
            for pk in ids
        ],
        update_conflicts=True,
        unique_fields=["connection", "entity", "local_id"],
        update_fields=["enqueued_at", "attempts", "quarantined", "last_error"],
    )
