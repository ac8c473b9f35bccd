"""What Notion refuses: request property values, rich text, options and ids (400
``validation_error``, with Notion's messages)."""

import json
import zoneinfo
from urllib.parse import unquote

from .store import (
    ANNOTATIONS,
    ARRAY_LIMIT,
    READ_ONLY_TYPES,
    TEXT_LIMIT,
    Mixin,
    _fail,
    normal_id,
    parse_time,
    utf16_len,
)

# The path parameter each endpoint's first id is, in Notion's messages.
PATH_IDS = {"databases": "database_id", "data_sources": "data_source_id", "pages": "page_id"}


class ValidationMixin(Mixin):
    def _path_ids(self, endpoint: str, args: tuple) -> tuple:
        """The path's object id in its dashed form: Notion takes ids with or without
        dashes, and answers 400 (not 404) for what is no id at all."""
        if not args or endpoint.split(".")[0] not in PATH_IDS:
            return args
        param = PATH_IDS[endpoint.split(".")[0]]
        value = unquote(args[0])
        dashed = normal_id(value)
        if dashed is None:
            _fail(f'path failed validation: path.{param} should be a valid uuid, instead was `"{value}"`.')
        return (dashed, *args[1:])

    def _body_id(self, value, where: str) -> str:
        dashed = normal_id(value) if isinstance(value, str) else None
        if dashed is None:
            _fail(
                f"body failed validation: {where} should be a valid uuid, instead was `{json.dumps(value)}`."
            )
        return str(dashed)

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
            for key in ("start", "end"):
                if raw.get(key) is None and key == "end":
                    continue
                try:
                    parse_time(raw[key])
                except (TypeError, ValueError):
                    _fail(
                        f"body failed validation: {where}.date.{key} should be an ISO 8601 date, instead was `{raw[key]}`."
                    )
            time_zone = raw.get("time_zone")
            if time_zone is not None:
                try:
                    zoneinfo.ZoneInfo(time_zone)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
                    _fail(f"body failed validation: {where}.date.time_zone should be an IANA time zone.")
                for key in ("start", "end"):
                    text = raw.get(key) or ""
                    if text and (
                        "T" not in text or text.endswith("Z") or "+" in text[10:] or "-" in text[10:]
                    ):
                        _fail(
                            f"body failed validation: {where}.date.{key} cannot carry a UTC offset or be a "
                            "date without a time when time_zone is given."
                        )
            return {"start": raw["start"], "end": raw.get("end"), "time_zone": time_zone}
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
            return [
                {"id": self._body_id(item["id"], f"{where}.{ptype}[{i}].id")} for i, item in enumerate(raw)
            ]
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
            if isinstance(item, dict) and item.get("type") in ("mention", "equation"):
                items.append(self._rich_text_item(item, f"{where}[{index}]"))
                continue
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

    def _rich_text_item(self, item, where):
        """A mention or equation item, kept as sent; its ``plain_text`` is what was sent
        (recorded items carry Notion's rendering) or a rendering of the mention."""
        kind = item["type"]
        body = item.get(kind)
        if not isinstance(body, dict):
            _fail(f"body failed validation: {where}.{kind} should be an object.")
        if kind == "equation" and not isinstance(body.get("expression"), str):
            _fail(f"body failed validation: {where}.equation.expression should be a string.")
        plain = item.get("plain_text")
        if plain is None:
            inner = body.get(body.get("type")) or {}
            plain = {
                "equation": body.get("expression"),
                "user": "@" + str(inner.get("name") or "Anonymous"),
                "page": "Untitled",
                "database": "Untitled",
                "date": inner.get("start"),
                "link_preview": inner.get("url"),
            }.get(body.get("type") if kind == "mention" else "equation", "")
        return {
            "type": kind,
            kind: body,
            "annotations": {**ANNOTATIONS, **(item.get("annotations") or {})},
            "plain_text": plain or "",
            "href": item.get("href"),
        }

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
