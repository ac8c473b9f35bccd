"""An emulator of Notion's API (version 2025-09-03), served over real HTTP.

It speaks what crmsync uses of the API: databases and their data sources, data
source queries (property and timestamp filters, compound filters, sorts, cursors,
``page_size`` <= 100, the 10,000-row cap per query), page create / retrieve / update
(``in_trash`` included), page-property retrieval with pagination, and ``users/me``.
It follows Notion's documented shapes and quirks: bearer-token auth (401
``unauthorized``), a required ``Notion-Version`` header, ``created_time`` and
``last_edited_time`` floored to the minute, 400 ``validation_error`` for unknown
properties and bad values, 404 ``object_not_found``, 429 ``rate_limited`` with
``Retry-After``, and page objects that cut reference lists at 25 items.

Test knobs: a controllable clock, a rate limit, forced 429s, injected 5xx and
timeouts (before or after the write is applied), "human" edits as a person would
make them in Notion, and request counters by endpoint.

    with NotionEmulator() as notion:            # serves on 127.0.0.1, a free port
        ids = notion.add_crm_databases()
        ... NotionAdapter(base_url=notion.url, token=notion.token, database_id=ids["deal"])

Standalone: ``python -m crmsync.testing.notion_emulator --port 8765 --demo``.
"""

import argparse
import contextlib
import dataclasses
import datetime as dt
import email.utils
import json
import math
import operator
import re
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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
# The CRM databases of DESIGN §4: {entity: (title, {property: type})}.
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


