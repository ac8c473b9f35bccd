"""What Notion refuses: request property values, rich text, options and ids (400
``validation_error``, with Notion's messages)."""

import json

from .store import ANNOTATIONS, ARRAY_LIMIT, READ_ONLY_TYPES, TEXT_LIMIT, _fail, parse_time, utf16_len


class ValidationMixin:
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
