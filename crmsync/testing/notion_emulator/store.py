"""The emulator's data: databases, data sources and their schemas, pages, what a
person does in Notion (``human_create``/``human_edit``), and page objects as Notion renders them."""

import datetime as dt
import uuid

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


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def parse_time(value: str) -> dt.datetime | dt.date:
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


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


def _new_property_id(existing) -> str:
    while True:
        candidate = uuid.uuid4().hex[:4]
        if candidate not in existing:
            return candidate


class StoreMixin:
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
            database_id = database_id or str(uuid.uuid4())
            now = self.clock.now()
            sources = []
            for index in range(1 + extra_data_sources):
                source_id = str(uuid.uuid4())
                schema = {}
                for name, spec in properties.items():
                    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
                    ptype = spec["type"]
                    entry = {
                        "id": "title" if ptype == "title" else _new_property_id(schema),
                        "name": name,
                        "type": ptype,
                    }
                    config = spec.get(ptype) or {}
                    if ptype in ("select", "multi_select", "status"):
                        config = {"options": [self._option(name) for name in spec.get("options", [])]}
                    entry[ptype] = config
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
            schema = dict(props)
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
        return {"id": uuid.uuid4().hex[:8], "name": name, "color": "default", "description": None}

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
            return raw and raw["start"]
        if ptype == "relation":
            return [item["id"] for item in raw]
        return raw

    def _simple_to_request(self, source, name, value):
        if name not in source["properties"]:
            _fail(f"`{name}` is not a property that exists.")
        ptype = source["properties"][name]["type"]
        if ptype in ("title", "rich_text"):
            text = value or ""
            pieces = [text[i : i + TEXT_LIMIT] for i in range(0, len(text), TEXT_LIMIT)]
            return {ptype: [{"type": "text", "text": {"content": piece}} for piece in pieces]}
        if ptype in ("select", "status"):
            return {ptype: None if value is None else {"name": value}}
        if ptype == "multi_select":
            return {ptype: [{"name": option} for option in value or []]}
        if ptype == "date":
            return {ptype: None if value is None else {"start": value}}
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
            "id": str(uuid.uuid4()),
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
        self.pages[page["id"]] = page
        return page

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
        properties = {}
        for name, value in page["properties"].items():
            ptype = value["type"]
            rendered = dict(value)
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
