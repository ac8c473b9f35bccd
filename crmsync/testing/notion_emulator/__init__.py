"""An emulator of Notion's API (version 2025-09-03), served over real HTTP.

It speaks what crmsync uses of the API: databases and their data sources, data
source queries (property and timestamp filters, compound filters, sorts, cursors,
``page_size`` <= 100, the 10,000-row cap per query with ``request_status`` on every
page of a capped result, ``result_type``), page create / retrieve / update
(``in_trash`` included), page-property retrieval with pagination, and ``users/me``.
It follows Notion's documented shapes and quirks: bearer-token auth (401
``unauthorized``), a required ``Notion-Version`` header, ids with or without dashes
(a malformed one is 400 ``validation_error`` "path failed validation..."),
``created_time`` and ``last_edited_time`` floored to the minute, 400
``validation_error`` for unknown properties and bad values, 404 ``object_not_found``,
date ranges and ``time_zone`` (answered, as Notion does, as UTC offsets with
``time_zone: null``), rich text with annotations, links and mentions, ID
(``unique_id``) properties, 429 ``rate_limited`` with ``Retry-After`` and
``additional_data.rate_limit_reason`` (a token bucket, per-connection budgets over
60-second windows, a per-workspace budget), and page objects that cut reference
lists at 25 items.

Test knobs: a controllable clock, rate limits, forced 429s (any ``Retry-After``,
any reason), injected 5xx and timeouts (before or after the write is applied),
"human" edits as a person would make them in Notion (text split at 2,000 UTF-16
code units like the app), schema changes (rename, delete, retype a property), a
wiki's data-source rows, and request counters by endpoint.

    with NotionEmulator() as notion:            # serves on 127.0.0.1, a free port
        ids = notion.add_crm_databases()
        ... NotionAdapter(base_url=notion.url, token=notion.token, database_id=ids["deal"])

Standalone: ``python -m crmsync.testing.notion_emulator --port 8765 --demo``.

What it knowingly does not model: page content (blocks), comments, users beyond one
bot and one person, files, formulas and rollups (stored as given, never computed),
relation sync to the other side, search, webhooks, views, markdown, templates,
mentions' rendering (a mention's ``plain_text`` is kept as sent, never re-rendered or
degraded past 25), the exact plan numbers of Notion's rate limits (configure them),
the 500 KB / 1,000-element payload limits, option colours, and the order of equal
rows beyond (sort keys, id).

One job per module: ``store`` (data, human edits, page objects), ``validation``,
``queries``, ``faults`` (errors and rate limits), ``control`` (``/_emulator/*``),
``server`` (HTTP, routing, endpoints).
"""

import threading
import uuid  # noqa: F401 (every id comes through it: replace it to seed ids, see store.new_uuid)

from .control import ControlMixin
from .faults import Fault, FaultsMixin, RequestLog, TokenBucket, WindowBudget
from .queries import QueriesMixin
from .server import ServerMixin, main
from .store import (
    API_VERSION,
    BOT_USER,
    CRM_SCHEMAS,
    HUMAN_USER,
    QUERY_RESULT_CAP,
    Clock,
    NotionError,
    StoreMixin,
    floor_minute,
    iso,
    parse_time,
)
from .validation import ValidationMixin

__all__ = [
    "API_VERSION",
    "BOT_USER",
    "CRM_SCHEMAS",
    "HUMAN_USER",
    "QUERY_RESULT_CAP",
    "Clock",
    "Fault",
    "NotionEmulator",
    "NotionError",
    "RequestLog",
    "TokenBucket",
    "WindowBudget",
    "floor_minute",
    "iso",
    "main",
    "parse_time",
]


class NotionEmulator(ServerMixin, ControlMixin, FaultsMixin, QueriesMixin, ValidationMixin, StoreMixin):
    """The facade: one emulated workspace, its tokens (each a connection), its clock."""

    def __init__(self, token: str = "secret_emulator_token", *, query_result_cap: int = QUERY_RESULT_CAP):
        self.token = token
        self.tokens = {token}
        self.clock = Clock()
        self.query_result_cap = query_result_cap
        self.databases: dict[str, dict] = {}
        self.data_sources: dict[str, dict] = {}
        self.pages: dict[str, dict] = {}
        self.wiki_rows: dict[str, dict] = {}  # data sources listed as rows of a wiki
        self.requests: list[RequestLog] = []
        self.faults: list[Fault] = []
        self.bucket: TokenBucket | None = None
        self.budgets: dict[str, WindowBudget] = {}  # per token, and "workspace"
        self.connection_window: tuple[int, float] | None = None  # each token's (limit, seconds)
        self.lock = threading.RLock()
        self._cursors: dict[str, tuple[str, set]] = {}
        self._server = None
        self._thread = None
