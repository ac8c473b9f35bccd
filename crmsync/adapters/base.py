"""The contract every CRM adapter implements.

An adapter speaks in normalized values (``crmsync.entities.normal_form``) keyed by
local field names; it knows nothing of ownership rules or of the local database.
Concrete adapters implement the entity-generic hooks (``create``, ``update``, ``get``,
``find_by_sync_id``, ``iter_changes``, ``trash``, ``restore``); the eight public
operations of the contract are built on them here, so deals and contacts share
one code path.
"""

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, NoReturn

from django.views.decorators.debug import sensitive_variables

from ..entities import ACTIVITY, CONTACT, DEAL, ENTITIES, normal_values
from ..exceptions import ConfigurationError

REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class RemoteRecord:
    """A record as the CRM holds it; also the change record of ``get_changes_since``.

    ``values`` are normalized and keyed by local field names; a value the adapter
    could not map (an unknown stage option, say) is an ``Unmapped``.
    """

    remote_id: str
    sync_id: str | None
    values: dict[str, Any]
    modified_at: dt.datetime | None
    archived: bool = False
    created_at: dt.datetime | None = None
    raw: dict | None = dataclasses.field(default=None, repr=False, compare=False)
    # Set when the record could not be read (a malformed answer): values are then empty
    # and the engine counts a failure for this record instead of stopping the run.
    error: str | None = None


Change = RemoteRecord


@dataclasses.dataclass(frozen=True)
class Unmapped:
    """A remote value with no local equivalent (e.g. a stage option the mapping lacks)."""

    raw: Any

    def __str__(self):
        return f"unmapped value {self.raw!r}"


@dataclasses.dataclass(frozen=True)
class ChangePage:
    """One page of remote changes and the checkpoint to resume after it."""

    records: list[RemoteRecord]
    checkpoint: dt.datetime | None
    # The CRM's clock when the listing began, if it tells (HTTP Date): every record
    # modified before it (minus an overlap) has been seen once the listing completes.
    as_of: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class OpportunityData:
    """A deal to create remotely; ``contact_email`` relates it to a contact."""

    name: str
    stage: str = "prospecting"
    value: Decimal | None = None
    close_date: dt.date | None = None
    probability: int | None = None
    confidence: Decimal | None = None
    qualification: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()
    contact_email: str | None = None

    def to_values(self) -> dict:
        values = dataclasses.asdict(self)
        values["contact"] = values.pop("contact_email")
        return normal_values(DEAL, values)


