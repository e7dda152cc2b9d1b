"""Parent accounts under ``/api/v1/auth``: register, log in, refresh, log out, change password.

Decisions (see the report of issue 4, item 2):

- Register answers 201 with the new id, and 409 for an e-mail already registered. That tells
  a caller whether an address has an account; the alternative (always 202, then an e-mail to
  the existing owner) needs a mail service the hub does not have. Register is rate limited per
  IP, which bounds such probing; login never tells (the same 401 and the same Argon2 work for
  an unknown e-mail and a wrong password).
- ``/login`` takes JSON, ``/token`` the OAuth2 password form (so the interactive docs'
  "Authorize" works). The form is parsed here from ``application/x-www-form-urlencoded``
  rather than through ``OAuth2PasswordRequestForm``, which needs ``python-multipart``.
- Refresh reads the presented row ``FOR UPDATE`` (PostgreSQL; SQLite serialises writers) and
  marks it used with ``UPDATE ... WHERE used_at IS NULL``, so two concurrent refreshes of one
  token cannot both rotate: the loser counts as reuse.
- Logout revokes the presented refresh token's family; the access token lives out its
  (short) lifetime. A password change revokes every refresh token of the parent and refuses
  every access token issued before it; the caller gets a fresh pair.
- Argon2 runs in a worker thread (``asyncio.to_thread``): about 0.2 s of CPU a call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth_errors import InvalidCredentials, InvalidRefreshToken
from api.deps import CurrentParent, HasherDep, SessionDep, SettingsDep, jwt_secret
from api.errors import ApiError, Conflict
from api.ratelimit import AccountLimit, rate_limited
from api.security import (
    MAX_PASSWORD_LENGTH,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_against_dummy,
    verify_password,
)
from api.tokens import (
    RefreshAction,
    decide_refresh,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
)
from hub.db.models import EMAIL_MAX_LENGTH, AuditAction, AuditEntry, Parent, RefreshToken
from hub.settings import Settings

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
logger = logging.getLogger(__name__)

FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
_CONTROL_CHARACTER: Final = re.compile(r"[\x00-\x1f\x7f]")
# A login body is an e-mail and a password; anything much larger is not one.
MAX_FORM_BYTES: Final = 4096

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=EMAIL_MAX_LENGTH,
        # No control characters: PostgreSQL refuses NUL in text, and none belongs in an address.
        pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$",
    ),
]
# Login accepts any password up to the maximum: the strength rules are for new passwords.
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Body):
    """A new account: never a role, which only an operator grants."""

    email: Email
    password: Password


class LoginBody(_Body):
    """The JSON login."""

    email: Email
    password: Password


class RefreshBody(_Body):
    """A refresh token, as issued."""

    refresh_token: str = Field(min_length=1, max_length=256)


class PasswordChangeBody(_Body):
    """The current password again, and the new one."""

    current_password: Password
    new_password: Password


class ParentOut(BaseModel):
    """An account as its owner sees it."""

    id: uuid.UUID
    email: str
    role: str
    created_at: datetime


class TokenPair(BaseModel):
    """An access token (Bearer, ``expires_in`` seconds) and the refresh token to renew it."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme's name
    expires_in: int
    refresh_token: str


