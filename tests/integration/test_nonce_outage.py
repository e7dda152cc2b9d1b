"""The hub fails closed while Redis is unreachable, and recovers by itself when it returns.

Redis is made unreachable for the hub alone by a TCP proxy between the hub's nonce store and
the shared Redis: cutting the proxy resets the store's connections and every reconnection,
exactly what a network partition looks like to the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from hub.errors import RejectReason
from hub.gate import wall_clock_ms
from hub.nonces import RedisNonceStore
from hub.protocol.kinds import Kind
from hub.protocol.verify import CLOCK_WINDOW_MS
from hub.service import Hub
from hub.settings import Settings
from tests.integration.harness import (
    HubRunner,
    Recorder,
    Toys,
    dispatched,
    nonce_store_up,
    received,
    rejected,
    rejections,
    sample,
    wait_until,
)
from tests.services import Endpoint
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis_proxy(redis_service: Endpoint) -> AsyncIterator[TcpProxy]:
    """A proxy to the test Redis that the test can cut and restore."""
    async with TcpProxy(redis_service.host, redis_service.port) as proxy:
        yield proxy


@pytest.fixture
async def proxied_store(
    redis_proxy: TcpProxy, redis_prefix: str, redis_client: aioredis.Redis
) -> AsyncIterator[RedisNonceStore]:
    """A Redis nonce store that reaches Redis only through ``redis_proxy``."""
    store = RedisNonceStore.from_url(f"redis://127.0.0.1:{redis_proxy.port}/0", redis_prefix)
    try:
        yield store
    finally:
        await store.close()


async def test_redis_outage_dispatches_nothing_and_recovers_by_itself(
    hub_settings: Settings,
    hubs: HubRunner,
    toys: Toys,
    redis_proxy: TcpProxy,
    proxied_store: RedisNonceStore,
) -> None:
    hub = Hub.build(hub_settings, nonces=proxied_store)
    recorder = Recorder()
    hub.dispatcher.replace(Kind.TEXT, recorder)
    await hubs.start(hub)
    toy = await toys.open()
    await toy.send(Kind.TEXT, b"before")
    await recorder.wait_for(1)
    assert hub.readiness()["nonce_store"] is True
    assert nonce_store_up(hub) == 1

    redis_proxy.cut()
    await toy.send(Kind.TEXT, b"during outage 1")
    await toy.send(Kind.TEXT, b"during outage 2")
    await wait_until(lambda: nonce_store_up(hub) == 0, "the hub to notice the outage")
    assert hub.readiness() == {"broker": True, "nonce_store": False, "revocation_list": True}
    refused = redis_proxy.refused
    await wait_until(
        lambda: redis_proxy.refused >= refused + 2, "the hub to retry the store twice more"
    )
    assert len(recorder.calls) == 1
    assert dispatched(hub, Kind.TEXT) == 1

    redis_proxy.restore()
    await recorder.wait_for(3)
    await wait_until(lambda: received(hub) == 3, "every frame to be screened")
    await wait_until(lambda: nonce_store_up(hub) == 1, "the gauge to show the store is back")

    assert hub.readiness()["nonce_store"] is True
    assert sorted(recorder.payloads) == [b"before", b"during outage 1", b"during outage 2"]
    assert dispatched(hub, Kind.TEXT) == 3
    assert sample(hub, "teddy_hub_nonce_store_outages_total") == 1
    assert sum(rejections(hub).values()) == 0


async def test_a_long_outage_with_a_small_inbox_loses_nothing(
    hub_settings: Settings,
    hubs: HubRunner,
    toys: Toys,
    redis_proxy: TcpProxy,
    proxied_store: RedisNonceStore,
) -> None:
    # The inbox holds 8 messages: during the outage the hub stops reading its socket and the
    # broker keeps the rest unacknowledged; none may be discarded.
    settings = hub_settings.model_copy(update={"hub_inbox_limit": 8, "batch_size": 4})
    hub = Hub.build(settings, nonces=proxied_store)
    recorder = Recorder()
    hub.dispatcher.replace(Kind.TEXT, recorder)
    await hubs.start(hub)
    toy = await toys.open()
    redis_proxy.cut()
    sent = [f"frame {n}".encode() for n in range(60)]
    for payload in sent:
        await toy.send(Kind.TEXT, payload)
    await wait_until(lambda: nonce_store_up(hub) == 0, "the hub to notice the outage")
    await wait_until(lambda: received(hub) >= 4, "the first batch to be held")
    assert recorder.calls == []

    redis_proxy.restore()
    await recorder.wait_for(60)
    assert sorted(recorder.payloads) == sorted(sent)
    assert dispatched(hub, Kind.TEXT) == 60
    assert sum(rejections(hub).values()) == 0


async def test_frame_that_goes_stale_during_an_outage_is_dropped(
    hub_settings: Settings,
    hubs: HubRunner,
    toys: Toys,
    redis_proxy: TcpProxy,
    proxied_store: RedisNonceStore,
) -> None:
    # The hub's clock is moved past the clock window while the frame is held, as if the
    # outage had lasted that long; toys that sign on the hub's clock stay in the window.
    offset_ms = 0

    def hub_clock_ms() -> int:
        return wall_clock_ms() + offset_ms

    hub = Hub.build(hub_settings, nonces=proxied_store, clock_ms=hub_clock_ms)
    recorder = Recorder()
    hub.dispatcher.replace(Kind.TEXT, recorder)
    await hubs.start(hub)
    held_toy = await toys.open()
    later_toy = await toys.open(clock_ms=hub_clock_ms)

    redis_proxy.cut()
    await held_toy.send(Kind.TEXT, b"held too long")
    await wait_until(lambda: nonce_store_up(hub) == 0, "the hub to notice the outage")
    offset_ms = CLOCK_WINDOW_MS + 1_000
    await wait_until(
        lambda: rejected(hub, RejectReason.STALE) == 1, "the held frame to be dropped as stale"
    )
    assert nonce_store_up(hub) == 0

    redis_proxy.restore()
    await later_toy.send(Kind.TEXT, b"after the outage")
    await recorder.wait_for(1)
    await wait_until(lambda: nonce_store_up(hub) == 1, "the gauge to show the store is back")

    assert recorder.payloads == [b"after the outage"]
    assert rejections(hub) == {
        reason: float(reason is RejectReason.STALE) for reason in RejectReason
    }