@dataclasses.dataclass(frozen=True)
class ContactData:
    name: str
    email: str | None = None
    phone: str = ""
    company: str = ""
    title: str = ""

    def to_values(self) -> dict:
        return normal_values(CONTACT, dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class ActivityData:
    """An activity to create remotely, related to its deal by the deal's remote id."""

    subject: str
    kind: str
    occurred_at: dt.datetime
    body: str = ""
    opportunity_remote_id: str | None = None

    def to_values(self) -> dict:
        values = dataclasses.asdict(self)
        values["opportunity"] = values.pop("opportunity_remote_id")
        return normal_values(ACTIVITY, values)


@dataclasses.dataclass(frozen=True)
class OpportunityFilter:
    """What ``list_opportunities`` returns: every field set must match."""

    stage: str | None = None
    modified_since: dt.datetime | None = None
    sync_id: str | None = None
    include_archived: bool = False


def _expected_type(default: Any) -> tuple[tuple[type, ...], str] | None:
    """The types an option with this default accepts (None: any)."""
    if isinstance(default, bool):
        return (bool,), "True or False"
    if isinstance(default, int | float):
        return (int, float), "a number"
    if isinstance(default, str):
        return (str,), "a string"
    if isinstance(default, dict):
        return (dict,), "a dict"
    if isinstance(default, list | tuple):
        return (list, tuple), "a list"
    return None


def _is_a(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int to Python, but True is no number of requests per second; nor is NaN
    # or infinity.
    if isinstance(value, float) and float in types and not math.isfinite(value):
        return False
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


class CRMAdapter:
    """Base class of CRM adapters.

    Subclasses declare ``OPTIONS`` ({name: default, or REQUIRED}); the registry
    passes ``CRMSYNC["CONNECTIONS"][alias]["OPTIONS"]`` as keyword arguments and an
    unknown, missing, mistyped or out-of-range option (``option_problems``) is a
    ``ConfigurationError`` naming the setting.

    Every operation raises ``AdapterError`` subclasses only: ``TransientAdapterError``
    when a retry may succeed, ``AmbiguousWriteError`` when a create may or may not
    have been applied, ``RemoteNotFound`` for a missing record, ``MappingError`` for a
    value the CRM cannot take (before any request is sent).
    """

    OPTIONS: Mapping[str, Any] = {}
    # (types, "what to write") of options whose default does not tell (None or REQUIRED).
    OPTION_TYPES: Mapping[str, tuple[tuple[type, ...], str]] = {}
    # Options whose value is never shown in a message (tokens).
    SECRET_OPTIONS: frozenset[str] = frozenset()
    # Entities this adapter syncs; may depend on options (see ``entities``).
    ENTITIES: frozenset[str] = frozenset(ENTITIES)
    # How the CRM's change listing behaves; the engine knows no vendor and reads these.
    # Modification times are floored to this (Notion: a minute): the time rule of
    # DESIGN §3 compares both sides at this precision.
    TIME_GRANULARITY: dt.timedelta = dt.timedelta(0)
    # An incremental listing re-reads this long before its watermark (late-visible or
    # floored modification times).
    LISTING_OVERLAP: dt.timedelta = dt.timedelta(0)

    @sensitive_variables("options")
    def __init__(self, alias: str, **options):
        self.alias = alias
        problems = self.option_problems(alias, options)
        if problems:
            raise ConfigurationError(problems[0])
        self.options = {name: options.get(name, default) for name, default in self.OPTIONS.items()}

    @classmethod
    def option_problems(cls, alias: str, options: Mapping[str, Any]) -> list[str]:
        """Every unknown, missing, mistyped or out-of-range option, each message naming its
        setting (the system check reports them all; construction raises the first). A
        secret option's value is never shown."""
        setting = f'CRMSYNC["CONNECTIONS"][{alias!r}]["OPTIONS"]'
        unknown = sorted(set(options) - set(cls.OPTIONS))
        problems = [
            f"Unknown option {setting}[{name!r}] for {cls.__name__}; known options: "
            f"{', '.join(sorted(cls.OPTIONS))}."
            for name in unknown
        ]
        for name, default in cls.OPTIONS.items():
            value = options.get(name, default)
            shown = "(hidden)" if name in cls.SECRET_OPTIONS else repr(value)
            if value is REQUIRED or (default is REQUIRED and value in (None, "")):
                problems.append(f"Missing option {setting}[{name!r}] required by {cls.__name__}.")
                continue
            expected = cls.OPTION_TYPES.get(name) or _expected_type(default)
            if value is None:
                continue
            if expected and not _is_a(value, expected[0]):
                problems.append(
                    f"{setting}[{name!r}] = {shown}: expected {expected[1]} (for {cls.__name__})."
                )
                continue
            why = cls.option_problem(name, value)
            if why:
                problems.append(f"{setting}[{name!r}] = {shown}: {why}")
        return problems

    @classmethod
    def option_problem(cls, name: str, value: Any) -> str | None:
        """Why a well-typed option value cannot be used (a negative count, say), or None.
        Adapters override it for their options' ranges and forms."""
        return None

    def __repr__(self):
        # Options may hold secrets; never show them.
        return f"<{type(self).__name__} {self.alias!r}>"

    @property
    def entities(self) -> frozenset[str]:
        return self.ENTITIES

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent since the adapter was built, retries and 429s included."""
        return 0

    def close(self) -> None:
        """Release clients and connections."""

    def reload_state(self) -> None:
        """Forget what this process keeps of the CRM side (a schema, resolved ids), so the
        next use reads what other processes stored since. A long-lived process (a web
        server, a cluster worker) calls it before each run and each health read."""

    def refused_values(self, entity: str, values: Mapping[str, Any]) -> dict[str, str]:
        """{field: why} of the normalized ``values`` this CRM would refuse, judged from the
        configuration alone (no request): the admin and the API refuse them before
        saving. A refusal only the CRM's live schema reveals still fails at sync, visibly."""
        return {}

    def mapped_fields(self, entity: str) -> list[str]:
        """The fields of ``entity`` this connection syncs (all of them by default)."""
        return list(ENTITIES[entity].field_names)

    def remote_url(self, entity: str, remote_id: str) -> str | None:
        """A link to the record in the CRM's own UI, when it has one."""
        return None

    def check(self) -> list[str]:
        """Problems with the remote side (missing properties, wrong types); may send requests."""
        return []

    @property
    def clock_offset(self) -> dt.timedelta | None:
        """The CRM's clock minus the local clock, as last measured (None: unknown).

        The engine compares local edit times with remote ones on one clock (DESIGN §8)."""
        return None

    def blocked_fields(self, entity: str) -> dict[str, str]:
        """{field: reason} of mapped fields that cannot sync now (a property missing or of
        another type in the CRM). The engine neither pushes them nor records them as agreed;
        ``iter_changes`` and ``get`` leave them out of ``values``. May send requests."""
        return {}

    def deferred_until(self) -> dt.datetime | None:
        """When the CRM allows this connection to send again, if it asked to wait longer
        than the adapter waits within a run (``RateLimitDeferred``); None otherwise."""
        return None

    def field_sources(self, entity: str) -> dict[str, str]:
        """{field: where the CRM keeps it now} (Notion: the property id), for the fields it
        can say so of. When a field's source changes (a property deleted and made again,
        a mapping pointed at another property), what was agreed for it no longer says what
        the CRM holds: the engine then takes the local values as the truth for that field
        and writes them to the new source."""
        return {}

    def match_field(self, entity: str) -> str | None:
        """The field that links an unlinked remote record without a sync id to an unlinked
        local record on the first sync (exact, case-insensitive for emails), or None."""
        return "email" if entity == "contact" else None

    # --- Entity-generic hooks: what a concrete adapter implements -----------------

    def _unimplemented(self, hook: str) -> NoReturn:
        raise NotImplementedError(f"{type(self).__name__} does not implement {hook}()")

    def create(self, entity: str, values: dict, sync_id: str) -> RemoteRecord:
        """Create a remote record carrying ``sync_id``; returns it as stored.

        Raises AmbiguousWriteError when the request was sent but its outcome is unknown.
        """
        return self._unimplemented("create")

    def update(
        self, entity: str, remote_id: str, changes: dict, *, sync_id: str | None = None
    ) -> RemoteRecord:
        """Set only the fields in ``changes`` (and the sync id when given) in one request;
        returns the record as stored."""
        return self._unimplemented("update")

    def write_sync_id(self, entity: str, remote_id: str, sync_id: str) -> None:
        """Set only the record's sync id (a record just pulled gets its local twin's id).
        An adapter may skip reading the answer back: nothing but the id changed."""
        self.update(entity, remote_id, {}, sync_id=sync_id)

    def get(self, entity: str, remote_id: str) -> RemoteRecord:
        """The record, archived/trashed ones included; RemoteNotFound when absent."""
        return self._unimplemented("get")

    def find_by_sync_id(self, entity: str, sync_id: str) -> list[RemoteRecord]:
        """Every remote record (trashed ones included) carrying ``sync_id``, oldest first."""
        return self._unimplemented("find_by_sync_id")

    def iter_changes(
        self,
        entity: str,
        since: dt.datetime | None,
        *,
        by: str = "modified",
        include_trashed: bool = True,
    ) -> Iterator[ChangePage]:
        """Records whose ``by`` time ("modified" or "created") is on or after ``since``
        (all records when None), as pages.

        With ``include_trashed``, trashed records come too (in pages of their own with no
        checkpoint, or in the same ordered listing); without it, none do. Live records
        come in ascending order of the ``by`` time; a page's checkpoint, when not None,
        is a time such that every live record before it has been yielded (safe to resume
        from). May yield a record twice; never skips one. ``as_of`` on each page, when the
        CRM tells its clock: the time the listing began."""
        return self._unimplemented("iter_changes")

    def trash(self, entity: str, remote_id: str) -> RemoteRecord:
        """Archive (move to trash) a remote record; nothing is hard-deleted."""
        return self._unimplemented("trash")

    def restore(self, entity: str, remote_id: str) -> RemoteRecord:
        """Undo ``trash``."""
        return self._unimplemented("restore")

    def search(self, entity: str, flt: OpportunityFilter) -> Iterator[RemoteRecord]:
        """Records matching a filter (used by ``list_opportunities``)."""
        return self._unimplemented("search")

    # --- The public contract ------------------------------------------------------

    def create_opportunity(self, data: OpportunityData, sync_id: str) -> RemoteRecord:
        return self.create("deal", data.to_values(), sync_id)

    def update_opportunity(self, remote_id: str, changes: Mapping[str, Any]) -> RemoteRecord:
        """``changes``: a partial {deal field: value}; only those fields are written."""
        return self.update("deal", remote_id, normal_values(DEAL, dict(changes)))

    def get_opportunity(self, remote_id: str) -> RemoteRecord:
        return self.get("deal", remote_id)

    def list_opportunities(self, flt: OpportunityFilter | None = None) -> list[RemoteRecord]:
        return list(self.search("deal", flt or OpportunityFilter()))

    def create_contact(self, data: ContactData, sync_id: str) -> RemoteRecord:
        return self.create("contact", data.to_values(), sync_id)

    def update_contact(self, remote_id: str, changes: Mapping[str, Any]) -> RemoteRecord:
        return self.update("contact", remote_id, normal_values(CONTACT, dict(changes)))

    def create_activity(self, data: ActivityData, sync_id: str) -> RemoteRecord:
        return self.create("activity", data.to_values(), sync_id)

    def get_changes_since(self, cursor: dt.datetime | None, entity: str = "deal") -> Iterator[Change]:
        """Every change on or after ``cursor`` (may repeat a record, never skips one)."""
        for page in self.iter_changes(entity, cursor, by="modified", include_trashed=True):
            yield from page.records
