"""RFC 9457 problem details: the one shape of every error the API answers.

``type``, ``title``, ``status``, ``detail`` and ``instance`` always; ``code`` for domain errors
and ``errors`` (field, message, kind; never the submitted value, which may be a password) for
validation failures. Unexpected exceptions become a bare 500, logged here once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth_errors import BEARER_CHALLENGE
from api.errors import ApiError
from api.security import WeakPasswordError
from api.tokens import InvalidTokenError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:teddyhub:problem:"
logger = logging.getLogger(__name__)


def problem_response(
    request_path: str,
    status: int,
    *,
    detail: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem-details response; ``code`` names the ``type``, else ``about:blank``."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}" if code else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        "instance": request_path,
    }
    if code:
        body["code"] = code
    body.update(extensions)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type only
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(request.url.path, exc.status_code, detail=detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error["type"]}
        for error in exc.errors()
    ]
    return problem_response(
        request.url.path,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        detail="the request does not match the expected shape",
        code="validation_failed",
        errors=errors,
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for this type only
    return problem_response(
        request.url.path, exc.status, detail=exc.detail, code=exc.code, headers=exc.headers
    )


async def _weak_password(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WeakPasswordError)  # noqa: S101 - registered for this type only
    return problem_response(
        request.url.path,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        detail=str(exc),
        code=exc.code,
        problems=[problem.value for problem in exc.problems],
    )


async def _invalid_token(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidTokenError)  # noqa: S101 - registered for this type only
    # The reason (expired, bad signature...) is for logs and metrics; the client learns only
    # that the token must be replaced.
    logger.info("access token refused", extra={"reason": exc.reason.value})
    return problem_response(
        request.url.path,
        HTTPStatus.UNAUTHORIZED,
        detail="the access token is not valid",
        code=exc.code,
        headers=BEARER_CHALLENGE,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer HTTP, validation and domain errors as problem details."""
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(WeakPasswordError, _weak_password)
    app.add_exception_handler(InvalidTokenError, _invalid_token)


class UnexpectedErrorMiddleware:
    """Turn any exception no handler took into a 500 without internals, logged once.

    Sits inside the CORS, security-header and metrics middleware so that the 500 carries their
    headers and is counted. Starlette's own catch-all would log and then re-raise to the
    server, which logs again.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            logger.exception(
                "unhandled error", extra={"method": scope["method"], "path": scope["path"]}
            )
            if started:  # too late for a clean answer; the server closes the connection
                raise
            response = problem_response(scope["path"], HTTPStatus.INTERNAL_SERVER_ERROR)
            await response(scope, receive, send)
