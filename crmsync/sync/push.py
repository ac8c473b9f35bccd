"""The push: the outbox of one entity, one request per changed record.

Creates are marked before they are sent, with the values they carry: a later try of a
marked entry looks the record up by its sync id before sending again, and links what
it finds with those values as base (DESIGN §8). Linked records are merged with the
remote as last agreed (``apply.merge_linked`` with no remote record).
"""

import dataclasses

from django.db import connections, router
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..adapters.base import Unmapped
from ..entities import ENTITIES
from ..exceptions import AdapterError, AmbiguousWriteError, MappingError, TransientAdapterError
from ..models import OutboxEntry, SyncCursor, SyncLink
from ..records import local_values
from . import conflicts, faults, quarantine
from .apply import LocalChangedMeanwhile, RemoteWriteRefused, merge_linked
from .context import RunContext
from .linking import make_link
from .remote import send_trash
from .sources import follow_moved_sources

BATCH = 100
# Creates marked together, just before they are sent: a successor of a killed run looks
# up at most this many by sync id before creating again.
MARK_AHEAD = 10


@dataclasses.dataclass
class CreateBatch:
    """Creates of one outbox batch: planned, marked a few at a time just before sending,
    linked together after."""

    planned: dict  # entry pk -> the values the create will send (in push order)
    marked: dict = dataclasses.field(default_factory=dict)  # entry pk -> values, marked
    sent: list = dataclasses.field(default_factory=list)  # (entry, SyncLink fields)
    ambiguous: set = dataclasses.field(default_factory=set)  # entry pks: outcome unknown

    def mark(self, ctx: "RunContext", pk) -> None:
        """Mark ``pk`` and the next planned creates (up to MARK_AHEAD) in one transaction."""
        chunk = [pk] + [other for other in self.planned if other != pk and other not in self.marked]
        chunk = chunk[:MARK_AHEAD]
        with ctx.atomic():
            mark_sent({each: self.planned[each] for each in chunk}, timezone.now())
        for each in chunk:
            self.marked[each] = self.planned.pop(each)


def mark_sent(values: dict, now) -> None:
    """Set ``create_sent_at`` and ``create_values`` ({entry pk: values}) of outbox
    entries in one statement: an UPDATE from a list of (pk, values) rows. Django's
    ``bulk_update`` builds a CASE expression per row and value, which cost more CPU than
    the create request itself; an ``executemany`` of one UPDATE per row cost 0.1 ms of
    CPU per row on PostgreSQL (issue 15)."""
    connection = connections[router.db_for_write(OutboxEntry)]
    meta, quote = OutboxEntry._meta, connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(str(meta.pk.column))
    sent, sent_values = meta.get_field("create_sent_at"), meta.get_field("create_values")
    sql = (
        f"WITH marked (pk, sent_values) AS (VALUES {', '.join(['(%s, %s)'] * len(values))}) "
        f"UPDATE {table} SET {quote(str(sent.column))} = %s, {quote(str(sent_values.column))} = "
        f"(SELECT marked.sent_values FROM marked WHERE marked.pk = {table}.{pk}) "
        f"WHERE {pk} IN (SELECT marked.pk FROM marked)"
    )
    params = [
        prepared
        for key, each in values.items()
        for prepared in (
            meta.pk.get_db_prep_save(key, connection),
            sent_values.get_db_prep_save(each, connection),
        )
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, sent.get_db_prep_save(now, connection)])


def push(ctx: RunContext, entity: str) -> None:
    """Push the outbox of ``entity`` in batches, oldest entry first, until it is empty or
    the run is out of time."""
    if (
        entity != "activity"
        and not SyncCursor.objects.filter(connection=ctx.alias, entity=entity, full_pull_done=True).exists()
    ):
        return  # never create remotely before the first pull has linked what exists
    enqueue_unlinked(ctx, entity)
    after = None  # keyset position (enqueued_at, pk) in the outbox
    while not ctx.out_of_time():
        queryset = OutboxEntry.objects.filter(connection=ctx.alias, entity=entity, quarantined=False)
        if after is not None:
            queryset = queryset.filter(Q(enqueued_at__gt=after[0]) | Q(enqueued_at=after[0], pk__gt=after[1]))
        entries = list(queryset.order_by("enqueued_at", "pk")[:BATCH])
        if not entries:
            return
        after = (entries[-1].enqueued_at, entries[-1].pk)
        push_batch(ctx, entity, entries)


