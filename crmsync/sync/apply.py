"""One linked record merged with its remote twin and applied to both sides, in named
steps: read the remote side, skip an echo, merge (``merge.merge_record``), commit the
local side with its base and conflicts in one transaction, then write the remote side.

At most one local write and one remote update per record; no transaction spans an
HTTP request.
"""

import dataclasses
import datetime as dt

from django.utils import timezone

from ..adapters.base import RemoteRecord, Unmapped
from ..choices import Owner, Winner
from ..clock import remote_now
from ..entities import ENTITIES
from ..exceptions import AdapterError, CrmSyncError, FieldBlocked, MappingError, TransientAdapterError
from ..models import SyncLink
from ..outbox import mark_dirty
from ..records import apply_values, fit_remote_values, local_values
from . import conflicts
from .context import RunContext
from .merge import MergeResult, merge_record
from .remote import send_trash, send_update
from .sources import UNKNOWN


class LocalChangedMeanwhile(CrmSyncError):
    """A user saved the record while the engine was merging it; merge again."""


class RemoteWriteRefused(CrmSyncError):
    """The CRM refused a local value (or Notion would): the local record's problem, counted
    on its outbox entry, not the remote record's. The cause is chained."""

    def __init__(self, message: str, *, local_id):
        super().__init__(message)
        self.local_id = local_id


@dataclasses.dataclass
class RemoteSide:
    """What the remote holds of one record, as far as the merge may use it."""

    values: dict  # plain values the local fields can hold
    archived: bool
    modified_at: dt.datetime | None
    unmapped: dict = dataclasses.field(default_factory=dict)  # field -> Unmapped
    invalid: dict = dataclasses.field(default_factory=dict)  # field -> (value, problem)
    sync_id_missing: bool = False
    read: bool = True  # False: assumed unchanged since the base (a push)

    @property
    def usable(self) -> bool:
        return not self.unmapped and not self.invalid


def read_remote(
    ctx: RunContext,
    entity: str,
    record: RemoteRecord | None,
    link: SyncLink,
    instance,
    held,
    open_conflicts: dict | None = None,
) -> RemoteSide:
    """The remote side of a merge. ``record`` None: the remote is unchanged since the
    base (a push), except held fields, which are left alone. Blocked fields (schema
    drift) are left out either way."""
    blocked = ctx.blocked_fields(entity)
    if record is None:
        values = {k: v for k, v in link.base.items() if k not in held and k not in blocked}
        return RemoteSide(values, link.remote_archived, link.remote_modified_at, read=False)
    plain, unmapped = {}, {}
    for name, value in record.values.items():
        if name in blocked:
            continue
        if link.base.get(name) == UNKNOWN:
            plain[name] = UNKNOWN  # the source moved: the local value is written to it
            continue
        if not isinstance(value, Unmapped):
            plain[name] = value
        elif link.base.get(name) == str(value.raw):
            # Staff kept the local value against this remote value: compare as is, so
            # the local value is pushed.
            plain[name] = str(value.raw)
        else:
            unmapped[name] = value
    # A value equal to the base was agreed (and fitted) before; check only the others.
    changed = {k: v for k, v in plain.items() if link.base.get(k, _MISSING) != v and v != UNKNOWN}
    fitted, problems = fit_remote_values(ENTITIES[entity], changed)
    invalid = {name: (plain[name], problem) for name, problem in problems.items()}
    values = {**plain, **{k: v for k, v in fitted.items() if k not in invalid}}
    values = {k: v for k, v in values.items() if k not in invalid}
    # An agent-owned field the local side cannot take the remote value of is reverted
    # like any remote edit of it (DESIGN §2): the merge sees the raw value as a change.
    # One already shown on an open conflict (a new page brought it) waits for an edit.
    owners = ctx.owners(entity)
    for name in [n for n in (*unmapped, *invalid) if owners.get(n) == Owner.AGENT]:
        raw = str(unmapped[name].raw) if name in unmapped else invalid[name][0]
        shown = (open_conflicts or {}).get(name)
        if shown is not None and not conflicts.is_hold(shown) and shown.remote_value == raw:
            continue
        unmapped.pop(name, None)
        invalid.pop(name, None)
        values[name] = str(raw)
    missing = (record.sync_id or "") != str(instance.pk)
    return RemoteSide(values, record.archived, record.modified_at, unmapped, invalid, missing)


