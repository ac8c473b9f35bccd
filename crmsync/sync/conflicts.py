"""Conflict rows: recorded, updated in place while open, and closed when their cause goes.

An open conflict is one of:
- a hold (``manual`` rule, both sides changed): neither side is touched until staff
  resolve it; it closes by itself when both sides come to agree;
- an unmapped remote value (no local equivalent) or an invalid one (the local field's
  validators refuse it): the field is not applied locally; it closes when the remote
  value becomes usable again or a later local edit is pushed over it.
"""

from django.utils import timezone

from ..choices import ConflictStatus, Owner, Winner
from ..models import Conflict
from .merge import Decision

UNMAPPED = "unmapped value"
INVALID = "invalid remote value"


def is_hold(conflict: Conflict) -> bool:
    """Whether an open conflict holds its field (a manual two-sided change)."""
    return not conflict.reason.startswith((UNMAPPED, INVALID))


def open_conflicts(alias: str, entity: str, local_ids) -> dict:
    """{local id: {field: open Conflict}} for these records (one query)."""
    found: dict = {}
    if not local_ids:
        return found
    for conflict in Conflict.objects.filter(
        connection=alias, entity=entity, object_id__in=list(local_ids), status=ConflictStatus.OPEN
    ).only("pk", "object_id", "field", "reason", "local_value", "remote_value"):
        found.setdefault(conflict.object_id, {})[conflict.field] = conflict
    return found


def unusable_decisions(owners: dict, local: dict, unmapped: dict, invalid: dict) -> list[Decision]:
    """Open decisions for remote values that cannot be applied locally."""
    decisions = [
        Decision(
            field,
            None,
            local.get(field),
            str(value.raw),
            owners.get(field, Owner.SHARED),
            Winner.NONE,
            f"{UNMAPPED}: {value.raw!r} has no local equivalent",
            ConflictStatus.OPEN,
        )
        for field, value in unmapped.items()
    ]
    decisions += [
        Decision(
            field,
            None,
            local.get(field),
            _jsonable(value),
            owners.get(field, Owner.SHARED),
            Winner.NONE,
            f"{INVALID}: {problem}",
            ConflictStatus.OPEN,
        )
        for field, (value, problem) in invalid.items()
    ]
    return decisions


def _jsonable(value):
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _storable(value):
    """A value any JSON column takes: PostgreSQL's jsonb refuses NUL characters, shown
    to staff as "␀" instead."""
    if isinstance(value, str):
        return value.replace("\x00", "\u2400")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    return value


def save_decisions(
    alias: str, entity: str, instance, decisions, remote_time, stats: dict, local_times: dict | None = None
) -> None:
    """One Conflict row per decision; an open one is updated in place (one per field).
    ``local_times``: {field: the local edit time the merge compared}, for fields the
    merge has since overwritten locally (else the instance's time is shown)."""
    name = str(instance)[:255]
    local_times = local_times or {}
    for decision in decisions:
        values = {
            "record_name": name,
            "base_value": _storable(decision.base),
            "local_value": _storable(decision.local),
            "remote_value": _storable(decision.remote),
            "rule": decision.rule,
            "winner": decision.winner,
            "reason": decision.reason[:255],
            "local_time": (
                local_times[decision.field]
                if decision.field in local_times
                else instance.field_time(decision.field)
            ),
            "remote_time": remote_time,
        }
        key = {"connection": alias, "entity": entity, "object_id": instance.pk, "field": decision.field}
        if decision.status == ConflictStatus.OPEN:
            _, created = Conflict.objects.update_or_create(**key, status=ConflictStatus.OPEN, defaults=values)
            stats["conflicts"] += int(created)
        else:
            Conflict.objects.create(**key, **values, status=decision.status)
            stats["conflicts"] += 1


def close(conflicts, reason: str, *, winner: str | None = None) -> None:
    """Close open conflicts whose cause is gone (no staff decision needed)."""
    pks = [conflict.pk for conflict in conflicts]
    if not pks:
        return
    fields = {"status": ConflictStatus.RESOLVED, "resolved_at": timezone.now(), "reason": reason[:255]}
    if winner:
        fields["winner"] = winner
    Conflict.objects.filter(pk__in=pks, status=ConflictStatus.OPEN).update(**fields)


def note_held_local_value(conflict: Conflict, instance, value) -> None:
    """A local edit of a held field: shown on its open conflict (never dropped silently)."""
    if conflict.local_value == value:
        return
    Conflict.objects.filter(pk=conflict.pk).update(
        local_value=value, local_time=instance.field_time(conflict.field), updated_at=timezone.now()
    )
    conflict.local_value = value


def duplicate_decision(original_pk, sync_id) -> Decision:
    return Decision(
        "id",
        str(original_pk),
        str(original_pk),
        sync_id,
        Owner.SHARED,
        Winner.LOCAL,
        f"duplicate sync id: the page is a copy of {original_pk}; it became a new record",
    )