def push_batch(ctx: RunContext, entity: str, entries: list[OutboxEntry]) -> None:
    if entity != "activity":
        follow_moved_sources(ctx, entity)
    ids = [entry.local_id for entry in entries]
    queryset = ENTITIES[entity].get_model()._default_manager.filter(pk__in=ids)
    if entity == "deal":
        queryset = queryset.select_related("contact")
    instances = {obj.pk: obj for obj in queryset}
    links = {
        link.local_id: link
        for link in SyncLink.objects.filter(connection=ctx.alias, entity=entity, local_id__in=ids)
    }
    open_conflicts = conflicts.open_conflicts(ctx.alias, entity, list(links))
    batch = CreateBatch(plan_creates(ctx, entity, entries, instances, links))
    try:
        for entry in entries:
            if ctx.out_of_time():
                return
            faults.point("push:record")
            instance, link = instances.get(entry.local_id), links.get(entry.local_id)
            try:
                push_record(ctx, entity, entry, instance, link, open_conflicts.get(entry.local_id), batch)
            except AmbiguousWriteError as err:
                batch.ambiguous.add(entry.pk)
                ctx.error(f"{entity} {entry.local_id}: {err}")
            except (MappingError, AdapterError, LocalChangedMeanwhile, RemoteWriteRefused) as err:
                if isinstance(err, TransientAdapterError):
                    raise
                quarantine.fail_local(ctx, entity, entry.local_id, err)
    finally:
        flush_creates(ctx, batch)


def plan_creates(ctx: RunContext, entity: str, entries, instances, links) -> dict:
    """The entries whose records this batch will create remotely, with the values each
    create sends: {entry pk: values}, in push order (marked later, just before sending).

    Left out: records created after this run's pull of their entity began (engine-made
    contacts among them: the next pull may match them to a record made remotely
    meanwhile), and activities whose deal is not linked yet. An activity whose deal is
    archived and was never synced is quarantined: it would wait forever."""
    deal_ids = [instance.opportunity_id for instance in instances.values()] if entity == "activity" else []
    deal_links = _deal_links(ctx, entity, deal_ids)
    pulled_since = ctx.pull_started.get(entity)
    planned = {}
    for entry in entries:
        instance = instances.get(entry.local_id)
        if instance is None or instance.archived or entry.local_id in links or entry.create_sent_at:
            continue
        if pulled_since is not None and instance.created_at >= pulled_since:
            continue
        values = create_values(ctx, entity, instance, deal_links)
        if values is not None:
            planned[entry.pk] = values
    return planned


def create_values(ctx: RunContext, entity: str, instance, deal_links: dict) -> dict | None:
    """What the create of ``instance`` sends, or None while it must wait (an activity
    whose deal is not linked; one whose deal was archived unsynced is quarantined)."""
    values = local_values(instance)
    if entity != "activity":
        return values
    if instance.opportunity_id not in deal_links:
        if instance.opportunity.archived:
            quarantine.fail_local(
                ctx,
                entity,
                instance.pk,
                MappingError("its deal was archived before it ever synced: it stays local"),
                quarantine=True,
            )
        return None
    values["opportunity"] = deal_links[instance.opportunity_id]
    return values


def _deal_links(ctx: RunContext, entity: str, deal_ids: list) -> dict:
    if entity != "activity" or not deal_ids:
        return {}
    return dict(
        SyncLink.objects.filter(connection=ctx.alias, entity="deal", local_id__in=deal_ids).values_list(
            "local_id", "remote_id"
        )
    )


def flush_creates(ctx: RunContext, batch: CreateBatch) -> None:
    """Link what this batch created and finish those entries, in one transaction; clear
    the mark of entries that were marked but not sent after all."""
    if not batch.marked:
        return
    sent = {entry.pk: entry for entry, _ in batch.sent}
    unsent = set(batch.marked) - set(sent) - batch.ambiguous
    with ctx.atomic():
        SyncLink.objects.bulk_create([SyncLink(connection=ctx.alias, **link) for _, link in batch.sent])
        current = dict(OutboxEntry.objects.filter(pk__in=list(sent)).values_list("pk", "enqueued_at"))
        finished = [pk for pk, entry in sent.items() if current.get(pk) == entry.enqueued_at]
        OutboxEntry.objects.filter(pk__in=finished).delete()
        retry = (set(sent) - set(finished)) | unsent
        if retry:
            OutboxEntry.objects.filter(pk__in=list(retry)).update(create_sent_at=None, create_values=None)
    batch.sent.clear()
    batch.marked.clear()


