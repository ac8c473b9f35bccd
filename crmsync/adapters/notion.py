"""NotionAdapter: a Notion database as the CRM, through the official ``notion-client``.

Notion API version 2025-09-03: the configured database's data source is resolved
on first use (or given as ``data_source_id``), queried through
``/v1/data_sources/{id}/query``, and pages are created with a data-source parent.
This is the only module that imports ``notion_client``.

Ids in OPTIONS are taken with or without dashes or as the database's Notion URL.
What the adapter learns about the remote side (the resolved data source, property
ids and types) is kept in ``SyncConnection.remote_state``, so a new process sends
no request for it (it is read again after a 404 or when a page shows the schema
changed). Mapped properties are followed by id: a property renamed in Notion keeps
syncing; one that is missing or retyped blocks its field (``blocked_fields``).

Exactly one layer retries: notion-client's own retries are turned off and tenacity
retries 429, 5xx, 529, timeouts and connection errors with exponential backoff and
jitter, waiting at least ``Retry-After``. A create whose outcome is unknown is never
retried here: it raises ``AmbiguousWriteError`` so that the caller looks the page up
by its CRM Sync ID first. Every HTTP request, retries included, first takes a slot
of the connection's request budget (shared by every process, see ``ratelimit``).
A ``Retry-After`` longer than ``max_retry_wait`` raises ``RateLimitDeferred``, and
the wait is kept (``ratelimit.Hold``) so that no process of the connection, nor of
any connection on the same token for a workspace limit, sends before it ends.
See docs/notion-limits.md for the limits this relies on. The schema and remote state
live in ``notion_schema``, the queries in ``notion_listing``, the pure translation in
``notion_properties``.
"""

import contextlib
import datetime as dt
import email.utils
import functools
import hashlib
import json
import logging
import random
import time

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from tenacity import Retrying, retry_if_exception

from ..entities import ENTITIES
from ..exceptions import (
    AdapterError,
    AmbiguousWriteError,
    ConfigurationError,
    FieldBlocked,
    InvalidOption,
    MappingError,
    RateLimitDeferred,
    RemoteNotFound,
    TransientAdapterError,
)
from . import notion_properties as props
from .base import REQUIRED, CRMAdapter, RemoteRecord
from .notion_listing import NotionListing, notion_time
from .notion_schema import DATABASE_OPTIONS, PAGE_SIZE, NotionSchema
from .ratelimit import Hold, RateBudget

__all__ = ["DATABASE_OPTIONS", "PAGE_SIZE", "NotionAdapter", "notion_time", "parse_time"]

try:
    import httpx
    import notion_client
    from notion_client.errors import HTTPResponseError, RequestTimeoutError
except ImportError:  # pragma: no cover - exercised by users without the extra
    notion_client = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)
API_VERSION = "2025-09-03"
ID_OPTIONS = tuple(name for names in DATABASE_OPTIONS.values() for name in names)
# additional_data.rate_limit_reason of Notion's per-workspace limit (shared by every
# connection of the workspace); other reasons hold this connection only.
WORKSPACE_LIMIT = "public_api_space_request_rate_limit"


def parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# The longest wait a Retry-After is taken for: a day (an absurd or infinite one is a
# day's deferral, never a crash or a connection stopped for years).
MAX_RETRY_AFTER = 86_400.0


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (an integer or an HTTP date), within [0, a day]."""
    if not value:
        return None
    seconds = None
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        seconds = float(value)
    if seconds is None:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    if seconds is None or seconds != seconds:  # unreadable, or NaN
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def choice_options_problem(value: dict) -> str | None:
    """Why a ``choice_options`` setting ({entity: {field: {local value: option name}}})
    cannot be used, or None."""
    for entity, fields in value.items():
        if entity not in ENTITIES:
            return f"unknown entity {entity!r} (known: {', '.join(sorted(ENTITIES))})."
        choices = {spec.name: spec for spec in ENTITIES[entity].fields if spec.kind == "choice"}
        if not isinstance(fields, dict):
            return f"{entity!r}: expected {{field: {{local value: option name}}}}."
        for field, names in fields.items():
            if field not in choices:
                return (
                    f"{entity!r}: {field!r} is no choice field (choice fields: {', '.join(sorted(choices))})."
                )
            known = props.DEFAULT_OPTIONS.get((entity, field), {})
            if not isinstance(names, dict):
                return f"{entity!r}.{field!r}: expected {{local value: option name}}."
            for local, option in names.items():
                if known and local not in known:
                    return f"{entity!r}.{field!r}: unknown value {local!r} (values: {', '.join(known)})."
                if not isinstance(option, str) or not option.strip():
                    return (
                        f"{entity!r}.{field!r}.{local!r}: the Notion option name must be a non-empty string."
                    )
    return None


class NotionAdapter(NotionSchema, NotionListing, CRMAdapter):
    OPTIONS = {
        "token": REQUIRED,
        # Ids as people paste them: with or without dashes, or the database's Notion URL.
        "database_id": None,
        "data_source_id": None,
        "contacts_database_id": None,
        "contacts_data_source_id": None,
        "activities_database_id": None,
        "activities_data_source_id": None,
        "base_url": "https://api.notion.com",
        # The request budget shared by every process using this connection; None: no budget.
        "requests_per_second": 3,
        "burst": 1,
        "timeout": 30.0,
        "max_retries": 5,
        # Seconds before the first retry; doubles with each one (capped at 30 s).
        "retry_backoff": 0.5,
        # Longest single wait between retries; a longer Retry-After defers the run instead
        # (RateLimitDeferred), and nothing is sent before the time Notion named.
        "max_retry_wait": 120.0,
        # {entity: {field: "Property" | ("Property", "type") | None}} over DESIGN §4.
        "properties": {},
        # {entity: {field: {local value: option name}}} over the default labels.
        "choice_options": {},
        # Link unlinked local deals to remote pages of the same name on first sync.
        "match_deals_by_name": False,
        # An injectable notion_client.Client (the adapter still counts and budgets its requests).
        "client": None,
    }

    OPTION_TYPES = {
        "token": ((str,), "a string (the integration's secret)"),
        **{name: ((str,), "a string (an id or the database's URL)") for name in ID_OPTIONS},
    }
    SECRET_OPTIONS = frozenset({"token"})
    # Option: (smallest value allowed, whether the smallest value itself is allowed).
    NUMBER_RANGES = {
        "requests_per_second": (0, False),
        "burst": (1, True),
        "timeout": (0, False),
        "max_retries": (0, True),
        "retry_backoff": (0, True),
        "max_retry_wait": (0, True),
    }

    @classmethod
    def option_problem(cls, name, value):
        if name in cls.NUMBER_RANGES:
            low, inclusive = cls.NUMBER_RANGES[name]
            if value < low or (value == low and not inclusive):
                return f"expected a number {'at least' if inclusive else 'above'} {low}."
            if name in ("burst", "max_retries") and value != int(value):
                return "expected a whole number."
        if name == "base_url" and not value.startswith(("https://", "http://")):
            return "expected an http(s) URL such as https://api.notion.com."
        if name == "choice_options":
            return choice_options_problem(value)
        return None

    @sensitive_variables("options")
    def __init__(self, alias, **options):
        if notion_client is None:
            raise ConfigurationError("NotionAdapter needs notion-client: pip install 'crmsync[notion]'.")
        super().__init__(alias, **options)
        for name in ID_OPTIONS:
            if self.options[name]:
                try:
                    self.options[name] = props.parse_notion_id(self.options[name])
                except ValueError as err:
                    raise InvalidOption(
                        f'CRMSYNC["CONNECTIONS"][{alias!r}]["OPTIONS"][{name!r}]: {err}. Paste the id '
                        "(with or without dashes) or the database's URL from Notion's address bar.",
                        option=name,
                    ) from err
        if not (self.options["database_id"] or self.options["data_source_id"]):
            raise ConfigurationError(
                f'Missing option CRMSYNC["CONNECTIONS"][{alias!r}]["OPTIONS"]["database_id"] '
                '(or "data_source_id"): the Notion database that holds the deals.'
            )
        for entity, overrides in (self.options["properties"] or {}).items():
            if entity not in ENTITIES:
                raise ConfigurationError(
                    f'CRMSYNC["CONNECTIONS"][{alias!r}]["OPTIONS"]["properties"] has unknown entity {entity!r}.'
                )
            try:
                props.property_map(entity, overrides)
            except MappingError as err:
                raise ConfigurationError(
                    f'CRMSYNC["CONNECTIONS"][{alias!r}]["OPTIONS"]["properties"][{entity!r}]: {err}'
                ) from err
        self._client = None
        self._remote = None  # SyncConnection.remote_state["notion"], read once
        self._data_sources: dict[str, str] = {}
        self._schemas: dict[str, dict] = {}
        self._resolved: dict[str, tuple[dict, dict]] = {}
        self._drift_read_at: dict[str, float] = {}  # schema re-read because a page showed drift
        # {page id: {property id: date value}} of pages read, for the date properties
        # whose range end or time of day a pushed date must keep (None: nothing to keep).
        self._dates: dict[str, dict | None] = {}
        self._warned: set = set()
        self._choice_options: dict[str, dict] = {}
        self._requests = 0
        self.server_time: dt.datetime | None = None  # Notion's clock, from the last Date header
        self._clock_offset: dt.timedelta | None = None  # Notion's clock minus ours
        rate = self.options["requests_per_second"]
        # Notion budgets requests per integration (its token), not per crmsync connection:
        # connections sharing a token (and server) share one budget. Never the token
        # itself: a digest names it, as it names the workspace hold below.
        integration = f"{self.options['base_url'].rstrip('/')}\n{self.options['token']}"
        budget_key = "notion:" + hashlib.sha256(integration.encode()).hexdigest()[:24]
        self.budget = RateBudget(budget_key, rate, self.options["burst"]) if rate else None
        token_key = hashlib.sha256(str(self.options["token"]).encode()).hexdigest()[:24]
        self.hold = Hold([f"notion-hold:{alias}"[:100], f"notion-hold:token:{token_key}"])

    # --- Configuration ---------------------------------------------------------------

    @property
    def entities(self):
        return frozenset(
            entity for entity, names in DATABASE_OPTIONS.items() if any(self.options[name] for name in names)
        )

    @property
    def requests_sent(self) -> int:
        return self._requests

    def mapped_fields(self, entity: str) -> list[str]:
        return list(self.mapping(entity))

    def remote_url(self, entity: str, remote_id: str) -> str | None:
        return f"https://www.notion.so/{remote_id.replace('-', '')}"

    def mapping(self, entity: str) -> dict[str, tuple[str, str]]:
        return props.property_map(entity, (self.options["properties"] or {}).get(entity))

    def refused_values(self, entity: str, values) -> dict[str, str]:
        if entity not in self.entities:
            return {}
        mapping, options, kinds = self.mapping(entity), self.choice_options(entity), self._kinds(entity)
        refused = {}
        for field, value in values.items():
            try:
                props.values_to_properties({field: value}, mapping, options, kinds=kinds)
            except MappingError as err:
                refused[field] = str(err)
        return refused

    def choice_options(self, entity: str) -> dict[str, dict]:
        """{choice field: {local value: Notion option name}}: the defaults and the
        connection's ``choice_options`` (built once; read-only)."""
        if entity not in self._choice_options:
            configured = (self.options["choice_options"] or {}).get(entity, {})
            self._choice_options[entity] = {
                field: {**props.DEFAULT_OPTIONS.get((entity, field), {}), **configured.get(field, {})}
                for field, spec in ((s.name, s) for s in ENTITIES[entity].fields)
                if spec.kind == "choice"
            }
        return self._choice_options[entity]

    @property
    def client(self):
        if self._client is None:
            client = self.options["client"]
            if client is None:
                client = notion_client.Client(
                    auth=self.options["token"],
                    base_url=self.options["base_url"].rstrip("/"),
                    notion_version=API_VERSION,
                    timeout_ms=int(self.options["timeout"] * 1000),
                    retry=False,
                    logger=logging.getLogger("crmsync.adapters.notion.sdk"),
                    log_level=logging.WARNING,
                )
            client.client.event_hooks["request"].append(self._before_request)
            client.client.event_hooks["response"].append(self._after_response)
            self._client = client
        return self._client

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    def _after_response(self, response):
        with contextlib.suppress(TypeError, ValueError):
            self.server_time = email.utils.parsedate_to_datetime(response.headers.get("date"))
            # The Date header has whole seconds: half a second is the best guess of the rest.
            self._clock_offset = self.server_time - timezone.now() + dt.timedelta(seconds=0.5)

    def _before_request(self, request):
        # A hold Notion asked for (here or in another process) is waited out, or, when it
        # is longer than max_retry_wait, nothing is sent at all.
        wait = self.hold.until() - time.time()
        if wait > 0:
            if wait > self.options["max_retry_wait"]:
                raise self._deferred("a rate-limit wait Notion asked for is still on", time.time() + wait)
            time.sleep(wait)
        if self.budget:
            self.budget.acquire()
        self._requests += 1

    def deferred_until(self) -> dt.datetime | None:
        """When Notion allows this connection to send again, if it asked to wait (a
        ``Retry-After``, kept across processes); None when nothing is held."""
        until = self.hold.until()
        now = time.time()
        # A hold stored before the cap existed is read as at most a day from now.
        return dt.datetime.fromtimestamp(min(until, now + MAX_RETRY_AFTER), dt.UTC) if until > now else None

    def _deferred(self, why, until, *, scope="connection", reason=None, status=None, code="rate_limited"):
        moment = dt.datetime.fromtimestamp(min(until, time.time() + MAX_RETRY_AFTER), dt.UTC)
        return RateLimitDeferred(
            f"Notion rate limit ({reason or scope}): {why}; nothing is sent before {moment:%Y-%m-%d %H:%M:%S} UTC",
            alias=self.alias,
            status=status,
            code=code,
            retry_after=max(0.0, until - time.time()),
            until=moment,
            scope=scope,
            reason=reason,
        )

    # --- Calling the API ------------------------------------------------------------------

    def _wrap(self, err: Exception, *, create: bool) -> AdapterError:
        """The crmsync error for an SDK or transport error (never carrying the token)."""
        if isinstance(err, AdapterError):
            return err
        if isinstance(err, RequestTimeoutError):
            cls = AmbiguousWriteError if create else TransientAdapterError
            return cls("Request to Notion timed out", alias=self.alias, code="timeout")
        if isinstance(err, httpx.TransportError):
            # A refused connection never reached Notion: safe to retry even for a create.
            not_sent = isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)
            cls = AmbiguousWriteError if create and not not_sent else TransientAdapterError
            return cls(
                f"Cannot reach Notion: {type(err).__name__}", alias=self.alias, code="connection_error"
            )
        if isinstance(err, HTTPResponseError):
            status, code = err.status, getattr(err.code, "value", err.code)
            message = str(err) or f"HTTP {status}"
            retry_after = retry_after_seconds(err.headers.get("retry-after"))
            if status in (429, 529) or code in ("rate_limited", "service_overload"):
                # Notion: handle 529 like 429 (wait for Retry-After). A create answered 529
                # is still never re-sent blindly: a 5xx may follow a write that was applied.
                error = self._rate_limited(err, message, status, retry_after)
                if create and status == 529 and not isinstance(error, RateLimitDeferred):
                    return AmbiguousWriteError(
                        message, alias=self.alias, status=status, code=error.code, retry_after=retry_after
                    )
                return error
            if status >= 500 or code == "conflict_error":
                cls = AmbiguousWriteError if create and status >= 500 else TransientAdapterError
                return cls(message, alias=self.alias, status=status, code=code, retry_after=retry_after)
            if status == 404:
                return RemoteNotFound(message, alias=self.alias, status=status, code=code)
            return AdapterError(message, alias=self.alias, status=status, code=code)
        raise err

    def _rate_limited(self, err, message, status, retry_after) -> TransientAdapterError:
        code = "rate_limited" if status == 429 else "service_overload"
        reason = None
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            reason = (json.loads(err.body).get("additional_data") or {}).get("rate_limit_reason")
        scope = "workspace" if reason == WORKSPACE_LIMIT else "connection"
        if retry_after and (scope == "workspace" or retry_after > self.options["max_retry_wait"]):
            # Kept for every process (and, for a workspace limit, every connection on
            # this token): none sends before Notion's time.
            until = time.time() + retry_after
            self.hold.hold(until, keys=None if scope == "workspace" else self.hold.keys[:1])
            if retry_after > self.options["max_retry_wait"]:
                return self._deferred(
                    f"Retry-After {retry_after:.0f} s is over max_retry_wait",
                    until,
                    scope=scope,
                    reason=reason,
                    status=status,
                    code=code,
                )
        return TransientAdapterError(
            message, alias=self.alias, status=status, code=code, retry_after=retry_after
        )

    def _backoff(self, attempt: int, err: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt``: exponential backoff
        with "equal jitter" (half fixed, half random), or the Retry-After Notion named
        (then kept for every process) when longer."""
        ceiling = min(30.0, self.options["retry_backoff"] * 2 ** (attempt - 1))
        backoff = ceiling / 2 + random.uniform(0, ceiling / 2)
        retry_after = getattr(err, "retry_after", None) or 0
        if retry_after and self.budget:
            self.budget.hold_off(retry_after)
        return max(backoff, retry_after)

    @staticmethod
    def _retryable(err: BaseException) -> bool:
        return isinstance(err, TransientAdapterError) and not isinstance(
            err, AmbiguousWriteError | RateLimitDeferred
        )

    def _call(self, method, *, create: bool = False, **kwargs):
        """``method(**kwargs)`` with its errors translated (``_wrap``), retried while they
        are transient, ``max_retries`` times at most. Tenacity runs the retries only: it
        is entered after a first failure (its state for every call cost a twentieth of
        a create's CPU, and nearly every call succeeds at once)."""

        def attempt():
            try:
                return method(**kwargs)
            except Exception as err:
                raise self._wrap(err, create=create) from err

        try:
            return attempt()
        except TransientAdapterError as err:
            if not self._retryable(err) or self.options["max_retries"] < 1:
                raise
            time.sleep(self._backoff(1, err))
        for retry in Retrying(
            retry=retry_if_exception(self._retryable),
            wait=lambda state: self._backoff(
                state.attempt_number + 1, state.outcome.exception() if state.outcome else None
            ),
            stop=lambda state: state.attempt_number + 1 > self.options["max_retries"],
            reraise=True,
        ):
            with retry:
                return attempt()
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _on_source(self, entity: str, method, *, create: bool = False, parent: bool = False, **kwargs):
        """``method(data_source_id=..., **kwargs)`` (with ``parent``: the data source as a
        page's parent). A data source resolved from the database that answers 404 is
        resolved again once (it may have been replaced; a 404 applied nothing)."""

        def send():
            source_id = self.data_source_id(entity)
            where = (
                {"parent": {"type": "data_source_id", "data_source_id": source_id}}
                if parent
                else {"data_source_id": source_id}
            )
            return self._call(method, create=create, **where, **kwargs)

        try:
            return send()
        except RemoteNotFound:
            if self.options[DATABASE_OPTIONS[entity][1]]:
                raise  # configured, not resolved: nothing to resolve again
            self._forget(entity)
            return send()

    # --- Translation -------------------------------------------------------------------------

    @staticmethod
    @functools.cache
    def _kinds(entity):
        return {spec.name: spec.kind for spec in ENTITIES[entity].fields}

    @staticmethod
    @functools.cache
    def _places(entity):
        return {spec.name: spec.decimal_places for spec in ENTITIES[entity].fields}

    def page_to_record(self, entity: str, page: dict) -> RemoteRecord:
        properties = page.get("properties") or {}
        by_id = props.properties_by_id(properties)
        fields, blocked = self.resolved(entity)
        if self._maybe_refresh(entity, properties, by_id, fields, blocked):
            fields, blocked = self.resolved(entity)
        wanted = {pid for _, _, pid in fields.values()}
        truncated = [
            name
            for name, value in properties.items()
            if isinstance(value, dict) and value.get("id") in wanted and props.page_is_truncated(value)
        ]
        for name in truncated:
            properties[name] = self._read_full_property(page["id"], properties[name])
        if truncated:
            by_id = props.properties_by_id(properties)
        mapping = {field: spec for field, spec in fields.items() if field != "id"}
        values = props.page_to_values(
            page, mapping, self._kinds(entity), self.choice_options(entity), self._places(entity), by_id
        )
        sync_name, _, sync_pid = fields.get("id") or (None, None, None)
        sync_value = props.find_property(properties, sync_name, sync_pid, by_id) if sync_name else None
        sync_id = props.from_property(sync_value, "text") if sync_value else None
        self._remember_dates(page, mapping, by_id)
        return RemoteRecord(
            remote_id=page["id"],
            sync_id=sync_id.strip() if sync_id else None,
            values=values,
            modified_at=parse_time(page.get("last_edited_time")),
            archived=bool(page.get("in_trash") or page.get("archived")),
            created_at=parse_time(page.get("created_time")),
            raw=page,
        )

    def _remember_dates(self, page: dict, mapping: dict, by_id: dict) -> None:
        """Keep what a later push of a date must not erase: a range's end, a time of day."""
        dates = [(name, pid) for name, ptype, pid in mapping.values() if ptype == "date"]
        if not dates:
            return
        kept = {}
        for name, pid in dates:
            value = (props.find_property(page.get("properties") or {}, name, pid, by_id) or {}).get("date")
            if value and (value.get("end") or value.get("time_zone") or "T" in (value.get("start") or "")):
                kept[pid] = value
        self._dates[page["id"]] = kept or None

    def readable_record(self, entity: str, page: dict) -> RemoteRecord:
        """``page_to_record``, or for a malformed page a record carrying the error (so one
        bad page does not stop a listing)."""
        try:
            return self.page_to_record(entity, page)
        except (MappingError, TypeError, ValueError, KeyError, AttributeError) as err:
            return RemoteRecord(
                remote_id=str(page.get("id")),
                sync_id=None,
                values={},
                modified_at=parse_time(page.get("last_edited_time"))
                if isinstance(page.get("last_edited_time"), str)
                else None,
                created_at=parse_time(page.get("created_time"))
                if isinstance(page.get("created_time"), str)
                else None,
                archived=bool(page.get("in_trash")),
                raw=page,
                error=f"cannot read the page: {err}",
            )

    def _read_full_property(self, page_id: str, value: dict) -> dict:
        """A property value read whole through the page-property endpoint (paginated)."""
        ptype, items, cursor = value["type"], [], None
        while True:
            kwargs = {"page_id": page_id, "property_id": value["id"], "page_size": PAGE_SIZE}
            if cursor:
                kwargs["start_cursor"] = cursor
            result = self._call(self.client.pages.properties.retrieve, **kwargs)
            if result.get("object") != "list":
                return {**value, ptype: result.get(ptype)}
            items += [item[ptype] for item in result.get("results", [])]
            cursor = result.get("next_cursor")
            if not result.get("has_more") or not cursor:
                return {**value, ptype: items, "has_more": False}

    def to_properties(self, entity: str, values: dict, *, page_id: str | None = None, create=False) -> dict:
        """Request properties for ``values``, keyed by property id; refuses what Notion
        would refuse (MappingError).

        The data source's schema decides how a property is written (select and status
        differ; status options must exist). A blocked field (its property missing or
        retyped) raises FieldBlocked, except on create, where it is left out (the page
        read back then lacks it, so nothing is recorded as agreed for it). ``page_id``:
        the page written, so that a pushed date keeps its range end and time of day.
        """
        fields, blocked = self.resolved(entity)
        mapping = self.mapping(entity)
        for field in values:
            if field in blocked and field in mapping:
                if not create:
                    raise FieldBlocked(
                        f"{field} is not written: {blocked[field]}",
                        field=field,
                        prop=mapping[field][0],
                        reason=blocked[field],
                    )
                if (entity, field) not in self._warned:
                    self._warned.add((entity, field))
                    logger.warning("%s: %s.%s is not synced: %s", self.alias, entity, field, blocked[field])
        options = self.choice_options(entity)
        for field, value in values.items():
            if field in fields and value is not None and fields[field][1] == "status":
                self._check_status_option(entity, field, options.get(field, {}).get(value, value))
                fields = self.resolved(entity)[0]
        writable = {field: fields[field] for field in mapping if field in fields}
        kept = self._dates.get(page_id) or {} if page_id else {}
        current = {name: {"date": kept[pid]} for name, _, pid in writable.values() if pid in kept}
        return props.values_to_properties(
            values,
            writable,
            options,
            kinds=self._kinds(entity),
            current=current,
        )

    def _check_status_option(self, entity, field, name):
        fields, _ = self.resolved(entity)
        prop = fields[field][0]
        for attempt in range(2):
            known = self.schema(entity).get(prop, {}).get("options") or []
            if name in known:
                return
            if attempt == 0 and self._refresh_schema(entity):  # options are added in Notion
                fields, blocked = self.resolved(entity)
                if field in blocked:
                    raise FieldBlocked(
                        f"{field} is not written: {blocked[field]}", field=field, reason=blocked[field]
                    )
                prop = fields[field][0]
        raise MappingError(
            f"{field} → {prop!r}: status option {name!r} does not exist in Notion "
            f"(options: {', '.join(sorted(known))})",
            field=field,
            prop=prop,
        )

    def _sync_id_property(self, entity: str, sync_id: str) -> dict:
        fields, _ = self.resolved(entity)
        key = fields["id"][2] if "id" in fields else props.SYNC_ID_PROPERTY
        return {key: {"rich_text": props.rich_text(str(sync_id))}}

    def _sync_id_filter(self, entity: str, sync_id: str) -> dict:
        fields, _ = self.resolved(entity)
        key = fields["id"][2] if "id" in fields else props.SYNC_ID_PROPERTY
        return {"property": key, "rich_text": {"equals": str(sync_id)}}

    # --- Hooks ---------------------------------------------------------------------------------

    def create(self, entity, values, sync_id):
        properties = self.to_properties(entity, values, create=True)
        properties.update(self._sync_id_property(entity, sync_id))
        page = self._on_source(
            entity, self.client.pages.create, create=True, parent=True, properties=properties
        )
        return self.page_to_record(entity, page)

    def update(self, entity, remote_id, changes, *, sync_id: str | None = None):
        fields, _ = self.resolved(entity)
        dated = any(
            changes.get(field) is not None and fields.get(field, (None, None))[1] == "date"
            for field in changes
        )
        if dated and remote_id not in self._dates:
            self.get(entity, remote_id)  # the range end and time of day to keep
        properties = self.to_properties(entity, changes, page_id=remote_id)
        if sync_id is not None:
            properties.update(self._sync_id_property(entity, sync_id))
        page = self._call(self.client.pages.update, page_id=remote_id, properties=properties)
        return self.page_to_record(entity, page)

    def write_sync_id(self, entity, remote_id, sync_id):
        # The page answered is the page just read, with the id: converting it again cost
        # a twelfth of a pulled record's CPU (issue 15).
        self._call(
            self.client.pages.update, page_id=remote_id, properties=self._sync_id_property(entity, sync_id)
        )

    def get(self, entity, remote_id):
        return self.page_to_record(entity, self._call(self.client.pages.retrieve, page_id=remote_id))

    def trash(self, entity, remote_id):
        return self.page_to_record(
            entity, self._call(self.client.pages.update, page_id=remote_id, in_trash=True)
        )

    def restore(self, entity, remote_id):
        return self.page_to_record(
            entity, self._call(self.client.pages.update, page_id=remote_id, in_trash=False)
        )

    # --- What the engine reads of Notion's ways ---------------------------------------

    # ``last_edited_time`` is floored to the minute; a listing re-reads the minute before.
    TIME_GRANULARITY = dt.timedelta(minutes=1)
    LISTING_OVERLAP = dt.timedelta(seconds=60)

    @property
    def clock_offset(self) -> dt.timedelta | None:
        return self._clock_offset

    def match_field(self, entity: str) -> str | None:
        if entity == "deal":
            return "name" if self.options["match_deals_by_name"] else None
        return super().match_field(entity)
