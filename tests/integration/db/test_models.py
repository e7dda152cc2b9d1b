"""Rows round-trip and deletions follow the foreign keys, on PostgreSQL and SQLite."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool

from hub.db import migrate
from hub.db.engine import create_engine_for, session_factory
from hub.db.models import (
    AuditAction,
    AuditEntry,
    Child,
    Device,
    Parent,
    ParentRole,
    RefreshToken,
    utc_now,
)
from hub.errors import ProtocolError
from hub.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessions(db_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    assert db_settings.database_url is not None
    await migrate.upgrade(db_settings.database_url)
    engine = create_engine_for(db_settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def new_parent(email: str = "Ada@Example.COM") -> Parent:
    return Parent(email=email, password_hash="$argon2id$v=19$m=65536,t=3,p=4$placeholder")


def new_child(parent: Parent) -> Child:
    return Child(
        parent_id=parent.id,
        first_name="Mia",
        birth_year=2020,
        language="de",
        consent_given_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        consent_method="app_checkbox",
        consent_notice_version="2026-01",
    )


async def add_family(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[Parent, Child, Device, RefreshToken, AuditEntry]:
    parent = new_parent()
    parent.id = uuid.uuid4()
    child = new_child(parent)
    child.id = uuid.uuid4()
    token = secrets.token_urlsafe(32)
    async with sessions() as session, session.begin():
        session.add(parent)
        await session.flush()
        session.add(child)
        await session.flush()
        device = Device(
            device_id="teddy-0001",
            parent_id=parent.id,
            child_id=child.id,
            firmware_version="1.2.3",
            last_seen_at=utc_now(),
        )
        refresh = RefreshToken(
            parent_id=parent.id,
            family_id=uuid.uuid4(),
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=utc_now() + timedelta(days=30),
        )
        entry = AuditEntry(
            actor_parent_id=parent.id,
            action=AuditAction.CLAIM,
            subject_type="device",
            subject_id=device.device_id,
            detail={"child_id": str(child.id), "method": "claim_proof"},
        )
        session.add_all([device, refresh, entry])
    return parent, child, device, refresh, entry


async def test_a_family_round_trips(sessions: async_sessionmaker[AsyncSession]) -> None:
    parent, child, device, refresh, entry = await add_family(sessions)
    async with sessions() as session:
        stored_parent = await session.get_one(Parent, parent.id)
        stored_child = await session.get_one(Child, child.id)
        stored_device = await session.get_one(Device, device.device_id)
        stored_token = await session.get_one(RefreshToken, refresh.id)
        stored_entry = await session.get_one(AuditEntry, entry.id)

    assert stored_parent.email == "ada@example.com"
    assert stored_parent.role is ParentRole.PARENT
    assert stored_child.cloud_ai_consent is False
    assert stored_child.daily_limit_minutes is None
    assert stored_child.consent_given_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert stored_device.parent_id == parent.id
    assert stored_device.child_id == child.id
    assert stored_device.revoked_at is None
    assert stored_token.token_hash == refresh.token_hash
    assert len(stored_token.token_hash) == 64
    assert stored_token.used_at is None
    assert stored_entry.action == "claim"
    assert stored_entry.detail == {"child_id": str(child.id), "method": "claim_proof"}
    for row_id in (stored_parent.id, stored_child.id, stored_token.id, stored_entry.id):
        assert isinstance(row_id, uuid.UUID)
        assert row_id.version == 4
    for moment in (
        stored_parent.created_at,
        stored_child.updated_at,
        stored_device.last_seen_at,
        stored_token.expires_at,
        stored_entry.at,
    ):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)


async def test_times_from_other_zones_are_stored_as_utc(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    parent = new_parent()
    plus_two = timezone(timedelta(hours=2))
    parent.password_changed_at = datetime(2026, 6, 1, 12, 0, tzinfo=plus_two)
    async with sessions() as session, session.begin():
        session.add(parent)
    async with sessions() as session:
        stored = await session.get_one(Parent, parent.id)
    assert stored.password_changed_at == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert stored.password_changed_at.tzinfo is UTC


async def test_naive_times_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    parent = new_parent()
    parent.created_at = datetime(2026, 6, 1, 12, 0)  # naive on purpose
    async with sessions() as session:
        session.add(parent)
        with pytest.raises(StatementError, match="naive datetime"):
            await session.flush()


async def test_emails_are_unique_whatever_their_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        session.add(new_parent("ada@example.com"))
    async with sessions() as session:
        session.add(new_parent("  ADA@example.com "))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_token_hashes_are_unique(sessions: async_sessionmaker[AsyncSession]) -> None:
    _, _, _, refresh, _ = await add_family(sessions)
    async with sessions() as session:
        session.add(
            RefreshToken(
                parent_id=refresh.parent_id,
                family_id=uuid.uuid4(),
                token_hash=refresh.token_hash,
                expires_at=utc_now(),
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_an_unknown_role_is_refused_by_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        with pytest.raises(IntegrityError, match="ck_parents_parent_role"):
            await session.execute(
                text(
                    "INSERT INTO parents (id, email, password_hash, role, created_at, "
                    "password_changed_at) VALUES "
                    "(:id, 'x@example.com', 'x', 'root', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": uuid.uuid4().hex},
            )


def test_device_ids_outside_the_topic_alphabet_are_refused() -> None:
    for bad in ("AB", "teddy/01", "teddy+", "#", "x" * 33):
        with pytest.raises(ProtocolError):
            Device(device_id=bad)


async def test_deleting_a_parent_removes_their_data_and_frees_their_devices(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    parent, child, device, refresh, entry = await add_family(sessions)
    other_parent, other_child, *_ = await add_other_family(sessions)
    async with sessions() as session, session.begin():
        await session.delete(await session.get_one(Parent, parent.id))

    async with sessions() as session:
        assert await session.get(Parent, parent.id) is None
        assert await session.get(Child, child.id) is None
        assert await session.get(RefreshToken, refresh.id) is None
        stored_device = await session.get_one(Device, device.device_id)
        assert stored_device.parent_id is None
        assert stored_device.child_id is None
        stored_entry = await session.get_one(AuditEntry, entry.id)
        assert stored_entry.actor_parent_id is None
        assert stored_entry.subject_id == device.device_id
        # Nobody else's rows are touched.
        assert await session.get(Parent, other_parent.id) is not None
        assert await session.get(Child, other_child.id) is not None
        tokens = await session.scalar(select(func.count()).select_from(RefreshToken))
        assert tokens == 1


async def test_deleting_a_child_unbinds_its_device(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    parent, child, device, _, _ = await add_family(sessions)
    async with sessions() as session, session.begin():
        await session.delete(await session.get_one(Child, child.id))
    async with sessions() as session:
        stored_device = await session.get_one(Device, device.device_id)
        assert stored_device.child_id is None
        assert stored_device.parent_id == parent.id


async def add_other_family(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[Parent, Child, RefreshToken]:
    parent = new_parent("bob@example.com")
    async with sessions() as session, session.begin():
        session.add(parent)
        await session.flush()
        child = new_child(parent)
        refresh = RefreshToken(
            parent_id=parent.id,
            family_id=uuid.uuid4(),
            token_hash=hashlib.sha256(b"other").hexdigest(),
            expires_at=utc_now() + timedelta(days=1),
        )
        session.add_all([child, refresh])
    return parent, child, refresh


@pytest.mark.parametrize("pool_size", [20, 5])
async def test_postgresql_pool_size_comes_from_the_settings(
    settings: Settings, pool_size: int
) -> None:
    configured = settings.model_copy(
        update={
            "database_url": "postgresql://nobody@127.0.0.1:1/none",
            "db_pool_size": pool_size,
        }
    )
    engine = create_engine_for(configured)  # connects lazily: nothing is reached here
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
        assert isinstance(engine.pool, AsyncAdaptedQueuePool)
        assert engine.pool.size() == pool_size
    finally:
        await engine.dispose()


def test_pool_size_defaults_to_twenty(settings: Settings) -> None:
    assert settings.db_pool_size == 20
