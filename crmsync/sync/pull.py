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
from collections.abc import Collection

from django.utils import timezone

from ..adapters.base import RemoteRecord
from ..clock import remote_now
from ..entities import ENTITIES
from ..exceptions import AdapterError, MappingError
from ..models import SyncCursor, SyncLink
from . import conflicts, faults, quarantine
from .apply import RemoteWriteRefused, merge_linked
from .context import RunContext
from .creating import RUN_FAILURES, create_locals
from .linking import link_or_queue, sync_uuid
from .merge import floor_time
from .sources import follow_moved_sources

logger = logging.getLogger(__name__)
# What the pull keeps on its cursor (other columns have writers of their own).
LISTING_FIELDS = ["watermark", "full_pull_after", "full_pull_started_at", "full_pull_done"]


def pull(ctx: RunContext, entity: str) -> None:
    """Pull one entity: re-read quarantined records, then list changes since the watermark."""
    faults.point(f"pull:start:{entity}")
    cursor, _ = SyncCursor.objects.get_or_create(connection=ctx.alias, entity=entity)
    ctx.pull_started[entity] = timezone.now()
    follow_moved_sources(ctx, entity)
    reread = set(reread_quarantined(ctx, entity))
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
        apply_records(ctx, entity, page.records, skip=reread)
        if page.checkpoint is not None:
            if full:
                cursor.full_pull_after = page.checkpoint
            else:
                cursor.watermark = _latest(cursor.watermark, page.checkpoint)
        with ctx.atomic():
            cursor.save(update_fields=LISTING_FIELDS)
        if ctx.out_of_time():
            return
    # The listing is complete: everything edited before it began has been seen.
    if full:
        cursor.watermark = cursor.full_pull_started_at or as_of or began
        cursor.full_pull_done = True
    else:
        cursor.watermark = _latest(cursor.watermark, as_of)
    with ctx.atomic():
        cursor.save(update_fields=LISTING_FIELDS)


def reread_quarantined(ctx: RunContext, entity: str) -> list[str]:
    """Read the held remote records again; those that apply leave quarantine. Returns
    their ids: the listing that follows leaves them alone (one try, one error a run)."""
    held = quarantine.held_remote_ids(ctx, entity)
    for remote_id in held:
        if ctx.out_of_time():
            break
        try:
            record = ctx.adapter.get(entity, remote_id)
        except RUN_FAILURES:
            raise
        except Exception as err:  # still unreadable, or gone: held until staff dismiss it
            quarantine.fail_remote(ctx, entity, remote_id, err)
            continue
        apply_records(ctx, entity, [record])
    return held


def apply_records(
    ctx: RunContext, entity: str, records: list[RemoteRecord], *, skip: Collection[str] = ()
) -> None:
    """Merge one page of remote records; a record that fails is quarantined, the others go on."""
    records = [record for record in records if record.remote_id not in skip]
    if not records:
        return
    follow_moved_sources(ctx, entity)
    model = ENTITIES[entity].get_model()
    links = {
        link.remote_id: link
        for link in SyncLink.objects.filter(
            connection=ctx.alias, entity=entity, remote_id__in=[r.remote_id for r in records]
        )
    }
    sync_ids = {sync_uuid(r.sync_id) for r in records if r.remote_id not in links} - {None}
    local_ids = {link.local_id for link in links.values()} | sync_ids
    queryset = model._default_manager.filter(pk__in=local_ids)
    if entity == "deal":
        queryset = queryset.select_related("contact")
    instances = {obj.pk: obj for obj in queryset}
    open_conflicts = conflicts.open_conflicts(ctx.alias, entity, [link.local_id for link in links.values()])
    merged: list = []
    applied: list[str] = []
    new: list[RemoteRecord] = []
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
        except RemoteWriteRefused as err:  # the page applied; a local value was refused
            quarantine.fail_local(ctx, entity, err.local_id, err)
            continue
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


def _latest(*moments: dt.datetime | None) -> dt.datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None
