"""The pull: remote changes since the watermark, merged into local records.

The watermark only moves over what an ordered listing has completely read: the
checkpoint of a page of live records in ascending order (trashed records, listed
apart, never move it), or, once a listing is complete, the CRM's clock when it began.
A first sync lists every record by creation time (which never changes) and, when
complete, sets the watermark to the moment it began, so an edit made between its runs
to a record it has already passed is read by the next incremental listing.
"""

import datetime as dt
import logging
import uuid

from django.utils import timezone

from ..adapters.base import RemoteRecord, Unmapped
from ..clock import remote_now
from ..entities import ENTITIES
from ..exceptions import AdapterError, LeaseLost, MappingError, TransientAdapterError
from ..models import OutboxEntry, SyncCursor, SyncLink
from ..outbox import applying_remote_changes, mark_dirty
from ..records import apply_values, fit_remote_values, local_values
from . import conflicts, faults, quarantine
from .apply import merge_linked
from .context import RunContext
from .merge import floor_time
from .remote import send_update

logger = logging.getLogger(__name__)
# Failures that stop the run (and are retried by the next one) rather than one record.
RUN_FAILURES = (LeaseLost, TransientAdapterError)


def pull(ctx: RunContext, entity: str) -> None:
    """Pull one entity: re-read quarantined records, then list changes since the watermark."""
    faults.point(f"pull:start:{entity}")
    cursor, _ = SyncCursor.objects.get_or_create(connection=ctx.alias, entity=entity)
    ctx.pull_started[entity] = timezone.now()
    reread_quarantined(ctx, entity)
    full = not cursor.full_pull_done
    if full:
        listing = ctx.adapter.iter_changes(
            entity, cursor.full_pull_after, by="created", include_trashed=False
        )
    else:
        since = floor_time(cursor.watermark, ctx.adapter.TIME_GRANULARITY) if cursor.watermark else None
        since = since - ctx.adapter.LISTING_OVERLAP if since else None
        listing = ctx.adapter.iter_changes(entity, since, by="modified", include_trashed=True)
    began = remote_now()
    as_of = None
    for page in listing:
        faults.point("pull:page")
        as_of = as_of or page.as_of or began
        if full and cursor.full_pull_started_at is None:
            cursor.full_pull_started_at = as_of
        apply_records(ctx, entity, page.records)
        if page.checkpoint is not None:
            if full:
                cursor.full_pull_after = page.checkpoint
            else:
                cursor.watermark = _latest(cursor.watermark, page.checkpoint)
        with ctx.atomic():
            cursor.save()
        if ctx.out_of_time():
            return
    # The listing is complete: everything edited before it began has been seen.
    if full:
        cursor.watermark = cursor.full_pull_started_at or as_of or began
        cursor.full_pull_done = True
    else:
        cursor.watermark = _latest(cursor.watermark, as_of)
    with ctx.atomic():
        cursor.save()


def reread_quarantined(ctx: RunContext, entity: str) -> None:
    """Read the held remote records again; those that apply leave quarantine."""
    for remote_id in quarantine.held_remote_ids(ctx, entity):
        if ctx.out_of_time():
            return
        try:
            record = ctx.adapter.get(entity, remote_id)
        except RUN_FAILURES:
            raise
        except Exception as err:  # still unreadable, or gone: held until staff dismiss it
            quarantine.fail_remote(ctx, entity, remote_id, err)
            continue
        apply_records(ctx, entity, [record])


def apply_records(ctx: RunContext, entity: str, records: list[RemoteRecord]) -> None:
    """Merge one page of remote records; a record that fails is quarantined, the others go on."""
    if not records:
        return
    model = ENTITIES[entity].get_model()
    links = {
        link.remote_id: link
        for link in SyncLink.objects.filter(
            connection=ctx.alias, entity=entity, remote_id__in=[r.remote_id for r in records]
        )
    }
    sync_ids = {_uuid(r.sync_id) for r in records if r.remote_id not in links} - {None}
    local_ids = {link.local_id for link in links.values()} | sync_ids
    queryset = model._default_manager.filter(pk__in=local_ids)
    if entity == "deal":
        queryset = queryset.select_related("contact")
    instances = {obj.pk: obj for obj in queryset}
    open_conflicts = conflicts.open_conflicts(ctx.alias, entity, [link.local_id for link in links.values()])
    merged, applied, new = [], [], []
    for record in records:
        link = links.get(record.remote_id)
        try:
            if record.error:
                raise MappingError(record.error)  # a malformed answer
            if link is None:
                if link_or_queue(ctx, entity, record, instances, new):
                    applied.append(record.remote_id)
                continue
            merge_linked(
                ctx,
                entity,
                record,
                link,
                instances.get(link.local_id),
                open_conflicts=open_conflicts.get(link.local_id),
            )
        except RUN_FAILURES:
            raise
        except Exception as err:  # one record never stops the run (DESIGN §8)
            if not isinstance(err, MappingError | AdapterError):
                logger.exception("sync %s: %s %s failed", ctx.alias, entity, record.remote_id)
            quarantine.fail_remote(
                ctx, entity, record.remote_id, err, local_id=link.local_id if link else None
            )
            continue
        merged.append(link.local_id)
        applied.append(record.remote_id)
    applied += create_locals(ctx, entity, new)
    quarantine.release_remote(ctx, entity, applied)
    quarantine.release_local(ctx, entity, merged)


