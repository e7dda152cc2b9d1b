"""The OpenAPI document, made to say what the API really answers: every error is problem details.

FastAPI documents only the success response and its own 422 (as ``application/json``). The
parent app's developers, and the schema-driven tests, need the truth: any 4xx or 5xx answer is
an RFC 9457 document served as ``application/problem+json`` (see ``api.problems``). This adds
that, once, to every operation, and replaces the 422 FastAPI describes with the real one.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA_REF: Final = "#/components/schemas/Problem"
_ERROR_RANGES: Final = {
    "4XX": "A client error, as RFC 9457 problem details; `code` names it.",
    "5XX": "A server-side outage (a store or dependency did not answer), as problem details.",
}


class Problem(BaseModel):
    """RFC 9457 problem details, with the stable ``code`` of a domain error."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str | None = None


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with problem-details errors; built once, then cached."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem_response(
                    "The request does not validate; `errors` lists each field (never its value)."
                )
            for status_range, description in _ERROR_RANGES.items():
                responses.setdefault(status_range, _problem_response(description))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document


def install_problem_openapi(app: FastAPI) -> None:
    """Serve :func:`problem_openapi` as the app's schema (``/openapi.json``, ``/docs``)."""
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
