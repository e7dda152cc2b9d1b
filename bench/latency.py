"""Publish-to-handler latency through the full hub path, QoS 1 at a moderate rate.

Throughput hides queueing: a hub can keep up on average and still make each frame wait. Here the
publisher stamps every frame with ``time.monotonic_ns()`` as it publishes (CLOCK_MONOTONIC is
one clock for every process on Linux) and the handler subtracts that from its own clock, so the
figure covers the toy's client, the broker, the consumer, the gate, the Redis claim and the
dispatcher: everything but the handler's own work.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench.fleet import SEND_STAMP
from bench.harness import Publisher, PublisherReport, Recorder
from bench.hubpath import BenchHub
from hub.dispatch import Inbound
from hub.mqtt import BrokerAddress
from hub.nonces import NonceStore


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Latencies in milliseconds, sorted, and how many of the published frames arrived."""

    latencies_ms: list[float]
    expected: int
    rate: float
    publisher: PublisherReport

    @property
    def received(self) -> int:
        """Frames that reached the handler."""
        return len(self.latencies_ms)

    def percentile(self, percent: float) -> float:
        """The nearest-rank percentile; NaN when nothing arrived."""
        if not self.latencies_ms:
            return math.nan
        rank = max(1, math.ceil(percent / 100 * len(self.latencies_ms)))
        return self.latencies_ms[rank - 1]


async def latency_phase(
    broker: BrokerAddress,
    topic_root: str,
    nonces: NonceStore,
    *,
    rate: float,
    seconds: float,
    devices: int,
) -> LatencyResult:
    """Publish ``rate`` stamped frames a second for ``seconds`` and time each to its handler."""
    messages = max(1, round(rate * seconds))
    recorder = Recorder(messages)
    latencies_ns: list[int] = []
    unpack = SEND_STAMP.unpack_from

    async def handler(item: Inbound) -> None:
        latencies_ns.append(time.monotonic_ns() - unpack(item.frame.payload)[0])
        recorder.record()

    async with BenchHub(
        broker,
        topic_root,
        nonces,
        handler,
        client_id=f"{topic_root}-hub",
        devices=devices,
    ):
        publisher = await Publisher.start(
            port=broker.port,
            topic_root=topic_root,
            messages=messages,
            devices=devices,
            qos=1,
            rate=rate,
        )
        try:
            await recorder.wait(start_timeout_s=20.0, idle_timeout_s=3.0)
        except BaseException:
            publisher.kill()
            raise
        report = await publisher.report()
    return LatencyResult(
        latencies_ms=sorted(value / 1e6 for value in latencies_ns),
        expected=messages,
        rate=recorder.rate,
        publisher=report,
    )
