"""django-q2 tasks: thin calls of the engine, and the schedule kept by name."""

import datetime as dt

from django.utils import timezone

from .conf import app_settings

SCHEDULE_PREFIX = "crmsync:sync:"
PRUNE_SCHEDULE = "crmsync:prune"


def sync_connection(alias: str) -> dict:
    """Run one sync cycle of ``alias``; returns its summary (stored by django-q2)."""
    from .sync.engine import SyncEngine

    return SyncEngine(alias).run().summary()


def prune_history() -> int:
    """Delete SyncRun rows and resolved conflicts older than RETENTION_DAYS."""
    from .models import Conflict, ConflictStatus, SyncRun

    cutoff = timezone.now() - dt.timedelta(days=app_settings.RETENTION_DAYS)
    runs, _ = SyncRun.objects.filter(started_at__lt=cutoff).delete()
    conflicts, _ = Conflict.objects.filter(
        updated_at__lt=cutoff, status__in=[ConflictStatus.RESOLVED, ConflictStatus.AUTO_RESOLVED]
    ).delete()
    return runs + conflicts


def ensure_schedules(**kwargs) -> None:
    """Create or update one django-q2 schedule per connection (by name, never duplicated),
    remove those of connections no longer configured, and keep the daily prune."""
    from django_q.models import Schedule

    minutes = max(1, app_settings.SYNC_INTERVAL // 60)
    wanted = {f"{SCHEDULE_PREFIX}{alias}": alias for alias in app_settings.CONNECTIONS}
    for name, alias in wanted.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": "crmsync.tasks.sync_connection",
                "args": repr((alias,)),
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
    Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX).exclude(name__in=wanted).delete()
    Schedule.objects.update_or_create(
        name=PRUNE_SCHEDULE,
        defaults={"func": "crmsync.tasks.prune_history", "schedule_type": Schedule.DAILY, "repeats": -1},
    )
