"""The Notion adapter's knowledge of the remote side: which data source holds each
entity, its schema (property ids and types), the fields blocked by schema drift, and
the state that keeps all of it across processes (``SyncConnection.remote_state``).

A mixin of ``NotionAdapter``: it calls the API through the adapter's ``_call``.
"""

import contextlib
import time
from typing import TYPE_CHECKING, Any

from ..entities import ENTITIES
from ..exceptions import AdapterError, ConfigurationError
from . import notion_properties as props

PAGE_SIZE = 100
# The option names of each entity's database ids in OPTIONS.
DATABASE_OPTIONS = {
    "deal": ("database_id", "data_source_id"),
    "contact": ("contacts_database_id", "contacts_data_source_id"),
    "activity": ("activities_database_id", "activities_data_source_id"),
}
# At most one schema re-read per entity in this long (drift seen in pages, or an unknown
# status option).
SCHEMA_REFRESH = 60.0


def schema_entry(entry: dict) -> dict:
    """What is kept of a data source's schema entry: id, type, status option names."""
    kept = {"id": entry.get("id"), "type": entry.get("type")}
    if entry.get("type") == "status":
        kept["options"] = [o.get("name") for o in (entry.get("status") or {}).get("options") or []]
    return kept


# A part of NotionAdapter: to a type checker it has the adapter's attributes.
_AdapterPart: Any = Any if TYPE_CHECKING else object


