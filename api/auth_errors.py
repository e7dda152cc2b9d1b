"""Authentication errors the API raises; they extend the tree drawn in ``api.errors``::

    ApiError                         (api.errors)
    └── Unauthorized                 401 unauthorized, with ``WWW-Authenticate: Bearer``
        ├── InvalidCredentials       401 invalid_credentials: e-mail or password wrong
        └── InvalidRefreshToken      401 invalid_refresh_token: unknown, used, revoked, expired

``hub``'s :class:`~api.security.WeakPasswordError` (422 weak_password) and
:class:`~api.tokens.InvalidTokenError` (401 invalid_token) are mapped in ``api.problems``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

from api.errors import ApiError

BEARER_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}


class Unauthorized(ApiError):
    """No acceptable credentials; the answer names the Bearer scheme (RFC 6750 section 3)."""

    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={**BEARER_CHALLENGE, **(headers or {})})


class InvalidCredentials(Unauthorized):
    """The same answer for an unknown e-mail and a wrong password (no account enumeration)."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("invalid credentials")


class InvalidRefreshToken(Unauthorized):
    """A refresh token that cannot be used; the reason is logged, never told to the client."""

    code = "invalid_refresh_token"

    def __init__(self) -> None:
        super().__init__("the refresh token is not valid; log in again")
