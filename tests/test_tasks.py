import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, result

from crmsync.choices import ConflictStatus, Owner, Winner
from crmsync.models import Conflict, Opportunity, SyncRun
from crmsync.tasks import ensure_schedules, prune_history, sync_connection

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


# --- Hand-over (issue 15): a run that ends with work left starts the next one at once.


@pytest.fixture
def queued(monkeypatch):
    """Tasks queued in the ORM broker instead of run inline (Q_CLUSTER["sync"] off)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    from django_q.models import OrmQ

    return OrmQ.objects


def test_a_partial_run_hands_over_at_once_coalesced(settings, queued):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}, "RUN_TIME_LIMIT": 0}
    Opportunity.objects.create(name="Acme")
    assert sync_connection("crm")["status"] == "partial"
    assert queued.count() == 1
    task = queued.get().task
    assert (task["func"], task["args"], task["kwargs"]) == (
        "crmsync.tasks.sync_connection",
        ("crm",),
        {"handover": True},
    )
    # A second partial run (a schedule tick meanwhile) queues no second hand-over.
    assert sync_connection("crm")["status"] == "partial"
    assert queued.count() == 1


def test_a_finished_run_hands_over_nothing(settings, queued):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}}
    assert sync_connection("crm")["status"] == "success"
    assert queued.count() == 0


def test_the_handed_over_run_frees_the_slot_for_the_next(settings, queued):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}, "RUN_TIME_LIMIT": 0}
    sync_connection("crm")
    queued.all().delete()  # a worker took it
    sync_connection("crm", handover=True)  # the handed-over run, partial again
    assert queued.count() == 1


def test_inline_tasks_hand_over_once_without_recursion(settings):
    """Q_CLUSTER["sync"] runs tasks inline: the hand-over runs inside the partial run, and
    does not hand over again (no unbounded recursion)."""
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}, "RUN_TIME_LIMIT": 0}
    summary = sync_connection("crm")
    assert summary["status"] == "partial"
    assert SyncRun.objects.filter(connection="crm").count() == 2
    sync_connection("crm")  # the slot was freed: it hands over again
    assert SyncRun.objects.filter(connection="crm").count() == 4
