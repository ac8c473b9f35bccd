import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, result

from crmsync.choices import ConflictStatus, Owner, Winner
from crmsync.models import Conflict, Opportunity, SyncRun
from crmsync.tasks import ensure_schedules, prune_history

pytestmark = pytest.mark.django_db


def test_schedule_per_connection_is_upserted_by_name(settings):
    settings.CRMSYNC = {
        "CONNECTIONS": {"a": {"ADAPTER": "local"}, "b": {"ADAPTER": "local"}},
        "SYNC_INTERVAL": 300,
    }
    ensure_schedules()
    ensure_schedules()
    schedules = Schedule.objects.filter(name__startswith="crmsync:sync:")
    assert sorted(schedules.values_list("name", "minutes", "func")) == [
        ("crmsync:sync:a", 5, "crmsync.tasks.sync_connection"),
        ("crmsync:sync:b", 5, "crmsync.tasks.sync_connection"),
    ]
    settings.CRMSYNC = {"CONNECTIONS": {"a": {"ADAPTER": "local"}}, "SYNC_INTERVAL": 60}
    ensure_schedules()
    assert list(Schedule.objects.filter(name__startswith="crmsync:sync:").values_list("name", "minutes")) == [
        ("crmsync:sync:a", 1)
    ]
    assert Schedule.objects.filter(name="crmsync:prune").count() == 1


def test_migrate_creates_the_schedules(settings):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "local"}}}
    Schedule.objects.all().delete()
    call_command("migrate", verbosity=0)
    assert Schedule.objects.filter(name="crmsync:sync:crm").exists()


def test_sync_task_runs_the_engine(notion_settings, notion_emulator):
    Opportunity.objects.create(name="Acme")
    task_id = async_task("crmsync.tasks.sync_connection", "notion")  # inline: Q_CLUSTER["sync"]
    summary = result(task_id)
    assert summary["status"] == "success" and summary["created_remote"] == 1
    assert len(notion_emulator.pages_in(notion_emulator.ids["deal_source"])) == 1


def test_prune_removes_old_runs_and_resolved_conflicts(settings):
    settings.CRMSYNC = {"RETENTION_DAYS": 30}
    old = timezone.now() - dt.timedelta(days=31)
    SyncRun.objects.create(connection="a", started_at=old)
    SyncRun.objects.create(connection="a")
    common = {
        "connection": "a",
        "entity": "deal",
        "field": "stage",
        "rule": Owner.SHARED,
        "winner": Winner.LOCAL,
        "reason": "x",
    }
    stale = Conflict.objects.create(
        object_id="00000000-0000-4000-8000-000000000001", status=ConflictStatus.RESOLVED, **common
    )
    still_open = Conflict.objects.create(
        object_id="00000000-0000-4000-8000-000000000002", status=ConflictStatus.OPEN, **common
    )
    Conflict.objects.filter(pk__in=[stale.pk, still_open.pk]).update(updated_at=old)
    assert prune_history() == 2
    assert SyncRun.objects.count() == 1
    assert list(Conflict.objects.values_list("pk", flat=True)) == [still_open.pk]
