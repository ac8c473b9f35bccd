"""Records that fail, kept out of the way of the others (DESIGN §8).

- A local record whose push fails is counted on its outbox entry and, after
  ``MAX_RECORD_FAILURES`` (or at once when the failure will not go away by itself),
  quarantined: left out of pushes until it is edited again.
- A remote record that cannot be read or applied is held by its remote id and re-read
  every run until it applies or staff dismiss it.
"""

import logging

from django.db.models import F
from django.utils import timezone

from ..conf import app_settings
from ..models import OutboxEntry, QuarantinedPage
from .context import RunContext, shorten

logger = logging.getLogger(__name__)


def fail_local(ctx: RunContext, entity: str, local_id, err: Exception, *, quarantine: bool = False) -> None:
    """Count a push failure of a local record; quarantine it after too many. A record
    already quarantined fails no run again (it is counted in ``quarantined``)."""
    entry, _ = OutboxEntry.objects.get_or_create(connection=ctx.alias, entity=entity, local_id=local_id)
    if entry.quarantined:
        logger.info(
            "sync %s: %s %s (quarantined) still fails: %s", ctx.alias, entity, local_id, shorten(str(err))
        )
        return
    ctx.error(f"{entity} {local_id}: {err}")
    entry.attempts += 1
    entry.last_error = shorten(str(err), 2000)
    if quarantine or entry.attempts >= app_settings.MAX_RECORD_FAILURES:
        entry.quarantined = True
    entry.save(update_fields=["attempts", "last_error", "quarantined"])


def fail_remote(ctx: RunContext, entity: str, remote_id: str, err: Exception, *, local_id=None) -> None:
    """Hold a remote record that could not be read or applied, by its remote id. A record
    already held fails no run again: it is counted in every run's ``quarantined`` (and
    shown on the health page) until it applies or staff dismiss it."""
    now = timezone.now()
    updated = QuarantinedPage.objects.filter(connection=ctx.alias, entity=entity, remote_id=remote_id).update(
        error=shorten(str(err), 2000), attempts=F("attempts") + 1, last_failed_at=now, local_id=local_id
    )
    if updated:
        logger.info(
            "sync %s: %s (remote %s, quarantined) still fails: %s",
            ctx.alias,
            entity,
            remote_id,
            shorten(str(err)),
        )
    else:
        ctx.error(f"{entity} (remote {remote_id}): {err}")
        QuarantinedPage.objects.create(
            connection=ctx.alias,
            entity=entity,
            remote_id=remote_id,
            local_id=local_id,
            error=shorten(str(err), 2000),
            first_failed_at=now,
            last_failed_at=now,
        )


def held_remote_ids(ctx: RunContext, entity: str, limit: int = 100) -> list[str]:
    """Remote records held in quarantine, to be re-read this run (oldest failure first)."""
    return list(
        QuarantinedPage.objects.filter(connection=ctx.alias, entity=entity)
        .order_by("last_failed_at")
        .values_list("remote_id", flat=True)[:limit]
    )


def release_remote(ctx: RunContext, entity: str, remote_ids) -> None:
    """Remote records that applied cleanly leave quarantine."""
    if remote_ids:
        QuarantinedPage.objects.filter(
            connection=ctx.alias, entity=entity, remote_id__in=list(remote_ids)
        ).delete()


def release_local(ctx: RunContext, entity: str, local_ids) -> None:
    """Local records whose remote twin merged cleanly leave quarantine."""
    if local_ids:
        OutboxEntry.objects.filter(
            connection=ctx.alias, entity=entity, local_id__in=list(local_ids), quarantined=True
        ).update(quarantined=False, attempts=0, last_error="")


def quarantined_count(alias: str) -> int:
    """Records of a connection in quarantine now, on either side."""
    return (
        OutboxEntry.objects.filter(connection=alias, quarantined=True).count()
        + QuarantinedPage.objects.filter(connection=alias).count()
    )
