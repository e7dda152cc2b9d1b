"""What the hub's conversation pipeline reads and writes in the database.

The pipeline asks which child a toy is talking to (:meth:`ConversationStore.child_for_device`),
opens or resumes a conversation, reads the recent turns for the chat context, checks the daily
limit, then records each turn and any safety alert. Texts arrive already redacted by the
caller; they are encrypted here (:mod:`hub.transcripts`) before they reach a row, bound to the
row and column they are stored in. Nothing here stores audio.

Decisions:

- A conversation is per child: the child's latest conversation is resumed while its last turn
  is younger than ``idle_s`` (five minutes by default), whichever of their toys is talking;
  ``conversations.device_id`` follows the toy of the latest turn.
- The chat context (:meth:`ConversationStore.recent_messages`) leaves out flagged turns (what
  moderation stopped is not fed back to a model) and turns past retention.
- "Today" for the daily limit is the UTC day (:meth:`ConversationStore.speech_seconds_today`);
  children's local time zones are not stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.db.models import Alert, Child, Conversation, Device, Turn, utc_now
from hub.settings import Settings
from hub.transcripts import TranscriptCipher, aad
from hub.voice.providers import ChatMessage

DEFAULT_IDLE_S: Final = 300.0
DEFAULT_RETENTION_DAYS: Final = 30
INPUT_MODES: Final = ("voice", "text")

InputMode = Literal["voice", "text"]


@dataclass(frozen=True)
class ChildContext:
    """The child a toy talks to, as the pipeline needs them."""

    child_id: uuid.UUID
    first_name: str
    age: int | None  # from the birth year (this year minus it); None when unknown
    language: str
    consent_recorded: bool
    cloud_ai_consent: bool
    daily_limit_minutes: int | None


class ConversationNotFound(LookupError):
    """The conversation does not exist (deleted by the parent or purged) or is another
    child's."""


