"""Dependencies the routes declare with ``Annotated`` (FastAPI full-stack template shape).

- :data:`SessionDep`: one ``AsyncSession`` per request; the route commits what it changes
  (anything left uncommitted is rolled back when the request ends).
- :data:`CurrentParent`: the parent a Bearer access token names, fully checked.
- :data:`CurrentAdmin`: the same, refused with 404 unless the parent is an admin (a parent
  learns nothing about the admin routes).
- :data:`HasherDep`: the Argon2 hasher; ``app.state.password_hasher`` overrides the default
  (tests use a cheap one).

Raises :class:`~api.tokens.InvalidTokenError` (401 invalid_token) and
:class:`~api.auth_errors.Unauthorized` (401), both with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth_errors import Unauthorized
from api.errors import NotFound
from api.security import DEFAULT_HASHER
from api.tokens import InvalidTokenError, TokenRejectReason, decode_access_token
from hub.db.models import Parent, ParentRole
from hub.errors import ConfigError
from hub.settings import Settings

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a route, not a secret

# auto_error=False: a missing token is answered by us, in the one problem-details shape.
_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and rolled back if uncommitted) afterwards."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_hasher(request: Request) -> PasswordHasher:
    """``app.state.password_hasher`` when set, else the RFC 9106 default."""
    hasher: PasswordHasher = getattr(request.app.state, "password_hasher", DEFAULT_HASHER)
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(get_hasher)]


def jwt_secret(settings: Settings) -> str:
    """The access-token signing key.

    Raises:
        ConfigError: when no key is configured (``load_settings`` fills one in development).
    """
    if settings.jwt_secret_key is None:
        raise ConfigError("JWT_SECRET_KEY is not set")
    return settings.jwt_secret_key.get_secret_value()


async def get_current_parent(
    token: Annotated[str | None, Depends(_bearer)],
    session: SessionDep,
    settings: SettingsDep,
) -> Parent:
    """The parent a valid access token names.

    Refused: no token, any token :func:`~api.tokens.decode_access_token` refuses, a token of a
    parent that no longer exists, and a token issued before the parent's last password change
    (``iat`` is whole seconds, so it is compared with the change time floored).

    Raises:
        Unauthorized: without a token.
        InvalidTokenError: for every other refusal.
    """
    if not token:
        raise Unauthorized("an access token is required")
    claims = decode_access_token(
        token,
        secret=jwt_secret(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    parent = await session.get(Parent, claims.subject)
    if parent is None:
        raise InvalidTokenError(TokenRejectReason.BAD_CLAIM, "no such account")
    changed = math.floor(parent.password_changed_at.timestamp())
    if claims.issued_at.timestamp() < changed:
        raise InvalidTokenError(TokenRejectReason.EXPIRED, "issued before a password change")
    return parent


CurrentParent = Annotated[Parent, Depends(get_current_parent)]


async def get_current_admin(parent: CurrentParent) -> Parent:
    """The current parent when an admin.

    Raises:
        NotFound: for anyone else, exactly as for a route that does not exist.
    """
    if parent.role != ParentRole.ADMIN:
        raise NotFound
    return parent


CurrentAdmin = Annotated[Parent, Depends(get_current_admin)]