def enqueue_unlinked(ctx: RunContext, entity: str) -> None:
    """Local records this connection has never seen (made before it was configured, or
    bulk-inserted without ``save()``), into the outbox in chunks.

    The first scan reads every record; later ones only those changed since the last scan
    (one indexed query when none did), so a cycle costs the same with 1,000 or 100,000
    records."""
    model = ENTITIES[entity].get_model()
    cursor, _ = SyncCursor.objects.get_or_create(connection=ctx.alias, entity=entity)
    started = timezone.now()
    candidates = model._default_manager.filter(archived=False)
    if cursor.unlinked_scan_at:
        candidates = candidates.filter(updated_at__gte=cursor.unlinked_scan_at)
        if not candidates.exists():
            return
    # NOT EXISTS, correlated on the unique (connection, entity, local_id) indexes: one
    # probe per candidate. NOT IN (subquery) read every link of the connection each time
    # (PostgreSQL hashed them all, SQLite listed them), whatever the number of candidates.
    pk = OuterRef("pk")
    linked = SyncLink.objects.filter(connection=ctx.alias, entity=entity, local_id=pk)
    queued = OutboxEntry.objects.filter(connection=ctx.alias, entity=entity, local_id=pk)
    while not ctx.out_of_time():
        ids = list(
            candidates.exclude(Exists(linked)).exclude(Exists(queued)).values_list("pk", flat=True)[:5000]
        )
        if not ids:
            SyncCursor.objects.filter(pk=cursor.pk).update(unlinked_scan_at=started)
            return
        OutboxEntry.objects.bulk_create(
            [OutboxEntry(connection=ctx.alias, entity=entity, local_id=pk) for pk in ids],
            ignore_conflicts=True,
        )


def push_record(ctx: RunContext, entity: str, entry, instance, link, open_conflicts, batch) -> None:
    if instance is None:
        if link is not None and not link.remote_archived:
            send_trash(ctx, entity, link, archived=True)  # hard-deleted locally: archive remotely
        finish_entry(ctx, entry)
        return
    if link is None:
        if instance.archived:
            finish_entry(ctx, entry)
            return
        create_remote(ctx, entity, entry, instance, batch)  # linked when the batch is flushed, or waits
        return
    if entity != "activity":
        merge_linked(ctx, entity, None, link, instance, open_conflicts=open_conflicts)
        if pending_blocked(ctx, entity, link, instance):
            return  # a blocked field's local change waits in the outbox for the schema fix
    finish_entry(ctx, entry)


def pending_blocked(ctx: RunContext, entity: str, link, instance) -> bool:
    """Whether a field the adapter cannot sync now holds a local change."""
    blocked = ctx.blocked_fields(entity)
    if not blocked:
        return False
    local = local_values(instance)
    return any(field in local and local[field] != link.base.get(field) for field in blocked)


def finish_entry(ctx: RunContext, entry) -> None:
    """Drop the outbox entry unless the record was saved again while it was pushed."""
    with ctx.atomic():
        deleted, _ = OutboxEntry.objects.filter(pk=entry.pk, enqueued_at=entry.enqueued_at).delete()
        if not deleted:
            OutboxEntry.objects.filter(pk=entry.pk).update(
                create_sent_at=None, create_values=None, attempts=0
            )


def create_remote(ctx: RunContext, entity: str, entry, instance, batch: CreateBatch) -> None:
    """Create the remote twin of a local record; it is linked (and its outbox entry
    finished) when the batch is flushed.

    A marked entry from an earlier try (its outcome unknown) is looked up by sync id
    first and never re-sent blindly; what is found is linked with the values that try
    sent as base, then merged, so a person's edits since then follow the owner rules."""
    if entry.create_sent_at:
        found = ctx.adapter.find_by_sync_id(entity, str(instance.pk))
        if found:
            sent = entry.create_values
            link = make_link(
                ctx,
                entity,
                instance,
                found[0],
                base=sent if sent is not None else {},
                archived=False if sent is not None else found[0].archived,
            )
            if entity != "activity":
                merge_linked(ctx, entity, found[0], link, instance)
            finish_entry(ctx, entry)
            return
        deal_ids = [instance.opportunity_id] if entity == "activity" else []
        values = create_values(ctx, entity, instance, _deal_links(ctx, entity, deal_ids))
        if values is None:
            return
        batch.planned[entry.pk] = values
    elif entry.pk not in batch.planned and entry.pk not in batch.marked:
        return  # waits: an activity whose deal is not linked yet, or made during this run
    if entry.pk not in batch.marked:
        batch.mark(ctx, entry.pk)
    values = batch.marked[entry.pk]
    faults.point("push:before-create")
    record = ctx.adapter.create(entity, values, str(instance.pk))
    faults.point("push:after-create")
    ctx.stats["created_remote"] += 1
    batch.sent.append(
        (
            entry,
            {
                "entity": entity,
                "local_id": instance.pk,
                "remote_id": record.remote_id,
                "base": {
                    k: v for k, v in record.values.items() if k in values and not isinstance(v, Unmapped)
                },
                "remote_modified_at": record.modified_at,
                "remote_archived": record.archived,
            },
        )
    )
