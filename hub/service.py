"""The hub process: everything between the broker and the handlers, wired once.

``Hub.build`` is the composition root: it picks the nonce store (Redis when ``REDIS_URL`` is set,
memory otherwise) and the revocation source, and registers the handlers. Tests build a hub with
their own store, source or clock through the same function.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.asgi_server import serve_asgi
from hub.consumer import Consumer, ConsumerOptions
from hub.conversation.devices import DeviceStates, MemoryDeviceStates, RedisDeviceStates
from hub.conversation.store import ConversationStore
from hub.conversation.turn import Conversations
from hub.conversation.utterances import MemoryUtteranceStore, RedisUtteranceStore, UtteranceStore
from hub.conversation.voices import LazyVoices
from hub.db.engine import create_engine_for, database_url, is_sqlite, session_factory
from hub.db.migrate import upgrade
from hub.dispatch import Dispatcher
from hub.downlink import DownlinkPublisher
from hub.gate import Gate, wall_clock_ms
from hub.handlers.conversation import ConversationHandlers
from hub.handlers.pairing import PairRequestHandler
from hub.handlers.ping import PingHandler
from hub.metrics import HubMetrics
from hub.nonces import MemoryNonceStore, NonceStore, RedisNonceStore
from hub.ports import bind_listener
from hub.protocol.keys import DeviceKeyring, derive_pair_code_key
from hub.purge import purge_expired
from hub.revocation import FileRevocations, RevocationList, RevocationSource
from hub.settings import Settings
from hub.status import status_app

log = structlog.get_logger("hub.service")
PURGE_INTERVAL_S = 3600.0


@dataclass
class ConversationParts:
    """What conversations need beyond the core: shared stores, voices, the turn runner."""

    utterances: UtteranceStore
    states: DeviceStates
    voices: LazyVoices
    conversations: Conversations
    handlers: ConversationHandlers

    async def close(self) -> None:
        """Stop turns and watchers, then close connections."""
        await self.handlers.close()
        await self.conversations.close()
        await self.voices.close()
        await self.utterances.close()
        await self.states.close()


def _conversation_parts(
    settings: Settings,
    downlinks: DownlinkPublisher,
    sessions: async_sessionmaker[AsyncSession],
    metrics: HubMetrics,
) -> ConversationParts:
    utterances: UtteranceStore
    states: DeviceStates
    if settings.redis_url:
        utterances = RedisUtteranceStore.from_url(settings.redis_url, settings.redis_key_prefix)
        states = RedisDeviceStates.from_url(settings.redis_url, settings.redis_key_prefix)
    else:
        utterances = MemoryUtteranceStore()
        states = MemoryDeviceStates()
    voices = LazyVoices(settings, metrics.registry)
    conversations = Conversations(
        downlinks=downlinks,
        store=ConversationStore.from_settings(sessions, settings),
        states=states,
        voices=voices,
        metrics=metrics,
        reply_max_chars=settings.reply_max_chars,
        context_turns=settings.context_turns,
        session_max_turns=settings.session_max_turns,
        turn_deadline_s=settings.turn_deadline_s,
        moderation_timeout_s=settings.moderation_timeout_s,
    )
    handlers = ConversationHandlers(
        settings=settings,
        downlinks=downlinks,
        utterances=utterances,
        states=states,
        conversations=conversations,
        metrics=metrics,
    )
    return ConversationParts(utterances, states, voices, conversations, handlers)


@dataclass
class Hub:
    """One hub replica's components."""

    settings: Settings
    metrics: HubMetrics
    nonces: NonceStore
    revocations: RevocationList
    gate: Gate
    dispatcher: Dispatcher
    downlinks: DownlinkPublisher
    consumer: Consumer
    engine: AsyncEngine
    talk: ConversationParts
    owns_nonces: bool = True

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        nonces: NonceStore | None = None,
        revocation_source: RevocationSource | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        workers: int = 128,
    ) -> Hub:
        """Wire a hub from settings; any argument given replaces the default component."""
        metrics = HubMetrics()
        keyring = DeviceKeyring(settings.fleet_secret())
        owns_nonces = nonces is None
        if nonces is None:
            nonces = (
                RedisNonceStore.from_url(settings.redis_url, settings.redis_key_prefix)
                if settings.redis_url
                else MemoryNonceStore(settings.nonce_memory_capacity)
            )
        revocations = RevocationList(
            revocation_source or FileRevocations(settings.revoked_devices_file),
            metrics,
            settings.revocation_refresh_s,
        )
        gate = Gate(keyring, revocations, nonces, metrics, clock_ms=clock_ms)
        dispatcher = Dispatcher(
            metrics,
            handler_timeout_s=settings.handler_timeout_s,
            device_concurrency=settings.device_concurrency,
            device_backlog=settings.device_backlog,
            max_pending=settings.max_pending_messages,
            workers=workers,
        )
        downlinks = DownlinkPublisher(keyring, settings.topic_root, metrics, clock_ms)
        consumer = Consumer(
            ConsumerOptions(
                broker=settings.service_address("hub"),
                topic_root=settings.topic_root,
                client_id=settings.hub_client_id,
                share_group=settings.hub_share_group,
                batch_size=settings.batch_size,
                inbox_limit=settings.hub_inbox_limit,
            ),
            gate,
            dispatcher,
            metrics,
            downlinks,
        )
        engine = create_engine_for(settings)
        sessions = session_factory(engine)
        PingHandler(downlinks).register(dispatcher)
        PairRequestHandler(
            downlinks,
            sessions=sessions,
            code_key=derive_pair_code_key(settings.fleet_secret()),
            ttl_s=settings.pair_code_ttl_s,
            metrics=metrics,
            clock=lambda: datetime.now(UTC),
        ).register(dispatcher)
        talk = _conversation_parts(settings, downlinks, sessions, metrics)
        talk.handlers.register(dispatcher)
        return cls(
            settings,
            metrics,
            nonces,
            revocations,
            gate,
            dispatcher,
            downlinks,
            consumer,
            engine,
            talk,
            owns_nonces,
        )

    def readiness(self) -> dict[str, bool]:
        """The parts readiness depends on, each true or false."""
        return {
            "broker": self.consumer.is_connected,
            "nonce_store": self.consumer.nonce_store_up,
            "revocation_list": self.revocations.is_fresh,
        }

    async def run(self, *, serve_status: bool = True) -> None:
        """Run every task of the hub until cancelled; the first to fail stops the rest."""
        status_socket = None
        if serve_status:
            status_socket = bind_listener(
                self.settings.hub_status_host,
                self.settings.hub_status_port,
                "TEDDY_HUB_STATUS_PORT",
            )
        try:
            url = database_url(self.settings)
            if not self.settings.is_production and is_sqlite(url):
                # The embedded database migrates itself; production runs `teddyhub db upgrade`.
                await upgrade(url)
            await self.revocations.refresh()
            async with asyncio.TaskGroup() as group:
                group.create_task(self.revocations.run())
                group.create_task(self.dispatcher.run())
                group.create_task(self.consumer.run())
                group.create_task(self.consumer.watch_store())
                group.create_task(self._purge_hourly())
                if status_socket is not None:
                    group.create_task(self._serve_status(status_socket))
        finally:
            # A store handed in by the caller outlives this hub (a restart in one process must
            # not forget live nonces); only a store built here is closed here.
            await self.talk.close()
            if self.owns_nonces:
                await self.nonces.close()
            await self.engine.dispose()

    async def _purge_hourly(self) -> None:
        """Delete what is past retention every hour (idempotent, so replicas may overlap);
        ``teddyhub purge`` does the same on demand."""
        sessions = session_factory(self.engine)
        while True:
            try:
                counts = await purge_expired(sessions, retention_days=self.settings.retention_days)
            except (SQLAlchemyError, OSError) as error:
                log.warning("purge_failed", error=type(error).__name__)
            else:
                if counts.turns or counts.alerts or counts.conversations:
                    log.info(
                        "purged",
                        turns=counts.turns,
                        alerts=counts.alerts,
                        conversations=counts.conversations,
                    )
            await asyncio.sleep(PURGE_INTERVAL_S)

    async def _serve_status(self, sock: socket.socket) -> None:
        await serve_asgi(status_app(self.metrics.registry, self.readiness), sock)
