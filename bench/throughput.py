"""Receive rate of a bare aiomqtt subscriber against the full hub path, same flood for both.

The bare subscriber is aiomqtt's standard usage (``async for message in client.messages``) doing
nothing but counting: the ceiling any consumer built on aiomqtt can reach on this machine. The
hub phase counts in a no-op handler behind the real consumer, gate, Redis nonce store and
dispatcher. Their ratio is the share of that ceiling the hub keeps; machine speed and the noise
of whatever else runs cancel out of it better than out of either rate alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from bench.harness import Publisher, PublisherReport, Recorder
from bench.hubpath import BenchHub
from hub.dispatch import Inbound
from hub.mqtt import BrokerAddress, open_client
from hub.nonces import NonceStore
from hub.protocol.topics import uplink_filter


@dataclass(frozen=True, slots=True)
class FloodOptions:
    """What one flood phase publishes and how long it waits."""

    messages: int
    devices: int
    start_timeout_s: float = 20.0
    idle_timeout_s: float = 3.0


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """One phase's figures."""

    name: str
    received: int
    expected: int
    rate: float
    publisher: PublisherReport
    rejected: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    mean_batch: float = 0.0


async def raw_phase(broker: BrokerAddress, topic_root: str, options: FloodOptions) -> PhaseResult:
    """A plain aiomqtt client subscribed to the uplinks, counting messages and nothing else."""
    recorder = Recorder(options.messages)

    async with open_client(broker, identifier=f"{topic_root}-raw") as client:
        await client.subscribe(uplink_filter(topic_root), qos=1)

        async def receive() -> None:
            async for _message in client.messages:
                recorder.record()

        receiver = asyncio.create_task(receive(), name="bench-raw-receiver")
        report = await _flood(broker, topic_root, options, recorder)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
    return PhaseResult("raw", recorder.count, options.messages, recorder.rate, report)


async def hub_phase(
    broker: BrokerAddress, topic_root: str, options: FloodOptions, nonces: NonceStore
) -> PhaseResult:
    """The real hub path with a no-op handler that counts."""
    recorder = Recorder(options.messages)
    record = recorder.record

    async def handler(_item: Inbound) -> None:
        record()

    async with BenchHub(
        broker,
        topic_root,
        nonces,
        handler,
        client_id=f"{topic_root}-hub",
        devices=options.devices,
    ) as hub:
        report = await _flood(broker, topic_root, options, recorder)
        rejected = hub.rejections()
        dropped = hub.dropped()
        mean_batch = hub.nonces.mean_batch
    return PhaseResult(
        "hub",
        recorder.count,
        options.messages,
        recorder.rate,
        report,
        rejected,
        dropped,
        mean_batch,
    )


async def _flood(
    broker: BrokerAddress, topic_root: str, options: FloodOptions, recorder: Recorder
) -> PublisherReport:
    publisher = await Publisher.start(
        port=broker.port,
        topic_root=topic_root,
        messages=options.messages,
        devices=options.devices,
        qos=0,
    )
    try:
        await recorder.wait(
            start_timeout_s=options.start_timeout_s, idle_timeout_s=options.idle_timeout_s
        )
    except BaseException:
        publisher.kill()
        raise
    return await publisher.report()
