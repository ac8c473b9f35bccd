"""The pure converters on every page object recorded from the live Notion API.

Each recorded property is read as every kind of field it can be mapped to; what is read
must be the value Notion holds (nothing lost, nothing of the wrong type). The recordings
(notion_recordings/, see its README) hold numbers with many decimals, date ranges,
date-times with offsets, mentions, annotations and links in rich text.
"""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from crmsync.adapters import notion_properties as props
from crmsync.adapters.base import Unmapped
from crmsync.entities import normal_form

RECORDINGS = Path(__file__).parent / "notion_recordings"
PAGES = [
    entry["page"]
    for name in ("pages-notion_ruby_mapping.json", "pages-notion-sdk-py.json")
    for entry in json.loads((RECORDINGS / name).read_text())
]
PROPERTIES = [
    pytest.param(page, name, value, id=f"{page['id'][:8]}-{name}")
    for page in PAGES
    for name, value in page["properties"].items()
]
# Every kind a property of each type can be mapped to (notion_properties.COMPATIBLE_TYPES;
# a relation holds the related page ids, as Activity.opportunity does).
KINDS = {
    ptype: sorted(kind for kind, types in props.COMPATIBLE_TYPES.items() if ptype in types)
    for ptype in {value["type"] for page in PAGES for value in page["properties"].values()}
}
KINDS["relation"] = ["text"]


def test_the_recordings_hold_what_the_issue_says():
    assert len(PAGES) == 148
    types = {value["type"] for page in PAGES for value in page["properties"].values()}
    assert len(types) == 22
    numbers = {
        value["number"]
        for page in PAGES
        for value in page["properties"].values()
        if value["type"] == "number"
    }
    assert {1.41421356, 3.1415926535} <= numbers


def expected(value: dict, kind: str):
    """What a field of ``kind`` must read from a recorded property value, computed
    straight from the recording (not through the converters)."""
    ptype, raw = value["type"], value[value["type"]]
    if ptype in ("title", "rich_text"):
        text = "".join(item["plain_text"] for item in raw).replace("\r\n", "\n")
        return normal_form(kind, text) if kind == "email" else (text or None)
    if ptype in ("select", "status"):
        return raw and raw["name"]
    if ptype == "multi_select":
        return sorted({option["name"] for option in raw}) or None
    if ptype == "number":
        return raw
    if ptype == "date":
        return raw and raw["start"]
    if ptype == "relation":
        ids = [item["id"] for item in raw]
        return ids[0] if len(ids) == 1 else (ids or None)
    return normal_form(kind, raw)


@pytest.mark.parametrize(("page", "name", "value"), PROPERTIES)
def test_every_recorded_property_reads_as_every_kind_it_maps_to(page, name, value):
    for kind in KINDS[value["type"]] or ["text"]:
        if not KINDS[value["type"]]:
            # Not mappable (people, files, rollups, formulas, read-only times...): property_map
            # refuses such a mapping, and page_to_values leaves such a value out.
            with pytest.raises(Exception):  # noqa: B017
                props.property_map("deal", {"name": (name, value["type"])})
            continue
        read = props.from_property(value, kind)
        want = expected(value, kind)
        if value["type"] == "number":
            assert (read is None) == (want is None)
            if want is not None:
                assert Decimal(read) == Decimal(str(want)), "a number lost digits"
        elif value["type"] == "date":
            if want is None:
                assert read is None
            elif kind == "date":
                assert read == want[:10], "the day as written, in the date's own offset"
            else:
                moment = dt.datetime.fromisoformat(want.replace("Z", "+00:00"))
                moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
                assert dt.datetime.fromisoformat(read.replace("Z", "+00:00")) == moment
        else:
            assert read == want
        assert read is None or isinstance(read, str | list), "normalized values are str or list"
        assert not isinstance(read, Unmapped)


@pytest.mark.parametrize("page", PAGES, ids=[page["id"][:8] for page in PAGES])
def test_page_to_values_reads_every_recorded_page_whole(page):
    """Each page mapped every way it can be: one field per (property, kind); values read
    by property id equal values read by name, and a field is never given a value of a
    type it cannot hold."""
    fields, kinds = {}, {}
    for name, value in page["properties"].items():
        for kind in KINDS[value["type"]]:
            field = f"{name}:{kind}"
            fields[field], kinds[field] = (name, value["type"], value["id"]), kind
    by_id = props.page_to_values(page, fields, kinds, {})
    by_name = props.page_to_values(page, {f: spec[:2] for f, spec in fields.items()}, kinds, {})
    assert by_id == by_name
    for field, (name, ptype, _) in fields.items():
        if page["properties"][name][ptype] not in (None, [], ""):
            assert field in by_id, f"{field} was lost"
    # A field mapped to a property retyped since (a tag field on each of these
    # properties): left out, never filled with a value of the other type.
    retyped = {
        f"{name}:as-tags": (name, "multi_select", value["id"]) for name, value in page["properties"].items()
    }
    read = props.page_to_values(page, retyped, dict.fromkeys(retyped, "tags"), {})
    assert set(read) <= {f"{n}:as-tags" for n, v in page["properties"].items() if v["type"] == "multi_select"}


