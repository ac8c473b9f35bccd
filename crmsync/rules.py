"""Who may do what, and what may be edited: one rule each, shared by the admin and the API.

The admin and the API ask the same permission for the same act (resolving a conflict,
starting a sync, releasing a quarantined record) and refuse the same edits.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

# Resolving a conflict changes it: keep local, take remote or a value of one's own.
RESOLVE_CONFLICT = "crmsync.change_conflict"
# Starting a sync ("Sync now", POST connections/{alias}/sync/) and releasing a
# quarantined record ("Retry") change what a connection does next.
RUN_SYNC = "crmsync.change_syncconnection"

# The fields of an activity; once pushed to a CRM they are frozen (activities are
# append-only outbound, DESIGN §3); archiving stays local and allowed.
ACTIVITY_FIELDS = ("opportunity", "kind", "subject", "body", "occurred_at")


def crm_refusals(model: Any, values: dict[str, Any]) -> dict[str, str]:
    """{field: message} of the synced ``values`` (of a deal, contact or activity model)
    that a configured connection syncing the entity would refuse (DESIGN §7: refused
    locally, before any request). A connection that cannot be built is skipped: the
    system checks report it."""
    from .entities import normal_values
    from .exceptions import ConfigurationError
    from .registry import connections

    direct = {field for field, attname in model.tracked_attnames().items() if field == attname}
    entity = model.entity()
    try:
        normal = normal_values(entity, {f: v for f, v in values.items() if f in direct})
    except (TypeError, ValueError):
        return {}  # the field's own validation reports it
    refused: dict[str, str] = {}
    for alias in connections:
        try:
            adapter = connections[alias]
        except ConfigurationError:
            continue
        if entity.name in adapter.entities:
            for field, why in adapter.refused_values(entity.name, normal).items():
                refused.setdefault(field, f"Connection {alias!r} cannot hold this value: {why}.")
    return refused


def can_resolve_conflicts(user: Any) -> bool:
    return bool(user and user.has_perm(RESOLVE_CONFLICT))


def can_run_sync(user: Any) -> bool:
    return bool(user and user.has_perm(RUN_SYNC))


def with_synced_flag(queryset: QuerySet) -> QuerySet:
    """Annotate ``is_synced``: the activity has a SyncLink on any connection (one
    EXISTS subquery, so a list of activities costs no query per row)."""
    from .models import SyncLink

    return queryset.annotate(
        is_synced=Exists(SyncLink.objects.filter(entity="activity", local_id=OuterRef("pk")))
    )


def is_synced_activity(activity: Any) -> bool:
    """An activity pushed to a CRM (a SyncLink for any connection) cannot be edited."""
    if activity is None or activity.pk is None or activity._state.adding:
        return False
    flag = getattr(activity, "is_synced", None)
    if flag is not None:
        return bool(flag)
    from .models import SyncLink

    return SyncLink.objects.filter(entity="activity", local_id=activity.pk).exists()


def frozen_activity_edits(activity: Any, values: dict[str, Any]) -> list[str]:
    """The fields of ``values`` that would change a synced activity (none when unsynced)."""
    changed = [name for name in ACTIVITY_FIELDS if name in values and getattr(activity, name) != values[name]]
    return changed if changed and is_synced_activity(activity) else []


def frozen_fields(activity: Any) -> Iterable[str]:
    return ACTIVITY_FIELDS if is_synced_activity(activity) else ()
