"""The tables of Teddy Hub, declared once for the hub and the API (SQLAlchemy 2, typed).

Every id a client sees is a random UUID (version 4, generated here, never by the database), so
nothing about one account can be guessed from another's. Times are timezone-aware UTC on both
PostgreSQL and SQLite (:class:`UTCDateTime`). Deletion rules live in the foreign keys, so they
hold for raw SQL as well as for the ORM:

- deleting a parent deletes their children and refresh tokens, unclaims their devices and
  keeps the audit entries they caused (actor set to NULL);
- deleting a child unbinds its device (``devices.child_id`` set to NULL) and deletes their
  conversations, turns and alerts;
- deleting a conversation deletes its turns; deleting a turn keeps the alerts it raised
  (``alerts.turn_id`` set to NULL).

What a child said and what the toy answered are stored only encrypted (``*_enc``, see
:mod:`hub.transcripts`); no table holds audio.

SQLite enforces foreign keys only with ``PRAGMA foreign_keys=ON``, which
:func:`hub.db.engine.create_engine_for` turns on for every connection.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    Uuid,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from hub.protocol.topics import DEVICE_ID_MAX_LENGTH, validate_device_id

# Named constraints: Alembic's batch mode (SQLite) can only drop or alter what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
EMAIL_MAX_LENGTH = 320  # RFC 3696 errata: 64 for the local part, @, 255 for the domain
TOKEN_HASH_LENGTH = 64  # SHA-256 in hex


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC and always read back aware in UTC.

    PostgreSQL keeps it in ``timestamptz``; SQLite has no time zones, so the UTC wall time is
    stored naive and marked UTC again on the way out. Naive datetimes are refused on the way in
    (a naive time is a bug waiting for a server in another zone).

    Raises:
        ValueError: when a naive datetime is bound.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime; pass a timezone-aware one (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ParentRole(StrEnum):
    """What an account may do: its own data only, or also the fleet's devices."""

    PARENT = "parent"
    ADMIN = "admin"


class AuditAction(StrEnum):
    """What an audit entry records; stored as plain text so that a new action needs no
    migration."""

    CLAIM = "claim"
    CLAIM_FAILED = "claim_failed"
    PAIR_CODE = "pair_code"
    PAIR_CODE_FAILED = "pair_code_failed"
    UNPAIR = "unpair"
    REBIND = "rebind"
    CONSENT_CHANGE = "consent_change"
    EXPORT = "export"
    DELETION = "deletion"
    ADMIN_REVOKE = "admin_revoke"
    ADMIN_RESTORE = "admin_restore"
    PASSWORD_CHANGE = "password_change"  # noqa: S105 - an action name, not a secret
    REFRESH_REUSE = "refresh_reuse"
    HISTORY_DELETE = "history_delete"
    ALERT_DELETE = "alert_delete"


class Base(DeclarativeBase):
    """The declarative base; its ``metadata`` is Alembic's target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute as is
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
    }


def _role_values(enum: type[ParentRole]) -> list[str]:
    return [member.value for member in enum]


class Parent(Base):
    """A parent's (or an administrator's) account."""

    __tablename__ = "parents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Stored lower-cased (see ``_lower_email``), so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[ParentRole] = mapped_column(
        Enum(
            ParentRole,
            name="parent_role",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=_role_values,
        ),
        default=ParentRole.PARENT,
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Access tokens issued before this moment are refused (a password change ends sessions).
    password_changed_at: Mapped[datetime] = mapped_column(default=utc_now)

    @validates("email")
    def _lower_email(self, _key: str, value: str) -> str:
        return value.strip().lower()


class Child(Base):
    """A child of a parent, with the consent record under which the toy may talk to them."""

    __tablename__ = "children"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    parent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("parents.id", ondelete="CASCADE"), index=True
    )
    first_name: Mapped[str] = mapped_column(String(64))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(16), default="en")
    # The consent record: when, how (for example "app_checkbox") and under which notice.
    consent_given_at: Mapped[datetime]
    consent_method: Mapped[str] = mapped_column(String(32))
    consent_notice_version: Mapped[str] = mapped_column(String(32))
    # A separate yes/no for sending the child's voice and words to cloud AI providers.
    cloud_ai_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    daily_limit_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class Device(Base):
    """A toy, known by its device id (the MQTT topic alphabet), claimed by at most one parent."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_MAX_LENGTH), primary_key=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("parents.id", ondelete="SET NULL"), index=True
    )
    child_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("children.id", ondelete="SET NULL"), index=True
    )
    firmware_version: Mapped[str | None] = mapped_column(String(32))
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    @validates("device_id")
    def _check_device_id(self, _key: str, value: str) -> str:
        return validate_device_id(value)


