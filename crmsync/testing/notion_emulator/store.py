"""The emulator's data: databases, data sources and their schemas, pages, what a
person does in Notion (``human_create``/``human_edit``), and page objects as Notion renders them."""

import contextlib
import datetime as dt
import sys
import uuid
import zoneinfo
from typing import TYPE_CHECKING, Any

API_VERSION = "2025-09-03"

MAX_PAGE_SIZE = 100

QUERY_RESULT_CAP = 10_000

PAGE_OBJECT_REFERENCE_LIMIT = 25

TEXT_LIMIT = 2000

ARRAY_LIMIT = 100

READ_ONLY_TYPES = {
    "created_time",
    "last_edited_time",
    "created_by",
    "last_edited_by",
    "unique_id",
    "formula",
    "rollup",
}

ERROR_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "restricted_resource",
    404: "object_not_found",
    409: "conflict_error",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "service_overload",
}

BOT_USER = {"object": "user", "id": "00000000-0000-4000-8000-00000000b07"}

HUMAN_USER = {"object": "user", "id": "00000000-0000-4000-8000-0000000000a1"}

ANNOTATIONS = {
    "bold": False,
    "italic": False,
    "strikethrough": False,
    "underline": False,
    "code": False,
    "color": "default",
}

CRM_SCHEMAS = {
    "deal": (
        "Deals",
        {
            "Name": "title",
            "Stage": "select",
            "Value": "number",
            "Close Date": "date",
            "Probability": "number",
            "Confidence": "number",
            "Qualification": "rich_text",
            "Notes": "rich_text",
            "Tags": "multi_select",
            "Contact Email": "email",
            "CRM Sync ID": "rich_text",
        },
    ),
    "contact": (
        "Contacts",
        {
            "Name": "title",
            "Email": "email",
            "Phone": "phone_number",
            "Company": "rich_text",
            "Title": "rich_text",
            "CRM Sync ID": "rich_text",
        },
    ),
    "activity": (
        "Activities",
        {
            "Subject": "title",
            "Kind": "select",
            "Body": "rich_text",
            "Occurred At": "date",
            "Deal": "relation",
            "CRM Sync ID": "rich_text",
        },
    ),
}

STAGE_OPTIONS = [
    "Prospecting",
    "Qualification",
    "Discovery",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
]


class NotionError(Exception):
    def __init__(self, status, message, code=None, headers=None, additional_data=None):
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or ERROR_CODES.get(status, "internal_server_error")
        self.headers = headers or {}
        self.additional_data = additional_data


def _fail(message, status=400, code=None):
    raise NotionError(status, message, code)


# The mixins complete one another in NotionEmulator: to a type checker each is Any.
Mixin: Any = Any if TYPE_CHECKING else object


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def parse_time(value: str) -> dt.datetime | dt.date:
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def new_uuid() -> uuid.UUID:
    """A fresh id. Every id the emulator makes comes from here, through the package's
    ``uuid`` attribute, so that a test can seed them all by replacing it
    (``monkeypatch.setattr(notion_emulator, "uuid", namespace_with_a_uuid4)``)."""
    return sys.modules[__package__].uuid.uuid4()


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_utf16(text: str, limit: int = 2000) -> list[str]:
    """Text in pieces of at most ``limit`` UTF-16 code units (what Notion counts), never
    inside a character: as the Notion app splits long text."""
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


def date_start(raw: dict) -> dt.datetime | dt.date:
    """The start of a stored date value, aware (a naive time is in its ``time_zone``)."""
    moment = parse_time(raw["start"])
    if isinstance(moment, dt.datetime) and raw.get("time_zone") and "+" not in raw["start"][10:]:
        naive = dt.datetime.fromisoformat(raw["start"].replace("Z", ""))
        moment = naive.replace(tzinfo=zoneinfo.ZoneInfo(raw["time_zone"]))
    return moment


def render_date(raw: dict) -> dict:
    """A date as the API answers it: a ``time_zone`` set in a request comes back as the
    UTC offset of each time, with ``time_zone: null`` (developers.notion.com/changelog/
    time-zone-support)."""
    zone = zoneinfo.ZoneInfo(raw["time_zone"])

    def offset(text):
        if not text:
            return text
        naive = dt.datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=None)
        moment = naive.replace(tzinfo=zone)
        return moment.isoformat(timespec="milliseconds")

    return {"start": offset(raw["start"]), "end": offset(raw.get("end")), "time_zone": None}


