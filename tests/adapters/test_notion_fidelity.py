"""Fidelity to what people keep in Notion (DESIGN §7), over HTTP against the emulator.

Numbers with more decimals than the local field, date ranges and date-times, formatted
text, ids as pasted, the 10,000-row cap, long rate-limit waits, wiki rows, the idle cost
of a fresh process, and schema drift (renamed, deleted, retyped properties).
"""

import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path

import notion_client
import pytest
from django.core import checks
from django.core.management import call_command

from crmsync.adapters.base import OpportunityData
from crmsync.adapters.notion import NotionAdapter
from crmsync.choices import ConflictStatus, RunStatus
from crmsync.exceptions import AmbiguousWriteError, CapExceeded, FieldBlocked, RateLimitDeferred
from crmsync.models import Conflict, Opportunity, OutboxEntry, SyncConnection, SyncCursor, SyncLink
from crmsync.registry import connections
from crmsync.sync.engine import SyncEngine
from crmsync.testing.notion_emulator import QUERY_RESULT_CAP
from crmsync.testing.notion_emulator.faults import WORKSPACE_LIMIT
from crmsync.testing.pytest_plugin import notion_options

pytestmark = pytest.mark.django_db
RECORDED = json.loads(
    (Path(__file__).parent / "notion_recordings" / "pages-notion_ruby_mapping.json").read_text()
)
# Recorded rich text with a user mention, a page mention, a date mention, a link and colours.
RECORDED_TEXT = next(
    value["rich_text"]
    for entry in RECORDED
    for name, value in entry["page"]["properties"].items()
    if name == "TextTitle" and any(item["type"] == "mention" for item in value["rich_text"])
)
# No recording holds a formatted title: one with bold text and a link, as Notion returns it.
FORMATTED_TITLE = [
    {
        "type": "text",
        "text": {"content": "Acme ", "link": None},
        "annotations": {
            "bold": True,
            "italic": False,
            "strikethrough": False,
            "underline": False,
            "code": False,
            "color": "default",
        },
        "plain_text": "Acme ",
        "href": None,
    },
    {
        "type": "text",
        "text": {"content": "rollout", "link": {"url": "https://acme.example/rollout"}},
        "annotations": {
            "bold": False,
            "italic": False,
            "strikethrough": False,
            "underline": False,
            "code": False,
            "color": "default",
        },
        "plain_text": "rollout",
        "href": "https://acme.example/rollout",
    },
]


@pytest.fixture
def adapter(notion_emulator):
    adapter = NotionAdapter(alias="notion", **notion_options(notion_emulator))
    yield adapter
    adapter.close()


def fresh(emulator, **overrides):
    """A new adapter of the connection, as a new process would build it."""
    return NotionAdapter(alias="notion", **notion_options(emulator, **overrides))


def sync(**kwargs):
    run = SyncEngine("notion", **kwargs).run()
    assert run.status in (RunStatus.SUCCESS, RunStatus.SKIPPED), run.error_summary
    return run


def page_of(obj):
    return SyncLink.objects.get(connection="notion", local_id=obj.pk).remote_id


# --- 1. Numbers ------------------------------------------------------------------------


def test_numbers_are_read_at_the_local_fields_precision(adapter, notion_emulator):
    page = notion_emulator.human_create(
        notion_emulator.ids["deal_source"],
        {"Name": "Pi", "Value": 1234.5678, "Probability": 33.3, "Confidence": 0.12345},
    )
    values = adapter.get_opportunity(page).values
    assert (values["value"], values["probability"], values["confidence"]) == ("1234.57", "33", "0.123")


