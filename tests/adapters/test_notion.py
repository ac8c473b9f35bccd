"""NotionAdapter over real HTTP with the real notion-client, against the emulator."""

import datetime as dt
import time
import uuid

import httpx
import notion_client
import pytest

from crmsync.adapters import notion_properties as props
from crmsync.adapters.base import OpportunityData, Unmapped
from crmsync.adapters.notion import NotionAdapter
from crmsync.exceptions import (
    AdapterError,
    AmbiguousWriteError,
    ConfigurationError,
    MappingError,
    TransientAdapterError,
)
from crmsync.testing.pytest_plugin import notion_options

pytestmark = pytest.mark.django_db
EVERY_TYPE = {
    "Title": "title",
    "Text": "rich_text",
    "Number": "number",
    "Select": "select",
    "Status": {"type": "status", "options": ["Open", "Done"]},
    "Multi": "multi_select",
    "Date": "date",
    "Email": "email",
    "Url": "url",
    "Phone": "phone_number",
    "Check": "checkbox",
    "Related": "relation",
}


@pytest.fixture
def adapter(notion_emulator):
    adapter = NotionAdapter(alias="notion", **notion_options(notion_emulator))
    yield adapter
    adapter.close()


def raw_client(emulator):
    return notion_client.Client(auth=emulator.token, base_url=emulator.url, retry=False)


LONG_TEXT = ("Déjà vu 🚀 " * 500)[:5000]
ROUND_TRIPS = [
    ("title", "text", "Acme"),
    ("rich_text", "text", LONG_TEXT),
    ("rich_text", "text", None),
    ("number", "number", "1200.5"),
    ("number", "number", "40"),
    ("number", "number", None),
    ("select", "choice", "Won"),
    ("select", "choice", None),
    ("status", "choice", "Done"),
    ("multi_select", "tags", [f"tag {i:02d}" for i in range(30)]),
    ("multi_select", "tags", None),
    ("date", "date", "2026-12-31"),
    ("date", "datetime", "2026-11-02T09:30:00Z"),
    ("email", "email", "ada@example.com"),
    ("url", "text", "https://example.com/a?b=c"),
    ("phone_number", "text", "+44 20 7946 0000"),
]


@pytest.mark.parametrize(("ptype", "kind", "value"), ROUND_TRIPS)
def test_every_property_type_round_trips_over_http(notion_emulator, ptype, kind, value):
    _, source = notion_emulator.create_database("All types", EVERY_TYPE)
    prop = next(
        name
        for name, spec in EVERY_TYPE.items()
        if (spec if isinstance(spec, str) else spec["type"]) == ptype
    )
    client = raw_client(notion_emulator)
    request = props.to_property(ptype, value, field="f", prop=prop)
    page = client.pages.create(
        parent={"type": "data_source_id", "data_source_id": source}, properties={prop: request}
    )
    assert props.from_property(page["properties"][prop], kind) == value
    page = client.pages.retrieve(page_id=page["id"])
    assert props.from_property(page["properties"][prop], kind) == value


def test_checkbox_and_relation_round_trip(notion_emulator):
    _, source = notion_emulator.create_database("All types", EVERY_TYPE)
    client = raw_client(notion_emulator)
    target = client.pages.create(parent={"data_source_id": source}, properties={})["id"]
    properties = {
        "Check": props.to_property("checkbox", True, field="f", prop="Check"),
        "Related": props.to_property("relation", target, field="f", prop="Related"),
    }
    page = client.pages.create(parent={"data_source_id": source}, properties=properties)
    assert page["properties"]["Check"]["checkbox"] is True
    assert props.from_property(page["properties"]["Related"], "text") == target


def test_long_text_is_split_in_utf16_units_and_read_back_whole():
    text = "😀" * 1500 + "x" * 2000  # 3,000 code units of emoji, then 2,000 more
    pieces = props.split_text(text)
    assert all(props.utf16_len(piece) <= 2000 for piece in pieces)
    assert "".join(pieces) == text and len(pieces) == 3


