"""A parent reads and deletes what their children said to the toy, and the safety alerts.

Under ``/api/v1/children/{child_id}``: ``conversations`` (list, read one with its turns,
delete one, delete all) and ``alerts`` (list, acknowledge, delete). Another parent's child,
and a conversation or alert that is not the named child's, answer 404 ``not_found`` exactly
like an id that does not exist.

Decisions:

- Texts are decrypted here (the cipher of ``TEDDY_TRANSCRIPT_KEYS``, built once and kept on
  ``app.state``). A text whose key has been removed reads as ``null`` rather than failing the
  whole page (and is logged without the text).
- Lists are newest first and paginated by ``limit`` (1..100) and ``offset`` (0..100000); an
  offset past the end is an empty page, a larger one is 422, never a database error.
- Deleting a conversation deletes its turns and the alerts its turns raised (an excerpt is
  part of the conversation); deleting all history deletes every conversation, turn and alert
  of the child. Both are audited (``history_delete``, ``alert_delete``) with ids and counts
  only, never text.
- Acknowledging is idempotent: the first acknowledgement time stays.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import audit_child
from api.deps import CurrentParent, SessionDep
from api.errors import NotFound
from api.ownership import own_child
from hub.db.models import Alert, AuditAction, Conversation, Parent, Turn
from hub.transcripts import TranscriptCipher, TranscriptError, aad

router = APIRouter(prefix="/api/v1/children", tags=["history"])
logger = logging.getLogger(__name__)


MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 20
MAX_OFFSET: Final = 100_000

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def get_cipher(request: Request) -> TranscriptCipher:
    """The transcript cipher of the app's settings, built on first use and kept."""
    state = request.app.state
    cipher: TranscriptCipher | None = getattr(state, "transcript_cipher", None)
    if cipher is None:
        cipher = TranscriptCipher.from_settings(state.settings)
        state.transcript_cipher = cipher
    return cipher


CipherDep = Annotated[TranscriptCipher, Depends(get_cipher)]


class ConversationSummary(BaseModel):
    """A conversation in the list."""

    id: uuid.UUID
    started_at: datetime
    last_turn_at: datetime
    turn_count: int


class ConversationPage(BaseModel):
    """One page of conversations, newest first."""

    items: list[ConversationSummary]
    total: int
    limit: int
    offset: int


class TurnOut(BaseModel):
    """One turn, decrypted (``null`` when its key is gone)."""

    id: uuid.UUID
    at: datetime
    child_text: str | None
    reply_text: str | None
    input_mode: str
    provider: str
    safety_flags: list[str]
    redactions: list[str]
    flagged: bool
    timings: dict[str, float]


class ConversationOut(ConversationSummary):
    """A conversation with its turns, oldest first."""

    ended_reason: str | None
    turns: list[TurnOut]


class AlertOut(BaseModel):
    """A safety alert, its excerpt decrypted (``null`` when its key is gone)."""

    id: uuid.UUID
    at: datetime
    categories: list[str]
    excerpt: str | None
    conversation_id: uuid.UUID | None
    acknowledged_at: datetime | None


class AlertPage(BaseModel):
    """One page of alerts, newest first."""

    items: list[AlertOut]
    total: int
    limit: int
    offset: int


def _open(cipher: TranscriptCipher, blob: bytes, associated: str) -> str | None:
    try:
        return cipher.decrypt(blob, associated)
    except TranscriptError as error:
        logger.warning("transcript %s not readable: %s", associated, error)
        return None


def turn_out(cipher: TranscriptCipher, turn: Turn) -> TurnOut:
    """The parent's view of ``turn``."""
    return TurnOut(
        id=turn.id,
        at=turn.at,
        child_text=_open(cipher, turn.child_text_enc, aad("child_text", turn.id)),
        reply_text=_open(cipher, turn.reply_text_enc, aad("reply_text", turn.id)),
        input_mode=turn.input_mode,
        provider=turn.provider,
        safety_flags=list(turn.safety_flags),
        redactions=list(turn.redactions),
        flagged=turn.flagged,
        timings=dict(turn.timings),
    )


def _summary(conversation: Conversation) -> ConversationSummary:
    return ConversationSummary(
        id=conversation.id,
        started_at=conversation.started_at,
        last_turn_at=conversation.last_turn_at,
        turn_count=conversation.turn_count,
    )