def normal_id(value: str) -> str | None:
    """A Notion id in its dashed form (Notion takes ids with or without dashes); None if
    the value is no id at all."""
    compact = str(value).strip().lower().replace("-", "")
    if len(compact) != 32 or any(c not in "0123456789abcdef" for c in compact):
        return None
    return f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}"


class Clock:
    """Real time by default; ``set`` freezes it, ``advance`` moves it either way."""

    def __init__(self):
        self._frozen: dt.datetime | None = None
        self._offset = dt.timedelta()

    def now(self) -> dt.datetime:
        if self._frozen is not None:
            return self._frozen
        return dt.datetime.now(dt.UTC) + self._offset

    def set(self, moment: dt.datetime) -> None:
        self._frozen = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def advance(self, seconds: float) -> None:
        if self._frozen is not None:
            self._frozen += dt.timedelta(seconds=seconds)
        else:
            self._offset += dt.timedelta(seconds=seconds)

    def unfreeze(self) -> None:
        self._frozen = None


def _new_property_id(existing: set) -> str:
    """A short property id (as Notion's), unique among the data source's ``existing`` ids."""
    while True:
        candidate = new_uuid().hex[:4]
        if candidate not in existing:
            return candidate


class StoreMixin(Mixin):
    def create_database(
        self,
        title: str,
        properties: dict[str, str | dict],
        *,
        database_id: str | None = None,
        extra_data_sources: int = 0,
    ) -> tuple[str, str]:
        """A database with one data source (plus ``extra_data_sources`` empty ones).

        ``properties``: {name: type} or {name: full schema entry}. Returns
        (database id, data source id).
        """
        with self.lock:
            database_id = (database_id and normal_id(database_id)) or str(new_uuid())
            now = self.clock.now()
            sources = []
            for index in range(1 + extra_data_sources):
                source_id = str(new_uuid())
                schema: dict[str, dict] = {}
                for name, spec in properties.items():
                    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
                    ptype = spec["type"]
                    entry = {
                        "id": "title"
                        if ptype == "title"
                        else _new_property_id({entry["id"] for entry in schema.values()}),
                        "name": name,
                        "type": ptype,
                    }
                    entry[ptype] = self._type_config(ptype, spec.get("options", ()), spec.get(ptype))
                    schema[name] = entry
                self.data_sources[source_id] = {
                    "id": source_id,
                    "name": title if index == 0 else f"{title} {index + 1}",
                    "database_id": database_id,
                    "properties": schema,
                    "created_time": now,
                    "last_edited_time": now,
                }
                sources.append(source_id)
            self.databases[database_id] = {
                "id": database_id,
                "title": title,
                "data_sources": sources,
                "created_time": now,
            }
            return database_id, sources[0]

    def add_crm_databases(self, entities=("deal", "contact", "activity"), ids: dict | None = None) -> dict:
        """The databases of DESIGN §4. Returns {entity: database id, entity + "_source": data source id}."""
        result = {}
        for entity in entities:
            title, props = CRM_SCHEMAS[entity]
            schema: dict[str, Any] = dict(props)
            if entity == "deal":
                schema["Stage"] = {"type": "select", "options": STAGE_OPTIONS}
            if entity == "activity":
                schema["Kind"] = {"type": "select", "options": ["Call", "Email", "Meeting", "Note"]}
            database_id, source_id = self.create_database(title, schema, database_id=(ids or {}).get(entity))
            result[entity], result[f"{entity}_source"] = database_id, source_id
        if "activity" in entities and "deal" in entities:
            relation = self.data_sources[result["activity_source"]]["properties"]["Deal"]
            relation["relation"] = {
                "database_id": result["deal"],
                "data_source_id": result["deal_source"],
                "type": "single_property",
                "single_property": {},
            }
        return result

    def _option(self, name):
        return {"id": new_uuid().hex[:8], "name": name, "color": "default", "description": None}

    def human_create(self, data_source_id: str, properties: dict) -> str:
        """Create a page as a person would; ``properties`` in simple form ({name: value})."""
        with self.lock:
            source = self.data_sources[data_source_id]
            converted = {
                name: self._simple_to_request(source, name, value) for name, value in properties.items()
            }
            page = self._create_page(source, converted, HUMAN_USER)
            return page["id"]

    def human_edit(
        self, page_id: str, properties: dict | None = None, *, in_trash: bool | None = None
    ) -> None:
        """Edit (or trash/restore) a page as a person would; bumps ``last_edited_time``."""
        with self.lock:
            page = self.pages[page_id]
            source = self.data_sources[page["data_source_id"]]
            converted = {
                name: self._simple_to_request(source, name, value)
                for name, value in (properties or {}).items()
            }
            self._update_page(
                page,
                {"properties": converted, **({} if in_trash is None else {"in_trash": in_trash})},
                HUMAN_USER,
            )

    def corrupt(self, page_id: str, prop: str, value) -> None:
        """Store a raw property value without validation (a malformed answer for tests):
        ``corrupt(page, "Value", {"type": "number", "number": "twelve"})``."""
        with self.lock:
            self.pages[page_id]["properties"][prop] = value
            self.pages[page_id]["last_edited_time"] = floor_minute(self.clock.now())

    def hide(self, page_id: str, hidden: bool = True) -> None:
        """Make a page invisible to the integration (lost permission), without trashing it."""
        with self.lock:
            self.pages[page_id]["hidden"] = hidden

    def page_values(self, page_id: str) -> dict:
        """A page's properties in simple form, read without counting a request."""
        with self.lock:
            page = self.pages[page_id]
            return {name: self._simple(value) for name, value in page["properties"].items()}

    def find_page(self, database_title: str, title: str) -> str:
        """The id of the page titled ``title`` in the database titled ``database_title``."""
        with self.lock:
            sources = {
                sid
                for db in self.databases.values()
                if db["title"] == database_title
                for sid in db["data_sources"]
            }
            for page in self.pages.values():
                if page["data_source_id"] in sources:
                    values = self.page_values(page["id"])
                    titles = [values[n] for n, v in page["properties"].items() if v["type"] == "title"]
                    if title in titles:
                        return page["id"]
        raise NotionError(404, f"No page titled {title!r} in {database_title!r}", "object_not_found")

    def pages_in(self, data_source_id: str, *, include_trashed: bool = False) -> list[dict]:
        """Snapshots of a data source's pages: {"id", "in_trash", "last_edited_time", "values"}."""
        with self.lock:
            return [
                {
                    "id": page["id"],
                    "in_trash": page["in_trash"],
                    "last_edited_time": page["last_edited_time"],
                    "values": self.page_values(page["id"]),
                }
                for page in self.pages.values()
                if page["data_source_id"] == data_source_id and (include_trashed or not page["in_trash"])
            ]

    def _simple(self, value):
        ptype = value["type"]
        raw = value[ptype]
        if ptype in ("title", "rich_text"):
            return "".join(item["plain_text"] for item in raw)
        if ptype in ("select", "status"):
            return raw and raw["name"]
        if ptype == "multi_select":
            return [option["name"] for option in raw]
        if ptype == "date":
            if raw and (raw.get("end") or raw.get("time_zone")):
                return dict(raw)
            return raw and raw["start"]
        if ptype == "unique_id":
            return raw and raw["number"]
        if ptype == "relation":
            return [item["id"] for item in raw]
        return raw

    def _simple_to_request(self, source, name, value):
        """A request value from a simple one. Text may also be a list of rich text items
        (recorded ones, with annotations, links and mentions), and a date a dict with
        ``start``, ``end`` and ``time_zone``."""
        if name not in source["properties"]:
            _fail(f"`{name}` is not a property that exists.")
        ptype = source["properties"][name]["type"]
        if ptype in ("title", "rich_text"):
            if isinstance(value, list):
                return {ptype: value}
            pieces = split_utf16(value or "", TEXT_LIMIT)
            return {ptype: [{"type": "text", "text": {"content": piece}} for piece in pieces]}
        if ptype in ("select", "status"):
            return {ptype: None if value is None else {"name": value}}
        if ptype == "multi_select":
            return {ptype: [{"name": option} for option in value or []]}
        if ptype == "date":
            if value is None or isinstance(value, dict):
                return {ptype: value}
            return {ptype: {"start": value}}
        if ptype == "relation":
            return {ptype: [{"id": page_id} for page_id in value or []]}
        return {ptype: value}

    def _source(self, source_id):
        source = self.data_sources.get(source_id)
        if source is None:
            self._not_found("data source", source_id)
        return source

    def _not_found(self, kind, object_id):
        raise NotionError(
            404,
            f"Could not find {kind} with ID: {object_id}. Make sure the relevant pages and databases are shared with your integration.",
            "object_not_found",
        )

    def _page(self, page_id):
        page = self.pages.get(page_id)
        if page is None or page["hidden"]:
            self._not_found("page", page_id)
        return page

    def _create_page(self, source, properties, user):
        now = self.clock.now()
        page = {
            "id": str(new_uuid()),
            "data_source_id": source["id"],
            "created_time": floor_minute(now),
            "last_edited_time": floor_minute(now),
            "created_by": user,
            "last_edited_by": user,
            "in_trash": False,
            "hidden": False,
            "properties": {name: self._empty(entry) for name, entry in source["properties"].items()},
        }
        self._apply_properties(source, page, properties)
        for name, entry in source["properties"].items():
            if entry["type"] == "unique_id":
                page["properties"][name]["unique_id"] = self._next_unique_id(source, entry)
        self.pages[page["id"]] = page
        return page

    def _next_unique_id(self, source, entry) -> dict:
        source["next_unique_id"] = source.get("next_unique_id", 0) + 1
        return {"prefix": (entry.get("unique_id") or {}).get("prefix"), "number": source["next_unique_id"]}

    # --- Schema changes, as a person makes them in Notion -----------------------------------

    def add_property(self, data_source_id: str, name: str, spec: str | dict) -> str:
        """Add a property (an ID property numbers the existing pages in creation order);
        returns its id."""
        with self.lock:
            source = self.data_sources[data_source_id]
            spec = {"type": spec} if isinstance(spec, str) else dict(spec)
            ptype = spec["type"]
            entry: dict[str, Any] = {
                "id": _new_property_id({e["id"] for e in source["properties"].values()}),
                "name": name,
            }
            entry["type"] = ptype
            entry[ptype] = self._type_config(ptype, spec.get("options", ()), spec.get(ptype))
            source["properties"][name] = entry
            pages = sorted(
                (p for p in self.pages.values() if p["data_source_id"] == data_source_id),
                key=lambda p: (p["created_time"], p["id"]),
            )
            for page in pages:
                page["properties"][name] = self._empty(entry)
                if ptype == "unique_id":
                    page["properties"][name]["unique_id"] = self._next_unique_id(source, entry)
            self._schema_changed(source)
            return entry["id"]

    def rename_property(self, data_source_id: str, old: str, new: str) -> None:
        """Rename a property; its id stays (pages keep their values)."""
        with self.lock:
            source = self.data_sources[data_source_id]
            entry = source["properties"].pop(old)
            entry["name"] = new
            source["properties"][new] = entry
            for page in self.pages.values():
                if page["data_source_id"] == data_source_id and old in page["properties"]:
                    page["properties"][new] = page["properties"].pop(old)
            self._schema_changed(source)

    def delete_property(self, data_source_id: str, name: str) -> None:
        with self.lock:
            source = self.data_sources[data_source_id]
            del source["properties"][name]
            for page in self.pages.values():
                if page["data_source_id"] == data_source_id:
                    page["properties"].pop(name, None)
            self._schema_changed(source)

    def retype_property(self, data_source_id: str, name: str, ptype: str, options=()) -> None:
        """Change a property's type (its id stays); values convert as the app converts them:
        through their text (a select becomes a one-option multi-select, a multi-select's
        first option a select); what cannot convert is emptied."""
        with self.lock:
            source = self.data_sources[data_source_id]
            entry = source["properties"][name]
            entry.pop(entry["type"], None)
            entry["type"] = ptype
            entry[ptype] = self._type_config(ptype, options)
            for page in self.pages.values():
                if page["data_source_id"] != data_source_id or name not in page["properties"]:
                    continue
                simple = self._simple(page["properties"][name])
                page["properties"][name] = self._empty(entry)
                converted = self._convert_simple(simple, ptype)
                with contextlib.suppress(NotionError):
                    request = self._simple_to_request(source, name, converted)
                    value = self._validate(entry, name, request)
                    page["properties"][name][ptype] = value
            self._schema_changed(source)

    def _convert_simple(self, simple, ptype):
        if isinstance(simple, list) and ptype in ("select", "status"):
            return simple[0] if simple else None
        if isinstance(simple, list) and ptype in ("title", "rich_text"):
            return ", ".join(str(v) for v in simple)
        if simple is not None and not isinstance(simple, list) and ptype == "multi_select":
            return [str(simple)]
        if isinstance(simple, int | float) and ptype in ("title", "rich_text", "select"):
            return str(simple)
        return simple

    def _type_config(self, ptype, options=(), config=None) -> dict:
        """A schema entry's type-specific part (options for the choice types)."""
        if ptype in ("select", "multi_select", "status"):
            return {"options": [self._option(name) for name in options]}
        return config or {}

    def _schema_changed(self, source) -> None:
        source["last_edited_time"] = self.clock.now()

    def add_wiki_row(self, data_source_id: str, title: str) -> str:
        """A data source listed among a wiki data source's rows (queries can return them)."""
        with self.lock:
            now = floor_minute(self.clock.now())
            row_id = str(new_uuid())
            self.wiki_rows[row_id] = {
                "id": row_id,
                "data_source_id": data_source_id,
                "title": title,
                "created_time": now,
                "last_edited_time": now,
                "in_trash": False,
                "hidden": False,
                "properties": {},
                "kind": "data_source",
            }
            return row_id

    def _update_page(self, page, body, user):
        source = self.data_sources[page["data_source_id"]]
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            _fail("body failed validation: body.properties should be an object.")
        trash = body.get("in_trash", body.get("archived"))
        if trash is not None and not isinstance(trash, bool):
            _fail("body failed validation: body.in_trash should be a boolean.")
        self._apply_properties(source, page, properties)
        if trash is not None:
            page["in_trash"] = trash
        page["last_edited_time"] = floor_minute(self.clock.now())
        page["last_edited_by"] = user

    def _empty(self, entry):
        ptype = entry["type"]
        empty = {
            "title": [],
            "rich_text": [],
            "multi_select": [],
            "relation": [],
            "people": [],
            "checkbox": False,
        }
        value = {"id": entry["id"], "type": ptype, ptype: empty.get(ptype)}
        if ptype == "relation":
            value["has_more"] = False
        return value

    def _apply_properties(self, source, page, properties):
        """Validate every property first, then write them all (a failed request changes nothing)."""
        by_id = {entry["id"]: name for name, entry in source["properties"].items()}
        staged = {}
        for key, value in properties.items():
            name = key if key in source["properties"] else by_id.get(key)
            if name is None:
                _fail(f"`{key}` is not a property that exists.")
            entry = source["properties"][name]
            staged[name] = self._validate(entry, name, value)
        for name, value in staged.items():
            entry = source["properties"][name]
            page["properties"][name] = {"id": entry["id"], "type": entry["type"], entry["type"]: value}
            if entry["type"] == "relation":
                page["properties"][name]["has_more"] = False

    def _page_object(self, page):
        if page.get("kind") == "data_source":
            return self._wiki_row_object(page)
        properties = {}
        for name, value in page["properties"].items():
            ptype = value["type"]
            rendered = dict(value)
            if ptype == "date" and value["date"] and value["date"].get("time_zone"):
                rendered["date"] = render_date(value["date"])
            if (
                ptype in ("title", "rich_text", "relation", "people")
                and isinstance(value.get(ptype), list)
                and len(value[ptype]) > PAGE_OBJECT_REFERENCE_LIMIT
            ):
                rendered[ptype] = value[ptype][:PAGE_OBJECT_REFERENCE_LIMIT]
                if ptype == "relation":
                    rendered["has_more"] = True
            properties[name] = rendered
        source = self.data_sources[page["data_source_id"]]
        return {
            "object": "page",
            "id": page["id"],
            "created_time": iso(page["created_time"]),
            "last_edited_time": iso(page["last_edited_time"]),
            "created_by": page["created_by"],
            "last_edited_by": page["last_edited_by"],
            "cover": None,
            "icon": None,
            "parent": {
                "type": "data_source_id",
                "data_source_id": source["id"],
                "database_id": source["database_id"],
            },
            "in_trash": page["in_trash"],
            "is_archived": page["in_trash"],
            "is_locked": False,
            "properties": properties,
            "url": f"https://www.notion.so/{page['id'].replace('-', '')}",
            "public_url": None,
            "archived": page["in_trash"],
        }

    def _wiki_row_object(self, row):
        return {
            "object": "data_source",
            "id": row["id"],
            "created_time": iso(row["created_time"]),
            "last_edited_time": iso(row["last_edited_time"]),
            "title": self._rich_text_items(row["title"]),
            "description": [],
            "properties": {},
            "parent": {"type": "database_id", "database_id": str(new_uuid())},
            "in_trash": False,
            "archived": False,
            "url": f"https://www.notion.so/{row['id'].replace('-', '')}",
        }