def test_text_over_25_items_is_read_in_full_through_the_property_endpoint(adapter, notion_emulator):
    notes = "".join(f"{i:04d}" + "n" * 1996 for i in range(30))  # 30 items of 2,000 characters
    created = adapter.create_opportunity(OpportunityData(name="Big", notes=notes), str(uuid.uuid4()))
    assert created.values["notes"] == notes
    assert notion_emulator.count("pages.properties.retrieve") >= 1


@pytest.mark.parametrize(
    ("data", "field", "prop"),
    [
        (OpportunityData(name="A", tags=("a,b",)), "tags", "Tags"),
        (OpportunityData(name="A", tags=tuple(f"t{i}" for i in range(101))), "tags", "Tags"),
        (OpportunityData(name="A", notes="n" * 200_001), "notes", "Notes"),
        (OpportunityData(name="A", contact_email="a" * 200 + "@x.io"), "contact", "Contact Email"),
    ],
)
def test_values_notion_refuses_are_refused_before_any_request(adapter, notion_emulator, data, field, prop):
    with pytest.raises(MappingError) as caught:
        adapter.create_opportunity(data, str(uuid.uuid4()))
    assert (caught.value.field, caught.value.prop) == (field, prop)
    assert field in str(caught.value) and prop in str(caught.value)
    assert notion_emulator.count("pages.create") == 0


def test_unknown_status_option_is_refused_locally(notion_emulator):
    database, _ = notion_emulator.create_database(
        "Deals",
        {
            "Name": "title",
            "Stage": {"type": "status", "options": ["Prospecting"]},
            "CRM Sync ID": "rich_text",
        },
    )
    adapter = NotionAdapter(alias="n", **notion_options(notion_emulator, database_id=database))
    adapter.create_opportunity(OpportunityData(name="Ok", stage="prospecting"), str(uuid.uuid4()))
    with pytest.raises(MappingError, match="status option 'Proposal' does not exist"):
        adapter.create_opportunity(OpportunityData(name="No", stage="proposal"), str(uuid.uuid4()))
    assert notion_emulator.count("pages.create") == 1


def test_unknown_select_option_is_read_as_unmapped(adapter, notion_emulator):
    page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "X", "Stage": "On Hold"})
    assert adapter.get_opportunity(page).values["stage"] == Unmapped("On Hold")


def test_write_sync_id_writes_the_id_alone_in_one_request(adapter, notion_emulator):
    created = adapter.create_opportunity(OpportunityData(name="Acme", stage="prospecting"), str(uuid.uuid4()))
    notion_emulator.reset_counters()
    sync_id = str(uuid.uuid4())
    adapter.write_sync_id("deal", created.remote_id, sync_id)
    assert notion_emulator.count("pages.update") == 1 and notion_emulator.count("pages.retrieve") == 0
    fetched = adapter.get_opportunity(created.remote_id)
    assert fetched.sync_id == sync_id and fetched.values == created.values


def test_data_source_is_resolved_once_and_cached(adapter, notion_emulator):
    for _ in range(3):
        adapter.list_opportunities()
    assert notion_emulator.count("databases.retrieve") == 1
    direct = NotionAdapter(
        alias="n",
        **notion_options(
            notion_emulator, database_id=None, data_source_id=notion_emulator.ids["deal_source"]
        ),
    )
    direct.list_opportunities()
    assert notion_emulator.count("databases.retrieve") == 1


def test_database_with_several_data_sources_asks_for_data_source_id(notion_emulator):
    database, _ = notion_emulator.create_database("Deals", {"Name": "title"}, extra_data_sources=1)
    adapter = NotionAdapter(alias="n", **notion_options(notion_emulator, database_id=database))
    with pytest.raises(ConfigurationError, match=r'\["OPTIONS"\]\[\'data_source_id\'\]'):
        adapter.list_opportunities()


