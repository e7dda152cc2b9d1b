"""Errors the API raises on purpose; one handler turns each into RFC 9457 problem details.

Routes and dependencies raise these (never ``HTTPException`` with a hand-made body), so that
every error leaves the API in one shape (``api.problems``)::

    TeddyError                       (hub.errors)
    └── ApiError                     ``status`` and a stable ``code``
        ├── NotFound                 404 not_found: missing, or another parent's
        ├── Conflict                 409 conflict
        ├── RateLimited              429 rate_limited, with ``Retry-After``
        └── RateLimitUnavailable     503 rate_limit_unavailable: the limit store cannot answer

``code`` is part of the contract with the parent app and the metrics: never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import ClassVar

from hub.errors import TeddyError


class ApiError(TeddyError):
    """An error with an HTTP status and a stable ``code``; ``detail`` is shown to the client."""

    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.detail = detail or HTTPStatus(self.status).phrase
        self.headers = dict(headers or {})
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        """The status phrase; the same for every occurrence of this kind of error."""
        return HTTPStatus(self.status).phrase


class NotFound(ApiError):
    """Nothing at this id for the caller (another parent's id answers the same)."""

    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class Conflict(ApiError):
    """The request contradicts the current state (a device bound elsewhere, a replay)."""

    status = HTTPStatus.CONFLICT
    code = "conflict"


class RateLimited(ApiError):
    """Too many requests in the window; ``retry_after`` is whole seconds."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(
            f"too many requests; retry in {self.retry_after} s",
            headers={"Retry-After": str(self.retry_after)},
        )


class RateLimitUnavailable(ApiError):
    """The rate-limit store cannot answer; limited routes fail closed until it can."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "rate_limit_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "rate limiting is unavailable; try again shortly", headers={"Retry-After": "5"}
        )
