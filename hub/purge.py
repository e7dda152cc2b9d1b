"""The retention purge: turns and alerts older than ``TEDDY_RETENTION_DAYS`` are deleted, and
so are conversations left without turns.

Run by ``teddyhub purge`` (``--dry-run`` counts without deleting), for example daily from
cron or a Kubernetes CronJob. It is idempotent: a second run right after the first finds
nothing. Everything happens in one transaction, so a failed run deletes nothing.

A conversation is purged when its last turn (or, without turns, its start) is older than the
cutoff and it holds no turn newer than that, so a conversation the hub has just opened for a
first turn is never taken from under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.db.models import Alert, Conversation, Turn, utc_now


@dataclass(frozen=True)
class PurgeCounts:
    """What a purge deleted (or, in a dry run, would delete)."""

    turns: int
    alerts: int
    conversations: int


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """The moment before which stored talk is past retention."""
    return now - timedelta(days=retention_days)


def _conversation_expired(cutoff: datetime) -> ColumnElement[bool]:
    newer_turn = exists().where(Turn.conversation_id == Conversation.id, Turn.at >= cutoff)
    return (Conversation.last_turn_at < cutoff) & ~newer_turn


async def purge_expired(
    sessions: async_sessionmaker[AsyncSession],
    *,
    retention_days: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeCounts:
    """Delete what is older than ``retention_days`` before ``now``; the counts.

    Raises:
        ValueError: for a retention shorter than a day.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = retention_cutoff(now or utc_now(), retention_days)
    old_turns = Turn.at < cutoff
    old_alerts = Alert.at < cutoff
    expired = _conversation_expired(cutoff)
    async with sessions() as session:
        if dry_run:
            return PurgeCounts(
                turns=await _count(session, Turn, old_turns),
                alerts=await _count(session, Alert, old_alerts),
                conversations=await _count(session, Conversation, expired),
            )
        # Alerts first: deleting their turns would otherwise update them (turn_id NULL).
        alerts = await session.execute(delete(Alert).where(old_alerts))
        turns = await session.execute(delete(Turn).where(old_turns))
        conversations = await session.execute(delete(Conversation).where(expired))
        await session.commit()
    return PurgeCounts(
        turns=_rowcount(turns),
        alerts=_rowcount(alerts),
        conversations=_rowcount(conversations),
    )


async def _count(
    session: AsyncSession, table: type[Turn | Alert | Conversation], where: ColumnElement[bool]
) -> int:
    value = await session.scalar(select(func.count()).select_from(table).where(where))
    return int(value or 0)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