def conversation_out(conversation: Conversation, turns: list[TurnOut]) -> ConversationOut:
    """The parent's view of ``conversation`` with ``turns``."""
    return ConversationOut(
        **_summary(conversation).model_dump(), ended_reason=conversation.ended_reason, turns=turns
    )


def alert_out(
    cipher: TranscriptCipher, alert: Alert, conversation_id: uuid.UUID | None
) -> AlertOut:
    """The parent's view of ``alert``."""
    return AlertOut(
        id=alert.id,
        at=alert.at,
        categories=list(alert.categories),
        excerpt=_open(cipher, alert.excerpt_enc, aad("alert_excerpt", alert.id)),
        conversation_id=conversation_id,
        acknowledged_at=alert.acknowledged_at,
    )


async def child_history(
    session: AsyncSession, cipher: TranscriptCipher, child_id: uuid.UUID
) -> tuple[list[ConversationOut], list[AlertOut]]:
    """Every conversation (with its turns) and alert of the child, oldest first (export)."""
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.child_id == child_id)
            .order_by(Conversation.started_at, Conversation.id)
        )
    )
    turns: defaultdict[uuid.UUID, list[TurnOut]] = defaultdict(list)
    for turn in await session.scalars(
        select(Turn).where(Turn.child_id == child_id).order_by(Turn.at, Turn.id)
    ):
        turns[turn.conversation_id].append(turn_out(cipher, turn))
    alerts = await session.execute(
        _alerts_query(child_id).order_by(Alert.at, Alert.id)  # oldest first here
    )
    return (
        [conversation_out(c, turns[c.id]) for c in conversations],
        [alert_out(cipher, alert, conversation_id) for alert, conversation_id in alerts],
    )


def _alerts_query(child_id: uuid.UUID) -> Any:
    return (
        select(Alert, Turn.conversation_id)
        .outerjoin(Turn, Turn.id == Alert.turn_id)
        .where(Alert.child_id == child_id)
    )


async def _own_conversation(
    session: AsyncSession, parent: Parent, child_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    child = await own_child(session, parent, child_id)
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.child_id == child.id
        )
    )
    if conversation is None:
        raise NotFound("no such conversation")
    return conversation


async def _own_alert(
    session: AsyncSession, parent: Parent, child_id: uuid.UUID, alert_id: uuid.UUID
) -> Alert:
    child = await own_child(session, parent, child_id)
    alert = await session.scalar(
        select(Alert).where(Alert.id == alert_id, Alert.child_id == child.id)
    )
    if alert is None:
        raise NotFound("no such alert")
    return alert


