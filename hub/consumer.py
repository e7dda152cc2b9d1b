"""The hub's MQTT consumer: broker connection, batching, fail-closed nonce claims.

Messages are taken from aiomqtt in batches (everything already waiting, up to ``batch_size``),
screened one by one, and their nonces claimed in one store call. While the nonce store is down
the batch is held, nothing is dispatched and no new message is taken; the hold is retried with
backoff, and frames that went stale while waiting are dropped as stale.

Effects are at most once (docs/protocol.md, "Delivery"): the nonce is claimed before the handler
runs, so a frame the broker delivers again after a crash is a replay and is dropped.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import aiomqtt
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from hub.dispatch import Dispatcher, Inbound
from hub.downlink import DownlinkPublisher
from hub.errors import NonceStoreUnavailable
from hub.gate import Gate
from hub.metrics import HubMetrics
from hub.mqtt import BrokerAddress, Inbox, open_client
from hub.nonces.base import CLAIM_ID_SIZE
from hub.protocol.frames import Frame
from hub.protocol.topics import uplink_filter

log = structlog.get_logger("hub.consumer")


class _SessionLost(Exception):
    """A subscribed session ended; the next connection starts a fresh backoff."""


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed (redis-py can, inside a call)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """How the consumer connects and batches."""

    broker: BrokerAddress
    topic_root: str
    client_id: str = "teddy-hub"
    share_group: str | None = None
    batch_size: int = 256
    inbox_limit: int = 1_024
    keepalive: int = 30
    reconnect_max_s: float = 30.0
    outage_retry_max_s: float = 5.0


class Consumer:
    """Subscribes to every uplink and feeds verified frames to the dispatcher."""

    def __init__(
        self,
        options: ConsumerOptions,
        gate: Gate,
        dispatcher: Dispatcher,
        metrics: HubMetrics,
        downlinks: DownlinkPublisher | None = None,
    ) -> None:
        self._options = options
        self._gate = gate
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._downlinks = downlinks
        self._subscribed = asyncio.Event()
        self._store_up = True
        self._holding = False
        self._metrics.nonce_store_up.set(1)

    @property
    def is_connected(self) -> bool:
        """True while subscribed to the uplinks."""
        return self._subscribed.is_set()

    @property
    def nonce_store_up(self) -> bool:
        """False while the hub fails closed on a nonce store outage."""
        return self._store_up

    async def wait_subscribed(self) -> None:
        """Return once the consumer is subscribed (tests and start-up)."""
        await self._subscribed.wait()

    async def run(self) -> None:
        """Connect, consume, and reconnect with backoff, until cancelled.

        One inbox serves every connection, so messages already taken from the broker survive a
        reconnect; each lost session starts a fresh backoff.
        """
        inbox = Inbox(maxsize=self._options.inbox_limit, read_ahead=self._options.batch_size)
        first = True
        while True:
            retrying = AsyncRetrying(
                wait=wait_exponential_jitter(
                    multiplier=0.2, jitter=0.5, max=self._options.reconnect_max_s
                ),
                retry=retry_if_exception_type(aiomqtt.MqttError),
                before_sleep=self._log_connect_failure,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        if not first:
                            self._metrics.broker_reconnects.inc()
                        first = False
                        await self._session(inbox)
            except _SessionLost as lost:
                log.warning("broker_connection_lost", error=str(lost.__cause__))

    async def _session(self, inbox: Inbox) -> None:
        """One connection; ``MqttError`` before it is subscribed, ``_SessionLost`` after."""
        options = self._options
        client = open_client(
            options.broker,
            identifier=options.client_id,
            clean_session=False,
            inbox=inbox,
            keepalive=options.keepalive,
        )
        async with client:
            await client.subscribe(uplink_filter(options.topic_root, options.share_group), qos=1)
            try:
                if self._downlinks is not None:
                    self._downlinks.attach(client)
                self._subscribed.set()
                self._metrics.broker_connected.set(1)
                log.info(
                    "broker_connected",
                    host=options.broker.host,
                    port=options.broker.port,
                    client_id=options.client_id,
                    share_group=options.share_group,
                )
                await self._consume(client, inbox)
            except aiomqtt.MqttError as error:
                raise _SessionLost from error
            finally:
                self._subscribed.clear()
                self._metrics.broker_connected.set(0)
                if self._downlinks is not None:
                    self._downlinks.attach(None)

    async def _consume(self, client: aiomqtt.Client, inbox: Inbox) -> None:
        messages = client.messages
        limit = self._options.batch_size
        screen = self._gate.screen
        while True:
            first = await anext(messages)
            batch = [first, *inbox.take_now(limit - 1)]
            now_ms = self._gate.now_ms()
            screened: list[tuple[str, Frame]] = []
            for message in batch:
                topic = message.topic.value
                frame = screen(topic, message.payload, now_ms)
                if frame is not None:
                    screened.append((topic, frame))
            if screened:
                await self._admit_and_dispatch(screened)

    async def _admit_and_dispatch(self, screened: list[tuple[str, Frame]]) -> None:
        admitted = await self._admit_failing_closed(screened)
        dispatcher = self._dispatcher
        for topic, frame in admitted:
            dispatcher.submit(Inbound(topic, frame))
        await dispatcher.wait_for_room()

    async def _admit_failing_closed(self, held: list[tuple[str, Frame]]) -> list[tuple[str, Frame]]:
        """Claim the held frames' nonces, holding them (and the consumer) through an outage.

        Every retry of one held batch carries the same claim id, so a claim that reached the
        store before its answer was lost is recognised as ours, not as a replay.
        """
        claim_id = os.urandom(CLAIM_ID_SIZE)
        delay = 0.1
        self._holding = True
        try:
            while True:
                try:
                    if held:
                        claimed = await self._gate.admit([frame for _, frame in held], claim_id)
                    else:  # everything held went stale; the store must still answer first
                        await self._gate.check_store()
                        claimed = []
                    _raise_if_cancelling()
                except NonceStoreUnavailable as error:
                    self._mark_store_down(error, len(held))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._options.outage_retry_max_s)
                    now_ms = self._gate.now_ms()
                    fresh = self._gate.recheck_clock([frame for _, frame in held], now_ms)
                    held = [pair for pair, keep in zip(held, fresh, strict=True) if keep]
                    continue
                self._mark_store_up()
                return [pair for pair, is_new in zip(held, claimed, strict=True) if is_new]
        finally:
            self._holding = False

    async def watch_store(self, interval_s: float = 2.0) -> None:
        """Probe the nonce store while no batch is waiting, so readiness tells the truth.

        Outages are otherwise noticed only when a batch needs claiming; a hub that starts with
        Redis down, or whose toys are quiet, must still report it. While a batch is held, the
        claim itself is the probe: a store that answers a ping but refuses writes is still down.
        """
        while True:
            if not self._holding:
                try:
                    await self._gate.check_store()
                    _raise_if_cancelling()
                except NonceStoreUnavailable as error:
                    self._mark_store_down(error, 0)
                else:
                    self._mark_store_up()
            await asyncio.sleep(interval_s)

    def _mark_store_down(self, error: NonceStoreUnavailable, held: int) -> None:
        if not self._store_up:
            return
        self._store_up = False
        self._metrics.nonce_store_up.set(0)
        self._metrics.nonce_store_outages.inc()
        log.error(
            "nonce_store_unavailable",
            error=str(error),
            held_frames=held,
            action="dispatching nothing until it answers",
        )

    def _mark_store_up(self) -> None:
        if self._store_up:
            return
        self._store_up = True
        self._holding = False
        self._metrics.nonce_store_up.set(1)
        log.info("nonce_store_recovered")

    @staticmethod
    def _log_connect_failure(retry_state: object) -> None:
        outcome = getattr(retry_state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        log.warning("broker_unreachable", error=str(error))
