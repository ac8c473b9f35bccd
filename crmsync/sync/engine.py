"""The sync engine: I/O, lease, cursors and outbox around the pure merge.

One ``SyncEngine(alias).run()`` is one cycle of one connection:

1. take the connection's lease (a busy connection is skipped);
2. pull each two-way entity (contacts, then deals): remote changes since the
   watermark (minus an overlap that makes minute-rounded times safe), merged field
   by field; the watermark is saved after every result page, so a killed run
   resumes there;
3. push the outbox (contacts, deals, then activities): one request per changed record
   carrying all its changed fields; creates carry the CRM Sync ID and are looked up
   by it before any re-send;
4. record the run.

No database transaction spans an HTTP request. Every transaction that writes
renews the lease first and aborts if the lease was lost.
"""

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import socket
import time
import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..adapters.base import Unmapped
from ..choices import ConflictStatus, Owner, RunStatus, Winner
from ..conf import app_settings
from ..entities import ENTITIES, normal_values
from ..exceptions import (
    AdapterError,
    AmbiguousWriteError,
    CrmSyncError,
    LeaseLost,
    MappingError,
    TransientAdapterError,
)
from ..models import Conflict, OutboxEntry, SyncConnection, SyncCursor, SyncLink, SyncRun
from ..records import apply_values, local_values
from ..registry import connections
from . import faults
from .merge import Decision, floor_minute, merge_record
from .outbox import applying_remote_changes, mark_dirty
from .ownership import owners

logger = logging.getLogger(__name__)
# Re-read remote edits this long before the watermark: Notion floors times to the minute.
OVERLAP = dt.timedelta(seconds=60)
BATCH = 100
PULL_ORDER = ("contact", "deal")
PUSH_ORDER = ("contact", "deal", "activity")


class LocalChangedMeanwhile(CrmSyncError):
    """A user saved the record while the engine was merging it; merge again."""


@dataclasses.dataclass
class CreateBatch:
    """Creates of one outbox batch: marked before sending, linked together after."""

    marked: dict  # entry pk -> the deal's remote id (activities) or None
    sent: list = dataclasses.field(default_factory=list)  # (entry, SyncLink fields)
    ambiguous: set = dataclasses.field(default_factory=set)  # entry pks: outcome unknown


