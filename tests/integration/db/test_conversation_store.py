"""The conversation store on PostgreSQL and SQLite: who a toy talks to, conversations, turns,
alerts, and transcripts that reach the database only encrypted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.conversation.store import ChildContext, ConversationNotFound, ConversationStore
from hub.db import migrate
from hub.db.engine import create_engine_for, session_factory
from hub.db.models import Alert, Child, Conversation, Device, Parent, Turn
from hub.settings import Settings
from hub.transcripts import TranscriptCipher, aad
from hub.voice.providers import ChatMessage

pytestmark = pytest.mark.integration

KEY = bytes(range(32))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(db_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    assert db_settings.database_url is not None
    await migrate.upgrade(db_settings.database_url)
    engine = create_engine_for(db_settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> ConversationStore:
    return ConversationStore(sessions, TranscriptCipher([KEY]), retention_days=30)


async def add_family(
    sessions: async_sessionmaker[AsyncSession],
    *,
    device_id: str = "toy-0001",
    birth_year: int | None = 2021,
) -> uuid.UUID:
    """A parent, a consented child and a toy bound to them; the child's id."""
    parent = Parent(id=uuid.uuid4(), email=f"{uuid.uuid4().hex}@example.com", password_hash="x")
    child = Child(
        id=uuid.uuid4(),
        parent_id=parent.id,
        first_name="Mia",
        birth_year=birth_year,
        language="de",
        consent_given_at=NOW,
        consent_method="in_app_checkbox",
        consent_notice_version="2026-01",
        cloud_ai_consent=True,
        daily_limit_minutes=20,
    )
    async with sessions() as session:
        session.add(parent)
        await session.flush()
        session.add(child)
        await session.flush()
        session.add(Device(device_id=device_id, parent_id=parent.id, child_id=child.id))
        await session.commit()
    return child.id


async def turn(
    store: ConversationStore,
    child_id: uuid.UUID,
    conversation_id: uuid.UUID,
    number: int,
    *,
    at: datetime = NOW,
    flagged: bool = False,
    duration_ms: int = 1500,
) -> uuid.UUID:
    return await store.record_turn(
        child_id=child_id,
        conversation_id=conversation_id,
        device_id="toy-0001",
        child_text=f"question {number}",
        reply_text=f"answer {number}",
        input_mode="voice",
        provider="offline",
        timings={"stt": 120, "total": 900.5},
        safety_flags=["self_harm"] if flagged else [],
        redactions=["phone"],
        duration_ms=duration_ms,
        flagged=flagged,
        at=at,
    )


