"""amqtt, hardened: what the embedded broker must get right that amqtt 0.12 does not.

* **Authentication before the session table.** amqtt sets up or takes over the session of a
  client id before it authenticates, so a failed login with a toy's id disconnected that toy or
  wiped its subscriptions. Here the CONNECT is authenticated first; a refused login gets its
  CONNACK and is closed without touching any session. Only an authenticated connection takes an
  id over, and the connection it replaces is closed.
* **Keepalive.** amqtt waits forever for a silent client. Here a client silent for 1.5 times its
  keepalive (or for ``MAX_IDLE_S`` when it asked for none) is disconnected like a dropped
  connection, so its will is published.
* **Packet size.** Each packet's remaining length is checked as it is read, before its body is:
  a client that sends more than ``max_packet_size`` is dropped, and only that client.
* **Connection cap.** Past ``max_connections`` a new connection is closed at once instead of
  waiting, unbounded, for a slot; a connection that sends no CONNECT in ``CONNECT_TIMEOUT_S`` is
  closed.
* **Bounded queues.** Deliveries waiting for one client and messages kept for one offline
  session are capped (``max_outgoing``, ``max_queued``); the excess is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from pathlib import Path
from typing import Any, ClassVar

import structlog
from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import gen_client_id
from prometheus_client import CollectorRegistry, Counter

from broker.acl import Action, Role, is_allowed
from broker.plugins import PRINCIPAL_ATTRIBUTE, REVOCATION_REFRESH_S, principal_of
from hub.errors import TeddyError
from hub.revocation import FileRevocations

log = structlog.get_logger("broker")
CONNECT_TIMEOUT_S = 10.0
MAX_IDLE_S = 600
TAKEOVER_TIMEOUT_S = 5.0
_PREAUTHENTICATED = "teddy_preauthenticated"
_LOGIN_LOCK = "teddy_login_lock"
_HEADER, _LENGTH, _BODY = 0, 1, 2


class PacketTooLarge(TeddyError):
    """A client announced a packet over the broker's maximum packet size."""


class BrokerMetrics:
    """Counters of the hardening, named ``teddy_broker_*``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        dropped = Counter(
            "teddy_broker_clients_dropped",
            "Connections the broker closed.",
            ["reason"],
            registry=registry,
        )
        self.packet_too_large = dropped.labels("packet_too_large")
        self.keepalive = dropped.labels("keepalive")
        self.connection_cap = dropped.labels("connection_cap")
        self.connect_timeout = dropped.labels("connect_timeout")
        self.login_refused = dropped.labels("login_refused")
        self.taken_over = dropped.labels("taken_over")
        self.revoked = dropped.labels("revoked")
        self.retain_ignored = Counter(
            "teddy_broker_retain_ignored", "Retained publishes not kept.", registry=registry
        )
        discarded = Counter(
            "teddy_broker_messages_discarded",
            "Messages not delivered because a client's queue was full.",
            ["queue"],
            registry=registry,
        )
        self.outgoing_full = discarded.labels("outgoing")
        self.offline_full = discarded.labels("offline")


class LimitedReader(ReaderAdapter):
    """Follows MQTT framing as bytes pass and refuses an oversized packet before its body.

    amqtt reads each packet as a fixed header, then exactly ``remaining length`` bytes, so the
    reader sees packet boundaries without parsing anything else.
    """

    def __init__(
        self, inner: ReaderAdapter, max_packet_size: int, on_too_large: Any = None
    ) -> None:
        self._inner = inner
        self._max_remaining = max_packet_size - 5  # fixed header: type byte + up to 4 length bytes
        self._on_too_large = on_too_large
        self._state = _HEADER
        self._value = 0
        self._multiplier = 1
        self._remaining = 0

    async def read(self, n: int = -1) -> bytes:
        """Read like the wrapped reader; raise ``PacketTooLarge`` at an oversized length."""
        data: bytes = await self._inner.read(n)
        self._advance(data)
        return data

    def feed_eof(self) -> None:
        """Pass EOF on."""
        self._inner.feed_eof()

    def _advance(self, data: bytes) -> None:
        index, size = 0, len(data)
        while index < size:
            if self._state == _BODY:
                taken = min(self._remaining, size - index)
                self._remaining -= taken
                index += taken
                if self._remaining == 0:
                    self._state = _HEADER
            elif self._state == _HEADER:
                self._state, self._value, self._multiplier = _LENGTH, 0, 1
                index += 1
            else:
                byte = data[index]
                index += 1
                self._value += (byte & 0x7F) * self._multiplier
                if byte & 0x80:
                    self._multiplier *= 128
                    continue
                if self._value > self._max_remaining:
                    if self._on_too_large is not None:
                        self._on_too_large.inc()
                    raise PacketTooLarge(f"packet of {self._value} bytes announced")
                self._remaining = self._value
                self._state = _BODY if self._value else _HEADER


class TeddyHandler(BrokerProtocolHandler):
    """amqtt's per-connection handler with keepalive enforcement and a bounded send queue."""

    max_outgoing: ClassVar[int] = 1_020
    metrics: ClassVar[BrokerMetrics | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outgoing = 0

    def handle_read_timeout(self) -> None:
        """The client outlived its keepalive: close it as a dropped connection (will sent)."""
        client_id = self.session.client_id if self.session else None
        log.info("client_dropped", reason="keepalive", client_id=client_id)
        if self.metrics is not None:
            self.metrics.keepalive.inc()
        asyncio.ensure_future(self._close_silent_client())  # noqa: RUF006 - ends with the connection

    async def _close_silent_client(self) -> None:
        await self.handle_connection_closed()
        if self.writer is not None:
            with contextlib.suppress(Exception):
                await self.writer.close()

    async def mqtt_publish(
        self,
        topic: str,
        data: bytes | bytearray,
        qos: int | None,
        retain: bool,
        ack_timeout: int | None = None,
    ) -> Any:
        """Deliver one message, unless this client already has ``max_outgoing`` in flight."""
        if self._outgoing >= self.max_outgoing:
            if self.metrics is not None:
                self.metrics.outgoing_full.inc()
            return None
        self._outgoing += 1
        try:
            return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)
        finally:
            self._outgoing -= 1