def test_a_value_with_more_decimals_imports_without_quarantine_or_echo(notion_settings, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    page = notion_emulator.human_create(source, {"Name": "Pi", "Value": 3.1415926535, "Stage": "Discovery"})
    run = sync()
    deal = Opportunity.objects.get()
    assert deal.value == Decimal("3.14") and run.quarantined == 0 and run.errors == 0
    assert not OutboxEntry.objects.filter(quarantined=True).exists()
    notion_emulator.clock.advance(120)
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.writes() == 0  # equal at the field's precision: nothing echoed
    assert notion_emulator.page_values(page)["Value"] == 3.1415926535


def test_an_out_of_range_number_is_an_invalid_remote_value_not_a_quarantine(notion_settings, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    notion_emulator.human_create(source, {"Name": "Huge", "Value": 12345678901234.5678, "Stage": "Proposal"})
    run = sync()
    deal = Opportunity.objects.get()
    assert (deal.name, deal.stage) == ("Huge", "proposal")  # the other fields synced
    conflict = Conflict.objects.get(object_id=deal.pk, field="value", status=ConflictStatus.OPEN)
    assert conflict.reason.startswith("invalid remote value")
    assert conflict.remote_value == "12345678901234.57"  # shown at the field's precision
    assert run.quarantined == 0


# --- 2. Dates ----------------------------------------------------------------------------


def test_a_local_close_date_change_keeps_the_ranges_end(notion_settings, notion_emulator):
    page = notion_emulator.human_create(
        notion_emulator.ids["deal_source"],
        {"Name": "Range", "Close Date": {"start": "2022-02-11", "end": "2022-02-12"}},
    )
    sync()
    deal = Opportunity.objects.get()
    assert deal.close_date == dt.date(2022, 2, 11)
    deal.close_date = dt.date(2022, 2, 12)
    deal.save()
    sync()
    assert notion_emulator.page_values(page)["Close Date"] == {
        "start": "2022-02-12",
        "end": "2022-02-12",
        "time_zone": None,
    }
    deal.close_date = dt.date(2022, 3, 1)  # past the end: the range cannot hold
    deal.save()
    sync()
    assert notion_emulator.page_values(page)["Close Date"] == "2022-03-01"


def test_a_fresh_process_reads_the_range_before_pushing_a_date(notion_emulator):
    page = notion_emulator.human_create(
        notion_emulator.ids["deal_source"],
        {
            "Name": "Range",
            "Close Date": {"start": "2022-02-25T01:23:00.000+09:00", "end": "2022-02-27T09:00:00.000+09:00"},
        },
    )
    adapter = fresh(notion_emulator)
    adapter.update_opportunity(page, {"close_date": dt.date(2022, 2, 26)})
    assert notion_emulator.page_values(page)["Close Date"] == {
        "start": "2022-02-26T01:23:00.000+09:00",  # the time of day and offset as written
        "end": "2022-02-27T09:00:00.000+09:00",
        "time_zone": None,
    }
    assert notion_emulator.count("pages.retrieve") == 1  # the one read the range needed
    adapter.update_opportunity(page, {"close_date": dt.date(2022, 2, 25)})
    assert notion_emulator.count("pages.retrieve") == 1  # known since


def test_a_date_time_is_read_on_the_day_written_in_its_time_zone(adapter, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    late = notion_emulator.human_create(
        source, {"Name": "Tokyo", "Close Date": {"start": "2022-02-25T01:23:00", "time_zone": "Asia/Tokyo"}}
    )
    evening = notion_emulator.human_create(
        source, {"Name": "Lima", "Close Date": "2022-02-25T23:30:00.000-05:00"}
    )
    assert adapter.get_opportunity(late).values["close_date"] == "2022-02-25"  # 2022-02-24 in UTC
    assert adapter.get_opportunity(evening).values["close_date"] == "2022-02-25"  # 2022-02-26 in UTC


# --- 3. Formatting -----------------------------------------------------------------------


def test_text_no_one_changed_keeps_its_formatting_links_and_mentions(notion_settings, notion_emulator):
    page = notion_emulator.human_create(
        notion_emulator.ids["deal_source"],
        {
            "Name": FORMATTED_TITLE,
            "Notes": RECORDED_TEXT,
            "Qualification": RECORDED_TEXT,
            "Stage": "Discovery",
        },
    )
    before = json.loads(json.dumps(notion_emulator.pages[page]["properties"]))
    sync()
    deal = Opportunity.objects.get()
    assert deal.name == "Acme rollout"
    assert "@Hiroyuki KOBAYASHI" in deal.notes
    deal.stage = "negotiation"
    deal.save()
    notion_emulator.clock.advance(120)
    sync()
    after = notion_emulator.pages[page]["properties"]
    assert notion_emulator.page_values(page)["Stage"] == "Negotiation"
    for name in ("Name", "Notes", "Qualification"):
        assert after[name] == before[name], f"{name} lost its formatting"


# --- 4. Ids as people paste them ---------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        lambda i: i.replace("-", ""),
        lambda i: i.upper(),
        lambda i: f"https://www.notion.so/acme/Deals-{i.replace('-', '')}?v={uuid.uuid4().hex}",
        lambda i: f"notion.so/acme/Deals-{i.replace('-', '')}",  # copied without its scheme
    ],
    ids=["dashless", "upper", "url", "url-without-scheme"],
)
def test_database_and_data_source_ids_are_taken_as_pasted(notion_emulator, form):
    ids = notion_emulator.ids
    notion_emulator.human_create(ids["deal_source"], {"Name": "Found"})
    by_database = fresh(notion_emulator, database_id=form(ids["deal"]))
    by_source = fresh(notion_emulator, database_id=None, data_source_id=form(ids["deal_source"]))
    for adapter in (by_database, by_source):
        assert [r.values["name"] for r in adapter.list_opportunities()] == ["Found"]


def test_a_malformed_id_is_a_system_check_error_naming_the_option(settings, notion_emulator):
    settings.CRMSYNC = {
        "CONNECTIONS": {
            "notion": {
                "ADAPTER": "notion",
                "OPTIONS": notion_options(notion_emulator, contacts_database_id="Contacts"),
            }
        }
    }
    errors = [e for e in checks.run_checks(tags=["crmsync"]) if e.id.startswith("crmsync.")]
    assert [e.id for e in errors] == ["crmsync.E005"]
    assert "['contacts_database_id']" in errors[0].msg and "'Contacts'" in errors[0].msg


# --- 5. The 10,000-row cap -----------------------------------------------------------------


def many_pages_in_one_minute(emulator, count, *, with_id):
    source = emulator.ids["deal_source"]
    if with_id:
        emulator.add_property(source, "ID", {"type": "unique_id", "unique_id": {"prefix": "DEAL"}})
    emulator.clock.set(dt.datetime(2026, 5, 4, 10, 30, 12, tzinfo=dt.UTC))
    return {emulator.human_create(source, {"Name": f"Imported {i:04d}"}) for i in range(count)}


@pytest.mark.parametrize("by", ["created", "modified"])
def test_pages_sharing_one_minute_beyond_the_cap_are_all_read_with_an_id_property(notion_emulator, by):
    notion_emulator.query_result_cap = 50
    pages = many_pages_in_one_minute(notion_emulator, 130, with_id=True)
    adapter = fresh(notion_emulator)
    listed = list(adapter.iter_changes("deal", None, by=by, include_trashed=False))
    assert {r.remote_id for page in listed for r in page.records} == pages
    checkpoints = [page.checkpoint for page in listed if page.checkpoint]
    assert checkpoints == sorted(checkpoints)


def test_pages_beyond_the_cap_without_an_id_property_fail_loudly(notion_emulator):
    notion_emulator.query_result_cap = 50
    many_pages_in_one_minute(notion_emulator, 80, with_id=False)
    adapter = fresh(notion_emulator)
    seen = []
    with pytest.raises(CapExceeded, match=r"cap \(50 rows\).*Add an ID \(unique_id\) property") as caught:
        for page in adapter.iter_changes("deal", None, by="created", include_trashed=False):
            seen.append(page)
    assert caught.value.cap == 50
    # Nothing yielded claims to be past the pages not read.
    assert all(page.checkpoint <= caught.value.at for page in seen if page.checkpoint)


def test_a_capped_import_fails_the_run_and_never_moves_the_watermark_past_it(
    notion_settings, notion_emulator
):
    notion_emulator.query_result_cap = 50
    many_pages_in_one_minute(notion_emulator, 80, with_id=False)
    run = SyncEngine("notion").run()
    assert run.status == RunStatus.FAILED
    assert "Add an ID (unique_id) property" in run.error_summary
    assert not SyncCursor.objects.get(entity="deal").full_pull_done


def test_an_id_property_added_after_the_cap_failed_unwedges_the_next_run(notion_settings, notion_emulator):
    """The cap error says to add an ID property: doing so is enough (the schema kept from
    an earlier run is read again at the cap, no crmsync_check needed)."""
    notion_emulator.query_result_cap = 50
    many_pages_in_one_minute(notion_emulator, 107, with_id=False)
    assert SyncEngine("notion").run().status == RunStatus.FAILED
    notion_emulator.add_property(notion_emulator.ids["deal_source"], "ID", "unique_id")
    for _ in range(2):  # a fresh process each time, as the schedule runs it
        connections.reset()
        run = SyncEngine("notion").run()
    assert run.status == RunStatus.SUCCESS, run.error_summary
    assert Opportunity.objects.count() == 107


def test_a_capped_import_with_an_id_property_imports_everything(notion_settings, notion_emulator):
    notion_emulator.query_result_cap = 50
    many_pages_in_one_minute(notion_emulator, 130, with_id=True)
    sync()
    assert Opportunity.objects.count() == 130


def test_crmsync_check_recommends_an_id_property_for_large_data_sources(settings, notion_emulator, capsys):
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
    for index in range(101):
        notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": f"D{index}"})
    call_command("crmsync_check")
    out = capsys.readouterr().out
    assert "notion: OK" in out and "no ID (unique_id) property" in out
    notion_emulator.query_result_cap = 50  # a first page stopped at the cap says so too
    connections.reset()
    call_command("crmsync_check")
    assert "no ID (unique_id) property" in capsys.readouterr().out
    notion_emulator.query_result_cap = QUERY_RESULT_CAP
    notion_emulator.add_property(notion_emulator.ids["deal_source"], "ID", "unique_id")
    connections.reset()
    call_command("crmsync_check")
    assert "unique_id" not in capsys.readouterr().out


# --- 6. Rate limits ----------------------------------------------------------------------------


def test_a_retry_after_beyond_max_retry_wait_defers_and_no_process_sends_before_it(adapter, notion_emulator):
    adapter.list_opportunities()
    notion_emulator.throttle_next(retry_after=600, endpoint="data_sources.query")
    started = time.time()
    with pytest.raises(RateLimitDeferred) as caught:
        adapter.list_opportunities()
    assert 595 <= caught.value.until.timestamp() - started <= 605
    assert caught.value.scope == "connection" and caught.value.reason == "public_api_request_rate_limit"
    sent = notion_emulator.count()
    later = fresh(notion_emulator)  # the next run, in another process
    assert abs(later.deferred_until() - caught.value.until) < dt.timedelta(seconds=1)
    with pytest.raises(RateLimitDeferred):
        later.list_opportunities()
    assert notion_emulator.count() == sent  # nothing was sent before Notion's time


def test_a_workspace_limit_holds_every_connection_on_the_token(notion_emulator):
    first = fresh(notion_emulator)
    other = NotionAdapter(alias="other", **notion_options(notion_emulator))
    elsewhere_token = "secret_other_workspace"
    notion_emulator.tokens.add(elsewhere_token)
    elsewhere = NotionAdapter(alias="elsewhere", **notion_options(notion_emulator, token=elsewhere_token))
    first.list_opportunities()
    notion_emulator.throttle_next(retry_after=900, reason=WORKSPACE_LIMIT, endpoint="data_sources.query")
    with pytest.raises(RateLimitDeferred) as caught:
        first.list_opportunities()
    assert caught.value.scope == "workspace"
    sent = notion_emulator.count()
    with pytest.raises(RateLimitDeferred):
        other.list_opportunities()  # another connection on the same token
    assert notion_emulator.count() == sent
    elsewhere.list_opportunities()  # another token is another workspace's connection
    assert notion_emulator.count() > sent


def test_a_short_retry_after_is_waited_out_and_529_is_handled_like_429(adapter, notion_emulator):
    adapter.list_opportunities()
    notion_emulator.fail_next(status=529, retry_after=1, endpoint="data_sources.query")
    started = time.monotonic()
    adapter.list_opportunities()
    assert time.monotonic() - started >= 1.0
    assert notion_emulator.count("data_sources.query", status=529) == 1
    notion_emulator.throttle_next(retry_after=1, endpoint="pages.create")
    record = adapter.create_opportunity(OpportunityData(name="After a 429"), str(uuid.uuid4()))
    assert record.values["name"] == "After a 429"  # a 429 applied nothing: sent again
    # A 5xx may follow a create that was applied: a 529 create is never re-sent blindly.
    notion_emulator.fail_next(status=529, retry_after=1, endpoint="pages.create", after=True)
    with pytest.raises(AmbiguousWriteError):
        adapter.create_opportunity(OpportunityData(name="Maybe"), "sync-529")
    assert notion_emulator.count("pages.create") == 3


def test_a_long_rate_limit_wait_defers_the_run_and_the_next_sends_nothing(notion_settings, notion_emulator):
    sync()
    notion_emulator.throttle_next(retry_after=600, endpoint="data_sources.query")
    run = SyncEngine("notion").run()
    # DESIGN §7: the run stops early, deferred (exit 0), marking no record.
    assert (run.status, run.errors) == (RunStatus.DEFERRED, 0)
    assert "nothing is sent before" in run.error_summary
    assert not OutboxEntry.objects.filter(attempts__gt=0).exists()
    sent = notion_emulator.count()
    out = StringIO()
    call_command("crmsync_sync", "--json", stdout=out)  # exit 0
    summary = json.loads(out.getvalue())
    assert (summary["status"], summary["requests"]) == ("deferred", 0)
    assert notion_emulator.count() == sent


# --- 7. Wiki data sources ---------------------------------------------------------------


def test_a_wikis_data_source_rows_are_not_records(adapter, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    notion_emulator.human_create(source, {"Name": "A page"})
    notion_emulator.add_wiki_row(source, "Meeting notes")
    raw = notion_client.Client(auth=notion_emulator.token, base_url=notion_emulator.url, retry=False)
    assert {r["object"] for r in raw.data_sources.query(data_source_id=source)["results"]} == {
        "page",
        "data_source",
    }
    records = [r for page in adapter.iter_changes("deal", None) for r in page.records]
    assert [r.values.get("name") for r in records] == ["A page"]
    assert not any(r.error for r in records)


# --- 8. Idle cost from a fresh process ------------------------------------------------------


def test_an_idle_cycle_from_a_fresh_process_costs_only_its_queries(notion_settings, notion_emulator):
    notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "Idle"})
    sync()
    notion_emulator.clock.advance(300)
    sync()
    for _ in range(2):
        connections.reset()  # a new process: nothing in memory
        notion_emulator.reset_counters()
        run = sync()
        counts = notion_emulator.counts()
        seen = (
            run.status,
            run.requests,
            dict(counts),
            [(log.method, log.path, log.status) for log in notion_emulator.requests],
        )
        assert counts["databases.retrieve"] == counts["data_sources.retrieve"] == 0, seen
        # deals and contacts (activities are outbound only): one trashed and one live query each
        assert run.requests == counts["data_sources.query"] == 4, seen


