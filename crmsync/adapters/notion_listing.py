"""The Notion adapter's queries: listings of changes past Notion's result cap per
query (split on an ID property when pages share one time), lookups by sync id, search.

A mixin of ``NotionAdapter``: it calls the API through the adapter's ``_on_source``.
"""

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..exceptions import CapExceeded
from . import notion_properties as props
from .base import ChangePage
from .notion_schema import PAGE_SIZE


def notion_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# A part of NotionAdapter: to a type checker it has the adapter's attributes.
_AdapterPart: Any = Any if TYPE_CHECKING else object


class NotionListing(_AdapterPart):
    def _query(self, entity, *, filter=None, sorts=None, in_trash=False):
        """Yield (response, records) per result page; restarts nothing (see iter_changes).

        Only pages are asked for (``result_type``); a wiki data source's rows that are
        data sources are skipped all the same, never counted as records.
        """
        kwargs = {"page_size": PAGE_SIZE, "in_trash": in_trash, "result_type": "page"}
        if filter:
            kwargs["filter"] = filter
        if sorts:
            kwargs["sorts"] = sorts
        cursor = None
        while True:
            response = self._on_source(
                entity,
                self.client.data_sources.query,
                **kwargs,
                **({"start_cursor": cursor} if cursor else {}),
            )
            pages = [row for row in response.get("results", []) if row.get("object", "page") == "page"]
            yield response, [self.readable_record(entity, page) for page in pages]
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def find_by_sync_id(self, entity, sync_id):
        flt = self._sync_id_filter(entity, sync_id)
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
        with its last time as checkpoint: every page before that time has been yielded.
        Every page carries ``as_of``: Notion's clock (Date header) at the first answer.

        A query stopped by Notion's 10,000-row cap goes on in a new query: from the last
        time seen or, when the data source has an ID (``unique_id``) property, from the
        last (time, ID) seen, so any number of pages sharing one time is read. Without an
        ID property, pages sharing one time beyond the cap raise ``CapExceeded`` (after
        the pages read so far, none past the ones not read).
        """
        timestamp = "last_edited_time" if by == "modified" else "created_time"
        as_of = None
        if include_trashed:
            for records, _ in self._windows(entity, since, timestamp, in_trash=True):
                as_of = as_of or self.server_time
                yield ChangePage(records, checkpoint=None, as_of=as_of)
        for records, last in self._windows(entity, since, timestamp):
            as_of = as_of or self.server_time
            yield ChangePage(records, checkpoint=last, as_of=as_of)

    def _windows(self, entity, since, timestamp, *, in_trash=False):
        """(records, last time seen) per result page, in ascending (time[, ID]) order,
        over as many queries as Notion's cap needs."""
        id_prop = self.id_property(entity)
        schema_read = False  # read again at the cap: an ID property may have been added since
        attr = "modified_at" if timestamp == "last_edited_time" else "created_at"

        def window(after, number):
            if after is None:
                return None
            on_or_after = {"timestamp": timestamp, timestamp: {"on_or_after": notion_time(after)}}
            if number is None:
                return on_or_after
            later = {"timestamp": timestamp, timestamp: {"after": notion_time(after)}}
            return {
                "and": [
                    on_or_after,
                    {"or": [later, {"property": id_prop, "unique_id": {"greater_than": number}}]},
                ]
            }

        after, number = since, None
        while True:
            capped, last, last_number, rows = False, None, None, 0
            flt = window(after, number)
            sorts = [{"timestamp": timestamp, "direction": "ascending"}]
            if id_prop:
                sorts.append({"property": id_prop, "direction": "ascending"})
            for response, records in self._query(entity, filter=flt, sorts=sorts, in_trash=in_trash):
                rows += len(response.get("results") or [])
                for record in records:
                    last = getattr(record, attr) or last
                    if id_prop:
                        last_number = _unique_number(record.raw, id_prop) or last_number
                yield records, last
                capped = capped or (response.get("request_status") or {}).get("type") == "incomplete"
            if not capped:
                return
            if id_prop and last is not None and last_number is not None:
                after, number = last, last_number
            elif last is not None and (after is None or last > after):
                after, number = last, None  # the pages at ``last`` are read again
            elif not schema_read:
                schema_read = True
                self.schema(entity, refresh=True)
                id_prop = self.id_property(entity)
                if not id_prop:
                    continue  # the same window once more, then CapExceeded
                after = last or after  # split this window on the new ID property
            else:
                where = f"{timestamp} {notion_time(last or after)}" if (last or after) else timestamp
                raise CapExceeded(
                    f"Notion stopped a query at its result cap ({rows:,} rows) among pages sharing one "
                    f"{where} in the {entity} data source: they cannot all be read. Add an ID (unique_id) "
                    "property to the data source; crmsync then splits the query on it.",
                    alias=self.alias,
                    code="query_result_limit_reached",
                    cap=rows,
                    at=last or after,
                )

    def search(self, entity, flt):
        conditions = []
        fields, _ = self.resolved(entity)
        if flt.stage and "stage" in fields:
            _, ptype, key = fields["stage"]
            name = self.choice_options(entity)["stage"].get(flt.stage, flt.stage)
            conditions.append({"property": key, ptype: {"equals": name}})
        if flt.modified_since:
            conditions.append(
                {
                    "timestamp": "last_edited_time",
                    "last_edited_time": {"on_or_after": notion_time(flt.modified_since)},
                }
            )
        if flt.sync_id:
            conditions.append(self._sync_id_filter(entity, flt.sync_id))
        query_filter = {"and": conditions} if len(conditions) > 1 else (conditions[0] if conditions else None)
        for in_trash in (False, True) if flt.include_archived else (False,):
            for _, records in self._query(entity, filter=query_filter, in_trash=in_trash):
                yield from records


def _unique_number(page: dict | None, prop_id: str) -> int | None:
    value = props.find_property((page or {}).get("properties") or {}, "", prop_id) or {}
    return (value.get("unique_id") or {}).get("number")