def link_or_queue(ctx: RunContext, entity: str, record: RemoteRecord, instances: dict, new: list) -> bool:
    """Link an unlinked remote record to its local record and merge them (True), or
    queue it in ``new`` to be created locally (False)."""
    sync_id = _uuid(record.sync_id)
    instance = instances.get(sync_id) if sync_id else None
    if instance is not None:
        existing = SyncLink.objects.filter(connection=ctx.alias, entity=entity, local_id=instance.pk).first()
        if existing is None:
            relink(ctx, entity, instance, record)
        elif existing.remote_id == record.remote_id:
            merge_linked(ctx, entity, record, existing, instance)  # linked earlier in this page
        else:
            # Notion's "Duplicate" copies the CRM Sync ID: the copy becomes its own record.
            create_locals(ctx, entity, [record], duplicate_of=instance)
        return True
    if record.archived:
        return True  # a trashed record we never knew: nothing to archive
    match = find_match(ctx, entity, record)
    if match is not None:
        # Matched by email or name: no agreed base, so differing fields follow the owner rules.
        link = make_link(ctx, entity, match, record, base={}, archived=record.archived)
        merge_linked(ctx, entity, record, link, match)
        return True
    new.append(record)
    return False


def relink(ctx: RunContext, entity: str, instance, record: RemoteRecord) -> None:
    """A remote record carrying the sync id of an unlinked local record: our own create
    whose answer was lost. The oldest record with that id is the original (the others
    are copies); it is linked with the values our create sent as base (DESIGN §8), so a
    person's edits made since merge by the owner rules."""
    entry = OutboxEntry.objects.filter(connection=ctx.alias, entity=entity, local_id=instance.pk).first()
    found = ctx.adapter.find_by_sync_id(entity, str(instance.pk))
    original = found[0] if found else record
    sent = entry.create_values if entry is not None else None
    link = make_link(
        ctx,
        entity,
        instance,
        original,
        base=sent if sent is not None else {},
        archived=False if sent is not None else original.archived,
    )
    if entry is not None:
        OutboxEntry.objects.filter(pk=entry.pk).update(create_sent_at=None, create_values=None)
    merge_linked(ctx, entity, original, link, instance)
    if original.remote_id != record.remote_id:
        create_locals(ctx, entity, [record], duplicate_of=instance)


def find_match(ctx: RunContext, entity: str, record: RemoteRecord):
    """An unlinked local record to link a remote record without sync id to, by the
    field the adapter names (contacts: email; deals: name when the connection opts in)."""
    field = ctx.adapter.match_field(entity)
    value = record.values.get(field) if field else None
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    linked = SyncLink.objects.filter(connection=ctx.alias, entity=entity).values("local_id")
    candidates = ENTITIES[entity].get_model()._default_manager.exclude(pk__in=linked).filter(archived=False)
    if entity == "deal":
        candidates = candidates.select_related("contact")
    lookup = f"{field}__iexact" if ENTITIES[entity].field(field).kind == "email" else field
    return candidates.filter(**{lookup: value}).first()


def make_link(ctx: RunContext, entity: str, instance, record: RemoteRecord, *, base: dict, archived: bool):
    with ctx.atomic():
        return SyncLink.objects.create(
            connection=ctx.alias,
            entity=entity,
            local_id=instance.pk,
            remote_id=record.remote_id,
            base={k: v for k, v in base.items() if not isinstance(v, Unmapped)},
            remote_modified_at=record.modified_at,
            remote_archived=archived,
        )


