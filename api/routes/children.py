"""A parent's children under ``/api/v1/children``: create with consent, read, update, export,
delete.

Decisions (see the report of issue 4, item 3):

- A child exists only with the parent's consent recorded: ``POST`` requires a ``consent``
  object with ``agreed: true`` (anything else is 422); the server sets ``consent_given_at``.
  Nobody can send ``parent_id``, ``consent_given_at`` or the consent columns directly: every
  body forbids unknown fields.
- Consent changes only through ``PATCH /{child_id}/consent`` (``cloud_ai`` and the notice
  version the parent agreed to); it moves ``consent_given_at`` to now, keeps the original
  method, and is audited as ``consent_change`` with the old and new values.
- Another parent's child answers exactly as an id that does not exist (404 not_found, the same
  detail), before any password is checked.
- Export and delete ask for the password again, in a ``POST`` body (``POST /{id}/export``,
  ``POST /{id}/delete``): a ``DELETE`` with a body is dropped or refused by some clients and
  proxies. A wrong password is 401 invalid_credentials. Both are rate limited per IP and per
  account (scope ``reauth``), since each attempt is a password guess. Argon2 runs in a thread.
- Export includes the child's conversations with their turns and the safety alerts, decrypted
  (see ``api.routes.history``).
- Delete removes the child's row; the foreign keys unbind its devices (``SET NULL``) and
  delete their conversations, turns and alerts (``CASCADE``). The
  audit entries about the child stay (they record that consent was given and the data
  deleted, and hold no personal data: the random id, methods, notice versions, counts).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any, Final, Literal, Self

from fastapi import APIRouter, Depends, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import func, select

from api.audit import CHILD_SUBJECT, audit_child
from api.auth_errors import InvalidCredentials
from api.binding import DeviceOut, device_out
from api.deps import CurrentParent, HasherDep, SessionDep
from api.ownership import own_child
from api.ratelimit import AccountLimit, rate_limited
from api.routes.history import AlertOut, CipherDep, ConversationOut, child_history
from api.security import MAX_PASSWORD_LENGTH, verify_password
from hub.db.models import AuditAction, AuditEntry, Child, Device, Parent

router = APIRouter(prefix="/api/v1/children", tags=["children"])


# The toy is for children: a birth year more than this many years back is not a child's.
MAX_CHILD_AGE_YEARS: Final = 18
MAX_DAILY_LIMIT_MINUTES: Final = 24 * 60

# No control characters (PostgreSQL refuses NUL in text; a name never holds one).
FirstName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
# A BCP 47 primary language subtag with an optional region or script ("en", "de-AT", "zh-Hans").
Language = Annotated[
    str, StringConstraints(max_length=16, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
]
NoticeVersion = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
]
DailyLimit = Annotated[int, Field(ge=1, le=MAX_DAILY_LIMIT_MINUTES)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class ConsentMethod(StrEnum):
    """How the parent gave consent; stored as text, so a new method needs no migration."""

    IN_APP_CHECKBOX = "in_app_checkbox"
    SIGNED_FORM = "signed_form"


def _check_birth_year(value: int | None) -> int | None:
    if value is None:
        return None
    this_year = datetime.now(UTC).year
    if not this_year - MAX_CHILD_AGE_YEARS <= value <= this_year:
        raise ValueError(f"must be between {this_year - MAX_CHILD_AGE_YEARS} and {this_year}")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsentIn(_Body):
    """The parent's consent as the app records it; ``agreed`` must be true."""

    method: ConsentMethod
    notice_version: NoticeVersion
    agreed: Literal[True]
    cloud_ai: bool


class ChildCreate(_Body):
    """A new child; never a parent id or consent time, which the server sets."""

    first_name: FirstName
    birth_year: int | None = None
    language: Language = "en"
    daily_limit_minutes: DailyLimit | None = None
    consent: ConsentIn

    _birth_year = field_validator("birth_year")(_check_birth_year)