class TeddyBroker(Broker):
    """amqtt's broker with the fixes this module's docstring lists."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        max_packet_size: int,
        max_queued: int,
        max_inflight: int,
        topic_root: str = "teddy",
        revocation_file: Path | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(config)
        self._topic_root = topic_root
        self._revocations = FileRevocations(revocation_file) if revocation_file else None
        self._revocation_task: asyncio.Task[None] | None = None
        self._login_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.registry = registry or CollectorRegistry()
        self.teddy_metrics = BrokerMetrics(self.registry)
        self._max_packet_size = max_packet_size
        self._max_queued = max_queued
        self._handler_class: type[TeddyHandler] = type(
            "BoundTeddyHandler",
            (TeddyHandler,),
            {
                "max_outgoing": max_inflight + max_queued,
                "metrics": self.teddy_metrics,
            },
        )

    async def _client_connected(
        self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter
    ) -> None:
        server = self._servers.get(listener_name)
        if server is None:
            await writer.close()
            return
        if server.semaphore is not None and server.semaphore.locked():
            self.teddy_metrics.connection_cap.inc()
            log.warning("client_dropped", reason="connection_cap", listener=listener_name)
            await writer.close()
            return
        await server.acquire_connection()
        try:
            peer = writer.get_peer_info()
            if peer is None:
                await writer.close()
                return
            address, port = peer
            limited = LimitedReader(
                reader, self._max_packet_size, self.teddy_metrics.packet_too_large
            )
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    handler, session = await self._initialize_client_session(
                        limited, writer, address, port
                    )
            except TimeoutError:
                self.teddy_metrics.connect_timeout.inc()
                log.info("client_dropped", reason="connect_timeout", address=address)
                await _close_quietly(writer)
                return
            except (
                AMQTTError,
                MQTTError,
                NoDataError,
                PacketTooLarge,
                OSError,
                asyncio.IncompleteReadError,
            ) as error:
                log.debug("connect_failed", address=address, error=type(error).__name__)
                await _close_quietly(writer)
                return
            session_task = asyncio.create_task(
                self._handle_client_session(
                    limited, writer, session, handler, server, listener_name
                )
            )
            await self._release_login_lock(session, session_task)
            try:
                await session_task
            except (AMQTTError, MQTTError, NoDataError) as error:
                log.info(
                    "client_session_ended",
                    client_id=session.client_id,
                    error=type(error).__name__,
                )
        finally:
            server.release_connection()

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        handler, incoming = await self._handler_class.init_from_connect(
            reader, writer, self.plugins_manager
        )
        if not await Broker._authenticate(self, incoming, None):
            self.teddy_metrics.login_refused.inc()
            connack = ConnackPacket.build(0, NOT_AUTHORIZED)
            await connack.to_stream(writer)
            await _close_quietly(writer)
            raise MQTTError("login refused")
        if not self._will_allowed(incoming):
            self.teddy_metrics.login_refused.inc()
            log.warning("login_refused", reason="will_not_allowed", client_id=incoming.client_id)
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await _close_quietly(writer)
            raise MQTTError("will topic not allowed")
        client_id = incoming.client_id
        # One login per client id at a time, from here until the session is registered
        # (released by _release_login_lock): two valid logins racing for one id would
        # otherwise both pass the take-over and both stay connected.
        lock = self._login_locks.setdefault(client_id or "", asyncio.Lock())
        await lock.acquire()
        setattr(incoming, _LOGIN_LOCK, lock)
        try:
            return await self._settle_session(handler, incoming)
        except BaseException:
            lock.release()
            raise

    async def _settle_session(
        self, handler: BrokerProtocolHandler, incoming: Session
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Reuse, replace or create the session of an authenticated login."""
        client_id = incoming.client_id
        existing = self._sessions.get(client_id) if client_id else None
        if incoming.clean_session:
            if existing is not None:
                await self._close_previous_connection(*existing)
                await self._delete_session(client_id)
            if not client_id:
                incoming.client_id = gen_client_id()
            incoming.parent = 0
            session = incoming
        elif existing is not None:
            # Close the old connection before its session is reused: amqtt's own take-over
            # would leave the old connection's teardown to mark the shared session
            # disconnected after the new one attached, so nothing more was delivered to it.
            await self._close_previous_connection(*existing)
            session = existing[0]
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
                "password",
                PRINCIPAL_ATTRIBUTE,
            ):
                setattr(session, name, getattr(incoming, name, None))
            session.parent = 1
        else:
            incoming.parent = 0
            session = incoming
        # [MQTT-3.1.2-24]: a server disconnects a client silent for 1.5 times its keepalive.
        keep_alive = incoming.keep_alive
        session.keep_alive = math.ceil(keep_alive * 1.5) if keep_alive > 0 else MAX_IDLE_S
        session.keep_alive = min(session.keep_alive, MAX_IDLE_S)
        setattr(session, _PREAUTHENTICATED, True)
        return handler, session

    async def _release_login_lock(self, session: Session, session_task: asyncio.Task[None]) -> None:
        """Release the client id once amqtt has registered this connection's session."""
        lock = getattr(session, _LOGIN_LOCK, None)
        if lock is None:
            return
        try:
            async with asyncio.timeout(TAKEOVER_TIMEOUT_S):
                while not session_task.done():  # amqtt registers the session with no event
                    registered = self._sessions.get(session.client_id)
                    if registered is not None and registered[0] is session:
                        break
                    await asyncio.sleep(0)
        except TimeoutError:
            log.warning("session_registration_slow", client_id=session.client_id)
        finally:
            setattr(session, _LOGIN_LOCK, None)
            lock.release()

    async def _close_previous_connection(
        self, session: Session, handler: BrokerProtocolHandler
    ) -> None:
        """The newest authenticated connection for an id wins; the old one is closed."""
        if session.transitions.is_connected():
            self.teddy_metrics.taken_over.inc()
            log.info("client_dropped", reason="taken_over", client_id=session.client_id)
            await handler.handle_connection_closed()
            await handler.stop()
            # The old connection's message loop marks the session disconnected as it ends;
            # amqtt signals that transition with no event to wait on.
            async with asyncio.timeout(TAKEOVER_TIMEOUT_S):
                while session.transitions.is_connected():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)

    def _will_allowed(self, session: Session) -> bool:
        """amqtt publishes a will without an ACL check, so the will topic is checked here."""
        if not session.will_flag:
            return True
        principal = principal_of(session)
        topic = session.will_topic
        return (
            principal is not None
            and isinstance(topic, str)
            and is_allowed(principal, topic, Action.PUBLISH, self._topic_root)
        )

    async def retain_message(
        self,
        source_session: Session | None,
        topic_name: str | None,
        data: bytes | bytearray | None,
        qos: int | None = None,
    ) -> None:
        """Keep no retained message: frames are never retained (docs/protocol.md), and amqtt
        replays retained messages to new subscribers without the receive check."""
        if data:
            self.teddy_metrics.retain_ignored.inc()

    async def start(self) -> None:
        """Start, and keep revoked toys off the broker while it runs."""
        await super().start()
        if self._revocations is not None:
            self._revocation_task = asyncio.create_task(self._disconnect_revoked())

    async def shutdown(self) -> None:
        """Stop the revocation watch, then the broker."""
        if self._revocation_task is not None:
            self._revocation_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._revocation_task
        await super().shutdown()

    async def _disconnect_revoked(self) -> None:
        """Close connected sessions of devices revoked since they logged in (every 2 s)."""
        revocations = self._revocations
        if revocations is None:
            return
        while True:
            await asyncio.sleep(REVOCATION_REFRESH_S)
            try:
                revoked = await revocations.revoked_device_ids()
            except OSError:
                continue
            for session, handler in list(self._sessions.values()):
                principal = principal_of(session)
                if (
                    principal is not None
                    and principal.role is Role.DEVICE
                    and principal.name in revoked
                    and session.transitions.is_connected()
                ):
                    self.teddy_metrics.revoked.inc()
                    log.info("client_dropped", reason="revoked", client_id=session.client_id)
                    await handler.handle_connection_closed()
                    await handler.stop()

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        # Authentication already ran on the CONNECT itself (_initialize_client_session).
        if getattr(session, _PREAUTHENTICATED, False):
            setattr(session, _PREAUTHENTICATED, False)
            return True
        return False

    async def _retain_broadcast_message(
        self, broadcast: dict[str, Any], qos: int, target_session: Session
    ) -> None:
        if target_session.retained_messages.qsize() >= self._max_queued:
            self.teddy_metrics.offline_full.inc()
            return
        await super()._retain_broadcast_message(broadcast, qos, target_session)


async def _close_quietly(writer: WriterAdapter) -> None:
    with contextlib.suppress(Exception):
        await writer.close()