class SyncEngine:
    def __init__(self, alias: str, *, time_limit: float | None = None, owner: str | None = None):
        self.alias = alias
        self.adapter = connections[alias]
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.time_limit = app_settings.RUN_TIME_LIMIT if time_limit is None else time_limit
        self.stats = dict.fromkeys(SyncRun.COUNTS, 0)
        self.errors: list[str] = []
        self.partial = False
        self._owners: dict[str, dict] = {}

    # --- Lease ----------------------------------------------------------------------

    def _lease_expiry(self):
        return timezone.now() + dt.timedelta(seconds=app_settings.LEASE_SECONDS)

    def acquire_lease(self) -> bool:
        SyncConnection.objects.get_or_create(alias=self.alias)
        now = timezone.now()
        expired = SyncConnection.objects.filter(alias=self.alias, lease_expires_at__lt=now).exclude(
            lease_owner=""
        )
        taken_over = expired.exists()
        taken = (
            SyncConnection.objects.filter(alias=self.alias)
            .filter(Q(lease_owner="") | Q(lease_expires_at__lt=now) | Q(lease_owner=self.owner))
            .update(lease_owner=self.owner, lease_expires_at=self._lease_expiry())
        )
        if taken == 1 and taken_over:
            # The previous holder died mid-run (its lease expired): close its run's record.
            SyncRun.objects.filter(connection=self.alias, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                finished_at=now,
                error_summary="The worker stopped before finishing (lease expired).",
            )
        return taken == 1

    def renew_lease(self) -> None:
        renewed = SyncConnection.objects.filter(alias=self.alias, lease_owner=self.owner).update(
            lease_expires_at=self._lease_expiry()
        )
        if renewed != 1:
            raise LeaseLost(f"The lease on {self.alias!r} was taken over; stopping without committing.")

    def release_lease(self) -> None:
        SyncConnection.objects.filter(alias=self.alias, lease_owner=self.owner).update(
            lease_owner="", lease_expires_at=None
        )

    @contextlib.contextmanager
    def atomic(self):
        """A transaction that first checks (and renews) the lease."""
        with transaction.atomic():
            self.renew_lease()
            yield

    # --- The cycle -----------------------------------------------------------------------

    def run(self) -> SyncRun:
        if not self.acquire_lease():
            logger.info("sync %s skipped: another run holds the lease", self.alias)
            now = timezone.now()
            return SyncRun.objects.create(
                connection=self.alias, status=RunStatus.SKIPPED, started_at=now, finished_at=now
            )
        run = SyncRun.objects.create(connection=self.alias)
        self.deadline = time.monotonic() + self.time_limit
        requests_before = self.adapter.requests_sent
        status = RunStatus.FAILED
        try:
            for entity in PULL_ORDER:
                if entity in self.adapter.entities and not self.out_of_time():
                    self.pull(entity)
            for entity in PUSH_ORDER:
                if entity in self.adapter.entities and not self.out_of_time():
                    self.push(entity)
            if self.stats["errors"]:
                status = RunStatus.FAILED
            else:
                status = RunStatus.PARTIAL if self.partial else RunStatus.SUCCESS
        except (AdapterError, LeaseLost) as err:
            logger.warning("sync %s failed: %s", self.alias, err)
            self.errors.append(str(err))
            self.stats["errors"] += 1
        except Exception as err:
            self.errors.append(f"{type(err).__name__}: {err}")
            self.stats["errors"] += 1
            raise
        finally:
            run.status = status
            for key, value in self.stats.items():
                setattr(run, key, value)
            run.requests = self.adapter.requests_sent - requests_before
            run.error_summary = "\n".join(self.errors[:50])
            run.finished_at = timezone.now()
            run.save()
            connection_fields = {"last_error": run.error_summary}
            if run.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
                connection_fields["last_success_at"] = run.finished_at
            SyncConnection.objects.filter(alias=self.alias).update(**connection_fields)
            self.release_lease()
        return run

    def out_of_time(self) -> bool:
        if time.monotonic() >= self.deadline:
            self.partial = True
        return self.partial

    def owners(self, entity: str) -> dict[str, Owner]:
        if entity not in self._owners:
            self._owners[entity] = owners(self.alias, entity)
        return self._owners[entity]

    def fail_record(
        self,
        entity: str,
        local_id,
        err: Exception,
        *,
        count: bool = True,
        remote_id=None,
        quarantine: bool = False,
    ) -> None:
        """Count a record's failure; after MAX_RECORD_FAILURES (or at once with
        ``quarantine``) it is quarantined: visible, and left out until it is edited."""
        message = f"{entity} {local_id or f'(remote {remote_id})'}: {err}"
        logger.warning("sync %s: %s", self.alias, message)
        self.errors.append(message)
        self.stats["errors"] += 1
        if local_id is None or not count:
            return
        entry, _ = OutboxEntry.objects.get_or_create(connection=self.alias, entity=entity, local_id=local_id)
        entry.attempts += 1
        entry.last_error = str(err)[:2000]
        if (quarantine or entry.attempts >= app_settings.MAX_RECORD_FAILURES) and not entry.quarantined:
            entry.quarantined = True
            self.stats["quarantined"] += 1
        entry.save(update_fields=["attempts", "last_error", "quarantined"])

    # --- Pull ----------------------------------------------------------------------------

    def pull(self, entity: str) -> None:
        cursor, _ = SyncCursor.objects.get_or_create(connection=self.alias, entity=entity)
        if not cursor.full_pull_done:
            # First sync: every page, windowed by creation time (which never changes)
            # to pass the 10,000-row cap per query.
            pages = self.adapter.iter_changes(
                entity, cursor.full_pull_after, by="created", include_trashed=False
            )
        else:
            since = floor_minute(cursor.watermark) - OVERLAP if cursor.watermark else None
            pages = self.adapter.iter_changes(entity, since, by="modified")
        as_of = None
        for page in pages:
            faults.point("pull:page")
            self.apply_remote_page(entity, page.records)
            as_of = as_of or page.as_of
            seen = [record.modified_at for record in page.records if record.modified_at]
            if not cursor.full_pull_done:
                cursor.full_pull_started_at = cursor.full_pull_started_at or as_of
                cursor.full_pull_after = page.checkpoint or cursor.full_pull_after
            cursor.watermark = _latest(cursor.watermark, *seen)
            with self.atomic():
                cursor.save()
            if self.out_of_time():
                return
        # The listing is complete: everything edited before it began has been seen, so the
        # next run needs only what changed since (minus the overlap), even when nothing
        # was edited for a while.
        cursor.watermark = _latest(
            cursor.watermark, as_of if cursor.full_pull_done else cursor.full_pull_started_at
        )
        cursor.full_pull_done = True
        with self.atomic():
            cursor.save()

    def apply_remote_page(self, entity: str, records) -> None:
        model = ENTITIES[entity].get_model()
        links = {
            link.remote_id: link
            for link in SyncLink.objects.filter(
                connection=self.alias, entity=entity, remote_id__in=[r.remote_id for r in records]
            )
        }
        sync_ids = {_uuid(r.sync_id) for r in records if r.remote_id not in links} - {None}
        local_ids = {link.local_id for link in links.values()} | sync_ids
        queryset = model._default_manager.filter(pk__in=local_ids)
        if entity == "deal":
            queryset = queryset.select_related("contact")
        instances = {obj.pk: obj for obj in queryset}
        linked_elsewhere = {
            link.local_id: link
            for link in SyncLink.objects.filter(connection=self.alias, entity=entity, local_id__in=sync_ids)
        }
        merged, new = [], []
        for record in records:
            link = links.get(record.remote_id)
            try:
                if record.error:
                    raise MappingError(record.error)  # a malformed answer
                if link is not None:
                    self.merge_linked(entity, record, link, instances.get(link.local_id))
                    merged.append(link.local_id)
                else:
                    self.link_or_create_local(entity, record, instances, linked_elsewhere, new)
            except (MappingError, AdapterError) as err:
                if isinstance(err, TransientAdapterError):
                    raise
                # The page is read again only when it is edited: quarantine at once, and
                # go on with the others.
                self.fail_record(
                    entity,
                    link.local_id if link else None,
                    err,
                    count=link is not None,
                    remote_id=record.remote_id,
                    quarantine=True,
                )
        self.create_locals(entity, new)
        if merged:
            # A page that reads and merges cleanly again leaves quarantine.
            OutboxEntry.objects.filter(
                connection=self.alias, entity=entity, local_id__in=merged, quarantined=True
            ).update(quarantined=False, attempts=0, last_error="")

    def link_or_create_local(self, entity, record, instances, linked_elsewhere, new: list) -> None:
        """Link an unlinked page to its local record, or queue it in ``new`` to be created."""
        sync_id = _uuid(record.sync_id)
        instance = instances.get(sync_id) if sync_id else None
        if instance is not None and sync_id in linked_elsewhere:
            # Notion's "Duplicate" copies the CRM Sync ID: the newer page becomes its own record.
            self.create_duplicate(entity, record, duplicate_of=instance)
            return
        if instance is not None:
            # Our own create (perhaps one whose answer was lost), or a relinked page.
            link = self.link(entity, instance, record, base=record.values)
            OutboxEntry.objects.filter(connection=self.alias, entity=entity, local_id=instance.pk).update(
                create_sent_at=None
            )
            self.merge_linked(entity, record, link, instance)
            return
        if record.archived:
            return  # a trashed page we never knew: nothing to archive
        match = self.find_match(entity, record)
        if match is not None:
            # Matched by email or name: no agreed base, so differing fields follow the owner rules.
            link = self.link(entity, match, record, base={})
            self.merge_linked(entity, record, link, match)
            return
        new.append(record)

    def create_locals(self, entity, records) -> list:
        """New local records for new remote pages: created and linked together in one
        transaction, then each page gets its CRM Sync ID (one update each)."""
        model = ENTITIES[entity].get_model()
        prepared = []
        for record in records:
            values = {k: v for k, v in record.values.items() if not isinstance(v, Unmapped)}
            instance = model()
            try:
                apply_values(instance, values)
            except MappingError as err:
                self.fail_record(entity, None, err, count=False, remote_id=record.remote_id)
                continue
            instance.field_modified_at = dict.fromkeys(values, _iso(record.modified_at))
            instance.archived = record.archived
            prepared.append((record, instance, values))
        if not prepared:
            return []
        with self.atomic(), applying_remote_changes(self.alias):
            model._default_manager.bulk_create([instance for _, instance, _ in prepared])
            links = SyncLink.objects.bulk_create(
                [
                    SyncLink(
                        connection=self.alias,
                        entity=entity,
                        local_id=instance.pk,
                        remote_id=record.remote_id,
                        base=values,
                        remote_modified_at=record.modified_at,
                        remote_archived=record.archived,
                    )
                    for record, instance, values in prepared
                ]
            )
            mark_dirty(entity, [instance.pk for _, instance, _ in prepared], exclude=self.alias)
            for record, instance, _ in prepared:
                unmapped = {k: v for k, v in record.values.items() if isinstance(v, Unmapped)}
                if unmapped:
                    self.record_unmapped(entity, instance, record, unmapped)
        self.stats["created_local"] += len(prepared)
        for (_, instance, _), link in zip(prepared, links, strict=True):
            faults.point("pull:before-sync-id")
            # Write the new record's UUID back as the page's CRM Sync ID (one update).
            try:
                self.send_update(entity, link, {}, sync_id=instance.pk)
            except AdapterError as err:
                if isinstance(err, TransientAdapterError):
                    raise
                self.fail_record(entity, instance.pk, err)  # the next read of the page retries it
        return [instance for _, instance, _ in prepared]

    def find_match(self, entity, record):
        """An unlinked local record to link a page without sync id to: a contact by email,
        a deal by exact name when the connection opts in."""
        if entity == "contact" and record.values.get("email"):
            lookup = {"email__iexact": record.values["email"]}
        elif (
            entity == "deal" and self.adapter.options.get("match_deals_by_name") and record.values.get("name")
        ):
            lookup = {"name": record.values["name"]}
        else:
            return None
        linked = SyncLink.objects.filter(connection=self.alias, entity=entity).values("local_id")
        candidates = (
            ENTITIES[entity].get_model()._default_manager.exclude(pk__in=linked).filter(archived=False)
        )
        if entity == "deal":
            candidates = candidates.select_related("contact")
        return candidates.filter(**lookup).first()

    def link(self, entity, instance, record, *, base) -> SyncLink:
        with self.atomic():
            return SyncLink.objects.create(
                connection=self.alias,
                entity=entity,
                local_id=instance.pk,
                remote_id=record.remote_id,
                base={k: v for k, v in base.items() if not isinstance(v, Unmapped)},
                remote_modified_at=record.modified_at,
                remote_archived=record.archived,
            )

    def create_duplicate(self, entity, record, duplicate_of) -> None:
        """A page copied in Notion (its CRM Sync ID with it) becomes a record of its own."""
        for instance in self.create_locals(entity, [record]):
            decision = Decision(
                "id",
                str(duplicate_of.pk),
                str(duplicate_of.pk),
                record.sync_id,
                Owner.SHARED,
                Winner.LOCAL,
                f"duplicate sync id: the page is a copy of {duplicate_of.pk}; it became a new record",
            )
            self.save_decisions(entity, instance, [decision], record)

    def record_unmapped(self, entity, instance, record, unmapped: dict) -> None:
        """An open conflict for each remote value with no local equivalent."""
        decisions = [
            Decision(
                field,
                None,
                None,
                str(value.raw),
                self.owners(entity).get(field, Owner.SHARED),
                Winner.NONE,
                f"unmapped value: {value.raw!r} has no local equivalent",
                ConflictStatus.OPEN,
            )
            for field, value in unmapped.items()
        ]
        if decisions:
            local = local_values(instance)
            decisions = [dataclasses.replace(d, local=local.get(d.field)) for d in decisions]
            self.save_decisions(entity, instance, decisions, record)

    def merge_linked(self, entity, record, link, instance, *, held=frozenset(), attempts: int = 3) -> None:
        """Merge a linked record with its remote twin (``record``; None: the remote is
        unchanged since the base, and the ``held`` fields, under open conflicts, are left
        alone). One local write and at most one remote update."""
        if instance is None:
            return  # the local record was hard-deleted; nothing to merge into
        unmapped = {}
        if record is None:
            remote_values = {k: v for k, v in link.base.items() if k not in held}
        else:
            remote_values = {}
            for name, value in record.values.items():
                if not isinstance(value, Unmapped):
                    remote_values[name] = value
                elif link.base.get(name) == str(value.raw):
                    # Staff kept the local value against this remote value: compare as is,
                    # so the local value is pushed.
                    remote_values[name] = str(value.raw)
                else:
                    unmapped[name] = value
        remote_archived = link.remote_archived if record is None else record.archived
        local = local_values(instance)
        unchanged = (
            record is not None
            and all(link.base.get(k, _MISSING) == v for k, v in remote_values.items())
            and remote_archived == link.remote_archived
            and all(local.get(k) == link.base.get(k) for k in link.base)
            and (record.sync_id or "") == str(instance.pk)
            and not unmapped
        )
        if unchanged and instance.archived == remote_archived:
            return  # our own echo, or a page edited elsewhere with nothing we sync
        remote_time = record.modified_at if record else link.remote_modified_at
        times = {name: instance.field_time(name) for name in local}
        result = merge_record(link.base, local, remote_values, self.owners(entity), times, remote_time)
        archive_local = None
        if record is not None and record.archived != link.remote_archived:
            archive_local = record.archived  # trashed or restored in the CRM
        try:
            with self.atomic():
                if result.local_writes or archive_local is not None:
                    self.write_local(entity, instance, result.local_writes, remote_time, archive_local)
                # Pushed fields keep their old base until the push succeeds (send_update),
                # so a run killed in between pushes them again.
                base = {k: v for k, v in result.base.items() if k not in result.remote_writes}
                link.base = {**base, **{k: link.base[k] for k in result.remote_writes if k in link.base}}
                link.remote_modified_at = remote_time
                link.remote_archived = remote_archived
                link.save(update_fields=["base", "remote_modified_at", "remote_archived", "updated_at"])
                if unmapped:
                    self.record_unmapped(entity, instance, record, unmapped)
                self.save_decisions(entity, instance, result.decisions, record, agreed=result.agreed)
        except LocalChangedMeanwhile:
            if attempts <= 1:
                raise
            instance = type(instance)._default_manager.get(pk=instance.pk)
            link.refresh_from_db()
            return self.merge_linked(entity, record, link, instance, held=held, attempts=attempts - 1)
        if result.local_writes:
            self.stats["updated_local"] += 1
        if archive_local is not None and archive_local:
            self.stats["archived"] += 1
        # Then the remote side: field changes first (Notion refuses edits to trashed pages).
        wants_archived = instance.archived if archive_local is None else archive_local
        sync_id = instance.pk if record is not None and (record.sync_id or "") != str(instance.pk) else None
        if remote_archived and not wants_archived:
            self.send_trash(entity, link, archived=False)
        if result.remote_writes or sync_id:
            self.send_update(entity, link, result.remote_writes, sync_id=sync_id)
        if wants_archived and not link.remote_archived:
            self.send_trash(entity, link, archived=True)

    def write_local(self, entity, instance, writes: dict, remote_time, archived) -> None:
        """Apply pulled values with a conditional UPDATE: if a user saved the record since
        it was read, raise LocalChangedMeanwhile (their write is never overwritten)."""
        model = type(instance)
        apply_values(instance, writes)
        columns = {}
        for name in writes:
            field = model._meta.get_field(name)
            columns[field.attname] = getattr(instance, field.attname)
        if archived is not None:
            columns["archived"] = instance.archived = archived
        times = {**instance.field_modified_at, **dict.fromkeys(writes, _iso(remote_time))}
        now = timezone.now()
        updated = model._default_manager.filter(pk=instance.pk, updated_at=instance.updated_at).update(
            **columns, field_modified_at=times, updated_at=now
        )
        if updated != 1:
            raise LocalChangedMeanwhile(str(instance.pk))
        instance.field_modified_at, instance.updated_at = times, now
        mark_dirty(entity, [instance.pk], exclude=self.alias)

    def save_decisions(self, entity, instance, decisions, record, *, agreed=()) -> None:
        name = str(instance)[:255]
        remote_time = record.modified_at if record else None
        for decision in decisions:
            values = {
                "record_name": name,
                "base_value": decision.base,
                "local_value": decision.local,
                "remote_value": decision.remote,
                "rule": decision.rule,
                "winner": decision.winner,
                "reason": decision.reason[:255],
                "local_time": instance.field_time(decision.field),
                "remote_time": remote_time,
            }
            key = {
                "connection": self.alias,
                "entity": entity,
                "object_id": instance.pk,
                "field": decision.field,
            }
            if decision.status == ConflictStatus.OPEN:
                _, created = Conflict.objects.update_or_create(
                    **key, status=ConflictStatus.OPEN, defaults=values
                )
                self.stats["conflicts"] += int(created)
            else:
                Conflict.objects.create(**key, **values, status=decision.status)
                self.stats["conflicts"] += 1
        if agreed:
            # A held field whose sides now agree needs no one's decision any more.
            Conflict.objects.filter(
                connection=self.alias,
                entity=entity,
                object_id=instance.pk,
                field__in=agreed,
                status=ConflictStatus.OPEN,
            ).update(
                status=ConflictStatus.RESOLVED, resolved_at=timezone.now(), reason="both sides now agree"
            )

    # --- Push ----------------------------------------------------------------------------

    def push(self, entity: str) -> None:
        if (
            entity != "activity"
            and not SyncCursor.objects.filter(
                connection=self.alias, entity=entity, full_pull_done=True
            ).exists()
        ):
            return  # never create remotely before the first pull has linked what exists
        self.enqueue_unlinked(entity)
        model = ENTITIES[entity].get_model()
        after = None  # keyset position (enqueued_at, pk) in the outbox
        while not self.out_of_time():
            queryset = OutboxEntry.objects.filter(connection=self.alias, entity=entity, quarantined=False)
            if after is not None:
                queryset = queryset.filter(
                    Q(enqueued_at__gt=after[0]) | Q(enqueued_at=after[0], pk__gt=after[1])
                )
            entries = list(queryset.order_by("enqueued_at", "pk")[:BATCH])
            if not entries:
                return
            after = (entries[-1].enqueued_at, entries[-1].pk)
            ids = [entry.local_id for entry in entries]
            queryset = model._default_manager.filter(pk__in=ids)
            if entity == "deal":
                queryset = queryset.select_related("contact")
            instances = {obj.pk: obj for obj in queryset}
            links = {
                link.local_id: link
                for link in SyncLink.objects.filter(connection=self.alias, entity=entity, local_id__in=ids)
            }
            held: dict = {}
            for object_id, field in Conflict.objects.filter(
                connection=self.alias, entity=entity, object_id__in=ids, status=ConflictStatus.OPEN
            ).values_list("object_id", "field"):
                held.setdefault(object_id, set()).add(field)
            batch = CreateBatch(self.mark_creates(entity, entries, instances, links))
            try:
                for entry in entries:
                    if self.out_of_time():
                        return
                    faults.point("push:record")
                    try:
                        self.push_record(
                            entity,
                            entry,
                            instances.get(entry.local_id),
                            links.get(entry.local_id),
                            held.get(entry.local_id, frozenset()),
                            batch,
                        )
                    except AmbiguousWriteError as err:
                        batch.ambiguous.add(entry.pk)
                        self.fail_record(entity, entry.local_id, err, count=False)
                    except (MappingError, AdapterError, LocalChangedMeanwhile) as err:
                        if isinstance(err, TransientAdapterError):
                            raise
                        self.fail_record(entity, entry.local_id, err)
            finally:
                self.flush_creates(batch)

    def mark_creates(self, entity, entries, instances, links) -> dict:
        """Mark, in one transaction, the entries whose records this batch will create
        remotely: a later try of a marked entry looks the record up before creating it.
        Returns {entry pk: the deal's remote id (activities) or None}."""
        deal_links = {}
        if entity == "activity":
            deal_ids = [instance.opportunity_id for instance in instances.values()]
            deal_links = dict(
                SyncLink.objects.filter(
                    connection=self.alias, entity="deal", local_id__in=deal_ids
                ).values_list("local_id", "remote_id")
            )
        marked = {}
        for entry in entries:
            instance = instances.get(entry.local_id)
            if instance is None or instance.archived or entry.local_id in links or entry.create_sent_at:
                continue
            if entity == "activity":
                if instance.opportunity_id not in deal_links:
                    continue  # waits for its deal to be linked
                marked[entry.pk] = deal_links[instance.opportunity_id]
            else:
                marked[entry.pk] = None
        if marked:
            with self.atomic():
                OutboxEntry.objects.filter(pk__in=list(marked)).update(create_sent_at=timezone.now())
        return marked

    def flush_creates(self, batch: "CreateBatch") -> None:
        """Link what this batch created and finish those entries, in one transaction;
        clear the mark of entries that were not sent after all."""
        if not batch.marked:
            return
        sent = {entry.pk: entry for entry, _ in batch.sent}
        unsent = set(batch.marked) - set(sent) - batch.ambiguous
        with self.atomic():
            SyncLink.objects.bulk_create([SyncLink(connection=self.alias, **link) for _, link in batch.sent])
            current = dict(OutboxEntry.objects.filter(pk__in=list(sent)).values_list("pk", "enqueued_at"))
            finished = [pk for pk, entry in sent.items() if current.get(pk) == entry.enqueued_at]
            OutboxEntry.objects.filter(pk__in=finished).delete()
            retry = (set(sent) - set(finished)) | unsent
            if retry:
                OutboxEntry.objects.filter(pk__in=list(retry)).update(create_sent_at=None)
        batch.sent.clear()
        batch.marked.clear()

    def enqueue_unlinked(self, entity: str) -> None:
        """Local records this connection has never seen (made before it was configured,
        or bulk-inserted without ``save()``), into the outbox in chunks.

        Skipped (one indexed query) when no local record changed since the last scan, so
        an idle cycle costs the same with 100 or 10,000 records."""
        model = ENTITIES[entity].get_model()
        cursor, _ = SyncCursor.objects.get_or_create(connection=self.alias, entity=entity)
        started = timezone.now()
        if (
            cursor.unlinked_scan_at
            and not model._default_manager.filter(updated_at__gte=cursor.unlinked_scan_at).exists()
        ):
            return
        while not self.out_of_time():
            ids = list(
                model._default_manager.filter(archived=False)
                .exclude(
                    pk__in=SyncLink.objects.filter(connection=self.alias, entity=entity).values("local_id")
                )
                .exclude(
                    pk__in=OutboxEntry.objects.filter(connection=self.alias, entity=entity).values("local_id")
                )
                .values_list("pk", flat=True)[:5000]
            )
            if not ids:
                SyncCursor.objects.filter(pk=cursor.pk).update(unlinked_scan_at=started)
                return
            OutboxEntry.objects.bulk_create(
                [OutboxEntry(connection=self.alias, entity=entity, local_id=pk) for pk in ids],
                ignore_conflicts=True,
            )

    def push_record(self, entity, entry, instance, link, held=frozenset(), batch=None) -> None:
        if instance is None:
            if link is not None and not link.remote_archived:
                self.send_trash(entity, link, archived=True)  # hard-deleted locally: archive remotely
            self.finish_entry(entry)
            return
        if link is None:
            if instance.archived:
                self.finish_entry(entry)
                return
            self.create_remote(entity, entry, instance, batch)  # links and finishes the entry, or waits
            return
        if entity != "activity":
            self.merge_linked(entity, None, link, instance, held=held)
        self.finish_entry(entry)

    def finish_entry(self, entry, *, link: dict | None = None) -> None:
        """Drop the outbox entry unless the record was saved again while it was pushed;
        with ``link``, create that SyncLink in the same transaction."""
        with self.atomic():
            if link is not None:
                SyncLink.objects.create(connection=self.alias, **link)
            deleted, _ = OutboxEntry.objects.filter(pk=entry.pk, enqueued_at=entry.enqueued_at).delete()
            if not deleted:
                OutboxEntry.objects.filter(pk=entry.pk).update(create_sent_at=None, attempts=0)

    def create_remote(self, entity, entry, instance, batch: "CreateBatch | None" = None) -> None:
        """Create the remote twin of a local record; it is linked (and its outbox entry
        finished) when the batch is flushed.

        The entry was marked before the request is sent (``mark_creates``): a later try
        whose mark is set looks the record up by its sync id first and never re-sends
        blindly."""
        batch = (
            batch
            if batch is not None
            else CreateBatch(self.mark_creates(entity, [entry], {instance.pk: instance}, {}))
        )
        if entry.create_sent_at:
            # The last create's outcome is unknown: look before sending it again.
            found = self.adapter.find_by_sync_id(entity, str(instance.pk))
            if found:
                link = self.link(entity, instance, found[0], base=found[0].values)
                if entity != "activity":
                    self.merge_linked(entity, None, link, instance)
                self.finish_entry(entry)
                return
            with self.atomic():
                OutboxEntry.objects.filter(pk=entry.pk).update(create_sent_at=timezone.now())
        elif entry.pk not in batch.marked:
            return  # an activity whose deal is not linked yet
        values = local_values(instance)
        if entity == "activity":
            values["opportunity"] = (
                batch.marked.get(entry.pk)
                or SyncLink.objects.get(
                    connection=self.alias, entity="deal", local_id=instance.opportunity_id
                ).remote_id
            )
        faults.point("push:before-create")
        record = self.adapter.create(entity, values, str(instance.pk))
        faults.point("push:after-create")
        self.stats["created_remote"] += 1
        batch.marked.setdefault(entry.pk, None)
        batch.sent.append(
            (
                entry,
                {
                    "entity": entity,
                    "local_id": instance.pk,
                    "remote_id": record.remote_id,
                    "base": {k: v for k, v in record.values.items() if not isinstance(v, Unmapped)},
                    "remote_modified_at": record.modified_at,
                    "remote_archived": record.archived,
                },
            )
        )

    def send_update(self, entity, link, changes: dict, *, sync_id=None) -> None:
        faults.point("push:before-update")
        kwargs = {"sync_id": str(sync_id)} if sync_id else {}
        record = self.adapter.update(entity, link.remote_id, changes, **kwargs)
        faults.point("push:after-update")
        if not changes:
            return  # only the sync id was written: the base is unchanged
        self.stats["updated_remote"] += 1
        with self.atomic():
            link.base = {**link.base, **changes}
            link.remote_modified_at = record.modified_at
            link.save(update_fields=["base", "remote_modified_at", "updated_at"])

    def send_trash(self, entity, link, *, archived: bool) -> None:
        record = (self.adapter.trash if archived else self.adapter.restore)(entity, link.remote_id)
        if archived:
            self.stats["archived"] += 1
        with self.atomic():
            link.remote_archived = archived
            link.remote_modified_at = record.modified_at
            link.save(update_fields=["remote_archived", "remote_modified_at", "updated_at"])