def _parent_out(parent: Parent) -> ParentOut:
    return ParentOut(
        id=parent.id, email=parent.email, role=parent.role.value, created_at=parent.created_at
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _issue_pair(
    session: AsyncSession,
    parent: Parent,
    settings: Settings,
    *,
    family_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> TokenPair:
    """New tokens for ``parent``; the refresh row is added to ``session`` (the caller commits)."""
    moment = now or _now()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    access = issue_access_token(
        parent.id,
        parent.role,
        secret=jwt_secret(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        lifetime=lifetime,
        now=moment,
    )
    refresh, refresh_hash = new_refresh_token()
    session.add(
        RefreshToken(
            parent_id=parent.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=refresh_hash,
            issued_at=moment,
            expires_at=moment + timedelta(days=settings.refresh_token_days),
        )
    )
    return TokenPair(
        access_token=access, expires_in=int(lifetime.total_seconds()), refresh_token=refresh
    )


async def _authenticate(
    session: AsyncSession, hasher: PasswordHasher, email: str, password: str
) -> Parent:
    """The parent with these credentials, rehashing an outdated hash.

    Raises:
        InvalidCredentials: for an unknown e-mail and a wrong password alike.
    """
    normalised = email.strip().lower()
    # The OAuth2 form bypasses the JSON body's e-mail rules; an address no account can have
    # (a control character: PostgreSQL refuses NUL in text) is simply unknown.
    parent = (
        None
        if _CONTROL_CHARACTER.search(normalised) or len(normalised) > EMAIL_MAX_LENGTH
        else await session.scalar(select(Parent).where(Parent.email == normalised))
    )
    if parent is None:
        await asyncio.to_thread(verify_against_dummy, password, hasher=hasher)
        raise InvalidCredentials
    if not await asyncio.to_thread(verify_password, parent.password_hash, password, hasher=hasher):
        raise InvalidCredentials
    if needs_rehash(parent.password_hash, hasher=hasher):
        parent.password_hash = await asyncio.to_thread(hash_password, password, hasher=hasher)
    return parent


async def _login(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    settings: SettingsDep,
    account_limit: AccountLimit,
    email: str,
    password: str,
) -> TokenPair:
    await account_limit(email)
    parent = await _authenticate(session, hasher, email, password)
    pair = _issue_pair(session, parent, settings)
    await session.commit()
    return pair


@router.post("/register", status_code=HTTPStatus.CREATED, response_model=ParentOut)
async def register(
    body: RegisterBody,
    session: SessionDep,
    hasher: HasherDep,
    _limit: Annotated[AccountLimit, Depends(rate_limited("register"))],
) -> ParentOut:
    """Create a parent account.

    Raises:
        WeakPasswordError: 422 weak_password, listing every broken rule.
        Conflict: 409 when the e-mail already has an account.
    """
    check_password_strength(body.password, body.email)
    email = body.email.lower()
    if await session.scalar(select(Parent.id).where(Parent.email == email)) is not None:
        raise Conflict("an account with this e-mail already exists")
    password_hash = await asyncio.to_thread(hash_password, body.password, hasher=hasher)
    parent = Parent(email=email, password_hash=password_hash)
    session.add(parent)
    try:
        await session.commit()
    except IntegrityError:  # registered concurrently
        raise Conflict("an account with this e-mail already exists") from None
    return _parent_out(parent)


@router.post("/login")
async def login(
    body: LoginBody,
    session: SessionDep,
    hasher: HasherDep,
    settings: SettingsDep,
    account_limit: Annotated[AccountLimit, Depends(rate_limited("login", per_account=True))],
) -> TokenPair:
    """Log in with JSON; 401 invalid_credentials whether or not the e-mail exists."""
    return await _login(
        session,
        hasher=hasher,
        settings=settings,
        account_limit=account_limit,
        email=body.email,
        password=body.password,
    )


_FORM_SCHEMA: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM_MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string", "description": "the e-mail"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            }
        },
    }
}


