"""A handler's trouble with one toy costs that toy's frames and nothing else.

A hanging handler is cut off by ``handler_timeout_s``, a raising one is counted, and a chatty
toy is held to ``device_concurrency`` calls at once and ``device_backlog`` waiting frames, so
the other toys keep being served while it floods.
"""

from __future__ import annotations

import asyncio

import pytest

from hub.dispatch import Inbound
from hub.protocol.kinds import Kind
from hub.service import Hub
from hub.settings import Settings
from tests.integration.harness import (
    TIMEOUT_S,
    HubRunner,
    Recorder,
    Toys,
    handler_failures,
    received,
    sample,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_hanging_handler_times_out_without_holding_up_other_toys(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    hub = Hub.build(hub_settings.model_copy(update={"handler_timeout_s": 0.5}))
    # The dispatcher's clock stands still until the test moves it: the other toy is served
    # while the hang is running, on any machine, and the hang overruns when the test says.
    now = [0.0]
    hub.dispatcher.clock = lambda: now[0]
    stuck, other = await toys.open(), await toys.open()
    hang_started, hang_cancelled = asyncio.Event(), asyncio.Event()
    recorder = Recorder()

    async def handler(inbound: Inbound) -> None:
        if inbound.frame.payload == b"hang":
            hang_started.set()
            try:
                await asyncio.Event().wait()  # never set: the handler hangs
            except asyncio.CancelledError:
                hang_cancelled.set()
                raise
        await recorder(inbound)

    hub.dispatcher.replace(Kind.TEXT, handler)
    await hubs.start(hub)

    await stuck.send(Kind.TEXT, b"hang")
    async with asyncio.timeout(TIMEOUT_S):
        await hang_started.wait()
    await other.send(Kind.TEXT, b"meanwhile")
    await recorder.wait_for(1)

    assert not hang_cancelled.is_set(), "the other toy waited for the hanging handler"
    assert handler_failures(hub, Kind.TEXT, "timeout") == 0
    assert recorder.payloads == [b"meanwhile"]

    now[0] += 0.5  # the hanging call's deadline passes
    async with asyncio.timeout(TIMEOUT_S):
        await hang_cancelled.wait()
    await wait_until(
        lambda: handler_failures(hub, Kind.TEXT, "timeout") == 1, "the timeout to be counted"
    )
    assert handler_failures(hub, Kind.TEXT, "error") == 0

    # The stuck toy's next frame is handled as usual: the timeout cost one frame only.
    await stuck.send(Kind.TEXT, b"after")
    await recorder.wait_for(2)
    assert recorder.payloads == [b"meanwhile", b"after"]
    assert recorder.calls[1].device_id == stuck.device_id


async def test_raising_handler_is_counted_and_the_next_frame_is_handled(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    hub = Hub.build(hub_settings)
    recorder = Recorder()

    async def handler(inbound: Inbound) -> None:
        if inbound.frame.payload == b"boom":
            raise RuntimeError("a bug in a handler")
        await recorder(inbound)

    hub.dispatcher.replace(Kind.TEXT, handler)
    await hubs.start(hub)
    toy = await toys.open()

    await toy.send(Kind.TEXT, b"boom")
    await toy.send(Kind.TEXT, b"fine")
    await recorder.wait_for(1)
    await wait_until(
        lambda: handler_failures(hub, Kind.TEXT, "error") == 1, "the error to be counted"
    )

    assert recorder.payloads == [b"fine"]
    assert recorder.calls[0].device_id == toy.device_id
    assert handler_failures(hub, Kind.TEXT, "timeout") == 0


async def test_flooding_toy_cannot_starve_the_others(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    flood_size = 500
    settings = hub_settings
    accepted = settings.device_concurrency + settings.device_backlog
    hub = Hub.build(settings)
    chatty, quiet = await toys.open(), await toys.open()
    # The chatty toy's handler is slow: it holds every call until the test lets go, so the
    # toy's lane is full for as long as the test needs to look at it.
    release = asyncio.Event()
    chatty_handled = Recorder()
    quiet_handled = Recorder()
    pending_when_quiet_ran: list[int] = []

    async def handler(inbound: Inbound) -> None:
        if inbound.device_id == chatty.device_id:
            await release.wait()
            await chatty_handled(inbound)
        else:
            pending_when_quiet_ran.append(hub.dispatcher.pending)
            await quiet_handled(inbound)

    hub.dispatcher.replace(Kind.TEXT, handler)
    await hubs.start(hub)

    flood = [chatty.frame(Kind.TEXT, b"%d" % index) for index in range(flood_size)]
    await asyncio.gather(*(chatty.publish_raw(topic, data) for topic, data in flood))
    await quiet.send(Kind.TEXT, b"me too")

    await quiet_handled.wait_for(1)
    await wait_until(lambda: received(hub) == flood_size + 1, "the whole flood to be screened")
    await wait_until(
        lambda: (
            sample(hub, "teddy_hub_frames_dropped_total", {"reason": "device_backlog"})
            == flood_size - accepted
        ),
        "the frames beyond the chatty toy's backlog to be dropped",
    )
    # The quiet toy was served while the chatty toy had its whole backlog still waiting.
    assert chatty_handled.calls == []
    assert pending_when_quiet_ran[0] > settings.device_backlog

    release.set()
    await chatty_handled.wait_for(accepted)
    await wait_until(lambda: hub.dispatcher.pending == 0, "the backlog to drain")
    assert len(chatty_handled.calls) == accepted
    assert sample(hub, "teddy_hub_frames_dropped_total", {"reason": "device_backlog"}) == (
        flood_size - accepted
    )
    # The lane is first come, first served: the frames kept are the first ones sent.
    assert sorted(int(payload) for payload in chatty_handled.payloads) == list(range(accepted))
