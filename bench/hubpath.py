"""The hub path under test: the real consumer, gate, Redis nonce store and dispatcher.

Wired like ``hub.service.Hub.build`` wires them, with production defaults (batch size,
dispatcher workers, backlog bounds), and these differences, each to keep the figure about the
path: the only handler is the benchmark's own (a no-op that records an arrival) for the
published kind; the fleet secret is the benchmark's and its keys are derived before the flood
(a running hub has them cached); the store is wrapped to count batch sizes; and neither the
status server, the revocation refresher nor the idle store probe runs (none is on the per-frame
path).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType

import redis.asyncio as aioredis

from bench.fleet import BENCH_FLEET_SECRET, BENCH_KIND, device_ids
from hub.consumer import Consumer, ConsumerOptions
from hub.dispatch import Dispatcher, Handler
from hub.gate import Gate
from hub.metrics import HubMetrics
from hub.mqtt import BrokerAddress
from hub.nonces import NonceStore
from hub.protocol.keys import DeviceKeyring
from hub.revocation import InMemoryRevocations, RevocationList


class CountingNonceStore:
    """A nonce store that counts claim calls and keys, to show how large the batches are.

    The consumer's batches are what the one-script-call claim pays off on; the figure says
    whether they fill under load. Counting costs two additions a batch.
    """

    def __init__(self, store: NonceStore) -> None:
        self._store = store
        self.calls = 0
        self.keys = 0

    async def claim_many(
        self, keys: Sequence[bytes], ttl_ms: int, claim_id: bytes = b""
    ) -> list[bool]:
        """Claim through the wrapped store, counting the call."""
        self.calls += 1
        self.keys += len(keys)
        return await self._store.claim_many(keys, ttl_ms, claim_id)

    async def check(self) -> None:
        """Check the wrapped store."""
        await self._store.check()

    async def close(self) -> None:
        """Nothing: the wrapped store belongs to the caller."""

    @property
    def mean_batch(self) -> float:
        """Keys per claim call; 0 before the first."""
        return self.keys / self.calls if self.calls else 0.0


class BenchHub:
    """The hub's consumer and dispatcher running, with ``handler`` for the benchmark's kind.

    Use as ``async with BenchHub(...) as hub``; entry returns once the consumer is subscribed.
    """

    def __init__(
        self,
        broker: BrokerAddress,
        topic_root: str,
        nonces: NonceStore,
        handler: Handler,
        *,
        client_id: str,
        devices: int,
    ) -> None:
        self.metrics = HubMetrics()
        keyring = DeviceKeyring(BENCH_FLEET_SECRET)
        # A running hub has its toys' keys cached; derive them now so that HKDF (tens of
        # microseconds a device, once) is not counted against the steady-state rate.
        for device_id in device_ids(devices):
            keyring.key_for(device_id)
        revocations = RevocationList(InMemoryRevocations(), self.metrics)
        self.nonces = CountingNonceStore(nonces)
        gate = Gate(keyring, revocations, self.nonces, self.metrics)
        self.dispatcher = Dispatcher(self.metrics)
        self.dispatcher.register(BENCH_KIND, handler)
        self.consumer = Consumer(
            ConsumerOptions(broker=broker, topic_root=topic_root, client_id=client_id),
            gate,
            self.dispatcher,
            self.metrics,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> BenchHub:
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="bench-dispatcher"),
            asyncio.create_task(self.consumer.run(), name="bench-consumer"),
        ]
        try:
            async with asyncio.timeout(10):
                await self.consumer.wait_subscribed()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()

    def rejections(self) -> dict[str, int]:
        """Frames the gate rejected, by reason (only the reasons that occurred)."""
        counts: dict[str, int] = {}
        for metric in self.metrics.registry.collect():
            if metric.name != "teddy_hub_frames_rejected":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    counts[sample.labels["reason"]] = int(sample.value)
        return counts

    def dropped(self) -> int:
        """Verified frames the dispatcher dropped (no handler, or a device backlog was full)."""
        total = 0
        for metric in self.metrics.registry.collect():
            if metric.name == "teddy_hub_frames_dropped":
                total += sum(
                    int(sample.value) for sample in metric.samples if sample.name.endswith("_total")
                )
        return total

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def delete_keys(redis_url: str, key_prefix: str) -> int:
    """Delete every key under ``key_prefix`` (the run's nonces); return how many went."""
    client = aioredis.Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{key_prefix}*", count=10_000):
            batch.append(key)
            if len(batch) >= 5_000:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted
