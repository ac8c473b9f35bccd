"""crmsync_sync and crmsync_check, in process and as real (killed) subprocesses."""

import datetime as dt
import json
import signal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from crmsync.choices import RunStatus
from crmsync.models import Opportunity, SyncConnection, SyncLink, SyncRun
from crmsync.sync.engine import SyncEngine
from tests.workers import expire_leases, run_worker, start_worker, wait_for

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = {
    "connection",
    "created_local",
    "created_remote",
    "updated_local",
    "updated_remote",
    "archived",
    "conflicts",
    "errors",
    "requests",
}


def run_json(**kwargs) -> list[dict]:
    out = StringIO()
    call_command("crmsync_sync", "--json", stdout=out, **kwargs)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.django_db
def test_json_summary_has_the_documented_keys(notion_settings, notion_emulator):
    Opportunity.objects.create(name="Acme")
    (summary,) = run_json(connection="notion")
    assert set(summary) >= SUMMARY_KEYS
    assert summary["created_remote"] == 1 and summary["status"] == "success"
    assert summary["requests"] == notion_emulator.count()


@pytest.mark.django_db
def test_plain_summary_and_skipped_connection_exit_zero(notion_settings, notion_emulator):
    assert SyncEngine("notion", owner="someone-else").acquire_lease()
    out = StringIO()
    call_command("crmsync_sync", stdout=out)
    assert "notion: skipped" in out.getvalue()


@pytest.mark.django_db
def test_failed_run_exits_1(notion_settings, notion_emulator):
    notion_emulator.tokens.clear()  # every request answers 401
    with pytest.raises(CommandError) as caught:
        run_json()
    assert caught.value.returncode == 1
    assert SyncRun.objects.get().status == "failed"
    assert "unauthorized" in SyncRun.objects.get().error_summary


@pytest.mark.django_db
def test_unknown_connection_is_a_command_error_naming_the_setting(notion_settings):
    with pytest.raises(CommandError, match=r'CRMSYNC\["CONNECTIONS"\]'):
        call_command("crmsync_sync", connection="hubspot")


@pytest.mark.django_db
def test_check_command_reports_schema_problems(settings, notion_emulator):
    from crmsync.testing.pytest_plugin import notion_options

    database, _ = notion_emulator.create_database("Deals", {"Name": "title", "Value": "rich_text"})
    settings.CRMSYNC = {
        "CONNECTIONS": {
            "notion": {
                "ADAPTER": "notion",
                "OPTIONS": notion_options(
                    notion_emulator,
                    database_id=database,
                    contacts_database_id=None,
                    activities_database_id=None,
                ),
            }
        }
    }
    with pytest.raises(CommandError) as caught:
        call_command("crmsync_check")
    assert "'Value' is rich_text, expected number" in str(caught.value)
    assert "'CRM Sync ID' (rich_text, for id) is missing" in str(caught.value)
    settings.CRMSYNC = {
        "CONNECTIONS": {
            "notion": {
                "ADAPTER": "notion",
                "OPTIONS": notion_options(
                    notion_emulator, contacts_database_id=None, activities_database_id=None
                ),
            }
        }
    }
    out = StringIO()
    call_command("crmsync_check", stdout=out)
    assert "notion: OK" in out.getvalue()


# --- Real worker processes, killed with SIGKILL ---------------------------------------


def remote_sync_ids(emulator) -> list[str]:
    return sorted(p["values"]["CRM Sync ID"] for p in emulator.pages_in(emulator.ids["deal_source"]))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", ["push:after-create:3", "push:before-create:2", "push:after-update:1"])
