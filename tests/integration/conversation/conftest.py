"""Conversations end to end: the simulated toy, the real Mosquitto, a real hub with its real
(offline) models, a real database, and for cloud cases the fake OpenAI-compatible server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db.engine import create_engine_for, database_url, session_factory
from hub.db.migrate import upgrade
from hub.db.models import Child, Device, Parent
from hub.service import Hub
from hub.settings import Settings
from hub.toy.talk import Talker
from tests.fakes.fixtures import fake_openai
from tests.integration.harness import HubRunner, Toys
from tests.timing import EVENT_TIMEOUT_S

__all__ = ["fake_openai"]


@pytest.fixture
def talk_settings(hub_settings: Settings) -> Settings:
    """Hub settings whose bounds a slow, busy machine meets with a wide margin.

    A test of a timeout shortens that one bound itself (``start_hub(moderation_timeout_s=1)``);
    every other wait keeps a bound that only a hang reaches, so no turn fails because the
    machine is busy. One retry keeps failure cases short. The turn's cap stays under the
    test's own time limit, so a stuck turn shows as an apology, not as a killed test.
    """
    return hub_settings.model_copy(
        update={
            "turn_deadline_s": 90.0,
            "provider_timeout_s": 30.0,
            "provider_retries": 1,
            "moderation_timeout_s": 30.0,
        }
    )


@pytest.fixture
async def database(talk_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The hub's database (the embedded SQLite file), migrated, and an engine on it."""
    talk_settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(database_url(talk_settings))
    engine = create_engine_for(talk_settings)
    yield engine
    await engine.dispose()


Pair = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
def pair(database: AsyncEngine) -> Pair:
    """Bind a device to a new child with consent recorded (as the API would); the child id."""

    async def pair_device(
        device_id: str,
        *,
        cloud_ai: bool = False,
        daily_limit_minutes: int | None = None,
        first_name: str = "Mia",
    ) -> uuid.UUID:
        async with session_factory(database)() as session:
            parent = Parent(email=f"{uuid.uuid4().hex}@example.com", password_hash="x")
            session.add(parent)
            await session.flush()
            child = Child(
                parent_id=parent.id,
                first_name=first_name,
                birth_year=datetime.now(UTC).year - 6,
                language="en",
                consent_given_at=datetime.now(UTC),
                consent_method="in_app_checkbox",
                consent_notice_version="2025-01",
                cloud_ai_consent=cloud_ai,
                daily_limit_minutes=daily_limit_minutes,
            )
            session.add(child)
            await session.flush()
            session.add(Device(device_id=device_id, parent_id=parent.id, child_id=child.id))
            await session.commit()
            return child.id

    return pair_device


StartHub = Callable[..., Awaitable[Hub]]


@pytest.fixture
def start_hub(talk_settings: Settings, hubs: HubRunner) -> StartHub:
    """Build and start a hub on ``talk_settings`` (changed by keyword arguments)."""

    async def start(**changes: object) -> Hub:
        hub = Hub.build(talk_settings.model_copy(update=changes))
        await hubs.start(hub)
        return hub

    return start


StartReplicas = Callable[[int], Awaitable[list[Hub]]]


@pytest.fixture
def start_replicas(start_hub: StartHub, redis_url: str, redis_prefix: str) -> StartReplicas:
    """Start hub replicas on one shared subscription, sharing the test's Redis prefix."""

    async def start(count: int) -> list[Hub]:
        group = f"talk-{uuid.uuid4().hex[:8]}"
        shared = {
            "hub_share_group": group,
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
        }
        return [
            await start_hub(**shared, hub_client_id=f"svc:hub-{uuid.uuid4().hex[:12]}")
            for _ in range(count)
        ]

    return start


OpenTalker = Callable[..., Awaitable[Talker]]


@pytest.fixture
def talker(toys: Toys) -> OpenTalker:
    """A connected simulated toy that has said hello (PCM16 16 kHz unless told)."""

    async def open_talker(
        device_id: str | None = None, codecs: tuple[str, ...] = ("pcm16",)
    ) -> Talker:
        toy = await toys.open(device_id)
        talk = Talker(toy)
        await talk.hello(codecs=codecs, sample_rates=(16_000,), timeout_s=EVENT_TIMEOUT_S)
        return talk

    return open_talker
