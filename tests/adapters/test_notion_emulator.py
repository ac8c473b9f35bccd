"""The shipped emulator behaves like Notion where crmsync's fidelity depends on it."""

import httpx
import notion_client
import pytest

from crmsync.testing.notion_emulator.faults import CONNECTION_LIMIT, WORKSPACE_LIMIT

pytestmark = pytest.mark.django_db


def client(emulator, token=None):
    return notion_client.Client(auth=token or emulator.token, base_url=emulator.url, retry=False)


def api(emulator, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {emulator.token}", "Notion-Version": "2025-09-03"}
    return httpx.request(method, f"{emulator.url}/v1/{path}", headers=headers, **kwargs)


def test_ids_are_taken_without_dashes_and_malformed_ones_are_400(notion_emulator):
    ids = notion_emulator.ids
    page = notion_emulator.human_create(ids["deal_source"], {"Name": "Dashless"})
    assert api(notion_emulator, "GET", f"pages/{page.replace('-', '')}").json()["id"] == page
    assert api(notion_emulator, "GET", f"databases/{ids['deal'].replace('-', '').upper()}").status_code == 200
    created = api(
        notion_emulator,
        "POST",
        "pages",
        json={"parent": {"data_source_id": ids["deal_source"].replace("-", "")}, "properties": {}},
    )
    assert created.status_code == 200
    bad = api(notion_emulator, "GET", "pages/Deals-1234")
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"
    assert bad.json()["message"].startswith("path failed validation: path.page_id should be a valid uuid")
    assert (
        api(notion_emulator, "POST", "data_sources/nope/query", json={})
        .json()["message"]
        .startswith("path failed validation: path.data_source_id")
    )


def test_date_ranges_and_time_zones_are_stored_and_answered_as_notion_does(notion_emulator):
    source = notion_emulator.ids["deal_source"]
    raw = client(notion_emulator)
    page = raw.pages.create(
        parent={"data_source_id": source},
        properties={
            "Close Date": {
                "date": {
                    "start": "2022-02-25T01:23:00",
                    "end": "2022-02-26T09:00:00",
                    "time_zone": "Asia/Tokyo",
                }
            }
        },
    )
    # Notion answers a time zone as UTC offsets, with time_zone null.
    assert page["properties"]["Close Date"]["date"] == {
        "start": "2022-02-25T01:23:00.000+09:00",
        "end": "2022-02-26T09:00:00.000+09:00",
        "time_zone": None,
    }
    ranged = notion_emulator.human_create(
        source, {"Close Date": {"start": "2022-02-11", "end": "2022-02-12"}}
    )
    assert raw.pages.retrieve(page_id=ranged)["properties"]["Close Date"]["date"]["end"] == "2022-02-12"
    with pytest.raises(notion_client.APIResponseError, match="cannot carry a UTC offset"):
        raw.pages.create(
            parent={"data_source_id": source},
            properties={"Close Date": {"date": {"start": "2022-02-25T01:23:00Z", "time_zone": "Asia/Tokyo"}}},
        )
    # A date filter compares the moment in its time zone (01:23 in Tokyo is the 24th in UTC).
    window = [
        {"property": "Close Date", "date": {"after": "2022-02-24T16:00:00Z"}},
        {"property": "Close Date", "date": {"before": "2022-02-24T17:00:00Z"}},
    ]
    hits = raw.data_sources.query(data_source_id=source, filter={"and": window})["results"]
    assert [r["id"] for r in hits] == [page["id"]]


def test_every_page_of_a_capped_result_carries_request_status(notion_emulator):
    notion_emulator.query_result_cap = 150
    source = notion_emulator.ids["deal_source"]
    for index in range(220):
        notion_emulator.human_create(source, {"Name": f"D{index}"})
    raw = client(notion_emulator)
    first = raw.data_sources.query(data_source_id=source)
    second = raw.data_sources.query(data_source_id=source, start_cursor=first["next_cursor"])
    incomplete = {"type": "incomplete", "incomplete_reason": "query_result_limit_reached"}
    assert first["request_status"] == second["request_status"] == incomplete
    assert (len(first["results"]), len(second["results"]), second["has_more"]) == (100, 50, False)
    assert "request_status" not in raw.data_sources.query(
        data_source_id=source, page_size=5, filter={"property": "Name", "title": {"equals": "D7"}}
    )


def test_long_retry_after_and_rate_limit_reason_are_configurable(notion_emulator):
    notion_emulator.throttle_next(retry_after=900, reason=WORKSPACE_LIMIT)
    answer = api(notion_emulator, "GET", "users/me")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "900"
    assert answer.json()["additional_data"] == {"rate_limit_reason": WORKSPACE_LIMIT}


def test_budgets_per_connection_window_and_per_workspace(notion_emulator):
    other = "secret_second_connection"
    notion_emulator.tokens.add(other)
    notion_emulator.set_rate_limit(None, per_window=3, workspace_per_window=5, workspace_window=300)

    def me(token):
        return httpx.get(
            f"{notion_emulator.url}/v1/users/me",
            headers={"Authorization": f"Bearer {token}", "Notion-Version": "2025-09-03"},
        )

    assert [me(notion_emulator.token).status_code for _ in range(3)] == [200] * 3
    limited = me(notion_emulator.token)
    assert (
        limited.status_code == 429
        and limited.json()["additional_data"]["rate_limit_reason"] == CONNECTION_LIMIT
    )
    assert 1 <= int(limited.headers["retry-after"]) <= 60  # until the 60-second window resets
    assert [me(other).status_code for _ in range(2)] == [200, 200]  # its own budget; the workspace's is spent
    spent = me(other)
    assert spent.json()["additional_data"]["rate_limit_reason"] == WORKSPACE_LIMIT
    assert int(spent.headers["retry-after"]) > 60  # a workspace limit can ask for more than a minute


def test_human_edits_split_text_at_2000_utf16_units_like_the_app(notion_emulator):
    text = "😀" * 1500 + "é" * 10  # 3,010 code units in 1,510 code points
    page = notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": "Emoji", "Notes": text})
    items = notion_emulator.pages[page]["properties"]["Notes"]["rich_text"]
    assert [len(item["plain_text"].encode("utf-16-le")) // 2 for item in items] == [2000, 1010]
    notion_emulator.human_edit(page, {"Notes": text + "!"})
    assert notion_emulator.page_values(page)["Notes"] == text + "!"


def test_schema_changes_keep_property_ids(notion_emulator):
    source = notion_emulator.ids["deal_source"]
    page = notion_emulator.human_create(source, {"Name": "Schema", "Stage": "Proposal"})
    stage_id = notion_emulator.data_sources[source]["properties"]["Stage"]["id"]
    notion_emulator.rename_property(source, "Stage", "Phase")
    notion_emulator.retype_property(source, "Phase", "multi_select")
    assert notion_emulator.data_sources[source]["properties"]["Phase"]["id"] == stage_id
    assert notion_emulator.page_values(page)["Phase"] == ["Proposal"]
    notion_emulator.add_property(source, "ID", {"type": "unique_id", "unique_id": {"prefix": "D"}})
    later = notion_emulator.human_create(source, {"Name": "Later"})
    raw = client(notion_emulator)
    assert raw.pages.retrieve(page_id=later)["properties"]["ID"]["unique_id"] == {"prefix": "D", "number": 2}
    found = raw.data_sources.query(
        data_source_id=source, filter={"property": "ID", "unique_id": {"greater_than": 1}}
    )
    assert [r["id"] for r in found["results"]] == [later]
    notion_emulator.delete_property(source, "Notes")
    assert "Notes" not in raw.pages.retrieve(page_id=page)["properties"]
    # The control endpoints do the same.
    httpx.post(
        f"{notion_emulator.url}/_emulator/data_sources/{source}/properties",
        json={"rename": ["Phase", "Stage"]},
    )
    assert "Stage" in notion_emulator.data_sources[source]["properties"]


def test_property_ids_are_unique_within_a_data_source_even_when_random_ids_collide(monkeypatch):
    """Ids are 4 hex digits, as short as Notion's: two properties of one data source drawing
    the same digits must not share an id (it made rare tests fail: a Probability write
    landed on the CRM Sync ID)."""
    import itertools
    import types
    import uuid

    from crmsync.testing import notion_emulator as emulator_module

    # The first 40 ids share their first four hex digits (and differ after them).
    same_start = (uuid.UUID(int=(0x0ABC << 112) | uuid.uuid4().int >> 16) for _ in range(40))
    ids = itertools.chain(same_start, iter(uuid.uuid4, None))
    monkeypatch.setattr(emulator_module, "uuid", types.SimpleNamespace(uuid4=lambda: next(ids)))
    emulator = emulator_module.NotionEmulator()
    emulator.ids = emulator.add_crm_databases()
    for source in (emulator.ids["deal_source"], emulator.ids["contact_source"]):
        found = [entry["id"] for entry in emulator.data_sources[source]["properties"].values()]
        assert len(found) == len(set(found)), found