def test_a_data_source_that_answers_404_is_resolved_again(notion_emulator):
    adapter = fresh(notion_emulator)
    adapter.list_opportunities()
    state = SyncConnection.objects.get(alias="notion").remote_state
    state["notion"]["deal"]["data_source_id"] = str(uuid.uuid4())  # replaced in Notion
    SyncConnection.objects.filter(alias="notion").update(remote_state=state)
    notion_emulator.reset_counters()
    notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "Still here"})
    assert [r.values["name"] for r in fresh(notion_emulator).list_opportunities()] == ["Still here"]
    assert notion_emulator.count("databases.retrieve") == 1


# --- Schema drift (engine issue 12.6, adapter side) ---------------------------------------------


def test_a_property_renamed_in_notion_keeps_syncing(adapter, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    page = notion_emulator.human_create(source, {"Name": "Renamed", "Stage": "Discovery"})
    adapter.get_opportunity(page)  # property ids resolved
    notion_emulator.rename_property(source, "Stage", "Pipeline stage")
    later = fresh(notion_emulator)
    assert later.get_opportunity(page).values["stage"] == "discovery"
    later.update_opportunity(page, {"stage": "proposal"})
    assert notion_emulator.page_values(page)["Pipeline stage"] == "Proposal"
    assert later.blocked_fields("deal") == {}


def test_the_health_of_a_long_lived_process_shows_what_a_run_elsewhere_found(
    notion_settings, notion_emulator
):
    from crmsync.sync.health import remote_health

    source = notion_emulator.ids["deal_source"]
    page = notion_emulator.human_create(source, {"Name": "Seen", "Value": 3})
    assert remote_health("notion")["blocked_fields"] == {}  # the web process reads the schema
    notion_emulator.rename_property(source, "Stage", "Pipeline stage")
    notion_emulator.delete_property(source, "Value")
    fresh(notion_emulator).get_opportunity(page)  # a worker process sees the drift and stores it
    assert remote_health("notion")["blocked_fields"] == {
        "deal": {"value": "property 'Value' (number, for value) is missing"}
    }


def test_a_deleted_property_blocks_its_field_and_nothing_else(adapter, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    page = notion_emulator.human_create(source, {"Name": "Gone", "Value": 10})
    adapter.get_opportunity(page)
    notion_emulator.delete_property(source, "Value")
    record = adapter.get_opportunity(page)  # the page shows the schema changed
    assert "value" not in record.values and record.values["name"] == "Gone"
    assert adapter.blocked_fields("deal") == {"value": "property 'Value' (number, for value) is missing"}
    with pytest.raises(FieldBlocked) as caught:
        adapter.update_opportunity(page, {"value": Decimal("12"), "name": "Gone too"})
    assert caught.value.field == "value"
    assert notion_emulator.page_values(page)["Name"] == "Gone"  # nothing was sent
    created = adapter.create_opportunity(OpportunityData(name="New", value=Decimal("5")), str(uuid.uuid4()))
    assert "value" not in created.values and created.values["name"] == "New"


@pytest.mark.parametrize(
    ("prop", "ptype", "field", "value"),
    [("Stage", "multi_select", "stage", "proposal"), ("Tags", "select", "tags", ["enterprise"])],
)
def test_a_retyped_property_is_neither_read_nor_written(adapter, notion_emulator, prop, ptype, field, value):
    source = notion_emulator.ids["deal_source"]
    page = notion_emulator.human_create(source, {"Name": "Retyped", "Stage": "Discovery", "Tags": ["emea"]})
    adapter.get_opportunity(page)
    notion_emulator.retype_property(source, prop, ptype)
    before = notion_emulator.page_values(page)[prop]
    record = adapter.get_opportunity(page)
    assert field not in record.values
    assert field in adapter.blocked_fields("deal")
    with pytest.raises(FieldBlocked):
        adapter.update_opportunity(page, {field: value})
    assert notion_emulator.page_values(page)[prop] == before  # no letters written
    assert adapter.check() == [
        f"deal: property {prop!r} is {ptype}, expected {'select' if field == 'stage' else 'multi_select'} (for {field})"
    ]