class NotionSchema(_AdapterPart):
    _remote: dict | None

    def _state(self, entity: str) -> dict:
        """What is known of ``entity``'s data source, for the configured ids (a changed
        setting starts afresh)."""
        from ..models import SyncConnection

        if self._remote is None:
            stored = SyncConnection.objects.filter(alias=self.alias).values_list("remote_state", flat=True)
            self._remote = dict(((stored.first() or {}).get("notion")) or {})
        configured = {name: self.options[name] for name in DATABASE_OPTIONS[entity]}
        state = self._remote.get(entity)
        if not isinstance(state, dict) or state.get("configured") != configured:
            state = self._remote[entity] = {"configured": configured}
        return state

    def _save_state(self) -> None:
        from ..models import SyncConnection

        value = {"notion": self._remote or {}}
        if not SyncConnection.objects.filter(alias=self.alias).update(remote_state=value):
            SyncConnection.objects.get_or_create(alias=self.alias, defaults={"remote_state": value})

    def reload_state(self) -> None:
        self._remote = None
        self._data_sources.clear()
        self._schemas.clear()
        self._resolved.clear()

    def _forget(self, entity: str) -> None:
        """Drop what is known of ``entity``'s data source (it answered 404)."""
        self._data_sources.pop(entity, None)
        self._schemas.pop(entity, None)
        self._resolved.pop(entity, None)
        state = self._state(entity)
        for key in ("data_source_id", "schema"):
            state.pop(key, None)
        self._save_state()

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
                state = self._state(entity)
                source_id = state.get("data_source_id")
                if not source_id:
                    source_id = self._resolve_data_source(entity, database_id, source_option)
                    state["data_source_id"] = source_id
                    self._save_state()
            self._data_sources[entity] = source_id
        return self._data_sources[entity]

    def _resolve_data_source(self, entity, database_id, source_option) -> str:
        database = self._call(self.client.databases.retrieve, database_id=database_id)
        sources = database.get("data_sources") or []
        if len(sources) != 1:
            names = ", ".join(f"{s.get('name')!r} ({s['id']})" for s in sources) or "none"
            raise ConfigurationError(
                f"Notion database {database_id} has {len(sources)} data sources ({names}): set "
                f'CRMSYNC["CONNECTIONS"][{self.alias!r}]["OPTIONS"][{source_option!r}] to the one to sync.'
            )
        return sources[0]["id"]

    def schema(self, entity: str, *, refresh: bool = False) -> dict:
        """{property name: {"id", "type"[, "options"]}} of the entity's data source (read
        once, kept across processes; ``refresh`` reads it again)."""
        if refresh or entity not in self._schemas:
            state = self._state(entity)
            if refresh or "schema" not in state:
                source = self._on_source(entity, self.client.data_sources.retrieve)
                state = self._state(entity)
                state["schema"] = {
                    name: schema_entry(entry) for name, entry in (source.get("properties") or {}).items()
                }
                self._resolved.pop(entity, None)
                self._save_state()
            self._schemas[entity] = state["schema"]
        return self._schemas[entity]

    def resolved(self, entity: str) -> tuple[dict, dict]:
        """({field: (property name now, type, property id)}, {field: why it is blocked}) for
        every mapped field and "id" (the CRM Sync ID).

        A field follows the id of the property its configured name first resolved to, so
        a property renamed in Notion keeps syncing; a property that is missing, or of a
        type the field cannot hold, blocks the field.
        """
        if entity not in self._resolved:
            schema = self.schema(entity)
            names = {entry["id"]: name for name, entry in schema.items()}
            state = self._state(entity)
            known = state.setdefault("fields", {})
            wanted = {**self.mapping(entity), "id": (props.SYNC_ID_PROPERTY, "rich_text")}
            fields, blocked, changed = {}, {}, False
            for field, (prop, ptype) in wanted.items():
                kind = "text" if field == "id" else ENTITIES[entity].field(field).kind
                stored = known.get(field)
                if stored and stored[0] == prop and stored[1] in names:
                    name = names[stored[1]]
                elif prop in schema:
                    name = prop
                else:
                    blocked[field] = f"property {prop!r} ({ptype}, for {field}) is missing"
                    continue
                entry = schema[name]
                if stored != [prop, entry["id"]]:
                    known[field], changed = [prop, entry["id"]], True
                if entry["type"] not in props.allowed_types(kind, ptype):
                    blocked[field] = f"property {name!r} is {entry['type']}, expected {ptype} (for {field})"
                    continue
                fields[field] = (name, entry["type"], entry["id"])
            if changed:
                self._save_state()
            self._resolved[entity] = (fields, blocked)
        return self._resolved[entity]

    def blocked_fields(self, entity: str) -> dict[str, str]:
        """{field: reason} of the mapped fields whose Notion property is missing or has
        another type: they are left out of every record read and refused in updates."""
        return {field: why for field, why in self.resolved(entity)[1].items() if field != "id"}

    def field_sources(self, entity: str) -> dict[str, str]:
        """{field: the id of the Notion property it syncs with now} (blocked fields left out)."""
        return {field: pid for field, (_, _, pid) in self.resolved(entity)[0].items() if field != "id"}

    def id_property(self, entity: str) -> str | None:
        """The id of the data source's ID (``unique_id``) property, if it has one."""
        return next((e["id"] for e in self.schema(entity).values() if e["type"] == "unique_id"), None)

    def schema_problems(self, entity: str) -> list[str]:
        """Every mapped property missing from the data source or of a type that cannot hold it."""
        return [f"{entity}: {why}" for why in self.resolved(entity)[1].values()]

    def check(self) -> list[str]:
        problems = []
        for entity in sorted(self.entities):
            try:
                self.schema(entity, refresh=True)
                problems += self.schema_problems(entity)
            except AdapterError as err:
                problems.append(f"{entity}: cannot read the data source: {err}")
        return problems

    def advice(self) -> list[str]:
        """Recommendations that are not errors (``crmsync_check`` prints them)."""
        notes = []
        for entity in sorted(self.entities):
            with contextlib.suppress(AdapterError):
                if self.id_property(entity) is None:
                    first = self._on_source(entity, self.client.data_sources.query, page_size=PAGE_SIZE)
                    capped = (first.get("request_status") or {}).get("type") == "incomplete"
                    if first.get("has_more") or capped:
                        notes.append(
                            f"{entity}: the data source holds more than {PAGE_SIZE} pages and has no ID "
                            "(unique_id) property: add one, or a bulk import or edit of more than "
                            "10,000 pages in one minute cannot be read (the sync fails until then)."
                        )
        return notes

    def _maybe_refresh(self, entity: str, properties: dict, by_id: dict, fields: dict, blocked: dict) -> bool:
        """Read the schema again when a page's ``properties`` (``by_id``: by property id)
        show it changed (a mapped property gone or retyped, or a missing one back)."""
        drift = any((by_id.get(pid) or {}).get("type") != ptype for _, ptype, pid in fields.values()) or any(
            self._configured_name(entity, field) in properties for field in blocked
        )
        return drift and self._refresh_schema(entity)

    def _refresh_schema(self, entity: str) -> bool:
        """Read the schema again (Notion changed it), at most once per SCHEMA_REFRESH."""
        last = self._drift_read_at.get(entity)
        if last is not None and time.monotonic() - last < SCHEMA_REFRESH:
            return False
        self._drift_read_at[entity] = time.monotonic()
        self.schema(entity, refresh=True)
        return True

    def _configured_name(self, entity, field):
        return props.SYNC_ID_PROPERTY if field == "id" else self.mapping(entity)[field][0]