class BadForm(ApiError):
    """The OAuth2 password form is missing or malformed."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "validation_failed"


async def _read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_MEDIA_TYPE:
        raise BadForm(f"send the OAuth2 password form as {FORM_MEDIA_TYPE}")
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise BadForm("the form is too large")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise BadForm("the form is not UTF-8") from None
    form = {name: values[0] for name, values in fields.items() if len(values) == 1}
    grant_type = form.get("grant_type", "password")
    if grant_type != "password" or not form.get("username") or not form.get("password"):
        raise BadForm("username and password are required (grant_type password)")
    if len(form["username"]) > EMAIL_MAX_LENGTH or len(form["password"]) > MAX_PASSWORD_LENGTH:
        raise BadForm("username or password too long")
    return form


@router.post("/token", openapi_extra=_FORM_SCHEMA)
async def token(
    request: Request,
    session: SessionDep,
    hasher: HasherDep,
    settings: SettingsDep,
    account_limit: Annotated[AccountLimit, Depends(rate_limited("login", per_account=True))],
) -> TokenPair:
    """Log in with the OAuth2 password form (``username`` is the e-mail); as ``/login``."""
    form = await _read_form(request)
    return await _login(
        session,
        hasher=hasher,
        settings=settings,
        account_limit=account_limit,
        email=form["username"],
        password=form["password"],
    )


@router.post("/refresh", dependencies=[Depends(rate_limited("refresh"))])
async def refresh(body: RefreshBody, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Rotate a refresh token; reusing a used one ends its whole family.

    Raises:
        InvalidRefreshToken: 401 for an unknown, revoked, expired or reused token.
    """
    now = _now()
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(body.refresh_token))
        .with_for_update()
    )
    decision = decide_refresh(row, now, lifetime=timedelta(days=settings.refresh_token_days))
    if row is not None and decision.action is RefreshAction.ROTATE:
        marked = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(marked, "rowcount", 0) == 1:
            parent = await session.get(Parent, row.parent_id)
            if parent is not None:
                pair = _issue_pair(session, parent, settings, family_id=row.family_id, now=now)
                await session.commit()
                return pair
        # Used concurrently a moment ago: as much a reuse as a later replay.
    if row is not None and decision.action is not RefreshAction.REFUSE:
        await _revoke_family(session, row.family_id, now)
        session.add(
            AuditEntry(
                actor_parent_id=row.parent_id,
                action=AuditAction.REFRESH_REUSE.value,
                subject_type="parent",
                subject_id=str(row.parent_id),
                detail={"family_id": str(row.family_id)},
            )
        )
        await session.commit()
        logger.warning("refresh token reused; family revoked", extra={"family": str(row.family_id)})
    raise InvalidRefreshToken


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


@router.post("/logout", status_code=HTTPStatus.NO_CONTENT)
async def logout(body: RefreshBody, parent: CurrentParent, session: SessionDep) -> Response:
    """End the session the refresh token belongs to (its whole family).

    A token that is unknown or another parent's changes nothing; the answer is the same.
    """
    row = await session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == hash_refresh_token(body.refresh_token),
            RefreshToken.parent_id == parent.id,
        )
    )
    if row is not None:
        await _revoke_family(session, row.family_id, _now())
        await session.commit()
    return Response(status_code=HTTPStatus.NO_CONTENT)


@router.post("/password")
async def change_password(
    body: PasswordChangeBody,
    parent: CurrentParent,
    session: SessionDep,
    hasher: HasherDep,
    settings: SettingsDep,
) -> TokenPair:
    """Change the password: every other session ends; the caller gets a fresh token pair.

    Raises:
        InvalidCredentials: 401 when the current password is wrong.
        WeakPasswordError: 422 weak_password for the new one.
    """
    if not await asyncio.to_thread(
        verify_password, parent.password_hash, body.current_password, hasher=hasher
    ):
        raise InvalidCredentials
    check_password_strength(body.new_password, parent.email)
    now = _now()
    parent.password_hash = await asyncio.to_thread(hash_password, body.new_password, hasher=hasher)
    parent.password_changed_at = now
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.parent_id == parent.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(
        AuditEntry(
            actor_parent_id=parent.id,
            action=AuditAction.PASSWORD_CHANGE.value,
            subject_type="parent",
            subject_id=str(parent.id),
        )
    )
    pair = _issue_pair(session, parent, settings, now=now)
    await session.commit()
    return pair


@router.get("/me")
async def me(parent: CurrentParent) -> ParentOut:
    """The caller's account."""
    return _parent_out(parent)