def test_schema_check_lists_every_missing_or_mistyped_property(notion_emulator):
    database, _ = notion_emulator.create_database(
        "Deals", {"Name": "title", "Stage": "status", "Value": "rich_text", "CRM Sync ID": "rich_text"}
    )
    adapter = NotionAdapter(
        alias="n",
        **notion_options(
            notion_emulator, database_id=database, contacts_database_id=None, activities_database_id=None
        ),
    )
    problems = adapter.check()
    assert "deal: property 'Value' is rich_text, expected number (for value)" in problems
    assert "deal: property 'Close Date' (date, for close_date) is missing" in problems
    assert not any("'Stage'" in p for p in problems)  # status is accepted for select
    assert len(problems) == 8  # Value + 7 missing properties


def test_full_listing_passes_the_10000_row_cap_by_windowing(notion_emulator):
    notion_emulator.query_result_cap = 120
    source = notion_emulator.ids["deal_source"]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for index in range(300):
        notion_emulator.clock.set(start + dt.timedelta(minutes=index // 7))  # 7 pages per minute
        notion_emulator.human_create(source, {"Name": f"Deal {index}"})
    adapter = NotionAdapter(alias="n", **notion_options(notion_emulator))
    seen = [r.remote_id for page in adapter.iter_changes("deal", None, by="created") for r in page.records]
    assert len(set(seen)) == 300
    # A plain cursor loop would have stopped at the cap.
    assert notion_emulator.count("data_sources.query") > 3


# --- Retries, errors and the rate budget -------------------------------------------------


def test_429_with_retry_after_is_waited_out(adapter, notion_emulator):
    adapter.list_opportunities()
    notion_emulator.throttle_next(retry_after=2, endpoint="data_sources.query")
    started = time.monotonic()
    adapter.list_opportunities()
    assert time.monotonic() - started >= 2.0
    assert notion_emulator.count("data_sources.query", status=429) == 1
    assert notion_emulator.count("data_sources.query", status=200) == 2


def test_5xx_bursts_recover(adapter, notion_emulator):
    for status in (500, 502, 503, 504, 529):
        notion_emulator.fail_next(status=status, endpoint="data_sources.query")
    started = adapter.requests_sent
    adapter.list_opportunities()
    assert notion_emulator.count("data_sources.query", status=200) == 1
    # five failures, the success, the database lookup and the schema read (both kept for later runs)
    assert adapter.requests_sent - started == 6 + 2


def test_permanent_400_is_not_retried_and_carries_status_code_and_message(adapter, notion_emulator):
    notion_emulator.fail_next(status=400, endpoint="pages.update")
    record = adapter.create_opportunity(OpportunityData(name="A"), str(uuid.uuid4()))
    with pytest.raises(AdapterError) as caught:
        adapter.update_opportunity(record.remote_id, {"stage": "discovery"})
    assert not isinstance(caught.value, TransientAdapterError)
    assert (caught.value.status, caught.value.code) == (400, "validation_error")
    assert notion_emulator.count("pages.update") == 1


def test_ambiguous_create_is_reported_not_retried(adapter, notion_emulator):
    adapter.list_opportunities()
    notion_emulator.fail_next(status=500, endpoint="pages.create", after=True)
    with pytest.raises(AmbiguousWriteError):
        adapter.create_opportunity(OpportunityData(name="A"), "sync-1")
    assert notion_emulator.count("pages.create") == 1
    assert len(adapter.find_by_sync_id("deal", "sync-1")) == 1  # it was applied


def test_timeouts_are_retried_for_reads_and_ambiguous_for_creates(notion_emulator):
    adapter = NotionAdapter(alias="n", **notion_options(notion_emulator, timeout=0.5))
    adapter.list_opportunities()
    notion_emulator.fail_next(status=None, delay=1.0, endpoint="data_sources.query")
    adapter.list_opportunities()
    assert notion_emulator.count("data_sources.query") == 3
    notion_emulator.fail_next(status=None, delay=1.0, endpoint="pages.create")
    with pytest.raises(AmbiguousWriteError):
        adapter.create_opportunity(OpportunityData(name="A"), "sync-2")


def test_unreachable_notion_is_a_transient_error(db):
    adapter = NotionAdapter(
        alias="n", token="t", database_id="0" * 32, base_url="http://127.0.0.1:9", max_retries=1
    )
    with pytest.raises(TransientAdapterError, match="Cannot reach Notion"):
        adapter.list_opportunities()


def test_bad_token_gives_401_without_showing_the_token(notion_emulator):
    adapter = NotionAdapter(alias="n", **notion_options(notion_emulator, token="secret_wrong_token"))
    with pytest.raises(AdapterError) as caught:
        adapter.list_opportunities()
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert "secret_wrong_token" not in str(caught.value) + repr(caught.value)


@pytest.mark.slow
def test_rate_budget_keeps_under_the_limit_and_gets_no_429(notion_emulator):
    notion_emulator.set_rate_limit(10)
    adapter = NotionAdapter(alias="n", **notion_options(notion_emulator, requests_per_second=10))
    page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "X"})
    started = time.monotonic()
    for _ in range(60):
        adapter.get_opportunity(page)
    elapsed = time.monotonic() - started
    assert elapsed >= 5.5
    assert notion_emulator.count(status=429) == 0


