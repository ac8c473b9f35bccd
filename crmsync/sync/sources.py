"""A field whose source moved in the CRM (a property deleted and made again, a mapping
pointed at another property): what the links agreed for it no longer says what the CRM
holds. Its bases become ``UNKNOWN``: the merge then reads the remote value as unchanged,
so every local value is written to the new source (the records enter the outbox), and no
empty new property is ever pulled over a local value (DESIGN §3: an acknowledged local
write is never lost)."""

from ..models import SyncCursor, SyncLink
from ..outbox import mark_dirty
from .context import RunContext

# A base value no real value equals (normal forms are None, strings or lists of strings).
UNKNOWN = "crmsync:unknown-remote-value"
CHUNK = 1000


def follow_moved_sources(ctx: RunContext, entity: str) -> None:
    """Compare the adapter's field sources with those the bases were agreed with; for each
    field that moved, forget its agreed values (in chunks) and queue every linked record.
    Cheap when nothing moved (the stored sources are read once a run): called before each
    page of records is merged, since an adapter may find the move while reading one."""
    current = ctx.adapter.field_sources(entity)
    if not current:
        return
    stored = ctx.sources.get(entity)
    if stored is None:
        row = SyncCursor.objects.filter(connection=ctx.alias, entity=entity).values_list(
            "field_sources", flat=True
        )
        stored = ctx.sources[entity] = dict(row.first() or {})
    merged = {**stored, **current}  # a blocked field keeps its last source
    if merged == stored:
        return
    moved = sorted(field for field, source in current.items() if field in stored and stored[field] != source)
    if moved:
        forget_bases(ctx, entity, moved)
    with ctx.atomic():
        SyncCursor.objects.filter(connection=ctx.alias, entity=entity).update(field_sources=merged)
    ctx.sources[entity] = merged


def forget_bases(ctx: RunContext, entity: str, fields: list[str]) -> None:
    links = SyncLink.objects.filter(connection=ctx.alias, entity=entity).order_by("pk")
    after = 0
    while True:
        chunk = list(links.filter(pk__gt=after).only("pk", "local_id", "base")[:CHUNK])
        if not chunk:
            return
        for link in chunk:
            link.base = {**link.base, **dict.fromkeys(fields, UNKNOWN)}
        with ctx.atomic():
            SyncLink.objects.bulk_update(chunk, ["base"])
            mark_dirty(entity, [link.local_id for link in chunk])
        after = chunk[-1].pk
