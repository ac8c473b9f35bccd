"""S1 (secrets never leak) and S2 (no server error from any input; malformed CRM answers
quarantine records instead of crashing). Schemathesis over the API is tests/fuzz."""

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from crmsync.choices import ConflictStatus, RunStatus
from crmsync.exceptions import AdapterError
from crmsync.models import Conflict, Opportunity, QuarantinedPage, SyncLink
from crmsync.sync.engine import SyncEngine
from crmsync.testing.pytest_plugin import notion_options

pytestmark = [pytest.mark.heavy, pytest.mark.django_db]
TOKEN = "secret_S1_do_not_leak_8f3a9c"


def test_s1_the_token_never_appears_in_logs_pages_responses_or_errors(
    settings, notion_emulator, caplog, admin_client
):
    notion_emulator.tokens.add(TOKEN)
    options = notion_options(notion_emulator, token=TOKEN)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    caplog.set_level(logging.DEBUG)  # every logger, httpx and notion-client included
    Opportunity.objects.create(name="Acme")
    notion_emulator.throttle_next(retry_after=1, endpoint="pages.create")
    notion_emulator.fail_next(status=500, endpoint="data_sources.query")
    SyncEngine("notion").run()
    out, err = StringIO(), StringIO()
    call_command("crmsync_sync", "--json", stdout=out, stderr=err)
    notion_emulator.tokens.discard(TOKEN)  # now every request fails with 401
    with pytest.raises(CommandError) as failure:
        call_command("crmsync_sync", stdout=out, stderr=err)
    adapter_errors = []
    try:
        SyncEngine("notion").adapter.list_opportunities()
    except AdapterError as error:
        adapter_errors.append(f"{error} {error!r} {error.message}")
    pages = [
        admin_client.get(url).content.decode()
        for url in [
            "/admin/crmsync/syncconnection/",
            "/admin/crmsync/syncconnection/notion/change/",
            "/admin/crmsync/syncrun/",
            "/admin/crmsync/opportunity/",
            "/admin/django_q/success/",
        ]
    ]
    api = (
        admin_client.get("/api/v1/connections/").content.decode()
        + admin_client.get("/api/v1/sync-runs/").content.decode()
    )
    everything = [
        caplog.text,
        out.getvalue(),
        err.getvalue(),
        str(failure.value),
        *adapter_errors,
        *pages,
        api,
    ]
    assert caplog.text and adapter_errors and all(pages)
    for text in everything:
        assert TOKEN not in text


def test_s2_malformed_crm_answers_quarantine_records_not_the_run(notion_settings, notion_emulator, settings):
    settings.CRMSYNC = {**settings.CRMSYNC, "MAX_RECORD_FAILURES": 2}
    deals = [Opportunity.objects.create(name=f"Deal {i}") for i in range(5)]
    SyncEngine("notion").run()
    pages = [SyncLink.objects.get(local_id=d.pk).remote_id for d in deals]
    notion_emulator.corrupt(pages[0], "Value", {"id": "x", "type": "number", "number": "twelve"})
    notion_emulator.corrupt(pages[1], "Name", {"id": "title", "type": "title", "title": 42})
    notion_emulator.corrupt(
        pages[2], "Stage", {"id": "y", "type": "select", "select": ["not", "an", "object"]}
    )
    notion_emulator.corrupt(
        pages[3], "Notes", {"id": "z", "type": "rich_text", "rich_text": [{"plain_text": "n" * 500_000}]}
    )
    del notion_emulator.pages[pages[4]]["properties"]["Probability"]  # a property missing from the page
    notion_emulator.human_edit(pages[4], {"Notes": "still syncs"})
    new_page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "New"})
    notion_emulator.corrupt(
        new_page, "Close Date", {"id": "d", "type": "date", "date": {"start": "not a date"}}
    )
    runs = [SyncEngine("notion").run() for _ in range(3)]
    assert all(run.status in (RunStatus.FAILED, RunStatus.SUCCESS) for run in runs)
    # DESIGN §8: an unreadable page is held by its page id and counted by every run.
    held = set(QuarantinedPage.objects.values_list("remote_id", flat=True))
    assert {pages[0], pages[1], pages[2]} == held
    assert all(run.quarantined == 3 for run in runs)
    deals[3].refresh_from_db()
    deals[4].refresh_from_db()
    assert len(deals[3].notes) == 500_000  # huge, but valid: taken
    assert deals[4].notes == "still syncs" and deals[4].probability is None
    # Reported by the run that quarantined them; held after that, failing no run.
    assert runs[0].errors >= 3 and (runs[-1].errors, runs[-1].status) == (0, RunStatus.SUCCESS)
    # DESIGN §7: a value the local field cannot hold is not applied; the rest is.
    new = Opportunity.objects.get(name="New")
    assert new.close_date is None
    conflict = Conflict.objects.get(object_id=new.pk, status=ConflictStatus.OPEN)
    assert (conflict.field, conflict.remote_value) == ("close_date", "not a date")
    assert conflict.reason.startswith("invalid remote value")
