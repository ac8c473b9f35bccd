"""FakeAdapter: an in-memory CRM for tests of code that uses crmsync."""

import dataclasses
import datetime as dt
import uuid

from ..adapters.base import ChangePage, CRMAdapter, RemoteRecord
from ..exceptions import MappingError, RemoteNotFound


class FakeAdapter(CRMAdapter):
    """Keeps records in memory (per instance); ``modified_at`` is floored to the minute
    like Notion's. ``now`` may be replaced to control time."""

    OPTIONS = {"entities": ("deal", "contact", "activity")}
    TIME_GRANULARITY = dt.timedelta(minutes=1)
    LISTING_OVERLAP = dt.timedelta(minutes=1)

    def __init__(self, alias, **options):
        super().__init__(alias, **options)
        self.records: dict[str, dict[str, RemoteRecord]] = {entity: {} for entity in self.options["entities"]}
        self.requests = 0

    @property
    def entities(self):
        return frozenset(self.options["entities"])

    @property
    def requests_sent(self):
        return self.requests

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)

    def _store(self, entity, record) -> RemoteRecord:
        self.records[entity][record.remote_id] = record
        return record

    def _get(self, entity, remote_id) -> RemoteRecord:
        self.requests += 1
        try:
            return self.records[entity][remote_id]
        except KeyError:
            raise RemoteNotFound(f"No {entity} {remote_id}", alias=self.alias, status=404) from None

    def validate(self, values: dict) -> dict:
        """Refuse what a real CRM would (Notion's rule: no commas in option names)."""
        for tag in values.get("tags") or ():
            if "," in tag:
                raise MappingError(f"tags: option {tag!r} cannot contain a comma", field="tags")
        return dict(values)

    def create(self, entity, values, sync_id):
        values = self.validate(values)
        self.requests += 1
        now = self.now()
        return self._store(
            entity, RemoteRecord(str(uuid.uuid4()), str(sync_id), dict(values), now, False, now)
        )

    def update(self, entity, remote_id, changes, *, sync_id=None):
        changes = self.validate(changes)
        record = self._get(entity, remote_id)
        return self._store(
            entity,
            dataclasses.replace(
                record,
                values={**record.values, **changes},
                sync_id=str(sync_id) if sync_id else record.sync_id,
                modified_at=self.now(),
            ),
        )

    def get(self, entity, remote_id):
        return self._get(entity, remote_id)

    def find_by_sync_id(self, entity, sync_id):
        self.requests += 1
        found = [r for r in self.records[entity].values() if r.sync_id == str(sync_id)]
        return sorted(found, key=lambda r: r.created_at)

    def _set_archived(self, entity, remote_id, archived):
        record = self._get(entity, remote_id)
        return self._store(entity, dataclasses.replace(record, archived=archived, modified_at=self.now()))

    def trash(self, entity, remote_id):
        return self._set_archived(entity, remote_id, True)

    def restore(self, entity, remote_id):
        return self._set_archived(entity, remote_id, False)

    def iter_changes(self, entity, since, *, by="modified", include_trashed=True):
        self.requests += 1
        attribute = "modified_at" if by == "modified" else "created_at"
        records = sorted(
            (
                r
                for r in self.records[entity].values()
                if (since is None or getattr(r, attribute) >= since) and (include_trashed or not r.archived)
            ),
            key=lambda r: getattr(r, attribute),
        )
        live = [r for r in records if not r.archived]
        if records:
            # Trashed and live records in one ordered listing: the last live time is safe.
            yield ChangePage(records, checkpoint=getattr(live[-1], attribute) if live else None)

    def search(self, entity, flt):
        self.requests += 1
        for record in self.records[entity].values():
            if record.archived and not flt.include_archived:
                continue
            if flt.stage and record.values.get("stage") != flt.stage:
                continue
            if flt.modified_since and record.modified_at < flt.modified_since:
                continue
            if flt.sync_id and record.sync_id != str(flt.sync_id):
                continue
            yield record