def is_echo(remote: RemoteSide, link: SyncLink, local: dict, instance) -> bool:
    """Nothing to do: our own write read back, or an edit of something we do not sync."""
    return (
        remote.usable
        and not remote.sync_id_missing
        and all(link.base.get(k, _MISSING) == v for k, v in remote.values.items())
        and remote.archived == link.remote_archived
        and all(local.get(k) == link.base.get(k) for k in link.base)
        and instance.archived == remote.archived
    )


_MISSING = object()


def merge_linked(
    ctx: RunContext,
    entity: str,
    record: RemoteRecord | None,
    link: SyncLink,
    instance,
    *,
    open_conflicts: dict | None = None,
    attempts: int = 3,
) -> None:
    """Merge a linked record with its remote twin (``record``; None during a push: the
    remote is unchanged since the base) and apply the result to both sides."""
    if instance is None:
        return  # the local record was hard-deleted; nothing to merge into
    open_conflicts = open_conflicts or {}
    held = {field for field, conflict in open_conflicts.items() if conflicts.is_hold(conflict)}
    remote = read_remote(ctx, entity, record, link, instance, held, open_conflicts)
    local = local_values(instance)
    if record is not None and is_echo(remote, link, local, instance) and not open_conflicts:
        return
    remote_time = remote.modified_at
    local_times = {name: instance.field_time(name) for name in local}
    result = merge_record(
        link.base,
        local,
        remote.values,
        ctx.owners(entity),
        local_times,
        remote_time,
        ctx.adapter.TIME_GRANULARITY,
    )
    take_local_where_source_moved(result, local)
    archive_local = None
    if record is not None and record.archived != link.remote_archived:
        archive_local = record.archived  # trashed or restored in the CRM
    try:
        commit_local(ctx, entity, instance, link, remote, result, archive_local, open_conflicts, local)
    except LocalChangedMeanwhile:
        if attempts <= 1:
            raise
        instance = type(instance)._default_manager.get(pk=instance.pk)
        link.refresh_from_db()
        merge_linked(
            ctx, entity, record, link, instance, open_conflicts=open_conflicts, attempts=attempts - 1
        )
        return
    if result.local_writes:
        ctx.stats["updated_local"] += 1
    if archive_local:
        ctx.stats["archived"] += 1
    wants_archived = instance.archived if archive_local is None else archive_local
    try:
        write_remote(
            ctx, entity, link, instance, result.remote_writes, wants_archived, remote.sync_id_missing
        )
    except TransientAdapterError:
        raise
    except (MappingError, AdapterError) as err:
        raise RemoteWriteRefused(str(err), local_id=instance.pk) from err
    if result.remote_writes:
        # A later local edit pushed over an unusable remote value ends its conflict.
        pushed_over = [
            conflict
            for field, conflict in open_conflicts.items()
            if field in result.remote_writes and not conflicts.is_hold(conflict)
        ]
        conflicts.close(pushed_over, "a later local edit replaced the remote value", winner=Winner.LOCAL)


def take_local_where_source_moved(result: MergeResult, local: dict) -> None:
    """A field whose CRM source moved has no agreed value: whatever its owner, the local
    value is written to the new source (never a stand-in pulled over it)."""
    for field, value in list(result.local_writes.items()):
        if value == UNKNOWN:
            del result.local_writes[field]
            result.remote_writes[field] = result.base[field] = local.get(field)
    result.decisions = [d for d in result.decisions if d.remote != UNKNOWN]


