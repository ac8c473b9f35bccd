"""Serving over HTTP: routing, auth and version headers, and the API endpoints."""

import argparse
import contextlib
import email.utils
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from .faults import RequestLog
from .store import (
    API_VERSION,
    BOT_USER,
    MAX_PAGE_SIZE,
    Mixin,
    NotionError,
    _fail,
    floor_minute,
    iso,
    new_uuid,
)


class ServerMixin(Mixin):
    _server: ThreadingHTTPServer | None
    _thread: threading.Thread | None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "ServerMixin":
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = self._server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="notion-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "the emulator is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

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
        endpoint, args = "unknown", cast(tuple, ())
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
                if not fault:
                    self._take_rate_limits((headers.get("Authorization") or "")[7:])
                if endpoint == "unknown":
                    _fail("Invalid request URL.", 400, "invalid_request_url")
                data = self._parse_body(body) if method in ("POST", "PATCH") else {}
                args = self._path_ids(endpoint, args)
                payload = getattr(self, "_" + endpoint.replace(".", "_"))(*args, query=query, body=data)
                if fault and fault.status and fault.after:
                    self._raise_fault(fault)
        except NotionError as err:
            status, extra_headers = err.status, err.headers
            payload = {"object": "error", "status": err.status, "code": err.code, "message": err.message}
            if err.additional_data:
                payload["additional_data"] = err.additional_data
        payload["request_id"] = str(new_uuid())
        with self.lock:
            returned = len(payload["results"]) if isinstance(payload.get("results"), list) else 0
            self.requests.append(RequestLog(time.monotonic(), method, endpoint, path, status, returned))
        if delay:
            time.sleep(delay)
        return status, extra_headers, payload

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

    def _pages_create(self, query, body):
        parent = dict(body.get("parent") or {})
        for key in ("data_source_id", "database_id"):
            if parent.get(key) is not None:
                parent[key] = self._body_id(parent[key], f"body.parent.{key}")
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


class _Handler(BaseHTTPRequestHandler):
    emulator: Any
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
    parser.add_argument(
        "--query-result-cap", type=int, default=None, help="rows one query returns at most (Notion: 10,000)"
    )
    args = parser.parse_args(argv)
    from . import QUERY_RESULT_CAP, NotionEmulator

    emulator = NotionEmulator(token=args.token, query_result_cap=args.query_result_cap or QUERY_RESULT_CAP)
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
