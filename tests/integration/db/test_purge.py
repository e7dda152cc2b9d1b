"""The retention purge on PostgreSQL and SQLite, and ``teddyhub purge``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.conversation.store import ConversationStore
from hub.db import migrate
from hub.db.engine import create_engine_for, session_factory
from hub.db.models import Alert, Child, Conversation, Parent, Turn
from hub.purge import PurgeCounts, purge_expired
from hub.settings import Settings
from hub.transcripts import TranscriptCipher

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


@pytest.fixture
async def sessions(db_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    assert db_settings.database_url is not None
    await migrate.upgrade(db_settings.database_url)
    engine = create_engine_for(db_settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def add_child(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    parent = Parent(id=uuid.uuid4(), email=f"{uuid.uuid4().hex}@example.com", password_hash="x")
    child = Child(
        id=uuid.uuid4(),
        parent_id=parent.id,
        first_name="Mia",
        consent_given_at=NOW,
        consent_method="in_app_checkbox",
        consent_notice_version="2026-01",
    )
    async with sessions() as session:
        session.add(parent)
        await session.flush()
        session.add(child)
        await session.commit()
    return child.id


async def add_turn(
    store: ConversationStore, child_id: uuid.UUID, conversation_id: uuid.UUID, at: datetime
) -> uuid.UUID:
    return await store.record_turn(
        child_id=child_id,
        conversation_id=conversation_id,
        device_id="toy-0001",
        child_text="hello",
        reply_text="hi",
        input_mode="voice",
        provider="offline",
        at=at,
    )


async def counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with sessions() as session:
        return (
            await session.scalar(select(func.count()).select_from(Turn)) or 0,
            await session.scalar(select(func.count()).select_from(Alert)) or 0,
            await session.scalar(select(func.count()).select_from(Conversation)) or 0,
        )


async def fill(sessions: async_sessionmaker[AsyncSession]) -> None:
    """An old conversation (two old turns, an old alert), a mixed one (an old and a recent turn,
    a recent alert), a recent one, and one just opened without turns."""
    store = ConversationStore(sessions, TranscriptCipher([bytes(32)]))
    child_id = await add_child(sessions)
    old = await store.open_conversation(child_id, "toy-0001", now=OLD - timedelta(hours=1))
    await add_turn(store, child_id, old, OLD - timedelta(minutes=2))
    old_turn = await add_turn(store, child_id, old, OLD)
    await store.raise_alert(child_id, old_turn, ["violence"], "x", at=OLD)
    await store.end_conversation(old, "idle")  # the times here do not come in order
    mixed = await store.open_conversation(child_id, "toy-0001", now=OLD - timedelta(days=1))
    await add_turn(store, child_id, mixed, OLD - timedelta(days=1))
    recent_turn = await add_turn(store, child_id, mixed, RECENT)
    await store.raise_alert(child_id, recent_turn, ["violence"], "y", at=RECENT)
    await store.end_conversation(mixed, "idle")
    recent = await store.open_conversation(child_id, "toy-0001", now=NOW - timedelta(hours=1))
    await add_turn(store, child_id, recent, NOW - timedelta(minutes=30))
    await store.open_conversation(child_id, "toy-0001", now=NOW)  # idle: a new, empty one


async def test_purge_deletes_what_is_past_retention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await fill(sessions)
    assert await counts(sessions) == (5, 2, 4)

    dry = await purge_expired(sessions, retention_days=30, now=NOW, dry_run=True)
    assert dry == PurgeCounts(turns=3, alerts=1, conversations=1)
    assert await counts(sessions) == (5, 2, 4)  # a dry run deletes nothing

    done = await purge_expired(sessions, retention_days=30, now=NOW)
    assert done == dry
    assert await counts(sessions) == (2, 1, 3)
    async with sessions() as session:
        remaining = (await session.scalars(select(Turn.at).order_by(Turn.at))).all()
        alert = await session.scalar(select(Alert))
    assert remaining == [RECENT, NOW - timedelta(minutes=30)]
    assert alert is not None and alert.turn_id is not None

    # Idempotent.
    again = await purge_expired(sessions, retention_days=30, now=NOW)
    assert again == PurgeCounts(turns=0, alerts=0, conversations=0)

    # Two days on, a one-day retention takes the rest, the empty conversation too.
    later = await purge_expired(sessions, retention_days=1, now=NOW + timedelta(days=2))
    assert later == PurgeCounts(turns=2, alerts=1, conversations=3)
    assert await counts(sessions) == (0, 0, 0)


async def test_purge_refuses_a_retention_under_a_day(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await purge_expired(sessions, retention_days=0)


def test_the_cli_purges_and_prints_the_counts(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert db_settings.database_url is not None
    assert db_settings.esp32_shared_secret is not None
    assert db_settings.jwt_secret_key is not None

    async def prepare() -> None:
        assert db_settings.database_url is not None
        await migrate.upgrade(db_settings.database_url)
        engine = create_engine_for(db_settings)
        try:
            store = ConversationStore(session_factory(engine), TranscriptCipher([bytes(32)]))
            child_id = await add_child(session_factory(engine))
            now = datetime.now(UTC)
            old = await store.open_conversation(child_id, "toy-0001", now=now - timedelta(days=40))
            await add_turn(store, child_id, old, now - timedelta(days=40))
            fresh = await store.open_conversation(child_id, "toy-0001", now=now)
            await add_turn(store, child_id, fresh, now)
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("TEDDY_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("ESP32_SHARED_SECRET", db_settings.esp32_shared_secret.get_secret_value())
    monkeypatch.setenv("JWT_SECRET_KEY", db_settings.jwt_secret_key.get_secret_value())
    monkeypatch.setenv("TEDDY_RETENTION_DAYS", "30")
    # The CLI would point logging at the runner's stdout, which is closed afterwards.
    monkeypatch.setattr("hub.cli.configure_logging", lambda *_args, **_kwargs: None)
    runner = CliRunner()

    dry = runner.invoke(cli, ["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 turns, 0 alerts, 1 conversations older than 30 days" in dry.output
    done = runner.invoke(cli, ["purge"])
    assert done.exit_code == 0, done.output
    assert "deleted 1 turns, 0 alerts, 1 conversations" in done.output
    again = runner.invoke(cli, ["purge"])
    assert "deleted 0 turns, 0 alerts, 0 conversations" in again.output
