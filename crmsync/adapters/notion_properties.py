"""Pure translation between normalized values and Notion property values.

No SDK import and no I/O here: these functions are tested on their own.
Limits follow https://developers.notion.com/reference/request-limits: 2,000
characters (UTF-16 code units) per rich-text item, 100 items per array, 200
characters per email or phone number, 2,000 per URL, no commas in option names.
"""

import datetime as dt
import functools
import re
import zoneinfo
from typing import Any

from ..choices import ActivityKind, DealStage
from ..entities import ENTITIES, normal_form
from ..exceptions import MappingError
from .base import Unmapped

TEXT_LIMIT = 2000
ARRAY_LIMIT = 100
PAGE_OBJECT_REFERENCE_LIMIT = 25  # page objects cut title/rich_text/relation lists here
SYNC_ID_PROPERTY = "CRM Sync ID"

DEFAULT_PROPERTIES = {
    "deal": {
        "name": ("Name", "title"),
        "stage": ("Stage", "select"),
        "value": ("Value", "number"),
        "close_date": ("Close Date", "date"),
        "probability": ("Probability", "number"),
        "confidence": ("Confidence", "number"),
        "qualification": ("Qualification", "rich_text"),
        "notes": ("Notes", "rich_text"),
        "tags": ("Tags", "multi_select"),
        "contact": ("Contact Email", "email"),
    },
    "contact": {
        "name": ("Name", "title"),
        "email": ("Email", "email"),
        "phone": ("Phone", "phone_number"),
        "company": ("Company", "rich_text"),
        "title": ("Title", "rich_text"),
    },
    "activity": {
        "subject": ("Subject", "title"),
        "kind": ("Kind", "select"),
        "body": ("Body", "rich_text"),
        "occurred_at": ("Occurred At", "date"),
        "opportunity": ("Deal", "relation"),
    },
}
# Local choice value -> Notion option name.
DEFAULT_OPTIONS = {
    ("deal", "stage"): {value: label for value, label in DealStage.choices},
    ("activity", "kind"): {value: label for value, label in ActivityKind.choices},
}
# Which Notion property types can carry which kinds of field.
COMPATIBLE_TYPES = {
    "text": {"title", "rich_text", "select", "url", "phone_number", "email"},
    "number": {"number"},
    "date": {"date"},
    "datetime": {"date"},
    "choice": {"select", "status"},
    "tags": {"multi_select"},
    "email": {"email", "rich_text"},
}
TEXT_TYPES = ("title", "rich_text")
UUID_HEX = re.compile(r"^[0-9a-f]{32}$")
# The id at the end of a Notion URL's path: ".../Deals-<32 hex>" or ".../<uuid>".
URL_ID = re.compile(r"(?:^|[-/])([0-9a-f]{32}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$")
NOTION_HOSTS = re.compile(r"^(?:[\w-]+\.)*(?:notion\.so|notion\.site|notion\.com)$")


def parse_notion_id(value: str) -> str:
    """A database, data source or page id in its dashed form, from the id as people paste
    it: with or without dashes, or the object's Notion URL (``https://www.notion.so/
    <workspace>/Deals-<32 hex>?v=<view id>``; the view id is not the database's).

    Raises ValueError for anything else.
    """
    from urllib.parse import urlsplit

    text = str(value).strip()
    candidate = text.lower().replace("-", "")
    if "/" in text:  # a URL, with or without its scheme (copied from the address bar)
        parts = urlsplit(text if "://" in text else f"https://{text}")
        if not NOTION_HOSTS.match(parts.hostname or ""):
            raise ValueError(f"{text!r} is not a Notion URL")
        match = URL_ID.search(parts.path.rstrip("/").lower())
        if not match:
            raise ValueError(f"{text!r} holds no Notion id")
        candidate = match[1].replace("-", "")
    if not UUID_HEX.match(candidate):
        raise ValueError(f"{text!r} is not a Notion id (32 hexadecimal digits, dashes optional)")
    return f"{candidate[:8]}-{candidate[8:12]}-{candidate[12:16]}-{candidate[16:20]}-{candidate[20:]}"


