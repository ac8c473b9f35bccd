"""django-q2 tasks: thin calls of the engine, and the schedule kept by name."""

import contextvars
import datetime as dt

from django.core.cache import caches
from django.utils import timezone

from .conf import app_settings

SCHEDULE_PREFIX = "crmsync:sync:"
PRUNE_SCHEDULE = "crmsync:prune"


# How deep this thread is inside sync_connection: more than one only when django-q2 runs
# tasks inline (Q_CLUSTER["sync"]), where a hand-over would otherwise recurse.
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("crmsync_sync_depth", default=0)


def handover_key(alias: str) -> str:
    return f"crmsync:handover:{alias}"


def sync_connection(alias: str, handover: bool = False) -> dict:
    """Run one sync cycle of ``alias``; returns its summary (stored by django-q2).

    A run that ends ``partial`` (its time box ran out with work left) hands over at once:
    it enqueues the next run of its connection instead of leaving it to the next
    schedule tick (``handover=True`` marks that run)."""
    from .choices import RunStatus
    from .sync.engine import SyncEngine

    if handover:
        caches["default"].delete(handover_key(alias))  # the queued hand-over has started
    token = _depth.set(_depth.get() + 1)
    try:
        run = SyncEngine(alias).run()
        if run.status == RunStatus.PARTIAL and _depth.get() == 1:
            enqueue_handover(alias)
    finally:
        _depth.reset(token)
    return run.summary()


def enqueue_handover(alias: str) -> bool:
    """Enqueue the next run of ``alias`` now, unless one is queued already (coalesced: at
    most one queued per connection, through the default cache; share it between
    processes, as Redis or the database cache do). Returns whether it enqueued one."""
    from django_q.tasks import async_task

    from .conf import app_settings

    timeout = max(60, int(app_settings.RUN_TIME_LIMIT) * 2)  # a lost task frees the slot
    if not caches["default"].add(handover_key(alias), 1, timeout):
        return False
    try:
        async_task("crmsync.tasks.sync_connection", alias, handover=True, task_name=f"crmsync sync {alias}")
    except Exception:
        caches["default"].delete(handover_key(alias))
        raise
    return True


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