async def test_child_for_device(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    context = await store.child_for_device("toy-0001")
    assert context == ChildContext(
        child_id=child_id,
        first_name="Mia",
        age=datetime.now(UTC).year - 2021,
        language="de",
        consent_recorded=True,
        cloud_ai_consent=True,
        daily_limit_minutes=20,
    )
    assert await store.child_for_device("toy-none") is None
    no_year = await add_family(sessions, device_id="toy-0002", birth_year=None)
    context = await store.child_for_device("toy-0002")
    assert context is not None and context.child_id == no_year and context.age is None

    async with sessions() as session:  # unbound, then unclaimed, then revoked
        await session.execute(
            update(Device).where(Device.device_id == "toy-0001").values(child_id=None)
        )
        await session.commit()
    assert await store.child_for_device("toy-0001") is None
    async with sessions() as session:
        await session.execute(
            update(Device).where(Device.device_id == "toy-0002").values(parent_id=None)
        )
        await session.commit()
    assert await store.child_for_device("toy-0002") is None
    await add_family(sessions, device_id="toy-0003")
    async with sessions() as session:
        await session.execute(
            update(Device).where(Device.device_id == "toy-0003").values(revoked_at=NOW)
        )
        await session.commit()
    assert await store.child_for_device("toy-0003") is None


async def test_conversations_resume_within_the_idle_time(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    first = await store.open_conversation(child_id, "toy-0001", now=NOW)
    assert (
        await store.open_conversation(child_id, "toy-0001", now=NOW + timedelta(seconds=60))
        == first
    )
    await turn(store, child_id, first, 1, at=NOW + timedelta(seconds=200))
    # Idle time counts from the last turn.
    resumed = await store.open_conversation(
        child_id, "toy-0001", idle_s=300, now=NOW + timedelta(seconds=450)
    )
    assert resumed == first
    second = await store.open_conversation(
        child_id, "toy-0001", idle_s=300, now=NOW + timedelta(seconds=501)
    )
    assert second != first
    await store.end_conversation(second, "max_turns")
    third = await store.open_conversation(child_id, "toy-0001", now=NOW + timedelta(seconds=502))
    assert third not in {first, second}


async def test_turns_are_recorded_and_read_back_as_context(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    conversation_id = await store.open_conversation(child_id, "toy-0001", now=NOW)
    for number in range(1, 5):
        await turn(store, child_id, conversation_id, number, at=NOW + timedelta(seconds=number))
    await turn(store, child_id, conversation_id, 5, at=NOW + timedelta(seconds=5), flagged=True)

    assert await store.turns_in_conversation(conversation_id) == 5
    assert await store.turns_in_conversation(uuid.uuid4()) == 0
    messages = await store.recent_messages(child_id, 2, now=NOW + timedelta(minutes=1))
    assert messages == [
        ChatMessage("user", "question 3"),
        ChatMessage("assistant", "answer 3"),
        ChatMessage("user", "question 4"),
        ChatMessage("assistant", "answer 4"),
    ]
    assert await store.recent_messages(child_id, 0) == []
    # Past retention, turns leave the context.
    assert await store.recent_messages(child_id, 6, now=NOW + timedelta(days=31)) == []

    async with sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        stored = (await session.scalars(select(Turn).order_by(Turn.at))).all()
    assert conversation is not None
    assert conversation.turn_count == 5
    assert conversation.last_turn_at == NOW + timedelta(seconds=5)
    assert stored[0].timings == {"stt": 120.0, "total": 900.5}
    assert stored[0].redactions == ["phone"]
    assert stored[-1].flagged and stored[-1].safety_flags == ["self_harm"]
    assert stored[0].input_mode == "voice" and stored[0].provider == "offline"


async def test_record_turn_refuses_another_childs_conversation(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    other = await add_family(sessions, device_id="toy-0002")
    conversation_id = await store.open_conversation(child_id, "toy-0001", now=NOW)
    with pytest.raises(ConversationNotFound):
        await turn(store, other, conversation_id, 1)
    with pytest.raises(ConversationNotFound):
        await turn(store, child_id, uuid.uuid4(), 1)
    with pytest.raises(ValueError, match="input_mode"):
        await store.record_turn(
            child_id=child_id,
            conversation_id=conversation_id,
            device_id="toy-0001",
            child_text="a",
            reply_text="b",
            input_mode="telepathy",  # type: ignore[arg-type]
            provider="offline",
        )
    assert await store.turns_in_conversation(conversation_id) == 0


async def test_speech_seconds_today_counts_the_utc_day(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    conversation_id = await store.open_conversation(child_id, "toy-0001", now=NOW)
    yesterday = NOW - timedelta(days=1)
    await turn(store, child_id, conversation_id, 1, at=yesterday, duration_ms=60_000)
    await turn(store, child_id, conversation_id, 2, at=NOW.replace(hour=0), duration_ms=2_500)
    await turn(store, child_id, conversation_id, 3, at=NOW, duration_ms=1_000)
    assert await store.speech_seconds_today(child_id, NOW) == pytest.approx(3.5)
    assert await store.speech_seconds_today(uuid.uuid4(), NOW) == 0.0


async def test_texts_reach_the_database_only_encrypted(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    conversation_id = await store.open_conversation(child_id, "toy-0001", now=NOW)
    turn_id = await store.record_turn(
        child_id=child_id,
        conversation_id=conversation_id,
        device_id="toy-0001",
        child_text="my secret is purple elephants",
        reply_text="what a lovely secret about elephants",
        input_mode="text",
        provider="openai",
    )
    alert_id = await store.raise_alert(
        child_id, turn_id, ["self_harm"], "excerpt about purple elephants"
    )
    async with sessions() as session:
        turn_row = (await session.execute(text("SELECT * FROM turns"))).mappings().one()
        alert_row = (await session.execute(text("SELECT * FROM alerts"))).mappings().one()
    for row in (turn_row, alert_row):
        for value in row.values():
            raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
            assert b"elephant" not in raw
            assert b"purple" not in raw
    cipher = TranscriptCipher([KEY])
    assert (
        cipher.decrypt(turn_row["child_text_enc"], aad("child_text", turn_id))
        == "my secret is purple elephants"
    )
    assert (
        cipher.decrypt(alert_row["excerpt_enc"], aad("alert_excerpt", alert_id))
        == "excerpt about purple elephants"
    )
    async with sessions() as session:
        alert = await session.get(Alert, alert_id)
    assert alert is not None and alert.categories == ["self_harm"] and alert.turn_id == turn_id
    assert alert.acknowledged_at is None


async def test_deleting_a_child_deletes_their_history(
    store: ConversationStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    child_id = await add_family(sessions)
    conversation_id = await store.open_conversation(child_id, "toy-0001", now=NOW)
    turn_id = await turn(store, child_id, conversation_id, 1)
    await store.raise_alert(child_id, turn_id, ["violence"], "x")
    async with sessions() as session:
        await session.execute(text("DELETE FROM children"))
        await session.commit()
        for table in ("conversations", "turns", "alerts"):
            count = await session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            assert count == 0, table
