"""What the integration tests share: running hubs, simulated toys, recording handlers, metrics.

Synchronisation is by events and by the hub's own counters, never by fixed sleeps: a test waits
until a counter reaches the value it expects (``wait_until``) or a handler has seen a number of
frames (``Recorder.wait_for``), each with a limit (:data:`tests.timing.EVENT_TIMEOUT_S`) that
only turns a hang into a failure: no machine is too slow for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import Callable
from types import TracebackType

from hub.dispatch import Inbound
from hub.errors import RejectReason
from hub.gate import wall_clock_ms
from hub.mqtt import BrokerAddress, open_client
from hub.protocol.frames import PROTOCOL_VERSION, compute_tag
from hub.protocol.keys import derive_device_key
from hub.protocol.kinds import Kind
from hub.protocol.topics import uplink_topic
from hub.service import Hub
from hub.toy.simulator import SimulatedToy
from tests.timing import EVENT_TIMEOUT_S

TIMEOUT_S = EVENT_TIMEOUT_S
_POLL_S = 0.005


def new_device_id(prefix: str = "toy") -> str:
    """A device id no other test (or test run) uses; it is also the toy's MQTT client id."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S
) -> None:
    """Return once ``predicate()`` holds; fail the test naming ``what`` after ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            # Counters have no change notification: polling them is the synchronisation.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(_POLL_S)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}") from None


def sample(hub: Hub, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample of the hub's own registry (0 when the series does not exist)."""
    value = hub.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def received(hub: Hub) -> float:
    """Uplink messages the hub has taken from the broker and screened."""
    return sample(hub, "teddy_hub_frames_received_total")


def rejected(hub: Hub, reason: RejectReason) -> float:
    """Frames rejected for ``reason``."""
    return sample(hub, "teddy_hub_frames_rejected_total", {"reason": reason.value})


def rejections(hub: Hub) -> dict[RejectReason, float]:
    """Every rejection counter, by reason."""
    return {reason: rejected(hub, reason) for reason in RejectReason}


def dispatched(hub: Hub, kind: Kind) -> float:
    """Frames of ``kind`` handed to a handler."""
    return sample(hub, "teddy_hub_frames_dispatched_total", {"kind": kind.topic_name})


def handler_failures(hub: Hub, kind: Kind, failure: str) -> float:
    """Handler calls of ``kind`` that ended in ``failure`` (``error`` or ``timeout``)."""
    return sample(
        hub, "teddy_hub_handler_failures_total", {"kind": kind.topic_name, "failure": failure}
    )


def nonce_store_up(hub: Hub) -> float:
    """The ``teddy_hub_nonce_store_up`` gauge."""
    return sample(hub, "teddy_hub_nonce_store_up")


class Recorder:
    """A handler that keeps every frame it is given and lets a test wait for a count."""

    def __init__(self) -> None:
        self.calls: list[Inbound] = []
        self._changed = asyncio.Condition()

    async def __call__(self, inbound: Inbound) -> None:
        """Record one frame."""
        async with self._changed:
            self.calls.append(inbound)
            self._changed.notify_all()

    @property
    def payloads(self) -> list[bytes]:
        """The payloads seen, in order."""
        return [inbound.frame.payload for inbound in self.calls]

    @property
    def nonces(self) -> list[bytes]:
        """The nonces seen, in order."""
        return [inbound.frame.nonce for inbound in self.calls]

    async def wait_for(self, count: int, timeout_s: float = TIMEOUT_S) -> None:
        """Return once at least ``count`` frames were recorded."""
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: len(self.calls) >= count)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout_s:g} s: handler saw {len(self.calls)} of {count} frames"
            ) from None


async def forget_session(broker: BrokerAddress, client_id: str) -> None:
    """Drop the broker's persistent session of ``client_id`` (subscriptions and queue)."""
    async with open_client(broker, identifier=client_id, clean_session=True):
        pass


class HubRunner:
    """Runs hubs as tasks; at the end stops them and forgets their persistent sessions."""

    def __init__(self, broker: BrokerAddress) -> None:
        self._broker = broker
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._client_ids: set[str] = set()

    async def start(self, hub: Hub, timeout_s: float = TIMEOUT_S) -> None:
        """Run ``hub`` and return once it is subscribed to the uplinks.

        Raises:
            AssertionError: when it does not subscribe in time; the hub's own error, if it
                stopped with one.
        """
        self._client_ids.add(hub.settings.hub_client_id)
        task = asyncio.create_task(hub.run(serve_status=False))
        self._tasks[id(hub)] = task
        subscribed = asyncio.create_task(hub.consumer.wait_subscribed())
        done, _ = await asyncio.wait(
            {task, subscribed}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if subscribed in done:
            return
        subscribed.cancel()
        await self.stop(hub)
        raise AssertionError(f"hub {hub.settings.hub_client_id} did not subscribe in time")

    async def stop(self, hub: Hub) -> None:
        """Cancel ``hub`` (as a crash or a shutdown would) and wait until it has stopped.

        Raises:
            BaseException: whatever the hub stopped with, other than the cancellation.
        """
        task = self._tasks.pop(id(hub))
        task.cancel()
        await asyncio.wait({task})
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error

    async def close(self) -> None:
        """Stop every hub still running, then forget every session a hub opened."""
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks.values())
        self._tasks.clear()
        for client_id in sorted(self._client_ids):
            await forget_session(self._broker, client_id)


class Toys:
    """Opens simulated toys on the test's topic root; all are disconnected at the end."""

    def __init__(self, fleet_secret: bytes, broker: BrokerAddress, topic_root: str) -> None:
        self._fleet_secret = fleet_secret
        self._broker = broker
        self._root = topic_root
        self._stack = contextlib.AsyncExitStack()

    def key_for(self, device_id: str) -> bytes:
        """The device key a toy with ``device_id`` holds."""
        return derive_device_key(self._fleet_secret, device_id)

    async def open(
        self, device_id: str | None = None, *, clock_ms: Callable[[], int] = wall_clock_ms
    ) -> SimulatedToy:
        """A connected toy (a fresh device id unless one is given)."""
        device_id = device_id or new_device_id()
        toy = SimulatedToy(
            device_id, self.key_for(device_id), self._broker, self._root, clock_ms=clock_ms
        )
        return await self._stack.enter_async_context(toy)

    async def __aenter__(self) -> Toys:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.aclose()


def hand_built_frame(
    key: bytes, topic_root: str, device_id: str, kind: Kind, payload: bytes, *, nonce: bytes
) -> tuple[str, bytes]:
    """A correctly signed frame built byte by byte, without ``encode_frame``'s size check.

    Used for the oversized rejection: ``encode_frame`` refuses to build what a receiver would
    reject, so a toy that misbehaves has to be imitated by hand (docs/protocol.md layout).
    """
    topic = uplink_topic(topic_root, device_id, kind)
    device = device_id.encode("ascii")
    signed = b"".join(
        (
            bytes((PROTOCOL_VERSION, kind.direction.value, kind.value, len(device))),
            device,
            struct.pack(">Q16sII", wall_clock_ms(), nonce, 0, len(payload)),
            payload,
        )
    )
    return topic, signed + compute_tag(key, topic, signed)
