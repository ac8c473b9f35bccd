"""Linking a remote record that has no link yet: to the local record whose sync id it
carries (our own create, perhaps one whose answer was lost), to an unlinked local record
matched by the adapter's match field on the first sync, or else it is new."""

import uuid

from ..adapters.base import RemoteRecord, Unmapped
from ..entities import ENTITIES
from ..models import OutboxEntry, SyncLink
from .apply import merge_linked
from .context import RunContext
from .creating import create_locals


def link_or_queue(ctx: RunContext, entity: str, record: RemoteRecord, instances: dict, new: list) -> bool:
    """Link an unlinked remote record to its local record and merge them, or make it a
    record of its own (True when it applied: a copy the database refuses is quarantined,
    False), or queue it in ``new`` to be created locally (False)."""
    sync_id = sync_uuid(record.sync_id)
    instance = instances.get(sync_id) if sync_id else None
    if instance is not None:
        existing = SyncLink.objects.filter(connection=ctx.alias, entity=entity, local_id=instance.pk).first()
        if existing is None:
            return relink(ctx, entity, instance, record)
        if existing.remote_id == record.remote_id:
            merge_linked(ctx, entity, record, existing, instance)  # linked earlier in this page
            return True
        # Notion's "Duplicate" copies the CRM Sync ID: the copy becomes its own record.
        return record.remote_id in create_locals(ctx, entity, [record], duplicate_of=instance)
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


def relink(ctx: RunContext, entity: str, instance, record: RemoteRecord) -> bool:
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
        return record.remote_id in create_locals(ctx, entity, [record], duplicate_of=instance)
    return True


def find_match(ctx: RunContext, entity: str, record: RemoteRecord):
    """An unlinked local record to link a remote record without sync id to, by the
    field the adapter names (contacts: email; deals: name when the connection opts in)."""
    field = ctx.adapter.match_field(entity)
    value = record.values.get(field) if field else None
    if field is None or not isinstance(value, str) or not value or "\x00" in value:
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


def sync_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value).strip()) if value else None
    except ValueError:
        return None