class RefreshToken(Base):
    """One refresh token of a rotation family; only its SHA-256 is stored, never the token."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    parent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("parents.id", ondelete="CASCADE"), index=True
    )
    # Every token rotated from one login shares the family; reuse revokes the whole family.
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what to which subject; kept when the actor's account is deleted."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor_parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("parents.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    # A UUID in text or a device id, depending on subject_type.
    subject_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )


class PairingCode(Base):
    """A live pairing code the hub gave a toy to speak; single use, minutes long.

    Only a keyed digest of the code is stored (HMAC under a key derived from the fleet secret),
    so the table does not hand out live codes, and a six-digit code cannot be recovered from
    its digest by trying all million. One live code per device: a new request replaces it.
    """

    __tablename__ = "pairing_codes"

    code_digest: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_MAX_LENGTH), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    @validates("device_id")
    def _check_device_id(self, _key: str, value: str) -> str:
        return validate_device_id(value)


# The per-stage timings a turn records, in milliseconds (see :class:`Turn`).
JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")
INPUT_MODE_LENGTH = 8
PROVIDER_LENGTH = 32


class Conversation(Base):
    """A run of turns between one child and the toy, closed by a pause (see
    :func:`hub.conversation.store.ConversationStore.open_conversation`).

    ``device_id`` is the toy of the latest turn, kept as text without a foreign key: the
    history stays readable after the toy is unpaired or its row is gone.
    """

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_child_last_turn", "child_id", "last_turn_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_MAX_LENGTH))
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    # The start until the first turn; the retention purge and the idle rule read it.
    last_turn_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    ended_reason: Mapped[str | None] = mapped_column(String(32))


class Turn(Base):
    """One exchange: what the child said and what the toy answered, both encrypted and both
    already redacted; no audio.

    ``timings`` holds milliseconds per stage (``stt``, ``moderation_in``,
    ``chat_first_token``, ``tts_first_audio``, ``first_audio_published``, ``total``);
    ``duration_ms`` is how long the child spoke, for the daily limit.
    """

    __tablename__ = "turns"
    __table_args__ = (Index("ix_turns_child_at", "child_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # Also here, so that per-child reads and deletions need no join.
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    child_text_enc: Mapped[bytes] = mapped_column(LargeBinary)
    reply_text_enc: Mapped[bytes] = mapped_column(LargeBinary)
    input_mode: Mapped[str] = mapped_column(String(INPUT_MODE_LENGTH))
    provider: Mapped[str] = mapped_column(String(PROVIDER_LENGTH))
    timings: Mapped[dict[str, float]] = mapped_column(JSON_DOCUMENT, default=dict)
    safety_flags: Mapped[list[str]] = mapped_column(JSON_DOCUMENT, default=list)
    redactions: Mapped[list[str]] = mapped_column(JSON_DOCUMENT, default=list)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)


class Alert(Base):
    """A safety alert for the parent: the categories and an encrypted, redacted excerpt."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_child_at", "child_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"))
    turn_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("turns.id", ondelete="SET NULL"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    categories: Mapped[list[str]] = mapped_column(JSON_DOCUMENT, default=list)
    excerpt_enc: Mapped[bytes] = mapped_column(LargeBinary)
    acknowledged_at: Mapped[datetime | None]
