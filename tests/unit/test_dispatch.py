"""The dispatcher without a broker: fairness, bounds, timeouts and failures."""

from __future__ import annotations

import asyncio
import os

import pytest

from hub.dispatch import Dispatcher, Inbound
from hub.metrics import HubMetrics
from hub.protocol import Kind, parse_frame
from hub.protocol.frames import encode_frame
from hub.protocol.topics import uplink_topic
from tests.timing import EVENT_TIMEOUT_S

KEY = b"k" * 32


def inbound(device_id: str, kind: Kind = Kind.TEXT, payload: bytes = b"") -> Inbound:
    topic = uplink_topic("teddy", device_id, kind)
    data = encode_frame(
        key=KEY,
        topic=topic,
        kind=kind,
        device_id=device_id,
        timestamp_ms=0,
        nonce=os.urandom(16),
        seq=0,
        payload=payload,
    )
    return Inbound(topic, parse_frame(data))


async def run_until_idle(dispatcher: Dispatcher, timeout_s: float = EVENT_TIMEOUT_S) -> None:
    task = asyncio.create_task(dispatcher.run())
    try:
        async with asyncio.timeout(timeout_s):
            await dispatcher.idle()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_round_robin_across_devices() -> None:
    order: list[str] = []

    async def handler(item: Inbound) -> None:
        order.append(item.device_id)

    dispatcher = Dispatcher(HubMetrics(), device_concurrency=1, workers=1)
    dispatcher.register(Kind.TEXT, handler)
    for _ in range(3):
        dispatcher.submit(inbound("chatty"))
    dispatcher.submit(inbound("quiet"))
    await run_until_idle(dispatcher)
    assert order == ["chatty", "quiet", "chatty", "chatty"]


async def test_backlog_is_bounded_per_device() -> None:
    metrics = HubMetrics()
    dispatcher = Dispatcher(metrics, device_backlog=3, workers=1)

    async def handler(_: Inbound) -> None:
        return None

    dispatcher.register(Kind.TEXT, handler)
    accepted = [dispatcher.submit(inbound("chatty")) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert dispatcher.submit(inbound("quiet"))
    assert metrics.dropped_backlog._value.get() == 2
    await run_until_idle(dispatcher)


async def test_hanging_and_failing_handlers_cost_only_their_frame() -> None:
    metrics = HubMetrics()
    handled: list[bytes] = []

    async def handler(item: Inbound) -> None:
        if item.frame.payload == b"hang":
            await asyncio.Event().wait()
        if item.frame.payload == b"fail":
            raise RuntimeError("boom")
        handled.append(item.frame.payload)

    dispatcher = Dispatcher(metrics, handler_timeout_s=0.2, workers=4)
    dispatcher.register(Kind.TEXT, handler)
    dispatcher.submit(inbound("toy-a", payload=b"hang"))
    dispatcher.submit(inbound("toy-a", payload=b"fail"))
    dispatcher.submit(inbound("toy-a", payload=b"after"))
    dispatcher.submit(inbound("toy-b", payload=b"other"))
    await run_until_idle(dispatcher)
    assert sorted(handled) == [b"after", b"other"]
    assert metrics.handler_timeouts[Kind.TEXT]._value.get() == 1
    assert metrics.handler_errors[Kind.TEXT]._value.get() == 1


async def test_frames_without_a_handler_are_counted() -> None:
    metrics = HubMetrics()
    dispatcher = Dispatcher(metrics)
    assert not dispatcher.submit(inbound("toy-a", Kind.HELLO))
    assert metrics.dropped_no_handler._value.get() == 1


def test_one_handler_per_kind() -> None:
    dispatcher = Dispatcher(HubMetrics())

    async def handler(_: Inbound) -> None:
        return None

    dispatcher.register(Kind.TEXT, handler)
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register(Kind.TEXT, handler)


async def test_a_handler_that_swallows_its_timeout_is_still_counted() -> None:
    metrics = HubMetrics()
    handled: list[bytes] = []

    async def handler(item: Inbound) -> None:
        if item.frame.payload == b"stubborn":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return  # a badly behaved handler
        handled.append(item.frame.payload)

    dispatcher = Dispatcher(metrics, handler_timeout_s=0.2, workers=1)
    dispatcher.register(Kind.TEXT, handler)
    dispatcher.submit(inbound("toy-a", payload=b"stubborn"))
    dispatcher.submit(inbound("toy-b", payload=b"next"))
    await run_until_idle(dispatcher)
    assert handled == [b"next"], "the same worker carries on with the next frame"
    assert metrics.handler_timeouts[Kind.TEXT]._value.get() == 1


async def test_a_handler_raising_cancelled_error_costs_only_its_frame() -> None:
    metrics = HubMetrics()
    handled: list[bytes] = []

    async def handler(item: Inbound) -> None:
        if item.frame.payload == b"aborted":
            raise asyncio.CancelledError  # e.g. it awaited a task that an abort cancelled
        handled.append(item.frame.payload)

    dispatcher = Dispatcher(metrics, workers=1)
    dispatcher.register(Kind.TEXT, handler)
    dispatcher.submit(inbound("toy-a", payload=b"aborted"))
    dispatcher.submit(inbound("toy-b", payload=b"next"))
    await run_until_idle(dispatcher)
    assert handled == [b"next"], "the only worker survived"
    assert metrics.handler_errors[Kind.TEXT]._value.get() == 1


async def test_shutdown_during_an_expiring_call_still_stops_the_pool() -> None:
    cleaning_up = asyncio.Event()

    async def handler(_: Inbound) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaning_up.set()  # the watchdog has cancelled the call
            # A clean-up slower than anything else here: the shutdown always lands during it.
            await asyncio.sleep(EVENT_TIMEOUT_S)

    dispatcher = Dispatcher(HubMetrics(), handler_timeout_s=0.1, workers=1)
    dispatcher.register(Kind.TEXT, handler)
    dispatcher.submit(inbound("toy-a"))
    task = asyncio.create_task(dispatcher.run())
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        await cleaning_up.wait()
    task.cancel()
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        with pytest.raises(asyncio.CancelledError):
            await task
