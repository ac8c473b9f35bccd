"""Schema helpers: ``extend_schema`` that works under any host DEFAULT_SCHEMA_CLASS, and
the hook that documents the error answers every operation can give (crmsync's schema
view runs it; add it to your own SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] after
drf-spectacular's enum hook if your schema includes crmsync's routes).
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema


def extend_schema(**kwargs: Any) -> Any:
    """drf-spectacular's ``extend_schema`` for a view method, built on drf-spectacular's
    AutoSchema whatever REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] is. (The decorator runs at
    import and otherwise extends the host's default class: DRF's own AutoSchema in a new
    project, which breaks schema generation.)"""

    def decorator(method: Any) -> Any:
        if not hasattr(method, "kwargs"):
            method.kwargs = {}
        method.kwargs.setdefault("schema", AutoSchema)
        return spectacular_extend_schema(**kwargs)(method)

    return decorator


ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": "Field name (or non_field_errors) → messages.",
    "additionalProperties": {},
}


def _response(description: str, schema_name: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", VALIDATION_ERROR)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            errors = {
                "400": _response("Invalid input", "ValidationError"),
                "401": _response("Not authenticated", "Error"),
                "403": _response("Permission denied", "Error"),
                "429": _response("Throttled", "Error"),
            }
            if "{" in path or method == "get":
                errors["404"] = _response("Not found (or an invalid page)", "Error")
            if method in ("post", "put", "patch"):
                errors["413"] = _response("The body is over DATA_UPLOAD_MAX_MEMORY_SIZE", "Error")
            if method in ("put", "patch") or (method == "delete" and "{" in path):
                errors["412"] = _response("The record changed since the given ETag (If-Match)", "Error")
            for code, response in errors.items():
                responses.setdefault(code, response)
    return result