@dataclasses.dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``status``.

    ``after``: apply the request first (a "ghost write"), then answer the error.
    ``delay``: wait this long before answering (longer than the client's timeout
    makes a timeout); with ``status=None`` the normal answer follows the delay.
    """

    count: int = 1
    status: int | None = 500
    method: str | None = None
    endpoint: str | None = None
    after: bool = False
    delay: float = 0.0
    retry_after: int | None = None
    skip: int = 0  # let this many matching requests through first

    def matches(self, method, endpoint):
        return (self.method in (None, method)) and (self.endpoint in (None, endpoint))


@dataclasses.dataclass
class RequestLog:
    at: float
    method: str
    endpoint: str
    path: str
    status: int
    returned: int = 0  # results in a list answer


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None):
        self.rate, self.capacity = rate, burst or rate
        self.tokens, self.updated = self.capacity, time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def _new_property_id(existing) -> str:
    while True:
        candidate = uuid.uuid4().hex[:4]
        if candidate not in existing:
            return candidate


class NotionEmulator:
    def __init__(self, token: str = "secret_emulator_token", *, query_result_cap: int = QUERY_RESULT_CAP):
        self.token = token
        self.tokens = {token}
        self.clock = Clock()
        self.query_result_cap = query_result_cap
        self.databases: dict[str, dict] = {}
        self.data_sources: dict[str, dict] = {}
        self.pages: dict[str, dict] = {}
        self.requests: list[RequestLog] = []
        self.faults: list[Fault] = []
        self.bucket: TokenBucket | None = None
        self.lock = threading.RLock()
        self._cursors: dict[str, tuple[str, set]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- Serving -------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "NotionEmulator":
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="notion-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    # --- Setting up ------------------------------------------------------------------

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

    # --- A person working in Notion ------------------------------------------------------

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

    # --- Knobs ------------------------------------------------------------------------------

    def set_rate_limit(self, requests_per_second: float | None, burst: float | None = None) -> None:
        """Answer 429 ``rate_limited`` with ``Retry-After`` past this rate (None: no limit)."""
        with self.lock:
            self.bucket = TokenBucket(requests_per_second, burst) if requests_per_second else None

    def fail_next(self, count: int = 1, status: int | None = 500, **match) -> Fault:
        """Inject a fault into the next ``count`` matching requests (see ``Fault``)."""
        fault = Fault(count=count, status=status, **match)
        with self.lock:
            self.faults.append(fault)
        return fault

    def throttle_next(self, count: int = 1, retry_after: int = 1, **match) -> Fault:
        return self.fail_next(count, 429, retry_after=retry_after, **match)

    def count(self, endpoint: str | None = None, method: str | None = None, status: int | None = None) -> int:
        with self.lock:
            return sum(
                1
                for log in self.requests
                if endpoint in (None, log.endpoint)
                and method in (None, log.method)
                and status in (None, log.status)
            )

    def counts(self) -> Counter:
        with self.lock:
            return Counter(log.endpoint for log in self.requests)

    def writes(self) -> int:
        return self.count("pages.create") + self.count("pages.update")

    def reset_counters(self) -> None:
        with self.lock:
            self.requests.clear()

    # --- Handling one request ---------------------------------------------------------------

    ROUTES = [
        ("GET", re.compile(r"^/v1/databases/([^/]+)$"), "databases.retrieve"),
        ("GET", re.compile(r"^/v1/data_sources/([^/]+)$"), "data_sources.retrieve"),
        ("POST", re.compile(r"^/v1/data_sources/([^/]+)/query$"), "data_sources.query"),
        ("POST", re.compile(r"^/v1/databases/([^/]+)/query$"), "databases.query"),
        ("POST", re.compile(r"^/v1/pages$"), "pages.create"),
        ("GET", re.compile(r"^/v1/pages/([^/]+)$"), "pages.retrieve"),
        ("PATCH", re.compile(r"^/v1/pages/([^/]+)$"), "pages.update"),
        ("GET", re.compile(r"^/v1/pages/([^/]+)/properties/([^/]+)$"), "pages.properties.retrieve"),
        ("GET", re.compile(r"^/v1/users/me$"), "users.me"),
    ]

    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, dict, dict]:
        """Answer one API request: (status, headers, JSON body)."""
        endpoint, args = "unknown", ()
        for route_method, pattern, name in self.ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                endpoint, args = name, match.groups()
                break
        status, extra_headers, payload, delay = 200, {}, {}, 0.0
        try:
            with self.lock:
                fault = next((f for f in self.faults if f.count > 0 and f.matches(method, endpoint)), None)
                if fault and fault.skip:
                    fault.skip -= 1
                    fault = None
                elif fault:
                    fault.count -= 1
                    delay = fault.delay
                self._check_access(headers, endpoint)
                if fault and fault.status and not fault.after:
                    self._raise_fault(fault)
                if self.bucket and not fault:
                    wait = self.bucket.take()
                    if wait:
                        retry_after = max(1, math.ceil(wait))
                        raise NotionError(
                            429,
                            "You have been rate limited. Please try again in a few minutes.",
                            headers={"Retry-After": str(retry_after)},
                        )
                if endpoint == "unknown":
                    _fail("Invalid request URL.", 400, "invalid_request_url")
                data = self._parse_body(body) if method in ("POST", "PATCH") else {}
                payload = getattr(self, "_" + endpoint.replace(".", "_"))(*args, query=query, body=data)
                if fault and fault.status and fault.after:
                    self._raise_fault(fault)
        except NotionError as err:
            status, extra_headers = err.status, err.headers
            payload = {"object": "error", "status": err.status, "code": err.code, "message": err.message}
            if err.additional_data:
                payload["additional_data"] = err.additional_data
        payload["request_id"] = str(uuid.uuid4())
        with self.lock:
            returned = len(payload["results"]) if isinstance(payload.get("results"), list) else 0
            self.requests.append(RequestLog(time.monotonic(), method, endpoint, path, status, returned))
        if delay:
            time.sleep(delay)
        return status, extra_headers, payload

    def _raise_fault(self, fault):
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        messages = {429: "You have been rate limited.", 503: "Notion is unavailable, please try again later."}
        raise NotionError(fault.status, messages.get(fault.status, "Unexpected error."), headers=headers)

    def _check_access(self, headers, endpoint):
        if endpoint.startswith("control"):
            return
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise NotionError(401, "API token is invalid.", "unauthorized")
        version = headers.get("Notion-Version")
        if not version:
            raise NotionError(
                400,
                "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
                "missing_version",
            )
        if endpoint.startswith("data_sources") and version < API_VERSION:
            raise NotionError(400, "Invalid request URL.", "invalid_request_url")

    def _parse_body(self, body: bytes) -> dict:
        try:
            data = json.loads(body or b"{}")
        except ValueError as err:
            raise NotionError(400, "Error parsing JSON body.", "invalid_json") from err
        if not isinstance(data, dict):
            _fail("body failed validation: body should be an object.")
        return data

    # --- Endpoints --------------------------------------------------------------------------

    def _users_me(self, query, body):
        return {**BOT_USER, "type": "bot", "name": "crmsync", "bot": {}}

    def _databases_retrieve(self, database_id, query, body):
        database = self.databases.get(database_id)
        if database is None:
            self._not_found("database", database_id)
        return {
            "object": "database",
            "id": database_id,
            "title": self._rich_text_items(database["title"]),
            "description": [],
            "parent": {"type": "workspace", "workspace": True},
            "is_inline": False,
            "in_trash": False,
            "is_locked": False,
            "created_time": database["created_time"].isoformat(),
            "last_edited_time": database["created_time"].isoformat(),
            "data_sources": [
                {"id": sid, "name": self.data_sources[sid]["name"]} for sid in database["data_sources"]
            ],
            "icon": None,
            "cover": None,
            "url": f"https://www.notion.so/{database_id.replace('-', '')}",
            "public_url": None,
            "archived": False,
        }

    def _databases_query(self, database_id, query, body):
        raise NotionError(400, "Invalid request URL.", "invalid_request_url")

    def _data_sources_retrieve(self, source_id, query, body):
        source = self._source(source_id)
        return {
            "object": "data_source",
            "id": source_id,
            "created_time": iso(floor_minute(source["created_time"])),
            "last_edited_time": iso(floor_minute(source["last_edited_time"])),
            "title": self._rich_text_items(source["name"]),
            "description": [],
            "properties": {
                name: {**entry, "description": None} for name, entry in source["properties"].items()
            },
            "parent": {"type": "database_id", "database_id": source["database_id"]},
            "is_inline": False,
            "in_trash": False,
            "archived": False,
            "url": f"https://www.notion.so/{source_id.replace('-', '')}",
            "public_url": None,
        }

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

    def _data_sources_query(self, source_id, query, body):
        source = self._source(source_id)
        page_size = body.get("page_size", MAX_PAGE_SIZE)
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            _fail(
                f"body failed validation: body.page_size should be ≤ `{MAX_PAGE_SIZE}`, instead was `{page_size}`."
            )
        in_trash = bool(body.get("in_trash", body.get("archived", False)))
        flt = body.get("filter")
        if flt is not None:
            self._check_filter_depth(flt, 0)
        pages = [
            page
            for page in self.pages.values()
            if page["data_source_id"] == source_id and not page["hidden"] and page["in_trash"] == in_trash
        ]
        if flt is not None:
            matches = self._predicate(source, flt)
            pages = [page for page in pages if matches(page)]
        pages = self._sort(source, pages, body.get("sorts"))
        # Cursors remember what they returned: a page edited between two calls moves in
        # the sort order but is neither skipped nor repeated.
        returned: set = set()
        cursor = body.get("start_cursor")
        if cursor:
            if cursor not in self._cursors or self._cursors[cursor][0] != source_id:
                _fail("body failed validation: body.start_cursor should be a valid cursor.")
            returned = self._cursors[cursor][1]
        remaining = [page for page in pages if page["id"] not in returned]
        room = self.query_result_cap - len(returned)
        results = remaining[: min(page_size, room)]
        capped = len(remaining) > len(results) and len(results) == room
        has_more = len(remaining) > len(results) and not capped
        next_cursor = None
        if has_more:
            next_cursor = str(uuid.uuid4())
            self._cursors[next_cursor] = (source_id, returned | {page["id"] for page in results})
        response = {
            "object": "list",
            "results": [self._page_object(page) for page in results],
            "next_cursor": next_cursor,
            "has_more": has_more,
            "type": "page_or_data_source",
            "page_or_data_source": {},
        }
        if capped:
            response["request_status"] = {
                "type": "incomplete",
                "incomplete_reason": "query_result_limit_reached",
            }
        return response

    def _pages_create(self, query, body):
        parent = body.get("parent") or {}
        source_id = parent.get("data_source_id")
        if source_id is None and parent.get("database_id"):
            database = self.databases.get(parent["database_id"])
            if database is None:
                self._not_found("database", parent["database_id"])
            if len(database["data_sources"]) > 1:
                _fail("Databases with multiple data sources are not supported in this API version.")
            source_id = database["data_sources"][0]
        if source_id is None:
            _fail(
                "body failed validation: body.parent.data_source_id should be defined, instead was `undefined`."
            )
        source = self._source(source_id)
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            _fail("body failed validation: body.properties should be an object.")
        page = self._create_page(source, properties, BOT_USER)
        return self._page_object(page)

    def _pages_retrieve(self, page_id, query, body):
        return self._page_object(self._page(page_id))

    def _pages_update(self, page_id, query, body):
        page = self._page(page_id)
        properties = body.get("properties") or {}
        if page["in_trash"] and properties and body.get("in_trash", body.get("archived")) is not False:
            _fail("Can't edit block that is archived. You must unarchive the block before editing.")
        self._update_page(page, body, BOT_USER)
        return self._page_object(page)

    def _pages_properties_retrieve(self, page_id, property_id, query, body):
        page = self._page(page_id)
        source = self.data_sources[page["data_source_id"]]
        entry = next(
            (e for e in source["properties"].values() if e["id"] == property_id or e["name"] == property_id),
            None,
        )
        if entry is None:
            self._not_found("property", property_id)
        value = page["properties"][entry["name"]]
        ptype = entry["type"]
        if ptype not in ("title", "rich_text", "relation", "people"):
            return {"object": "property_item", "id": entry["id"], "type": ptype, ptype: value[ptype]}
        items = value[ptype]
        page_size = int((query.get("page_size") or [MAX_PAGE_SIZE])[0])
        offset = int((query.get("start_cursor") or ["0"])[0] or 0)
        chunk = items[offset : offset + min(page_size, MAX_PAGE_SIZE)]
        more = offset + len(chunk) < len(items)
        return {
            "object": "list",
            "results": [
                {"object": "property_item", "id": entry["id"], "type": ptype, ptype: item} for item in chunk
            ],
            "next_cursor": str(offset + len(chunk)) if more else None,
            "has_more": more,
            "type": "property_item",
            "property_item": {"id": entry["id"], "next_url": None, "type": ptype, ptype: {}},
        }

    def _page(self, page_id):
        page = self.pages.get(page_id)
        if page is None or page["hidden"]:
            self._not_found("page", page_id)
        return page

    # --- Pages ----------------------------------------------------------------------------

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

    def _validate(self, entry, name, value):
        ptype = entry["type"]
        where = f"body.properties.{name}"
        if not isinstance(value, dict):
            _fail(f"body failed validation: {where} should be an object, instead was `{json.dumps(value)}`.")
        if "type" in value and value["type"] != ptype:
            _fail(f"body failed validation: {where}.type should be `{ptype}`, instead was `{value['type']}`.")
        if ptype in READ_ONLY_TYPES:
            _fail(f"{name} is a read-only property ({ptype}).")
        if ptype not in value:
            _fail(f"body failed validation: {where}.{ptype} should be defined, instead was `undefined`.")
        raw = value[ptype]
        if ptype in ("title", "rich_text"):
            return self._validate_rich_text(raw, f"{where}.{ptype}")
        if ptype == "number":
            if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float)):
                _fail(
                    f"body failed validation: {where}.number should be a number or `null`, instead was `{json.dumps(raw)}`."
                )
            return raw
        if ptype in ("select", "status"):
            if raw is None:
                return None
            if not isinstance(raw, dict) or not ({"name", "id"} & set(raw)):
                _fail(f"body failed validation: {where}.{ptype} should be an object with a name or id.")
            return self._option_for(entry, name, raw, create=ptype == "select")
        if ptype == "multi_select":
            if not isinstance(raw, list):
                _fail(f"body failed validation: {where}.multi_select should be an array.")
            if len(raw) > ARRAY_LIMIT:
                _fail(
                    f"body failed validation: {where}.multi_select.length should be ≤ `{ARRAY_LIMIT}`, instead was `{len(raw)}`."
                )
            return [self._option_for(entry, name, option, create=True) for option in raw]
        if ptype == "date":
            if raw is None:
                return None
            if not isinstance(raw, dict) or not isinstance(raw.get("start"), str):
                _fail(f"body failed validation: {where}.date.start should be a string.")
            try:
                parse_time(raw["start"])
            except ValueError:
                _fail(
                    f"body failed validation: {where}.date.start should be an ISO 8601 date, instead was `{raw['start']}`."
                )
            return {"start": raw["start"], "end": raw.get("end"), "time_zone": raw.get("time_zone")}
        if ptype in ("email", "phone_number", "url"):
            limit = 2000 if ptype == "url" else 200
            if raw is not None and not isinstance(raw, str):
                _fail(f"body failed validation: {where}.{ptype} should be a string or `null`.")
            if raw is not None and utf16_len(raw) > limit:
                _fail(
                    f"body failed validation: {where}.{ptype}.length should be ≤ `{limit}`, instead was `{utf16_len(raw)}`."
                )
            return raw
        if ptype == "checkbox":
            if not isinstance(raw, bool):
                _fail(f"body failed validation: {where}.checkbox should be a boolean.")
            return raw
        if ptype in ("relation", "people"):
            if not isinstance(raw, list) or not all(isinstance(item, dict) and "id" in item for item in raw):
                _fail(f"body failed validation: {where}.{ptype} should be an array of objects with an id.")
            if len(raw) > ARRAY_LIMIT:
                _fail(
                    f"body failed validation: {where}.{ptype}.length should be ≤ `{ARRAY_LIMIT}`, instead was `{len(raw)}`."
                )
            return [{"id": item["id"]} for item in raw]
        _fail(f"Unsupported property type {ptype}.")

    def _validate_rich_text(self, raw, where):
        if not isinstance(raw, list):
            _fail(f"body failed validation: {where} should be an array.")
        if len(raw) > ARRAY_LIMIT:
            _fail(
                f"body failed validation: {where}.length should be ≤ `{ARRAY_LIMIT}`, instead was `{len(raw)}`."
            )
        items = []
        for index, item in enumerate(raw):
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, dict) or not isinstance(text.get("content"), str):
                _fail(f"body failed validation: {where}[{index}].text.content should be a string.")
            content = text["content"]
            if utf16_len(content) > TEXT_LIMIT:
                _fail(
                    f"body failed validation: {where}[{index}].text.content.length should be ≤ `{TEXT_LIMIT}`, "
                    f"instead was `{utf16_len(content)}`."
                )
            link = text.get("link")
            items.append(
                {
                    "type": "text",
                    "text": {"content": content, "link": link},
                    "annotations": {**ANNOTATIONS, **(item.get("annotations") or {})},
                    "plain_text": content,
                    "href": link and link.get("url"),
                }
            )
        return items

    def _rich_text_items(self, text):
        return self._validate_rich_text([{"type": "text", "text": {"content": text}}], "title")

    def _option_for(self, entry, name, raw, *, create):
        ptype = entry["type"]
        options = entry[ptype].setdefault("options", [])
        if "id" in raw:
            option = next((o for o in options if o["id"] == raw["id"]), None)
        else:
            option_name = raw.get("name")
            if not isinstance(option_name, str) or not option_name:
                _fail(
                    f"body failed validation: body.properties.{name}.{ptype}.name should be a non-empty string."
                )
            if "," in option_name:
                _fail(f"Option name for {name} cannot contain commas.")
            option = next((o for o in options if o["name"] == option_name), None)
            if option is None and create:
                option = self._option(option_name)
                options.append(option)
        if option is None:
            _fail(f"Invalid {ptype} value for property {name}: {raw.get('name', raw.get('id'))}")
        return {"id": option["id"], "name": option["name"], "color": option["color"]}

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

    # --- Filters and sorts ----------------------------------------------------------------

    def _check_filter_depth(self, flt, depth):
        if not isinstance(flt, dict):
            _fail("body failed validation: body.filter should be an object.")
        for key in ("and", "or"):
            if key in flt:
                if depth >= 2:
                    _fail("body failed validation: compound filters nest at most two levels.")
                for child in flt[key]:
                    self._check_filter_depth(child, depth + 1)

    def _predicate(self, source, flt):
        """The filter as a test of one page, checked and parsed once per query (not per page)."""
        if "and" in flt:
            parts = [self._predicate(source, child) for child in flt["and"]]
            return lambda page: all(part(page) for part in parts)
        if "or" in flt:
            parts = [self._predicate(source, child) for child in flt["or"]]
            return lambda page: any(part(page) for part in parts)
        if "timestamp" in flt:
            field = flt["timestamp"]
            if field not in ("created_time", "last_edited_time"):
                _fail(
                    f"body failed validation: body.filter.timestamp should be created_time or last_edited_time, instead was `{field}`."
                )
            test = self._date_test(flt.get(field) or {})
            return lambda page: test(page[field])
        key = flt.get("property")
        name = (
            key
            if key in source["properties"]
            else next((n for n, e in source["properties"].items() if e["id"] == key), None)
        )
        if name is None:
            _fail(f"Could not find property with name or id: {key}")
        entry = source["properties"][name]
        ptype = entry["type"]
        condition = flt.get(ptype)
        if condition is None:
            # Notion accepts a type-compatible key (e.g. "rich_text" for a title).
            condition = next((flt[k] for k in flt if k not in ("property", "type")), None)
        if not isinstance(condition, dict) or len(condition) != 1:
            _fail(f"body failed validation: body.filter.{ptype} should be an object with one condition.")
        if ptype == "date" and not condition.keys() & {"is_empty", "is_not_empty"}:
            test = self._date_test(condition)
            return lambda page: (
                (raw := page["properties"][name]["date"]) is not None and test(parse_time(raw["start"]))
            )
        return lambda page: self._condition(ptype, page["properties"][name][ptype], condition)

    def _condition(self, ptype, raw, condition) -> bool:
        ((op, operand),) = condition.items()
        if op == "is_empty":
            return raw in (None, [], "")
        if op == "is_not_empty":
            return raw not in (None, [], "")
        if ptype in ("title", "rich_text", "email", "phone_number", "url"):
            text = (
                "".join(item["plain_text"] for item in raw)
                if ptype in ("title", "rich_text")
                else (raw or "")
            )
            ops = {
                "equals": text == operand,
                "does_not_equal": text != operand,
                "contains": operand in text,
                "does_not_contain": operand not in text,
                "starts_with": text.startswith(operand),
                "ends_with": text.endswith(operand),
            }
        elif ptype == "number":
            value = raw
            ops = {
                "equals": value == operand,
                "does_not_equal": value != operand,
                "greater_than": value is not None and value > operand,
                "less_than": value is not None and value < operand,
                "greater_than_or_equal_to": value is not None and value >= operand,
                "less_than_or_equal_to": value is not None and value <= operand,
            }
        elif ptype in ("select", "status"):
            name = raw and raw["name"]
            names = operand if isinstance(operand, list) else [operand]
            ops = {"equals": name in names, "does_not_equal": name not in names}
        elif ptype == "multi_select":
            names = [option["name"] for option in raw]
            ops = {"contains": operand in names, "does_not_contain": operand not in names}
        elif ptype in ("relation", "people"):
            ids = [item["id"] for item in raw]
            ops = {"contains": operand in ids, "does_not_contain": operand not in ids}
        elif ptype == "checkbox":
            ops = {"equals": raw == operand, "does_not_equal": raw != operand}
        else:
            ops = {}
        if op not in ops:
            _fail(f"body failed validation: unsupported {ptype} filter condition `{op}`.")
        return ops[op]

    def _date_test(self, condition):
        """A date condition as a test of one value (a date or an aware datetime)."""
        if len(condition) != 1:
            _fail("body failed validation: a date filter takes one condition.")
        ((op, operand),) = condition.items()
        if op in ("is_empty", "is_not_empty"):
            return lambda value: (value is None) == (op == "is_empty")
        compare = {
            "equals": operator.eq,
            "before": operator.lt,
            "after": operator.gt,
            "on_or_before": operator.le,
            "on_or_after": operator.ge,
        }.get(op)
        if compare is None:
            _fail(f"body failed validation: unsupported date filter condition `{op}`.")
        try:
            bound = parse_time(operand)
        except (TypeError, ValueError):
            _fail(
                f"body failed validation: date filter `{op}` should be an ISO 8601 date, instead was `{operand}`."
            )
        bound_is_moment = isinstance(bound, dt.datetime)

        def test(value):
            if isinstance(value, dt.datetime) == bound_is_moment:
                return compare(value, bound)
            # A date against a moment compares the days.
            day = value.date() if isinstance(value, dt.datetime) else value
            return compare(day, bound.date() if bound_is_moment else bound)

        return test

    def _sort(self, source, pages, sorts):
        if not sorts:
            return sorted(pages, key=lambda p: (p["created_time"], p["id"]), reverse=True)
        result = sorted(pages, key=lambda p: p["id"])
        for sort in reversed(sorts):
            reverse = sort.get("direction", "ascending") == "descending"
            if "timestamp" in sort:
                field = sort["timestamp"]
                result.sort(key=lambda p, f=field: p[f], reverse=reverse)
            else:
                name = sort.get("property")
                if name not in source["properties"]:
                    _fail(f"Could not find sort property with name or id: {name}")
                result.sort(key=lambda p, n=name: self._sort_key(p["properties"][n]), reverse=reverse)
        return result

    def _sort_key(self, value):
        simple = self._simple(value)
        if simple is None:
            return (0, "")
        if isinstance(simple, list):
            return (1, ",".join(simple))
        return (1, simple)

    # --- Control endpoints (no auth; for the demo and out-of-process tests) ---------------

    def handle_control(self, method, path, body) -> tuple[int, dict]:
        data = json.loads(body or b"{}")
        with self.lock:
            if method == "GET" and path == "/_emulator/state":
                return 200, {
                    "databases": {
                        db["title"]: {"id": db_id, "data_sources": db["data_sources"]}
                        for db_id, db in self.databases.items()
                    },
                    "requests": dict(self.counts()),
                    "now": iso(self.clock.now()),
                }
            match = re.match(r"^/_emulator/data_sources/([^/]+)/pages$", path)
            if match and method == "GET":
                return 200, {
                    "pages": [
                        {**p, "last_edited_time": iso(p["last_edited_time"])}
                        for p in self.pages_in(match[1], include_trashed=True)
                    ]
                }
            if match and method == "POST":
                if "pages" in data:  # bulk: {"pages": [{property: value}, ...]}
                    return 200, {"ids": [self.human_create(match[1], props) for props in data["pages"]]}
                return 200, {"id": self.human_create(match[1], data.get("properties", {}))}
            if path == "/_emulator/rate-limit" and method == "POST":
                self.set_rate_limit(data.get("rps"), data.get("burst"))
                return 200, {"rps": data.get("rps")}
            if path == "/_emulator/reset-counters" and method == "POST":
                self.reset_counters()
                return 200, {}
            if path == "/_emulator/requests" and method == "GET":
                return 200, {
                    "requests": [[log.at, log.method, log.endpoint, log.status] for log in self.requests]
                }
            match = re.match(r"^/_emulator/pages/([^/]+)$", path)
            if match and method in ("POST", "PATCH"):
                self.human_edit(match[1], data.get("properties"), in_trash=data.get("in_trash"))
                return 200, {"id": match[1], "values": self.page_values(match[1])}
            if path == "/_emulator/human-edit" and method == "POST":
                # {"database": "Deals", "title": "Acme", "properties": {...}, "in_trash": bool}
                page_id = self.find_page(data["database"], data["title"])
                self.human_edit(page_id, data.get("properties"), in_trash=data.get("in_trash"))
                return 200, {"id": page_id, "values": self.page_values(page_id)}
            if path == "/_emulator/clock" and method == "POST":
                if "set" in data:
                    self.clock.set(parse_time(data["set"]))
                if "advance" in data:
                    self.clock.advance(float(data["advance"]))
                return 200, {"now": iso(self.clock.now())}
        return 404, {"message": f"No control endpoint {method} {path}"}


class _Handler(BaseHTTPRequestHandler):
    emulator: NotionEmulator
    protocol_version = "HTTP/1.1"
    server_version = "NotionEmulator"
    # One write per response and no Nagle delay: headers and body in separate small
    # segments would wait on the client's delayed ACK (~40 ms a request).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def date_time_string(self, timestamp=None):
        # The Date header follows the emulator's (controllable) clock, as Notion's follows its own.
        return email.utils.formatdate(self.emulator.clock.now().timestamp(), usegmt=True)

    def log_message(self, format, *args):
        pass

    def _respond(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if parts.path.startswith("/_emulator/"):
                status, payload = self.emulator.handle_control(self.command, parts.path, body)
                headers = {}
            else:
                status, headers, payload = self.emulator.handle(
                    self.command, parts.path, parse_qs(parts.query), self.headers, body
                )
        except NotionError as err:
            status, headers, payload = (
                err.status,
                {},
                {"object": "error", "status": err.status, "code": err.code, "message": err.message},
            )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            self._respond(status, payload, headers)

    do_GET = do_POST = do_PATCH = do_DELETE = _dispatch


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve an emulator of Notion's API (2025-09-03).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="secret_emulator_token")
    parser.add_argument("--demo", action="store_true", help="create the CRM databases of DESIGN §4")
    parser.add_argument("--deals-database-id", default="11111111-1111-4111-8111-111111111111")
    parser.add_argument("--contacts-database-id", default="22222222-2222-4222-8222-222222222222")
    parser.add_argument("--activities-database-id", default="33333333-3333-4333-8333-333333333333")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second before 429")
    args = parser.parse_args(argv)
    emulator = NotionEmulator(token=args.token)
    if args.demo:
        emulator.add_crm_databases(
            ids={
                "deal": args.deals_database_id,
                "contact": args.contacts_database_id,
                "activity": args.activities_database_id,
            }
        )
    emulator.set_rate_limit(args.rate_limit)
    emulator.start(args.host, args.port)
    print(f"Notion emulator on {emulator.url} (token {args.token!r}); Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