def commit_local(
    ctx: RunContext,
    entity: str,
    instance,
    link: SyncLink,
    remote: RemoteSide,
    result: MergeResult,
    archive_local,
    open_conflicts: dict,
    local: dict,
) -> None:
    """The local side of a merge in one transaction: the record, the link, the conflicts."""
    compared = {d.field: instance.field_time(d.field) for d in result.decisions}  # before the writes
    with ctx.atomic():
        if result.local_writes or archive_local is not None:
            write_local(ctx, entity, instance, result.local_writes, remote.modified_at, archive_local)
        # Pushed fields keep their old base until the push succeeds (remote.send_update),
        # so a run killed in between pushes them again. A record staying trashed is not
        # written to: its base is what the remote holds, so the push follows a restore.
        stays_trashed = remote.archived and (instance.archived if archive_local is None else archive_local)
        held_back = {
            k: remote.values[k] for k in result.remote_writes if stays_trashed and k in remote.values
        }
        base = {k: v for k, v in result.base.items() if k not in result.remote_writes}
        kept = {k: link.base[k] for k in result.remote_writes if k in link.base}
        link.base = {**base, **kept, **held_back}
        link.remote_modified_at = remote.modified_at
        link.remote_archived = remote.archived
        link.save(update_fields=["base", "remote_modified_at", "remote_archived", "updated_at"])
        decisions = conflicts.unusable_decisions(ctx.owners(entity), local, remote.unmapped, remote.invalid)
        conflicts.save_decisions(
            ctx.alias, entity, instance, decisions + result.decisions, remote.modified_at, ctx.stats, compared
        )
        close_resolved_causes(open_conflicts, remote, result, instance, local)


def close_resolved_causes(open_conflicts: dict, remote: RemoteSide, result, instance, local) -> None:
    """Close the open conflicts whose cause is gone; show held local edits on theirs."""
    agreed = [open_conflicts[f] for f in result.agreed if f in open_conflicts]
    conflicts.close(agreed, "both sides now agree")
    if remote.read:
        usable_again = [
            conflict
            for field, conflict in open_conflicts.items()
            if not conflicts.is_hold(conflict)
            and field in remote.values
            and field not in result.agreed
            and field not in result.remote_writes
        ]
        conflicts.close(usable_again, "the remote value can be used again")
        return
    for field, conflict in open_conflicts.items():
        if conflicts.is_hold(conflict) and field in local:
            conflicts.note_held_local_value(conflict, instance, local[field])


def write_local(ctx: RunContext, entity: str, instance, writes: dict, remote_time, archived) -> None:
    """Apply pulled values with a conditional UPDATE: if a user saved the record since it
    was read, raise LocalChangedMeanwhile (their write is never overwritten). The fields'
    times become the remote edit's time (local times are on the CRM's clock)."""
    model = type(instance)
    apply_values(instance, writes)
    columns = {}
    for name in writes:
        field = model._meta.get_field(name)
        columns[field.attname] = getattr(instance, field.attname)
    if archived is not None:
        columns["archived"] = instance.archived = archived
    moment = remote_time or remote_now()
    times = {**instance.field_modified_at, **dict.fromkeys(writes, moment.isoformat())}
    now = timezone.now()
    updated = model._default_manager.filter(pk=instance.pk, updated_at=instance.updated_at).update(
        **columns, field_modified_at=times, updated_at=now
    )
    if updated != 1:
        raise LocalChangedMeanwhile(str(instance.pk))
    instance.field_modified_at, instance.updated_at = times, now
    mark_dirty(entity, [instance.pk], exclude=ctx.alias)


def write_remote(
    ctx: RunContext,
    entity: str,
    link: SyncLink,
    instance,
    writes: dict,
    wants_archived: bool,
    sync_id_missing,
) -> None:
    """The remote side: restore first and trash last (Notion refuses edits to trashed
    pages); a record staying archived on both sides is not written at all (its changes
    wait in the base until it is restored)."""
    if link.remote_archived and not wants_archived:
        send_trash(ctx, entity, link, archived=False)
    if (writes or sync_id_missing) and not (link.remote_archived and wants_archived):
        sync_id = instance.pk if sync_id_missing else None
        try:
            send_update(ctx, entity, link, writes, sync_id=sync_id)
        except FieldBlocked:
            # The schema drifted since the run began: send the rest; the blocked field's
            # change waits (its base is not moved) until the schema is fixed.
            ctx.forget_blocked(entity)
            blocked = ctx.blocked_fields(entity)
            writes = {k: v for k, v in writes.items() if k not in blocked}
            if writes or sync_id:
                send_update(ctx, entity, link, writes, sync_id=sync_id)
    if wants_archived and not link.remote_archived:
        send_trash(ctx, entity, link, archived=True)