@pytest.mark.parametrize(
    ("number", "places", "stored"),
    [
        (1.41421356, 2, "1.41"),
        (3.1415926535, 3, "3.142"),
        (1234.5678, 2, "1234.57"),
        (33.5, 0, "34"),
        (0.0004, 2, "0"),
        (1e20, 2, "100000000000000000000"),  # out of range for the field: the model refuses it, intact
    ],
)
def test_numbers_are_read_at_the_fields_precision(number, places, stored):
    assert props.from_property({"type": "number", "number": number}, "number", None, places) == stored


@pytest.mark.parametrize(
    ("date", "kind", "read"),
    [
        ({"start": "2022-02-25T01:23:00.000+09:00", "end": None, "time_zone": None}, "date", "2022-02-25"),
        ({"start": "2022-02-25T23:30:00.000-05:00", "end": None, "time_zone": None}, "date", "2022-02-25"),
        # A time written in Tokyo but given in UTC, with its time zone: the Tokyo day.
        ({"start": "2022-02-24T20:00:00.000Z", "end": None, "time_zone": "Asia/Tokyo"}, "date", "2022-02-25"),
        (
            {"start": "2022-02-25T01:23:00.000", "end": None, "time_zone": "Asia/Tokyo"},
            "datetime",
            "2022-02-24T16:23:00Z",
        ),
        ({"start": "2022-02-11", "end": "2022-02-12", "time_zone": None}, "date", "2022-02-11"),
    ],
)
def test_dates_are_read_as_written(date, kind, read):
    assert props.from_property({"type": "date", "date": date}, kind) == read


@pytest.mark.parametrize(
    ("current", "new", "sent"),
    [
        # A range keeps its end while the end is on or after the new start...
        (
            {"start": "2022-02-11", "end": "2022-02-12"},
            "2022-02-12",
            {"start": "2022-02-12", "end": "2022-02-12"},
        ),
        # ... and loses it past it (Notion refuses an end before the start).
        ({"start": "2022-02-11", "end": "2022-02-12"}, "2022-03-01", {"start": "2022-03-01", "end": None}),
        # A date-time keeps its time of day and its offset.
        (
            {"start": "2022-02-25T01:23:00.000+09:00", "end": None},
            "2022-02-26",
            {"start": "2022-02-26T01:23:00.000+09:00", "end": None},
        ),
        (None, "2022-02-26", {"start": "2022-02-26", "end": None}),
        # A date-time range whose end would fall before the moved start loses its end.
        (
            {"start": "2026-03-01T22:00:00.000-08:00", "end": "2026-03-02T01:00:00.000-08:00"},
            "2026-03-02",
            {"start": "2026-03-02T22:00:00.000-08:00", "end": None},
        ),
        (
            {"start": "2026-03-01T22:00:00.000-08:00", "end": "2026-03-03T01:00:00.000-08:00"},
            "2026-03-02",
            {"start": "2026-03-02T22:00:00.000-08:00", "end": "2026-03-03T01:00:00.000-08:00"},
        ),
    ],
)
def test_a_pushed_date_keeps_the_range_end_and_time_of_day(current, new, sent):
    request = props.to_property(
        "date", new, field="close_date", prop="Close Date", kind="date", current={"date": current}
    )
    assert request == {"date": sent}


@pytest.mark.parametrize(
    "pasted",
    [
        "0123456789abcdef0123456789abcdef",
        "0123456789ABCDEF0123456789ABCDEF",
        "01234567-89ab-cdef-0123-456789abcdef",
        "https://www.notion.so/acme/Deals-0123456789abcdef0123456789abcdef?v=fedcba9876543210fedcba9876543210",
        "https://www.notion.so/0123456789abcdef0123456789abcdef?v=fedcba9876543210fedcba9876543210&pvs=4",
        "https://app.notion.com/p/acme/Deals-0123456789abcdef0123456789abcdef",
        " https://acme.notion.site/Deals-0123456789abcdef0123456789abcdef ",
    ],
)
def test_ids_are_taken_as_people_paste_them(pasted):
    assert props.parse_notion_id(pasted) == "01234567-89ab-cdef-0123-456789abcdef"


@pytest.mark.parametrize(
    "pasted",
    [
        "deals",
        "0123456789abcdef",
        "https://example.com/Deals-0123456789abcdef0123456789abcdef",
        "https://www.notion.so/acme/Deals",
    ],
)
def test_malformed_ids_are_refused(pasted):
    with pytest.raises(ValueError):
        props.parse_notion_id(pasted)