class ChildUpdate(_Body):
    """Fields to change; those left out stay. ``birth_year`` and the limit may be cleared."""

    first_name: FirstName | None = None
    birth_year: int | None = None
    language: Language | None = None
    daily_limit_minutes: DailyLimit | None = None

    _birth_year = field_validator("birth_year")(_check_birth_year)

    @model_validator(mode="after")
    def _required_not_null(self) -> Self:
        for name in ("first_name", "language"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ConsentUpdate(_Body):
    """A new cloud-AI choice under the notice version the parent has just agreed to."""

    cloud_ai: bool
    notice_version: NoticeVersion


class PasswordBody(_Body):
    """The caller's password again, for export and delete."""

    password: Password


class ConsentOut(BaseModel):
    """The consent record."""

    given_at: datetime
    method: str
    notice_version: str
    cloud_ai: bool


class ChildOut(BaseModel):
    """A child as their parent sees them."""

    id: uuid.UUID
    first_name: str
    birth_year: int | None
    language: str
    daily_limit_minutes: int | None
    consent: ConsentOut
    created_at: datetime
    updated_at: datetime


class AuditOut(BaseModel):
    """One audit entry about the child."""

    at: datetime
    action: str
    detail: dict[str, Any]


class ChildExport(BaseModel):
    """Everything the hub holds about one child."""

    exported_at: datetime
    child: ChildOut
    devices: list[DeviceOut]
    conversations: list[ConversationOut]
    alerts: list[AlertOut]
    audit: list[AuditOut]


def _now() -> datetime:
    return datetime.now(UTC)


def _child_out(child: Child) -> ChildOut:
    return ChildOut(
        id=child.id,
        first_name=child.first_name,
        birth_year=child.birth_year,
        language=child.language,
        daily_limit_minutes=child.daily_limit_minutes,
        consent=ConsentOut(
            given_at=child.consent_given_at,
            method=child.consent_method,
            notice_version=child.consent_notice_version,
            cloud_ai=child.cloud_ai_consent,
        ),
        created_at=child.created_at,
        updated_at=child.updated_at,
    )


async def _recheck_password(
    parent: Parent, password: str, hasher: HasherDep, account_limit: AccountLimit
) -> None:
    """Raises InvalidCredentials (401) unless ``password`` is the caller's."""
    await account_limit(str(parent.id))
    if not await asyncio.to_thread(verify_password, parent.password_hash, password, hasher=hasher):
        raise InvalidCredentials


ReauthLimit = Annotated[AccountLimit, Depends(rate_limited("reauth", per_account=True))]


@router.post("", status_code=HTTPStatus.CREATED)
async def create_child(body: ChildCreate, parent: CurrentParent, session: SessionDep) -> ChildOut:
    """Add a child under the consent the parent has just given (audited ``consent_change``)."""
    now = _now()
    child = Child(
        id=uuid.uuid4(),
        parent_id=parent.id,
        first_name=body.first_name,
        birth_year=body.birth_year,
        language=body.language,
        daily_limit_minutes=body.daily_limit_minutes,
        consent_given_at=now,
        consent_method=body.consent.method.value,
        consent_notice_version=body.consent.notice_version,
        cloud_ai_consent=body.consent.cloud_ai,
        created_at=now,
        updated_at=now,
    )
    session.add(child)
    session.add(
        audit_child(
            parent,
            AuditAction.CONSENT_CHANGE,
            child.id,
            event="given",
            method=child.consent_method,
            notice_version=child.consent_notice_version,
            cloud_ai=child.cloud_ai_consent,
        )
    )
    await session.commit()
    return _child_out(child)


@router.get("")
async def list_children(parent: CurrentParent, session: SessionDep) -> list[ChildOut]:
    """The caller's children, oldest entry first."""
    children = await session.scalars(
        select(Child).where(Child.parent_id == parent.id).order_by(Child.created_at, Child.id)
    )
    return [_child_out(child) for child in children]


@router.get("/{child_id}")
async def get_child(child_id: uuid.UUID, parent: CurrentParent, session: SessionDep) -> ChildOut:
    """One of the caller's children; 404 for any other id."""
    return _child_out(await own_child(session, parent, child_id))


@router.patch("/{child_id}")
async def update_child(
    child_id: uuid.UUID, body: ChildUpdate, parent: CurrentParent, session: SessionDep
) -> ChildOut:
    """Change the fields sent; consent has its own route."""
    child = await own_child(session, parent, child_id)
    changes = body.model_dump(exclude_unset=True)
    if changes:
        for name, value in changes.items():
            setattr(child, name, value)
        child.updated_at = _now()
        await session.commit()
    return _child_out(child)


@router.patch("/{child_id}/consent")
async def update_consent(
    child_id: uuid.UUID, body: ConsentUpdate, parent: CurrentParent, session: SessionDep
) -> ChildOut:
    """Record a new cloud-AI choice and notice version (audited ``consent_change``)."""
    child = await own_child(session, parent, child_id)
    now = _now()
    session.add(
        audit_child(
            parent,
            AuditAction.CONSENT_CHANGE,
            child.id,
            event="changed",
            cloud_ai=body.cloud_ai,
            previous_cloud_ai=child.cloud_ai_consent,
            notice_version=body.notice_version,
            previous_notice_version=child.consent_notice_version,
        )
    )
    child.cloud_ai_consent = body.cloud_ai
    child.consent_notice_version = body.notice_version
    child.consent_given_at = now
    child.updated_at = now
    await session.commit()
    return _child_out(child)


@router.post("/{child_id}/export")
async def export_child(
    child_id: uuid.UUID,
    *,
    body: PasswordBody,
    parent: CurrentParent,
    session: SessionDep,
    hasher: HasherDep,
    account_limit: ReauthLimit,
    cipher: CipherDep,
) -> ChildExport:
    """Everything about the child as one document: the child with the consent record, the
    devices bound to them, their conversations with the turns decrypted, their safety alerts
    and the audit entries about them (audited ``export``).

    Raises:
        NotFound: 404 for an id that is not the caller's child.
        InvalidCredentials: 401 for a wrong password.
    """
    child = await own_child(session, parent, child_id)
    await _recheck_password(parent, body.password, hasher, account_limit)
    devices = await session.scalars(
        select(Device).where(Device.child_id == child.id).order_by(Device.device_id)
    )
    entries = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_type == CHILD_SUBJECT, AuditEntry.subject_id == str(child.id))
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    conversations, alerts = await child_history(session, cipher, child.id)
    document = ChildExport(
        exported_at=_now(),
        child=_child_out(child),
        devices=[device_out(device) for device in devices],
        conversations=conversations,
        alerts=alerts,
        audit=[
            AuditOut(at=entry.at, action=entry.action, detail=entry.detail) for entry in entries
        ],
    )
    session.add(audit_child(parent, AuditAction.EXPORT, child.id))
    await session.commit()
    return document


@router.post("/{child_id}/delete", status_code=HTTPStatus.NO_CONTENT)
async def delete_child(
    child_id: uuid.UUID,
    *,
    body: PasswordBody,
    parent: CurrentParent,
    session: SessionDep,
    hasher: HasherDep,
    account_limit: ReauthLimit,
) -> Response:
    """Delete the child with their conversations, turns and alerts; their devices are unbound
    (audited ``deletion``, no personal data).

    Raises:
        NotFound: 404 for an id that is not the caller's child.
        InvalidCredentials: 401 for a wrong password.
    """
    child = await own_child(session, parent, child_id)
    await _recheck_password(parent, body.password, hasher, account_limit)
    bound = await session.scalar(
        select(func.count()).select_from(Device).where(Device.child_id == child.id)
    )
    session.add(audit_child(parent, AuditAction.DELETION, child.id, devices_unbound=bound or 0))
    await session.delete(child)
    await session.commit()
    return Response(status_code=HTTPStatus.NO_CONTENT)