def test_killed_mid_push_loses_nothing_and_duplicates_nothing(notion_emulator, fault):
    deals = [Opportunity.objects.create(name=f"Deal {i}") for i in range(5)]
    assert run_worker(notion_emulator).returncode == 0
    for deal in deals:
        deal.stage = "negotiation"
        deal.save()
    more = [Opportunity.objects.create(name=f"New {i}") for i in range(5)]
    killed = run_worker(notion_emulator, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # DESIGN §8: the dead worker's lease is taken over at once on its own host.
    finished = run_worker(notion_emulator)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert remote_sync_ids(notion_emulator) == sorted(str(d.pk) for d in deals + more), finished.stdout
    stages = {
        p["values"]["Name"]: p["values"]["Stage"]
        for p in notion_emulator.pages_in(notion_emulator.ids["deal_source"])
    }
    assert all(stages[f"Deal {i}"] == "Negotiation" for i in range(5))
    dead = SyncRun.objects.filter(connection="notion").order_by("started_at")[1]
    assert (dead.status, dead.error_summary) == (
        RunStatus.FAILED,
        "The worker stopped before finishing (its process is gone).",
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_mid_pull_resumes_without_duplicates(notion_emulator):
    source = notion_emulator.ids["deal_source"]
    for index in range(250):  # three result pages
        notion_emulator.human_create(source, {"Name": f"Remote {index}", "Stage": "Discovery"})
    killed = run_worker(notion_emulator, "pull:page:3")  # contacts (empty), deals page 1, then die
    assert killed.returncode == -signal.SIGKILL
    partial = Opportunity.objects.count()
    assert 100 <= partial < 250
    expire_leases()
    finished = run_worker(notion_emulator)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert Opportunity.objects.count() == 250
    assert SyncLink.objects.filter(entity="deal").count() == 250
    assert sorted(remote_sync_ids(notion_emulator)) == sorted(
        str(pk) for pk in Opportunity.objects.values_list("pk", flat=True)
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_before_the_sync_id_write_back_links_on_the_next_run(notion_emulator):
    page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "Remote"})
    assert run_worker(notion_emulator, "pull:before-sync-id").returncode == -signal.SIGKILL
    expire_leases()
    assert run_worker(notion_emulator).returncode == 0
    deal = Opportunity.objects.get()
    assert notion_emulator.page_values(page)["CRM Sync ID"] == str(deal.pk)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_workers_one_runs_the_other_is_skipped(notion_emulator, tmp_path):
    Opportunity.objects.create(name="Acme")
    release = tmp_path / "release"
    # The first worker stops at its first result page, holding the lease, until released.
    first = start_worker(notion_emulator, CRMSYNC_PAUSE=f"pull:page@{release}")
    try:
        wait_for(tmp_path / "release.reached", first)
        second = run_worker(notion_emulator)
        assert json.loads(second.stdout)["status"] == "skipped", second.stdout + second.stderr
    finally:
        release.touch()
        out, err = first.communicate(timeout=120)
    assert json.loads(out)["status"] == "success", out + err
    assert len(notion_emulator.pages_in(notion_emulator.ids["deal_source"])) == 1


@pytest.mark.django_db(transaction=True)
def test_a_live_lease_elsewhere_is_respected_and_an_expired_one_taken_over(notion_emulator):
    Opportunity.objects.create(name="Acme")
    SyncConnection.objects.create(
        alias="notion",
        lease_owner="another-host:4242:abcdef12",
        lease_expires_at=timezone.now() + dt.timedelta(seconds=30),
    )
    SyncRun.objects.create(connection="notion")  # that worker's run
    assert json.loads(run_worker(notion_emulator).stdout)["status"] == "skipped"
    expire_leases()
    assert json.loads(run_worker(notion_emulator).stdout)["status"] == "success"
    dead = SyncRun.objects.filter(connection="notion").order_by("started_at").first()
    assert dead.status == RunStatus.FAILED and "lease expired" in dead.error_summary


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_after_a_kill_mid_batch_only_the_creates_about_to_be_sent_are_looked_up(notion_emulator):
    from crmsync.sync.push import MARK_AHEAD

    for index in range(50):
        Opportunity.objects.create(name=f"Deal {index}")
    assert run_worker(notion_emulator, "push:after-create:3").returncode == -signal.SIGKILL
    notion_emulator.reset_counters()
    assert run_worker(notion_emulator).returncode == 0
    listings = 4  # deals and contacts: one query each plus one in_trash each
    lookups = notion_emulator.count("data_sources.query") - listings
    assert 0 < lookups <= 2 * MARK_AHEAD  # a lookup is a query, and an in_trash one when not found
    assert len(notion_emulator.pages_in(notion_emulator.ids["deal_source"])) == 50