@pytest.mark.parametrize("aliases", [("n", "n"), ("deals", "other")], ids=["one-connection", "one-token"])
def test_rate_budget_is_shared_by_adapters_of_one_connection_and_of_one_token(notion_emulator, aliases):
    """Notion budgets an integration's requests (its token), not each crmsync connection:
    two connections on one token at 20 req/s each sent 40 a second, and got 429s."""
    first, second = (
        NotionAdapter(alias=alias, **notion_options(notion_emulator, requests_per_second=20))
        for alias in aliases
    )
    page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "X"})
    started = time.monotonic()
    for _ in range(10):
        first.get_opportunity(page)
        second.get_opportunity(page)
    assert time.monotonic() - started >= 19 / 20 * 0.95
    assert first.budget.key == second.budget.key and "secret" not in first.budget.key
    elsewhere = NotionAdapter(
        alias="elsewhere", **notion_options(notion_emulator, requests_per_second=20, token="another-token")
    )
    assert elsewhere.budget.key != first.budget.key


# --- The emulator's own fidelity ---------------------------------------------------------


def test_emulator_requires_version_header_and_rounds_times(notion_emulator):
    url = f"{notion_emulator.url}/v1/data_sources/{notion_emulator.ids['deal_source']}"
    auth = {"Authorization": f"Bearer {notion_emulator.token}"}
    missing = httpx.get(url, headers=auth).json()
    assert missing["code"] == "missing_version"
    old = httpx.get(url, headers={**auth, "Notion-Version": "2022-06-28"}).json()
    assert old["code"] == "invalid_request_url"
    notion_emulator.clock.set(dt.datetime(2026, 7, 4, 9, 8, 57, tzinfo=dt.UTC))
    page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "X"})
    body = httpx.get(
        f"{notion_emulator.url}/v1/pages/{page}", headers={**auth, "Notion-Version": "2025-09-03"}
    ).json()
    assert body["created_time"] == body["last_edited_time"] == "2026-07-04T09:08:00.000Z"
    assert body["request_id"]


def test_emulator_refuses_unknown_properties_and_bad_shapes(notion_emulator):
    client = raw_client(notion_emulator)
    parent = {"data_source_id": notion_emulator.ids["deal_source"]}
    with pytest.raises(notion_client.APIResponseError, match="`Colour` is not a property that exists"):
        client.pages.create(parent=parent, properties={"Colour": {"select": {"name": "red"}}})
    with pytest.raises(notion_client.APIResponseError, match="should be a number"):
        client.pages.create(parent=parent, properties={"Value": {"number": "12"}})
    with pytest.raises(notion_client.APIResponseError, match="should be ≤ `100`"):
        client.data_sources.query(data_source_id=parent["data_source_id"], page_size=101)
    with pytest.raises(notion_client.APIResponseError) as caught:
        client.pages.retrieve(page_id=str(uuid.uuid4()))
    assert caught.value.code == "object_not_found"


