"""drf-spectacular hook: document the error answers every operation can give.

Add to SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] (after drf-spectacular's enum hook).
"""

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
            if method in ("put", "patch"):
                errors["412"] = _response("The record changed since the given ETag (If-Match)", "Error")
            for code, response in errors.items():
                responses.setdefault(code, response)
    return result