_MISSING = object()


def _latest(*moments):
    moments = [moment for moment in moments if moment is not None]
    return max(moments) if moments else None


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value).strip()) if value else None
    except ValueError:
        return None


def _iso(moment: dt.datetime | None) -> str:
    return (moment or timezone.now()).isoformat()


class Resolution:
    KEEP_LOCAL = "keep_local"
    TAKE_REMOTE = "take_remote"
    VALUE = "value"
    CHOICES = (KEEP_LOCAL, TAKE_REMOTE, VALUE)


def resolve_conflict(conflict: Conflict, choice: str, *, value=None, user=None) -> Conflict:
    """Resolve a conflict the way staff chose; the next sync applies it to both sides.

    ``keep_local`` pushes the local value, ``take_remote`` writes the remote value
    locally, ``value`` sets both sides to ``value``. The local write is an ordinary save
    (it enters the outbox); the link's base is set to the remote value seen, so the next
    run pushes whatever differs from it. Raises MappingError for a value the field cannot
    hold and ValueError for a conflict already resolved or an unknown choice.
    """
    if choice not in Resolution.CHOICES:
        raise ValueError(f"Unknown resolution {choice!r}: use one of {', '.join(Resolution.CHOICES)}.")
    if conflict.status == ConflictStatus.RESOLVED:
        raise ValueError("This conflict is already resolved.")
    entity = ENTITIES[conflict.entity]
    queryset = entity.get_model()._default_manager.all()
    if conflict.entity == "deal":
        queryset = queryset.select_related("contact")
    instance = queryset.get(pk=conflict.object_id)
    field = conflict.field
    if field not in entity.field_names:
        raise ValueError(f"Field {field!r} cannot be resolved here; edit the record instead.")
    if choice == Resolution.KEEP_LOCAL:
        target = local_values(instance)[field]
    elif choice == Resolution.TAKE_REMOTE:
        target = conflict.remote_value
    else:
        target = normal_values(entity, {field: value})[field]
    with transaction.atomic():
        if local_values(instance)[field] != target:
            apply_values(instance, {field: target})
            instance.save()
        link = SyncLink.objects.filter(
            connection=conflict.connection, entity=conflict.entity, local_id=instance.pk
        ).first()
        if link is not None:
            # The remote holds remote_value: whatever differs from it is pushed next run.
            link.base = {**link.base, field: conflict.remote_value}
            link.save(update_fields=["base", "updated_at"])
            mark_dirty(conflict.entity, [instance.pk])
        conflict.status = ConflictStatus.RESOLVED
        conflict.winner = Winner.REMOTE if target == conflict.remote_value else Winner.LOCAL
        conflict.reason = f"resolved by staff: {choice.replace('_', ' ')}"[:255]
        conflict.resolved_by = user if user is not None and user.is_authenticated else None
        conflict.resolved_at = timezone.now()
        conflict.save()
    return conflict