@router.get("/{child_id}/conversations")
async def list_conversations(
    child_id: uuid.UUID,
    parent: CurrentParent,
    session: SessionDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
) -> ConversationPage:
    """The child's conversations, newest first.

    Raises:
        NotFound: 404 for an id that is not the caller's child.
    """
    child = await own_child(session, parent, child_id)
    total = await session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.child_id == child.id)
    )
    conversations = await session.scalars(
        select(Conversation)
        .where(Conversation.child_id == child.id)
        .order_by(Conversation.started_at.desc(), Conversation.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return ConversationPage(
        items=[_summary(conversation) for conversation in conversations],
        total=int(total or 0),
        limit=limit,
        offset=offset,
    )


@router.delete("/{child_id}/conversations", status_code=HTTPStatus.NO_CONTENT)
async def delete_all_history(
    child_id: uuid.UUID, parent: CurrentParent, session: SessionDep
) -> Response:
    """Delete every conversation, turn and alert of the child (audited ``history_delete``).

    Raises:
        NotFound: 404 for an id that is not the caller's child.
    """
    child = await own_child(session, parent, child_id)
    alerts = await session.execute(delete(Alert).where(Alert.child_id == child.id))
    turns = await session.execute(delete(Turn).where(Turn.child_id == child.id))
    conversations = await session.execute(
        delete(Conversation).where(Conversation.child_id == child.id)
    )
    session.add(
        audit_child(
            parent,
            AuditAction.HISTORY_DELETE,
            child.id,
            scope="all",
            conversations=_rowcount(conversations),
            turns=_rowcount(turns),
            alerts=_rowcount(alerts),
        )
    )
    await session.commit()
    return Response(status_code=HTTPStatus.NO_CONTENT)


@router.get("/{child_id}/conversations/{conversation_id}")
async def get_conversation(
    child_id: uuid.UUID,
    conversation_id: uuid.UUID,
    parent: CurrentParent,
    session: SessionDep,
    cipher: CipherDep,
) -> ConversationOut:
    """One conversation with its turns decrypted, oldest first.

    Raises:
        NotFound: 404 unless the child is the caller's and the conversation the child's.
    """
    conversation = await _own_conversation(session, parent, child_id, conversation_id)
    turns = await session.scalars(
        select(Turn).where(Turn.conversation_id == conversation.id).order_by(Turn.at, Turn.id)
    )
    return conversation_out(conversation, [turn_out(cipher, turn) for turn in turns])


@router.delete("/{child_id}/conversations/{conversation_id}", status_code=HTTPStatus.NO_CONTENT)
async def delete_conversation(
    child_id: uuid.UUID, conversation_id: uuid.UUID, parent: CurrentParent, session: SessionDep
) -> Response:
    """Delete the conversation, its turns and the alerts they raised (audited
    ``history_delete``).

    Raises:
        NotFound: 404 unless the child is the caller's and the conversation the child's.
    """
    conversation = await _own_conversation(session, parent, child_id, conversation_id)
    its_turns = select(Turn.id).where(Turn.conversation_id == conversation.id)
    alerts = await session.execute(delete(Alert).where(Alert.turn_id.in_(its_turns)))
    turns = await session.execute(delete(Turn).where(Turn.conversation_id == conversation.id))
    await session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    session.add(
        audit_child(
            parent,
            AuditAction.HISTORY_DELETE,
            conversation.child_id,
            scope="conversation",
            conversation_id=str(conversation.id),
            turns=_rowcount(turns),
            alerts=_rowcount(alerts),
        )
    )
    await session.commit()
    return Response(status_code=HTTPStatus.NO_CONTENT)


@router.get("/{child_id}/alerts")
async def list_alerts(
    child_id: uuid.UUID,
    *,
    parent: CurrentParent,
    session: SessionDep,
    cipher: CipherDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
    unacknowledged: Annotated[bool, Query(description="Only alerts not yet acknowledged.")] = False,
) -> AlertPage:
    """The child's safety alerts, newest first.

    Raises:
        NotFound: 404 for an id that is not the caller's child.
    """
    child = await own_child(session, parent, child_id)
    conditions = [Alert.child_id == child.id]
    if unacknowledged:
        conditions.append(Alert.acknowledged_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Alert).where(*conditions))
    rows = await session.execute(
        _alerts_query(child.id)
        .where(*conditions)
        .order_by(Alert.at.desc(), Alert.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return AlertPage(
        items=[alert_out(cipher, alert, conversation_id) for alert, conversation_id in rows],
        total=int(total or 0),
        limit=limit,
        offset=offset,
    )


@router.post("/{child_id}/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(
    child_id: uuid.UUID,
    alert_id: uuid.UUID,
    parent: CurrentParent,
    session: SessionDep,
    cipher: CipherDep,
) -> AlertOut:
    """Mark the alert seen (the first acknowledgement time stays).

    Raises:
        NotFound: 404 unless the child is the caller's and the alert the child's.
    """
    alert = await _own_alert(session, parent, child_id, alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = datetime.now(UTC)
        await session.commit()
    conversation_id = None
    if alert.turn_id is not None:
        conversation_id = await session.scalar(
            select(Turn.conversation_id).where(Turn.id == alert.turn_id)
        )
    return alert_out(cipher, alert, conversation_id)


@router.delete("/{child_id}/alerts/{alert_id}", status_code=HTTPStatus.NO_CONTENT)
async def delete_alert(
    child_id: uuid.UUID, alert_id: uuid.UUID, parent: CurrentParent, session: SessionDep
) -> Response:
    """Delete the alert (audited ``alert_delete``).

    Raises:
        NotFound: 404 unless the child is the caller's and the alert the child's.
    """
    alert = await _own_alert(session, parent, child_id, alert_id)
    await session.execute(delete(Alert).where(Alert.id == alert.id))
    session.add(
        audit_child(parent, AuditAction.ALERT_DELETE, alert.child_id, alert_id=str(alert.id))
    )
    await session.commit()
    return Response(status_code=HTTPStatus.NO_CONTENT)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
