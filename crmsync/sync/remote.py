"""Writes to the CRM for a linked record, each followed by its bookkeeping on the link.

A link's base moves to a pushed value only after the CRM acknowledged it, so a run
killed in between pushes the value again.
"""

from ..models import SyncLink
from . import faults
from .context import RunContext


def send_update(ctx: RunContext, entity: str, link: SyncLink, changes: dict, *, sync_id=None) -> None:
    """One request with every changed field (and the sync id when given)."""
    if not changes and not sync_id:
        return
    faults.point("push:before-update")
    if not changes:
        # Only the sync id: the base is unchanged.
        ctx.adapter.write_sync_id(entity, link.remote_id, str(sync_id))
        faults.point("push:after-update")
        return
    kwargs = {"sync_id": str(sync_id)} if sync_id else {}
    record = ctx.adapter.update(entity, link.remote_id, changes, **kwargs)
    faults.point("push:after-update")
    ctx.stats["updated_remote"] += 1
    with ctx.atomic():
        link.base = {**link.base, **changes}
        link.remote_modified_at = record.modified_at
        link.save(update_fields=["base", "remote_modified_at", "updated_at"])


def send_trash(ctx: RunContext, entity: str, link: SyncLink, *, archived: bool) -> None:
    """Move the remote record to the trash (``archived``) or restore it."""
    record = (ctx.adapter.trash if archived else ctx.adapter.restore)(entity, link.remote_id)
    if archived:
        ctx.stats["archived"] += 1
    with ctx.atomic():
        link.remote_archived = archived
        link.remote_modified_at = record.modified_at
        link.save(update_fields=["remote_archived", "remote_modified_at", "updated_at"])
