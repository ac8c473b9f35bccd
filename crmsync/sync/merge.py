"""The three-way merge of one record, field by field (DESIGN §2–§3). Pure: no I/O.

For each field both sides know, compare local and remote with the base (the value
both sides agreed on at the last sync):

| local      | remote     | agent             | human              | shared                 | manual      |
|------------|------------|-------------------|--------------------|------------------------|-------------|
| unchanged  | unchanged  | –                 | –                  | –                      | –           |
| changed    | unchanged  | push              | pull back (logged) | push                   | push        |
| unchanged  | changed    | revert remote (logged) | pull          | pull                   | pull        |
| same value | same value | agree             | agree              | agree                  | agree       |
| changed    | changed    | push (logged)     | pull (logged)      | later minute wins,     | hold: open  |
|            |            |                   |                    | tie: local (logged)    | conflict    |

"Logged" means a conflict decision is returned. Times are compared at minute
precision, since Notion floors ``last_edited_time`` to the minute: the remote value
wins only when its minute is strictly later than the local edit's minute. Every
worker computes the same answer from the same inputs.
"""

import dataclasses
import datetime as dt

from ..choices import ConflictStatus, Owner, Winner

MISSING = object()


@dataclasses.dataclass(frozen=True)
class Decision:
    """How one field was decided when the sides disagreed (becomes a Conflict row)."""

    field: str
    base: object
    local: object
    remote: object
    rule: Owner
    winner: Winner
    reason: str
    status: ConflictStatus = ConflictStatus.AUTO_RESOLVED


@dataclasses.dataclass
class MergeResult:
    local_writes: dict = dataclasses.field(default_factory=dict)  # field -> value to set locally
    remote_writes: dict = dataclasses.field(default_factory=dict)  # field -> value to push
    base: dict = dataclasses.field(default_factory=dict)  # the new base
    decisions: list[Decision] = dataclasses.field(default_factory=list)
    agreed: set = dataclasses.field(default_factory=set)  # fields where local == remote now


MINUTE = dt.timedelta(minutes=1)


def floor_time(moment: dt.datetime | None, granularity: dt.timedelta = MINUTE) -> dt.datetime | None:
    """``moment`` floored to ``granularity`` (a zero granularity keeps it as is)."""
    if moment is None or not granularity:
        return moment
    epoch = dt.datetime(2000, 1, 1, tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % granularity


def floor_minute(moment: dt.datetime | None) -> dt.datetime | None:
    return floor_time(moment, MINUTE)


def merge_record(
    base: dict,
    local: dict,
    remote: dict,
    owners: dict[str, Owner],
    local_times: dict[str, dt.datetime | None],
    remote_time: dt.datetime | None,
    granularity: dt.timedelta = MINUTE,
) -> MergeResult:
    """Decide every field present in ``remote`` (a field the remote does not carry is
    not synced). A field missing from ``base`` has no agreed value: when the sides
    differ it counts as changed on both. ``local_times`` must be on the remote's clock;
    both sides' times are floored to ``granularity`` (the CRM's time precision)."""
    result = MergeResult(base=dict(base))
    for field, remote_value in remote.items():
        local_value = local.get(field)
        base_value = base.get(field, MISSING)
        owner = owners.get(field, Owner.SHARED)
        winner, reason, status = _decide(
            owner,
            local_changed=local_value != base_value,
            remote_changed=remote_value != base_value,
            same=local_value == remote_value,
            local_minute=floor_time(local_times.get(field), granularity),
            remote_minute=floor_time(remote_time, granularity),
        )
        if winner is None:  # both sides agree
            result.agreed.add(field)
            result.base[field] = local_value
            continue
        if winner == Winner.LOCAL:
            result.remote_writes[field] = result.base[field] = local_value
        elif winner == Winner.REMOTE:
            result.local_writes[field] = result.base[field] = remote_value
        if reason:
            base_seen = None if base_value is MISSING else base_value
            decision = Decision(field, base_seen, local_value, remote_value, owner, winner, reason, status)
            result.decisions.append(decision)
    return result


def _decide(owner, *, local_changed, remote_changed, same, local_minute, remote_minute):
    """(winner, reason, status) for one field; winner None when the sides agree, reason
    "" when nothing needs recording (a one-sided change that simply flows across)."""
    auto = ConflictStatus.AUTO_RESOLVED
    if same:
        return None, "", auto
    if local_changed and not remote_changed:
        if owner == Owner.HUMAN:
            return Winner.REMOTE, "human-owned: a local edit is replaced by the CRM's value", auto
        return Winner.LOCAL, "", auto
    if remote_changed and not local_changed:
        if owner == Owner.AGENT:
            return Winner.LOCAL, "agent-owned: the remote edit is reverted", auto
        return Winner.REMOTE, "", auto
    if owner == Owner.AGENT:
        return Winner.LOCAL, "agent-owned: the local value wins", auto
    if owner == Owner.HUMAN:
        return Winner.REMOTE, "human-owned: the CRM's value wins", auto
    if owner == Owner.MANUAL:
        return Winner.NONE, "manual: held until staff resolve it", ConflictStatus.OPEN
    if local_minute is None:
        return Winner.REMOTE, "last write wins: the local value has no edit time", auto
    if remote_minute is not None and remote_minute > local_minute:
        return (
            Winner.REMOTE,
            f"last write wins: remote edit {remote_minute:%H:%M} is later than local {local_minute:%H:%M}",
            auto,
        )
    return Winner.LOCAL, "last write wins: the local edit is as late or later (a tie goes to local)", auto
