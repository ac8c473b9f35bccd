"""A JSON parser that answers 400, never 500, to any body."""

import codecs
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.settings import api_settings
from rest_framework.utils import json

# Deeper than anything the API takes (a list of tags is two levels); far below the
# depth at which Python's json module raises RecursionError.
MAX_DEPTH = 32
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?|[\[\]{}]')


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data`` nests more than ``limit`` lists or objects (iteratively: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def deepest_key(text: str, limit: int = MAX_DEPTH) -> str:
    """The top-level key whose value nests beyond ``limit`` (non_field_errors if none)."""
    depth, key = 0, None
    for match in _TOKENS.finditer(text):
        token = match.group(0)
        if token[0] == '"':
            if match.group(1) and depth == 1:
                key = json.loads(token[: token.rindex(":")].rstrip())
        elif token in "[{":
            depth += 1
            if depth > limit:
                break
        else:
            depth -= 1
    return key if isinstance(key, str) and key else api_settings.NON_FIELD_ERRORS_KEY


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError:
            data, deep = None, True
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        else:
            deep = too_deep(data)
        if deep:
            raise ValidationError({deepest_key(text): [f"Nested more than {MAX_DEPTH} levels deep."]})
        return data
