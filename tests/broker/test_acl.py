"""Topic rules: a toy reaches only its own topics; the hub reads every uplink
(docs/protocol.md, "Broker rules")."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.broker.brokers import BrokerUnderTest
from tests.broker.clients import (
    QUIET_S,
    Clients,
    PahoClient,
    cli_login,
    mosquitto_clients_available,
    paho_clients,
)
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration
SUBACK_FAILURE = 0x80


async def _hub_sends(hub: PahoClient, topic: str, payload: bytes) -> None:
    """The hub's service account publishes a downlink."""
    await hub.publish(topic, payload)


async def test_hub_receives_a_toys_uplink(broker: BrokerUnderTest, clients: Clients) -> None:
    hub = await clients.hub()
    toy = await clients.toy("toy-a")
    await toy.publish(broker.uplink("toy-a"), b"ping from a")
    message = await hub.receive()
    assert (message.topic, message.payload) == (broker.uplink("toy-a"), b"ping from a")


async def test_toy_cannot_publish_to_another_toys_topics(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    hub = await clients.hub()
    toy_b = await clients.toy("toy-b")
    assert await toy_b.subscribe(broker.downlinks("toy-b")) == 1
    toy_a = await clients.toy("toy-a")
    await toy_a.publish(broker.uplink("toy-b"), b"forged uplink")
    await toy_a.publish(broker.downlink("toy-b"), b"forged downlink")
    await toy_a.publish(broker.downlink("toy-a"), b"own downlink")  # toys never publish down
    # A marker through the same connection: whatever A got through arrives before it.
    await toy_a.publish(broker.uplink("toy-a"), b"marker")
    assert (await hub.receive_on(broker.uplink("toy-a"))).payload == b"marker"
    assert await hub.received_nothing(0.3) == []
    assert await toy_b.received_nothing() == []


CROSS_DEVICE_FILTERS = [
    "{root}/v1/toy-b/down/+",
    "{root}/v1/toy-b/down/pong",
    "{root}/v1/toy-b/#",
    "{root}/v1/+/down/+",
    "{root}/v1/+/down/pong",
    "{root}/v1/+/up/+",
    "{root}/#",
    "#",
    "+/v1/toy-b/down/pong",
    "$share/g/{root}/v1/toy-b/down/+",
    "$SYS/#",
]


async def test_toy_cannot_read_other_toys_downlinks(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    """One toy per cross-device filter, each subscribed to it; none gets B's downlink."""
    hub = await clients.hub()
    toy_b = await clients.toy("toy-b")
    assert await toy_b.subscribe(broker.downlinks("toy-b")) == 1
    readers: dict[str, PahoClient] = {}
    for index, topic_filter in enumerate(CROSS_DEVICE_FILTERS):
        reader = await clients.toy(f"toy-a{index}")
        granted = await reader.subscribe(topic_filter.format(root=broker.topic_root))
        # Refused at SUBACK (0x80) or granted and then never delivered: both keep data away.
        assert granted in (SUBACK_FAILURE, 0, 1), topic_filter
        readers[topic_filter] = reader
    await _hub_sends(hub, broker.downlink("toy-b"), b"for b only")
    await clients.toy("toy-c")  # some $SYS traffic, where a broker publishes it
    assert (await toy_b.receive()).payload == b"for b only"
    await asyncio.sleep(QUIET_S)
    leaks = {
        topic_filter: [message.topic for message in await reader.received_nothing(0)]
        for topic_filter, reader in readers.items()
    }
    assert {name: got for name, got in leaks.items() if got} == {}


async def test_toy_reads_its_own_downlinks(broker: BrokerUnderTest, clients: Clients) -> None:
    hub = await clients.hub()
    toy_a = await clients.toy("toy-a")
    assert await toy_a.subscribe(f"{broker.topic_root}/v1/toy-a/down/#") == 1
    await _hub_sends(hub, broker.downlink("toy-a", "reply_text"), b"hello a")
    message = await toy_a.receive()
    assert (message.topic, message.payload) == (broker.downlink("toy-a", "reply_text"), b"hello a")


STDBUF = shutil.which("stdbuf")


@pytest.mark.skipif(not mosquitto_clients_available(), reason="mosquitto_sub is not installed")
@pytest.mark.skipif(STDBUF is None, reason="stdbuf (coreutils) is not installed")
async def test_mosquitto_sub_as_a_toy_gets_nothing_of_others(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    """mosquitto_sub as toy A on every filter it can name: only A's own downlink arrives."""
    assert STDBUF is not None
    hub = await clients.hub()
    toy_b = await clients.toy("toy-b")
    assert await toy_b.subscribe(broker.downlinks("toy-b")) == 1
    login = cli_login(broker, "toy-a", "toy-a", broker.device_password("toy-a"))
    filters = [
        "#",
        "$SYS/#",
        f"{broker.topic_root}/v1/+/down/+",
        broker.downlinks("toy-b"),
        broker.downlinks("toy-a"),  # its own: keeps mosquitto_sub listening
    ]
    topics = [argument for topic in filters for argument in ("-t", topic)]
    # -d prints "received SUBACK"; stdbuf makes it print each line as it happens.
    subscriber = await asyncio.create_subprocess_exec(
        *(STDBUF, "-oL", "mosquitto_sub", *login, "-d", "-v", "-q", "1", "-C", "1"),
        *("-W", str(int(EVENT_TIMEOUT_S)), *topics),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert subscriber.stdout is not None and subscriber.stderr is not None
    try:
        async with asyncio.timeout(2 * EVENT_TIMEOUT_S):  # -W ends it first
            try:
                before_suback = await subscriber.stdout.readuntil(b"received SUBACK\n")
            except asyncio.IncompleteReadError as ended:  # it never subscribed: see below why
                before_suback = ended.partial
            else:
                # Subscribed to everything: every downlink below is one it could get.
                for index in range(8):
                    await _hub_sends(hub, broker.downlink("toy-b"), f"for b {index}".encode())
                await _hub_sends(hub, broker.downlink("toy-a"), b"for a")
            rest, stderr = await subscriber.communicate()
    finally:
        if subscriber.returncode is None:
            subscriber.kill()
            await subscriber.wait()
    stdout = (before_suback + rest).decode(errors="replace")
    output = stdout + stderr.decode(errors="replace")
    assert subscriber.returncode == 0, output
    assert "received CONNACK (0)" in stdout, output
    published = [line for line in stdout.splitlines() if "received PUBLISH" in line]
    assert len(published) == 1, output
    assert broker.downlink("toy-a") in published[0], output
    assert "for b" not in stdout, output
    assert len([await toy_b.receive() for _ in range(8)]) == 8


async def test_two_hubs_on_a_shared_subscription_split_the_uplinks(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    """Scale-out: replicas in one ``$share`` group each get part, together all, once."""
    if broker.name != "mosquitto":
        pytest.skip("amqtt grants $share subscriptions but delivers nothing on them (README)")
    replicas = []
    for suffix in ("-1", "-2"):
        replica = await clients.new(
            "svc:hub" + suffix, username="svc:hub", password=broker.service_password("hub")
        ).connected()
        assert await replica.subscribe(f"$share/hubs/{broker.uplinks}") == 1
        replicas.append(replica)
    toy = await clients.toy("toy-a")
    sent = [b"uplink %d" % n for n in range(40)]
    for payload in sent:
        await toy.publish(broker.uplink("toy-a"), payload)
    received: list[list[bytes]] = [[], []]
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while sum(map(len, received)) < len(sent):
            for index, replica in enumerate(replicas):
                try:
                    message = await replica.receive(timeout_s=0.05)
                except TimeoutError:
                    continue
                received[index].append(message.payload)
    assert all(received), f"each replica got a share: {list(map(len, received))}"
    assert sorted(received[0] + received[1]) == sorted(sent), "every uplink exactly once"


async def test_a_toys_will_cannot_reach_another_toy(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    """A will is a publish too: one aimed at another toy's downlink never arrives."""
    toy_b = await clients.toy("toy-b")
    assert await toy_b.subscribe(broker.downlinks("toy-b")) == 1
    toy_a = clients.new(
        "toy-a", username="toy-a", password=broker.device_password("toy-a"), keepalive=60
    )
    toy_a.client.will_set(broker.downlink("toy-b"), b"planted", qos=1, retain=True)
    if await toy_a.connect():  # Mosquitto checks the will when it sends it, amqtt at CONNECT
        toy_a.client._sock_close()  # drop the connection without DISCONNECT: the will fires
    assert await toy_b.received_nothing() == []
    late = await clients.toy("toy-c")
    assert await late.subscribe(f"{broker.topic_root}/v1/+/down/+") in (0, 1, SUBACK_FAILURE)
    assert await late.received_nothing() == [], "nothing was retained for anyone either"


async def test_the_embedded_broker_keeps_no_retained_message(embedded: BrokerUnderTest) -> None:
    """amqtt would replay retained messages past the ACL, so it keeps none (frames are never
    retained)."""
    async with paho_clients(embedded) as clients:
        toy = await clients.toy("toy-a")
        toy.client.publish(embedded.uplink("toy-a"), b"retained?", qos=1, retain=True)
        hub = await clients.hub()
        await toy.publish(embedded.uplink("toy-a"), b"marker")
        assert (await hub.receive()).payload == b"marker", "nothing replayed before the marker"