class ConversationStore:
    """Conversations, turns and alerts on ``sessions``; texts sealed with ``cipher``.

    ``retention_days`` bounds what :meth:`recent_messages` reads (older turns await the purge).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TranscriptCipher,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._retention = timedelta(days=retention_days)

    @classmethod
    def from_settings(
        cls, sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> ConversationStore:
        """A store with the cipher and retention of ``settings``."""
        return cls(
            sessions,
            TranscriptCipher.from_settings(settings),
            retention_days=settings.retention_days,
        )

    async def child_for_device(self, device_id: str) -> ChildContext | None:
        """The child ``device_id`` is bound to.

        None when the device is unknown, revoked, unclaimed or bound to no child, when the
        child is not its owner's, or when the child has no consent recorded.
        """
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Child, Device.parent_id)
                    .join(Device, Device.child_id == Child.id)
                    .where(Device.device_id == device_id, Device.revoked_at.is_(None))
                )
            ).first()
        if row is None:
            return None
        child, owner = row
        if owner is None or owner != child.parent_id:
            return None
        consent_recorded = child.consent_given_at is not None and bool(child.consent_method)
        if not consent_recorded:
            return None
        age = None
        if child.birth_year is not None:
            age = max(0, datetime.now(UTC).year - child.birth_year)
        return ChildContext(
            child_id=child.id,
            first_name=child.first_name,
            age=age,
            language=child.language,
            consent_recorded=consent_recorded,
            cloud_ai_consent=child.cloud_ai_consent,
            daily_limit_minutes=child.daily_limit_minutes,
        )

    async def open_conversation(
        self,
        child_id: uuid.UUID,
        device_id: str,
        *,
        idle_s: float = DEFAULT_IDLE_S,
        now: datetime | None = None,
    ) -> uuid.UUID:
        """The child's latest conversation if its last turn is within ``idle_s`` of ``now``,
        else a new one; its id."""
        now = now or utc_now()
        async with self._sessions() as session:
            latest = await session.scalar(
                select(Conversation.id)
                .where(
                    Conversation.child_id == child_id,
                    Conversation.last_turn_at >= now - timedelta(seconds=idle_s),
                    Conversation.ended_reason.is_(None),
                )
                .order_by(Conversation.last_turn_at.desc())
                .limit(1)
            )
            if latest is not None:
                return latest
            conversation = Conversation(
                id=uuid.uuid4(),
                child_id=child_id,
                device_id=device_id,
                started_at=now,
                last_turn_at=now,
                turn_count=0,
            )
            session.add(conversation)
            await session.commit()
            return conversation.id

    async def end_conversation(self, conversation_id: uuid.UUID, reason: str) -> None:
        """Mark the conversation ended (``reason``, e.g. ``"max_turns"``); the next turn of
        the child opens a new one."""
        async with self._sessions() as session:
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(ended_reason=reason[:32])
            )
            await session.commit()

    async def recent_messages(
        self, child_id: uuid.UUID, limit_turns: int, *, now: datetime | None = None
    ) -> list[ChatMessage]:
        """The child's last ``limit_turns`` unflagged turns within retention, decrypted, oldest
        first, as alternating user and assistant messages."""
        if limit_turns <= 0:
            return []
        now = now or utc_now()
        async with self._sessions() as session:
            turns = list(
                await session.scalars(
                    select(Turn)
                    .where(
                        Turn.child_id == child_id,
                        Turn.at >= now - self._retention,
                        Turn.flagged.is_(False),
                    )
                    .order_by(Turn.at.desc(), Turn.id.desc())
                    .limit(limit_turns)
                )
            )
        messages: list[ChatMessage] = []
        for turn in reversed(turns):
            child_text, reply_text = self.decrypt_turn(turn)
            messages.append(ChatMessage("user", child_text))
            messages.append(ChatMessage("assistant", reply_text))
        return messages

    async def turns_in_conversation(self, conversation_id: uuid.UUID) -> int:
        """How many turns the conversation holds (0 for one that no longer exists)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Turn)
                .where(Turn.conversation_id == conversation_id)
            )
        return int(count or 0)

    async def speech_seconds_today(self, child_id: uuid.UUID, now: datetime) -> float:
        """Seconds the child has spoken to the toy since midnight UTC of ``now``'s day."""
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.coalesce(func.sum(Turn.duration_ms), 0)).where(
                    Turn.child_id == child_id, Turn.at >= midnight, Turn.at <= now
                )
            )
        return int(total or 0) / 1000.0

    async def record_turn(
        self,
        *,
        child_id: uuid.UUID,
        conversation_id: uuid.UUID,
        device_id: str,
        child_text: str,
        reply_text: str,
        input_mode: InputMode,
        provider: str,
        timings: Mapping[str, float] | None = None,
        safety_flags: Sequence[str] = (),
        redactions: Sequence[str] = (),
        duration_ms: int = 0,
        flagged: bool = False,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """Store one turn (texts already redacted; ``redactions`` names what was taken out)
        and move the conversation's last turn time and count on; the turn's id.

        Raises:
            ValueError: for an input mode other than ``voice`` or ``text``.
            ConversationNotFound: when the conversation is gone or is another child's.
        """
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, not {input_mode!r}")
        at = at or utc_now()
        turn_id = uuid.uuid4()
        turn = Turn(
            id=turn_id,
            conversation_id=conversation_id,
            child_id=child_id,
            at=at,
            child_text_enc=self._cipher.encrypt(child_text, aad("child_text", turn_id)),
            reply_text_enc=self._cipher.encrypt(reply_text, aad("reply_text", turn_id)),
            input_mode=input_mode,
            provider=provider[:32],
            timings={name: float(value) for name, value in (timings or {}).items()},
            safety_flags=list(safety_flags),
            redactions=list(redactions),
            duration_ms=max(0, int(duration_ms)),
            flagged=flagged,
        )
        async with self._sessions() as session:
            moved = await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.child_id == child_id)
                .values(
                    last_turn_at=at,
                    turn_count=Conversation.turn_count + 1,
                    device_id=device_id,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(moved, "rowcount", 0) != 1:
                await session.rollback()
                raise ConversationNotFound(str(conversation_id))
            session.add(turn)
            await session.commit()
        return turn_id

    async def raise_alert(
        self,
        child_id: uuid.UUID,
        turn_id: uuid.UUID | None,
        categories: Sequence[str],
        excerpt: str,
        *,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """Store a safety alert for the parent (``excerpt`` already redacted; encrypted here);
        its id."""
        alert_id = uuid.uuid4()
        alert = Alert(
            id=alert_id,
            child_id=child_id,
            turn_id=turn_id,
            at=at or utc_now(),
            categories=list(categories),
            excerpt_enc=self._cipher.encrypt(excerpt, aad("alert_excerpt", alert_id)),
        )
        async with self._sessions() as session:
            session.add(alert)
            await session.commit()
        return alert_id

    def decrypt_turn(self, turn: Turn) -> tuple[str, str]:
        """The child's text and the reply of ``turn``.

        Raises:
            TranscriptError: when a text cannot be decrypted (see :mod:`hub.transcripts`).
        """
        return (
            self._cipher.decrypt(turn.child_text_enc, aad("child_text", turn.id)),
            self._cipher.decrypt(turn.reply_text_enc, aad("reply_text", turn.id)),
        )
