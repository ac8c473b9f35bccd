"""LocalAdapter: the contract over this project's own Django models.

The local database is the always-on primary store; this adapter lets it be driven
through the same contract as a CRM (and holds it to the same contract tests).
Remote ids are the records' UUIDs.
"""

import uuid

from django.db.models import Q

from ..entities import ENTITIES
from ..exceptions import RemoteNotFound
from ..outbox import applying_remote_changes
from ..records import apply_values, local_values
from .base import ChangePage, CRMAdapter, RemoteRecord

PAGE_SIZE = 100


class LocalAdapter(CRMAdapter):
    OPTIONS = {"page_size": PAGE_SIZE}

    def _queryset(self, entity: str):
        model = ENTITIES[entity].get_model()
        queryset = model._default_manager.all()
        return queryset.select_related("contact") if entity == "deal" else queryset

    def _record(self, instance) -> RemoteRecord:
        return RemoteRecord(
            remote_id=str(instance.pk),
            sync_id=str(instance.pk),
            values=local_values(instance),
            modified_at=instance.updated_at,
            archived=instance.archived,
            created_at=instance.created_at,
        )

    def _instance(self, entity: str, remote_id: str):
        try:
            return self._queryset(entity).get(pk=uuid.UUID(str(remote_id)))
        except (ValueError, ENTITIES[entity].get_model().DoesNotExist) as err:
            raise RemoteNotFound(f"No {entity} {remote_id}", alias=self.alias, status=404) from err

    def create(self, entity, values, sync_id):
        model = ENTITIES[entity].get_model()
        instance = model(pk=uuid.UUID(str(sync_id)))
        apply_values(instance, values)
        with applying_remote_changes(self.alias):
            instance.save()
        return self._record(instance)

    def update(self, entity, remote_id, changes, *, sync_id=None):
        instance = self._instance(entity, remote_id)
        apply_values(instance, changes)
        with applying_remote_changes(self.alias):
            instance.save()
        return self._record(instance)

    def get(self, entity, remote_id):
        return self._record(self._instance(entity, remote_id))

    def find_by_sync_id(self, entity, sync_id):
        try:
            return [self.get(entity, sync_id)]
        except RemoteNotFound:
            return []

    def _set_archived(self, entity, remote_id, archived: bool):
        instance = self._instance(entity, remote_id)
        instance.archived = archived
        with applying_remote_changes(self.alias):
            instance.save()
        return self._record(instance)

    def trash(self, entity, remote_id):
        return self._set_archived(entity, remote_id, True)

    def restore(self, entity, remote_id):
        return self._set_archived(entity, remote_id, False)

    def iter_changes(self, entity, since, *, by="modified", include_trashed=True):
        """Records by ``updated_at`` (or ``created_at``), trashed ones in the same pages
        (their checkpoints stay valid: one ordered listing of both)."""
        column = "updated_at" if by == "modified" else "created_at"
        queryset = self._queryset(entity).order_by(column, "pk")
        if not include_trashed:
            queryset = queryset.filter(archived=False)
        if since is not None:
            queryset = queryset.filter(**{f"{column}__gte": since})
        last = None
        while True:
            page_qs = queryset
            if last is not None:
                moment = getattr(last, column)
                page_qs = page_qs.filter(
                    Q(**{f"{column}__gt": moment}) | Q(**{column: moment, "pk__gt": last.pk})
                )
            page = list(page_qs[: self.options["page_size"]])
            if not page:
                return
            last = page[-1]
            yield ChangePage([self._record(obj) for obj in page], checkpoint=getattr(last, column))
            if len(page) < self.options["page_size"]:
                return

    def search(self, entity, flt):
        queryset = self._queryset(entity)
        if not flt.include_archived:
            queryset = queryset.filter(archived=False)
        if flt.stage:
            queryset = queryset.filter(stage=flt.stage)
        if flt.modified_since:
            queryset = queryset.filter(updated_at__gte=flt.modified_since)
        if flt.sync_id:
            queryset = queryset.filter(pk=flt.sync_id)
        for instance in queryset.iterator(chunk_size=self.options["page_size"]):
            yield self._record(instance)