def test_emulator_filters_sorts_and_paginates(notion_emulator):
    source = notion_emulator.ids["deal_source"]
    for index in range(150):
        notion_emulator.human_create(
            source,
            {"Name": f"D{index:03d}", "Value": index, "Stage": "Proposal" if index % 2 else "Discovery"},
        )
    client = raw_client(notion_emulator)
    flt = {
        "and": [
            {"property": "Stage", "select": {"equals": "Proposal"}},
            {"property": "Value", "number": {"greater_than": 100}},
        ]
    }
    results = notion_client.helpers.collect_paginated_api(
        client.data_sources.query,
        data_source_id=source,
        filter=flt,
        sorts=[{"property": "Value", "direction": "descending"}],
    )
    values = [r["properties"]["Value"]["number"] for r in results]
    assert values == sorted((i for i in range(101, 150) if i % 2), reverse=True)
    first = client.data_sources.query(data_source_id=source, page_size=100)
    assert first["has_more"] and len(first["results"]) == 100
    second = client.data_sources.query(data_source_id=source, start_cursor=first["next_cursor"])
    assert not second["has_more"] and len(second["results"]) == 50


def test_standalone_emulator_serves_from_the_command_line():
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "crmsync.testing.notion_emulator", "--port", "0", "--demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = line.split(" on ")[1].split(" ")[0]
        state = httpx.get(f"{url}/_emulator/state").json()
        assert set(state["databases"]) == {"Deals", "Contacts", "Activities"}
    finally:
        process.terminate()
        process.wait(10)


def test_emulator_timestamp_and_date_filters(notion_emulator):
    source = notion_emulator.ids["deal_source"]
    client = raw_client(notion_emulator)
    # A filter is checked when the query arrives, even when no page would be tested.
    with pytest.raises(notion_client.APIResponseError, match="should be an ISO 8601 date"):
        client.data_sources.query(
            data_source_id=source,
            filter={"timestamp": "last_edited_time", "last_edited_time": {"after": "soon"}},
        )
    with pytest.raises(notion_client.APIResponseError, match="unsupported date filter condition `within`"):
        client.data_sources.query(
            data_source_id=source,
            filter={"timestamp": "last_edited_time", "last_edited_time": {"within": "2026-01-01"}},
        )
    notion_emulator.clock.set(dt.datetime(2026, 3, 1, 9, 30, 45, tzinfo=dt.UTC))
    early = notion_emulator.human_create(source, {"Name": "Early", "Close Date": "2026-03-31"})
    notion_emulator.clock.advance(120)
    late = notion_emulator.human_create(source, {"Name": "Late"})

    def names(flt):
        results = client.data_sources.query(data_source_id=source, filter=flt)["results"]
        return sorted(r["properties"]["Name"]["title"][0]["plain_text"] for r in results)

    def edited(condition):
        return names({"timestamp": "last_edited_time", "last_edited_time": condition})

    # last_edited_time is floored to the minute: 09:30 and 09:32.
    assert edited({"on_or_after": "2026-03-01T09:30:00Z"}) == ["Early", "Late"]
    assert edited({"after": "2026-03-01T09:30:00Z"}) == ["Late"]
    assert edited({"before": "2026-03-01T09:32:00Z"}) == ["Early"]
    assert edited({"equals": "2026-03-01"}) == ["Early", "Late"]  # a date compares the day
    assert edited({"after": "2026-03-01"}) == []
    assert names({"property": "Close Date", "date": {"on_or_before": "2026-03-31"}}) == ["Early"]
    assert names({"property": "Close Date", "date": {"is_empty": True}}) == ["Late"]
    assert {early, late} == {r["id"] for r in client.data_sources.query(data_source_id=source)["results"]}
