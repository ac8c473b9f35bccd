"""NotionAdapter: a Notion database as the CRM, through the official ``notion-client``.

Notion API version 2025-09-03: the configured database's data source is resolved
on first use (or given as ``data_source_id``), queried through
``/v1/data_sources/{id}/query``, and pages are created with a data-source parent.
This is the only module that imports ``notion_client``.

Exactly one layer retries: notion-client's own retries are turned off and tenacity
retries 429, 5xx, 529, timeouts and connection errors with exponential backoff and
jitter, waiting at least ``Retry-After``. A create whose outcome is unknown is never
retried here: it raises ``AmbiguousWriteError`` so that the caller looks the page up
by its CRM Sync ID first. Every HTTP request, retries included, first takes a slot
of the connection's request budget (shared by every process, see ``ratelimit``).
"""

import contextlib
import datetime as dt
import email.utils
import logging
import random

from django.utils import timezone
from tenacity import Retrying, retry_if_exception

from ..entities import ENTITIES
from ..exceptions import (
    AdapterError,
    AmbiguousWriteError,
    ConfigurationError,
    MappingError,
    RemoteNotFound,
    TransientAdapterError,
)
from . import notion_properties as props
from .base import REQUIRED, ChangePage, CRMAdapter, RemoteRecord
from .ratelimit import RateBudget

try:
    import httpx
    import notion_client
    from notion_client.errors import HTTPResponseError, RequestTimeoutError
except ImportError:  # pragma: no cover - exercised by users without the extra
    notion_client = None

logger = logging.getLogger(__name__)
API_VERSION = "2025-09-03"
PAGE_SIZE = 100
# The option names of each entity's database ids in OPTIONS.
DATABASE_OPTIONS = {
    "deal": ("database_id", "data_source_id"),
    "contact": ("contacts_database_id", "contacts_data_source_id"),
    "activity": ("activities_database_id", "activities_data_source_id"),
}


def parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def notion_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class NotionAdapter(CRMAdapter):
    OPTIONS = {
        "token": REQUIRED,
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
        # Longest single wait between retries; a Retry-After beyond it gives up instead.
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

    def __init__(self, alias, **options):
        if notion_client is None:
            raise ConfigurationError("NotionAdapter needs notion-client: pip install 'crmsync[notion]'.")
        super().__init__(alias, **options)
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
        self._data_sources: dict[str, str] = {}
        self._schemas: dict[str, dict] = {}
        self._warned: set = set()
        self._requests = 0
        self.server_time: dt.datetime | None = None  # Notion's clock, from the last Date header
        self._clock_offset: dt.timedelta | None = None  # Notion's clock minus ours
        rate = self.options["requests_per_second"]
        self.budget = RateBudget(f"notion:{alias}", rate, self.options["burst"]) if rate else None

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

    def choice_options(self, entity: str) -> dict[str, dict]:
        configured = (self.options["choice_options"] or {}).get(entity, {})
        return {
            field: {**props.DEFAULT_OPTIONS.get((entity, field), {}), **configured.get(field, {})}
            for field, spec in ((s.name, s) for s in ENTITIES[entity].fields)
            if spec.kind == "choice"
        }

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
        if self.budget:
            self.budget.acquire()
        self._requests += 1

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
            retry_after = None
            with contextlib.suppress(TypeError, ValueError):
                retry_after = float(err.headers.get("retry-after"))
            if status == 429 or code == "rate_limited":
                return TransientAdapterError(
                    message, alias=self.alias, status=status, code=code, retry_after=retry_after
                )
            if status >= 500 or code == "conflict_error":
                cls = AmbiguousWriteError if create and status >= 500 else TransientAdapterError
                return cls(message, alias=self.alias, status=status, code=code, retry_after=retry_after)
            if status == 404:
                return RemoteNotFound(message, alias=self.alias, status=status, code=code)
            return AdapterError(message, alias=self.alias, status=status, code=code)
        raise err

    def _wait(self, retry_state) -> float:
        # Exponential backoff with "equal jitter": half fixed, half random.
        ceiling = min(30.0, self.options["retry_backoff"] * 2 ** (retry_state.attempt_number - 1))
        backoff = ceiling / 2 + random.uniform(0, ceiling / 2)
        retry_after = getattr(retry_state.outcome.exception(), "retry_after", None) or 0
        if retry_after and self.budget:
            self.budget.hold_off(retry_after)
        return max(backoff, retry_after)

    def _stop(self, retry_state) -> bool:
        error = retry_state.outcome.exception()
        too_long = (getattr(error, "retry_after", None) or 0) > self.options["max_retry_wait"]
        return too_long or retry_state.attempt_number > self.options["max_retries"]

    def _call(self, method, *, create: bool = False, **kwargs):
        def retryable(err):
            return isinstance(err, TransientAdapterError) and not isinstance(err, AmbiguousWriteError)

        for attempt in Retrying(
            retry=retry_if_exception(retryable), wait=self._wait, stop=self._stop, reraise=True
        ):
            with attempt:
                try:
                    return method(**kwargs)
                except Exception as err:
                    raise self._wrap(err, create=create) from err

    # --- Data sources and schema ----------------------------------------------------------

    def data_source_id(self, entity: str) -> str:
        if entity not in self._data_sources:
            database_option, source_option = DATABASE_OPTIONS[entity]
            source_id = self.options[source_option]
            if not source_id:
                database_id = self.options[database_option]
                if not database_id:
                    raise ConfigurationError(
                        f'Connection {self.alias!r} has no {entity} database: set CRMSYNC["CONNECTIONS"]'
                        f'[{self.alias!r}]["OPTIONS"][{database_option!r}].'
                    )
                database = self._call(self.client.databases.retrieve, database_id=database_id)
                sources = database.get("data_sources") or []
                if len(sources) != 1:
                    names = ", ".join(f"{s.get('name')!r} ({s['id']})" for s in sources) or "none"
                    raise ConfigurationError(
                        f"Notion database {database_id} has {len(sources)} data sources ({names}): set "
                        f'CRMSYNC["CONNECTIONS"][{self.alias!r}]["OPTIONS"][{source_option!r}] to the one to sync.'
                    )
                source_id = sources[0]["id"]
            self._data_sources[entity] = source_id
        return self._data_sources[entity]

    def schema(self, entity: str) -> dict:
        """{property name: schema entry} of the entity's data source (fetched once)."""
        if entity not in self._schemas:
            source = self._call(self.client.data_sources.retrieve, data_source_id=self.data_source_id(entity))
            self._schemas[entity] = source.get("properties") or {}
        return self._schemas[entity]

    def schema_problems(self, entity: str) -> list[str]:
        """Every mapped property missing from the data source or of a type that cannot hold it."""
        schema = self.schema(entity)
        problems = []
        wanted = {**self.mapping(entity), "id": (props.SYNC_ID_PROPERTY, "rich_text")}
        for field, (prop, ptype) in wanted.items():
            actual = schema.get(prop, {}).get("type")
            kind = "text" if field == "id" else ENTITIES[entity].field(field).kind
            allowed = {ptype} | ({"select", "status"} if kind == "choice" else set())
            if actual is None:
                problems.append(f"{entity}: property {prop!r} ({ptype}, for {field}) is missing")
            elif actual not in allowed:
                problems.append(f"{entity}: property {prop!r} is {actual}, expected {ptype} (for {field})")
        return problems

    def check(self) -> list[str]:
        problems = []
        for entity in sorted(self.entities):
            try:
                problems += self.schema_problems(entity)
            except AdapterError as err:
                problems.append(f"{entity}: cannot read the data source: {err}")
        return problems

    # --- Translation -------------------------------------------------------------------------

    def _kinds(self, entity):
        return {spec.name: spec.kind for spec in ENTITIES[entity].fields}

    def page_to_record(self, entity: str, page: dict) -> RemoteRecord:
        mapping = self.mapping(entity)
        wanted = {prop for prop, _ in mapping.values()} | {props.SYNC_ID_PROPERTY}
        for name, value in (page.get("properties") or {}).items():
            if name in wanted and isinstance(value, dict) and props.page_is_truncated(value):
                page["properties"][name] = self._read_full_property(page["id"], value)
        values = props.page_to_values(page, mapping, self._kinds(entity), self.choice_options(entity))
        sync_value = (page.get("properties") or {}).get(props.SYNC_ID_PROPERTY)
        sync_id = props.from_property(sync_value, "text") if isinstance(sync_value, dict) else None
        return RemoteRecord(
            remote_id=page["id"],
            sync_id=sync_id.strip() if sync_id else None,
            values=values,
            modified_at=parse_time(page.get("last_edited_time")),
            archived=bool(page.get("in_trash") or page.get("archived")),
            created_at=parse_time(page.get("created_time")),
            raw=page,
        )

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

    def to_properties(self, entity: str, values: dict) -> dict:
        """Request properties for ``values``; refuses what Notion would refuse (MappingError).

        The data source's schema (read once) decides how a property is written (select
        and status differ; status options must exist). Mapped properties the data
        source lacks are left out and logged once; ``crmsync_check`` lists them.
        """
        schema = self.schema(entity)
        mapping = {}
        for field, (prop, ptype) in self.mapping(entity).items():
            if prop in schema:
                mapping[field] = (prop, ptype)
            elif (entity, prop) not in self._warned:
                self._warned.add((entity, prop))
                logger.warning(
                    "%s: Notion property %r (for %s.%s) does not exist; it is not synced",
                    self.alias,
                    prop,
                    entity,
                    field,
                )
        options = self.choice_options(entity)
        types = {name: entry.get("type") for name, entry in schema.items()}
        for field, value in values.items():
            if field not in mapping or value is None:
                continue
            prop = mapping[field][0]
            if types.get(prop) == "status":
                name = options.get(field, {}).get(value, value)
                known = {o["name"] for o in schema[prop].get("status", {}).get("options", [])}
                if name not in known:
                    raise MappingError(
                        f"{field} → {prop!r}: status option {name!r} does not exist in Notion "
                        f"(options: {', '.join(sorted(known))})",
                        field=field,
                        prop=prop,
                    )
        return props.values_to_properties(values, mapping, options, types)

    # --- Hooks ---------------------------------------------------------------------------------

    def create(self, entity, values, sync_id):
        properties = self.to_properties(entity, values)
        properties[props.SYNC_ID_PROPERTY] = {"rich_text": props.rich_text(str(sync_id))}
        page = self._call(
            self.client.pages.create,
            create=True,
            parent={"type": "data_source_id", "data_source_id": self.data_source_id(entity)},
            properties=properties,
        )
        return self.page_to_record(entity, page)

    def update(self, entity, remote_id, changes, *, sync_id: str | None = None):
        properties = self.to_properties(entity, changes)
        if sync_id is not None:
            properties[props.SYNC_ID_PROPERTY] = {"rich_text": props.rich_text(str(sync_id))}
        page = self._call(self.client.pages.update, page_id=remote_id, properties=properties)
        return self.page_to_record(entity, page)

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

    def _query(self, entity, *, filter=None, sorts=None, in_trash=False):
        """Yield (response, records) per result page; restarts nothing (see iter_changes)."""
        kwargs = {"data_source_id": self.data_source_id(entity), "page_size": PAGE_SIZE, "in_trash": in_trash}
        if filter:
            kwargs["filter"] = filter
        if sorts:
            kwargs["sorts"] = sorts
        cursor = None
        while True:
            response = self._call(
                self.client.data_sources.query, **kwargs, **({"start_cursor": cursor} if cursor else {})
            )
            yield response, [self.readable_record(entity, page) for page in response.get("results", [])]
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def find_by_sync_id(self, entity, sync_id):
        flt = {"property": props.SYNC_ID_PROPERTY, "rich_text": {"equals": str(sync_id)}}
        sorts = [{"timestamp": "created_time", "direction": "ascending"}]
        for in_trash in (False, True):
            found = [
                r
                for _, records in self._query(entity, filter=flt, sorts=sorts, in_trash=in_trash)
                for r in records
            ]
            if found:
                return found
        return []

    def iter_changes(self, entity, since, *, by="modified", include_trashed=True):
        """Pages whose ``by`` time ("modified" or "created") is on or after ``since``.

        Trashed pages come first (one ``in_trash`` query; ordinary queries leave them
        out) with no checkpoint; live pages follow in ascending time, each result page
        with its last time as checkpoint. A query stopped by Notion's 10,000-row cap is
        continued by a new query from the last time seen (boundary rows repeat). Every
        page carries ``as_of``: Notion's clock (Date header) at the first answer.
        """
        timestamp = "last_edited_time" if by == "modified" else "created_time"
        sorts = [{"timestamp": timestamp, "direction": "ascending"}]
        as_of = None

        def window(after):
            return {"timestamp": timestamp, timestamp: {"on_or_after": notion_time(after)}} if after else None

        if include_trashed:
            for _, records in self._query(entity, filter=window(since), sorts=sorts, in_trash=True):
                as_of = as_of or self.server_time
                yield ChangePage(records, checkpoint=None, as_of=as_of)
        after = since
        while True:
            capped, last = False, None
            for response, records in self._query(entity, filter=window(after), sorts=sorts):
                if records:
                    last = getattr(records[-1], "modified_at" if by == "modified" else "created_at")
                as_of = as_of or self.server_time
                yield ChangePage(records, checkpoint=last, as_of=as_of)
                capped = (response.get("request_status") or {}).get("type") == "incomplete"
            if not capped or last is None or last == after:
                return
            after = last

    def search(self, entity, flt):
        conditions = []
        if flt.stage:
            prop = self.mapping(entity)["stage"][0]
            name = self.choice_options(entity)["stage"].get(flt.stage, flt.stage)
            conditions.append({"property": prop, "select": {"equals": name}})
        if flt.modified_since:
            conditions.append(
                {
                    "timestamp": "last_edited_time",
                    "last_edited_time": {"on_or_after": notion_time(flt.modified_since)},
                }
            )
        if flt.sync_id:
            conditions.append({"property": props.SYNC_ID_PROPERTY, "rich_text": {"equals": str(flt.sync_id)}})
        query_filter = {"and": conditions} if len(conditions) > 1 else (conditions[0] if conditions else None)
        for in_trash in (False, True) if flt.include_archived else (False,):
            for _, records in self._query(entity, filter=query_filter, in_trash=in_trash):
                yield from records

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