def create_locals(ctx: RunContext, entity: str, records: list[RemoteRecord], *, duplicate_of=None) -> list:
    """New local records for new remote records, created and linked together in one
    transaction (one by one when that fails, so one bad record is quarantined alone);
    then each remote record gets its sync id (one update each). Returns the remote ids
    applied."""
    prepared = []
    for record in records:
        try:
            prepared.append(prepare_local(ctx, entity, record))
        except MappingError as err:
            quarantine.fail_remote(ctx, entity, record.remote_id, err)
    if not prepared:
        return []
    try:
        insert_locals(ctx, entity, prepared, duplicate_of)
    except RUN_FAILURES:
        raise
    except Exception:
        prepared = insert_one_by_one(ctx, entity, prepared, duplicate_of)
    for one in prepared:
        faults.point("pull:before-sync-id")
        # Write the new record's UUID back as the page's CRM Sync ID (one update).
        try:
            send_update(ctx, entity, one.link, {}, sync_id=one.instance.pk)
        except RUN_FAILURES:
            raise
        except AdapterError as err:
            quarantine.fail_remote(ctx, entity, one.record.remote_id, err, local_id=one.instance.pk)
    return [one.record.remote_id for one in prepared]


def insert_one_by_one(ctx: RunContext, entity: str, prepared: list, duplicate_of) -> list:
    """Insert each record on its own; a record the database refuses is quarantined."""
    done = []
    for one in prepared:
        try:
            insert_locals(ctx, entity, [one], duplicate_of)
        except RUN_FAILURES:
            raise
        except Exception as err:
            quarantine.fail_remote(ctx, entity, one.record.remote_id, err)
        else:
            done.append(one)
    return done


class PreparedLocal:
    """A new local record built from a remote one, not saved yet."""

    def __init__(self, record, instance, base, unusable):
        self.record, self.instance, self.base, self.unusable = record, instance, base, unusable
        self.link = None


def prepare_local(ctx: RunContext, entity: str, record: RemoteRecord) -> PreparedLocal:
    """Build the local record: usable values applied (values its validators refuse are
    left at their defaults and shown as open conflicts); the base is what was applied."""
    spec = ENTITIES[entity]
    blocked = ctx.blocked_fields(entity)
    plain = {k: v for k, v in record.values.items() if not isinstance(v, Unmapped) and k not in blocked}
    unmapped = {k: v for k, v in record.values.items() if isinstance(v, Unmapped) and k not in blocked}
    fitted, problems = fit_remote_values(spec, plain)
    values = {k: v for k, v in fitted.items() if k not in problems}
    instance = spec.get_model()()
    with applying_remote_changes(ctx.alias):
        apply_values(instance, values)
    moment = (record.modified_at or remote_now()).isoformat()
    instance.field_modified_at = dict.fromkeys(values, moment)
    instance.archived = record.archived
    applied = local_values(instance)
    base = {k: applied[k] for k in values if k in applied}
    invalid = {k: (plain[k], problem) for k, problem in problems.items()}
    return PreparedLocal(record, instance, base, (unmapped, invalid))


def insert_locals(ctx: RunContext, entity: str, prepared: list[PreparedLocal], duplicate_of) -> None:
    model = ENTITIES[entity].get_model()
    with ctx.atomic(), applying_remote_changes(ctx.alias):
        model._default_manager.bulk_create([one.instance for one in prepared])
        links = SyncLink.objects.bulk_create(
            [
                SyncLink(
                    connection=ctx.alias,
                    entity=entity,
                    local_id=one.instance.pk,
                    remote_id=one.record.remote_id,
                    base=one.base,
                    remote_modified_at=one.record.modified_at,
                    remote_archived=one.record.archived,
                )
                for one in prepared
            ]
        )
        mark_dirty(entity, [one.instance.pk for one in prepared], exclude=ctx.alias)
        for one, link in zip(prepared, links, strict=True):
            one.link = link
            unmapped, invalid = one.unusable
            decisions = conflicts.unusable_decisions(
                ctx.owners(entity), local_values(one.instance), unmapped, invalid
            )
            if duplicate_of is not None:
                decisions.append(conflicts.duplicate_decision(duplicate_of.pk, one.record.sync_id))
            if decisions:
                conflicts.save_decisions(
                    ctx.alias, entity, one.instance, decisions, one.record.modified_at, ctx.stats
                )
    ctx.stats["created_local"] += len(prepared)


def _latest(*moments: dt.datetime | None) -> dt.datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value).strip()) if value else None
    except ValueError:
        return None
