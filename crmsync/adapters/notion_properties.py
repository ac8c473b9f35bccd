"""Pure translation between normalized values and Notion property values.

No SDK import and no I/O here: these functions are tested on their own.
Limits follow https://developers.notion.com/reference/request-limits: 2,000
characters (UTF-16 code units) per rich-text item, 100 items per array, 200
characters per email or phone number, 2,000 per URL, no commas in option names.
"""

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
    pieces, current, size = [], [], 0
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


def to_property(ptype: str, value, *, field: str, prop: str, options: dict | None = None) -> dict:
    """The request value of a property, from a normalized value.

    ``options`` maps local choice values to option names. Raises MappingError naming the
    field and the property for values Notion would refuse, before any request is sent.
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
        return {"date": None if value is None else {"start": str(value), "end": None}}
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


def from_property(prop_value: dict, kind: str, options: dict | None = None):
    """The normalized value of a property value from a page object.

    ``options`` maps local choice values to option names; an option it lacks is
    returned as ``Unmapped``.
    """
    ptype = prop_value.get("type")
    raw = prop_value.get(ptype)
    if ptype in TEXT_TYPES:
        value = plain_text(raw)
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
        value = raw and raw.get("start")
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
    else:
        value = raw
    return normal_form(kind, value)


def page_is_truncated(prop_value: dict) -> bool:
    """Whether a page object cut this property's list (read it from the property endpoint)."""
    ptype = prop_value.get("type")
    if ptype == "relation":
        return bool(prop_value.get("has_more"))
    items = prop_value.get(ptype)
    return (
        ptype in (*TEXT_TYPES, "people")
        and isinstance(items, list)
        and len(items) >= PAGE_OBJECT_REFERENCE_LIMIT
    )


def page_to_values(page: dict, mapping: dict, kinds: dict, options: dict) -> dict:
    """Normalized values of a page object's mapped properties.

    ``mapping``: {field: (property, type)}; ``kinds``: {field: kind}; ``options``:
    {field: {local value: option name}}. A property missing from the page is left
    out (unknown, not empty). Raises MappingError for a value of the wrong shape.
    """
    values = {}
    properties = page.get("properties") or {}
    for field, (prop, _ptype) in mapping.items():
        prop_value = properties.get(prop)
        if not isinstance(prop_value, dict) or "type" not in prop_value:
            continue
        try:
            values[field] = from_property(prop_value, kinds[field], options.get(field))
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise MappingError(
                f"{field} ← {prop!r}: cannot read {prop_value.get('type')} value: {err}",
                field=field,
                prop=prop,
            ) from err
    return values


def values_to_properties(values: dict, mapping: dict, options: dict, types: dict | None = None) -> dict:
    """The ``properties`` of a create/update request for normalized ``values``.

    ``types`` overrides the mapped property types with the data source's real ones
    (a "select" mapping on a "status" property, say). Fields not mapped are skipped.
    """
    properties = {}
    for field, value in values.items():
        if field not in mapping:
            continue
        prop, ptype = mapping[field]
        ptype = (types or {}).get(prop, ptype)
        properties[prop] = to_property(ptype, value, field=field, prop=prop, options=options.get(field))
    return properties
