"""Data source queries: filters (property, timestamp, compound), sorts, cursors,
``page_size`` and the result cap per query."""

import datetime as dt
import operator

from .store import MAX_PAGE_SIZE, Mixin, _fail, date_start, new_uuid, parse_time


class QueriesMixin(Mixin):
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
        result_type = body.get("result_type")
        if result_type not in (None, "page", "data_source"):
            _fail(
                f"body failed validation: body.result_type should be `page` or `data_source`, instead was `{result_type}`."
            )
        rows = [] if result_type == "data_source" else list(self.pages.values())
        if result_type != "page":
            rows += list(self.wiki_rows.values())
        pages = [
            page
            for page in rows
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
        # The query matches more than it may return: every page of its result says so.
        capped = len(returned) + len(remaining) > self.query_result_cap
        has_more = len(remaining) > len(results) and len(results) < room
        next_cursor = None
        if has_more:
            next_cursor = str(new_uuid())
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
        name = self._property_name(source, key)
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
                name in page["properties"]
                and (raw := page["properties"][name]["date"]) is not None
                and test(date_start(raw))
            )
        # A wiki's data-source rows have no properties: no property filter matches them.
        return lambda page: (
            name in page["properties"] and self._condition(ptype, page["properties"][name][ptype], condition)
        )

    def _property_name(self, source, key):
        """The name of the property named or identified by ``key`` (Notion takes either)."""
        if key in source["properties"]:
            return key
        return next((n for n, e in source["properties"].items() if e["id"] == key), None)

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
        elif ptype in ("number", "unique_id"):
            value = raw["number"] if ptype == "unique_id" and raw else raw
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
                name = self._property_name(source, sort.get("property"))
                if name is None:
                    _fail(f"Could not find sort property with name or id: {sort.get('property')}")
                result.sort(key=lambda p, n=name: self._sort_key(p["properties"].get(n)), reverse=reverse)
        return result

    def _sort_key(self, value):
        if value is None:
            return (0, "")
        simple = self._simple(value)
        if simple is None:
            return (0, "")
        if isinstance(simple, list):
            return (1, ",".join(map(str, simple)))
        if isinstance(simple, dict):  # a date range
            return (1, simple.get("start") or "")
        return (1, simple)