@functools.cache
def allowed_types(kind: str, ptype: str) -> frozenset[str]:
    """The property types a field of ``kind`` mapped to a ``ptype`` property reads and writes
    as it should; any other type is schema drift (the field is blocked)."""
    allowed = {ptype}
    if kind == "choice" and ptype in ("select", "status"):
        allowed |= {"select", "status"}
    if ptype in TEXT_TYPES:
        allowed |= set(TEXT_TYPES)
    return frozenset(allowed)


def properties_by_id(properties: dict) -> dict[str, dict]:
    """{property id: value} of a page's properties: read once, looked up per field."""
    return {value["id"]: value for value in properties.values() if isinstance(value, dict) and "id" in value}


def find_property(
    properties: dict, name: str, prop_id: str | None = None, by_id: dict[str, dict] | None = None
) -> dict | None:
    """A page's property value by id (what survives a rename), else by name.

    ``by_id``: ``properties_by_id(properties)``, when several properties are looked up."""
    if prop_id is not None:
        found = (by_id if by_id is not None else properties_by_id(properties)).get(prop_id)
        if found is not None:
            return found
    value = properties.get(name)
    return value if isinstance(value, dict) else None


def property_map(entity: str, overrides: dict | None = None) -> dict[str, tuple[str, str]]:
    """{field: (property name, property type)}: DESIGN §4 defaults with overrides.

    An override is a property name (the default type is kept) or a (name, type) pair;
    None drops the field from the mapping.
    """
    mapping = dict(DEFAULT_PROPERTIES[entity])
    spec = ENTITIES[entity]
    for field, override in (overrides or {}).items():
        if field not in spec.field_names:
            raise MappingError(f"{entity} has no synced field {field!r}", field=field)
        if override is None:
            mapping.pop(field, None)
        elif isinstance(override, str):
            mapping[field] = (override, DEFAULT_PROPERTIES[entity][field][1])
        else:
            name, ptype = override
            if ptype not in COMPATIBLE_TYPES[spec.field(field).kind] | {"relation"}:
                raise MappingError(f"{entity}.{field} cannot be stored in a {ptype} property", field=field)
            mapping[field] = (name, ptype)
    return mapping


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut text into pieces of at most ``limit`` UTF-16 code units, never inside a character."""
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return [text] if text else []  # one piece: nearly every text, measured in C
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append("".join(current))
    return pieces


def rich_text(text: str | None) -> list[dict]:
    return [{"type": "text", "text": {"content": piece}} for piece in split_text(text or "")]


def plain_text(items: list[dict]) -> str:
    return "".join(item.get("plain_text", item.get("text", {}).get("content", "")) for item in items or [])


def _option_name(name: str, field: str, prop: str) -> str:
    if "," in name:
        raise MappingError(
            f"{field}: option {name!r} for {prop!r} cannot contain a comma", field=field, prop=prop
        )
    if utf16_len(name) > 100:
        raise MappingError(
            f"{field}: option {name!r} for {prop!r} is over 100 characters", field=field, prop=prop
        )
    return name


def _moment(text: str, time_zone: str | None = None) -> dt.datetime | dt.date:
    """A Notion date or date-time as written (a naive date-time is in ``time_zone``, else UTC)."""
    if "T" not in text:
        return dt.date.fromisoformat(text[:10])
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(time_zone) or dt.UTC)
    return moment


def _zone(name: str | None):
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def day_as_written(text: str, time_zone: str | None = None) -> dt.date:
    """The calendar day of a Notion date: the day written in its own offset, or in
    ``time_zone`` when Notion gives one (never the UTC day)."""
    moment = _moment(text, time_zone)
    if isinstance(moment, dt.datetime):
        zone = _zone(time_zone)
        return (moment.astimezone(zone) if zone else moment).date()
    return moment


def date_value(raw: dict | None, kind: str):
    """The normalized value of a date property value: its start (the end of a range stays
    in Notion, see ``date_request``)."""
    if not raw or not raw.get("start"):
        return None
    start, time_zone = raw["start"], raw.get("time_zone")
    if kind == "date":
        try:
            return day_as_written(start, time_zone).isoformat()
        except (TypeError, ValueError):
            return start  # as given: the local field refuses it (an invalid remote value)
    if kind == "datetime":
        moment = _moment(start, time_zone)
        if not isinstance(moment, dt.datetime):
            moment = dt.datetime.combine(moment, dt.time(), tzinfo=dt.UTC)
        return moment
    return start


def date_request(value, kind: str, current: dict | None = None) -> dict | None:
    """The request value of a date property set to ``value``.

    ``current`` is the property's value in Notion now, when known: a date field pushed to
    a date-time keeps its time of day and offset, and a range keeps its end when the end
    is still on or after the new start (DESIGN §7).
    """
    if value is None:
        return None
    start = str(value)
    current = current or {}
    old_start, end, time_zone = current.get("start") or "", current.get("end"), current.get("time_zone")
    if kind == "date" and "T" in old_start and "T" not in start:
        start = start[:10] + old_start[10:]  # the same time of day, written the same way
    elif "T" in start and time_zone:
        time_zone = None  # a UTC moment carries its offset; Notion refuses both
    request = {"start": start, "end": None}
    if end:
        if kind == "date" and not ("T" in start and "T" in end):
            keep = day_as_written(end, current.get("time_zone")) >= day_as_written(start, time_zone)
        else:  # two moments (a date pushed onto a date-time range keeps its time of day)
            new, old = _moment(start, time_zone), _moment(end, current.get("time_zone"))
            keep = type(new) is type(old) and old >= new
        if keep:
            if time_zone is None and current.get("time_zone") and "T" in end and "+" not in end[10:]:
                end = _moment(end, current.get("time_zone")).isoformat()  # naive in its zone
            request["end"] = end
    if time_zone:
        request["time_zone"] = time_zone
    return request


def to_property(  # type: ignore[return]  # every branch returns or fails
    ptype: str,
    value,
    *,
    field: str,
    prop: str,
    options: dict | None = None,
    kind: str | None = None,
    current: dict | None = None,
) -> dict:
    """The request value of a property, from a normalized value.

    ``options`` maps local choice values to option names; ``kind`` is the field's kind and
    ``current`` the property's value in Notion now, when known (dates keep their range).
    Raises MappingError naming the field and the property for values Notion would refuse,
    before any request is sent.
    """

    def fail(message):
        raise MappingError(f"{field} → {prop!r}: {message}", field=field, prop=prop)

    if ptype in TEXT_TYPES:
        items = rich_text(None if value is None else str(value))
        if len(items) > ARRAY_LIMIT:
            fail(f"text is over {ARRAY_LIMIT * TEXT_LIMIT} characters")
        return {ptype: items}
    if ptype == "number":
        if value is None:
            return {"number": None}
        number = normal_form("number", value)
        return {"number": int(number) if "." not in number else float(number)}
    if ptype in ("select", "status"):
        if value is None:
            return {ptype: None}
        name = (options or {}).get(value, value)
        return {ptype: {"name": _option_name(str(name), field, prop)}}
    if ptype == "multi_select":
        names = value or []
        if len(names) > ARRAY_LIMIT:
            fail(f"{len(names)} options, Notion takes at most {ARRAY_LIMIT}")
        return {"multi_select": [{"name": _option_name(str(name), field, prop)} for name in names]}
    if ptype == "date":
        try:
            return {"date": date_request(value, kind or "date", (current or {}).get("date"))}
        except ValueError as err:
            fail(f"cannot write date {value!r}: {err}")
    if ptype in ("email", "phone_number", "url"):
        limit = 2000 if ptype == "url" else 200
        if value is not None and utf16_len(str(value)) > limit:
            fail(f"over {limit} characters")
        return {ptype: value}
    if ptype == "checkbox":
        return {"checkbox": bool(value)}
    if ptype == "relation":
        ids = value if isinstance(value, list | tuple) else ([value] if value else [])
        if len(ids) > ARRAY_LIMIT:
            fail(f"{len(ids)} related pages, Notion takes at most {ARRAY_LIMIT}")
        return {"relation": [{"id": str(page_id)} for page_id in ids]}
    fail(f"unsupported property type {ptype!r}")


def from_property(
    prop_value: dict, kind: str, options: dict | None = None, decimal_places: int | None = None
):
    """The normalized value of a property value from a page object.

    ``options`` maps local choice values to option names; an option it lacks is
    returned as ``Unmapped``. Numbers are rounded to ``decimal_places`` (the local
    field's precision); a date is the day written in its own offset or time zone.
    """
    ptype = prop_value.get("type")
    raw = prop_value.get(ptype)
    value: Any
    if ptype in TEXT_TYPES:
        value = plain_text(raw or [])
    elif ptype in ("select", "status"):
        value = raw and raw.get("name")
        if value is not None and options:
            reverse = {name: local for local, name in options.items()}
            if value not in reverse:
                return Unmapped(value)
            value = reverse[value]
    elif ptype == "multi_select":
        value = [option["name"] for option in raw or []]
    elif ptype == "date":
        value = date_value(raw, kind)
    elif ptype == "relation":
        ids = [item["id"] for item in raw or []]
        return ids[0] if len(ids) == 1 else (ids or None)
    elif ptype in ("number", "email", "phone_number", "url", "checkbox") or ptype in (
        "created_time",
        "last_edited_time",
    ):
        value = raw
    elif ptype == "unique_id":
        value = raw and f"{raw.get('prefix') or ''}{'-' if raw.get('prefix') else ''}{raw.get('number')}"
    elif ptype == "formula":
        value = raw and raw.get(raw.get("type"))
        if isinstance(value, dict):  # a date formula
            value = date_value(value, kind)
    else:
        raise ValueError(f"a {ptype} property cannot be read as a {kind}")
    return normal_form(kind, value, decimal_places)


LISTED_TYPES = frozenset((*TEXT_TYPES, "people"))  # lists a page object cuts


def page_is_truncated(prop_value: dict) -> bool:
    """Whether a page object cut this property's list (read it from the property endpoint)."""
    ptype = prop_value.get("type")
    if ptype == "relation":
        return bool(prop_value.get("has_more"))
    items = prop_value.get(ptype)
    return ptype in LISTED_TYPES and isinstance(items, list) and len(items) >= PAGE_OBJECT_REFERENCE_LIMIT


def page_to_values(
    page: dict,
    mapping: dict,
    kinds: dict,
    options: dict,
    places: dict | None = None,
    by_id: dict[str, dict] | None = None,
) -> dict:
    """Normalized values of a page object's mapped properties.

    ``mapping``: {field: (property, type)} or {field: (property, type, property id)}
    (found by id then, so a renamed property is still read); ``kinds``: {field: kind};
    ``options``: {field: {local value: option name}}; ``places``: {field: decimal
    places}; ``by_id``: ``properties_by_id`` of the page, if already read. A property
    missing from the page, or of a type the field cannot hold
    (schema drift), is left out (unknown, not empty). Raises MappingError for a value
    of the wrong shape.
    """
    values = {}
    properties = page.get("properties") or {}
    by_id = properties_by_id(properties) if by_id is None else by_id
    for field, (prop, ptype, *prop_id) in mapping.items():
        prop_value = find_property(properties, prop, prop_id[0] if prop_id else None, by_id)
        if prop_value is None or prop_value.get("type") not in allowed_types(kinds[field], ptype):
            continue
        try:
            values[field] = from_property(
                prop_value, kinds[field], options.get(field), (places or {}).get(field)
            )
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise MappingError(
                f"{field} ← {prop!r}: cannot read {prop_value.get('type')} value: {err}",
                field=field,
                prop=prop,
            ) from err
    return values


def values_to_properties(
    values: dict,
    mapping: dict,
    options: dict,
    types: dict | None = None,
    *,
    kinds: dict | None = None,
    current: dict | None = None,
) -> dict:
    """The ``properties`` of a create/update request for normalized ``values``.

    ``mapping``: {field: (property, type)} or {field: (property, type, key)}, where the
    request names the property by ``key`` (its id: renames do not matter). ``types``
    overrides the mapped property types with the data source's real ones (a "select"
    mapping on a "status" property, say); ``current``: {property: value in Notion now}
    where known. Fields not mapped are skipped.
    """
    properties = {}
    for field, value in values.items():
        if field not in mapping:
            continue
        prop, ptype, *key = mapping[field]
        ptype = (types or {}).get(prop, ptype)
        properties[key[0] if key else prop] = to_property(
            ptype,
            value,
            field=field,
            prop=prop,
            options=options.get(field),
            kind=(kinds or {}).get(field),
            current=(current or {}).get(prop),
        )
    return properties
