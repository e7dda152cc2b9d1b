"""Who gets in: TLS with the right CA, connect tokens, service accounts (docs/protocol.md,
"Connect tokens"), through paho-mqtt and mosquitto_pub."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.broker.brokers import BrokerUnderTest, embedded_broker
from tests.broker.clients import (
    Clients,
    mosquitto_clients_available,
    mosquitto_pub,
    paho_clients,
)
from tests.services import free_port
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration
needs_cli = pytest.mark.skipif(
    not mosquitto_clients_available(), reason="mosquitto_pub/mosquitto_sub are not installed"
)


# CONNACK return codes of MQTT 3.1.1 as paho reports them (3.1.1 code 4 / 5).
_BAD_CREDENTIALS = 134
_NOT_AUTHORIZED = 135


def _flip_bit(token: str) -> str:
    """The token with one bit of its tag flipped (still well-formed hex)."""
    last = token[-1]
    return token[:-1] + ("0" if last != "0" else "1")


async def test_valid_token_over_tls_with_the_dev_ca_connects(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    toy = await clients.toy("toy-a")
    assert toy.is_connected


async def test_plain_mqtt_to_the_tls_port_fails(broker: BrokerUnderTest, clients: Clients) -> None:
    toy = clients.new(
        "toy-a", username="toy-a", password=broker.device_password("toy-a"), tls=False
    )
    assert not await toy.connect()


async def test_tls_without_the_dev_ca_fails(broker: BrokerUnderTest, clients: Clients) -> None:
    toy = clients.new("toy-a", username="toy-a", password=broker.device_password("toy-a"), ca=False)
    assert not await toy.connect()
    assert toy.connack is None  # the handshake failed: no MQTT at all


@needs_cli
async def test_mosquitto_pub_needs_the_dev_ca(broker: BrokerUnderTest) -> None:
    topic = broker.uplink("toy-a")
    accepted = await mosquitto_pub(broker, "toy-a", "toy-a", broker.device_password("toy-a"), topic)
    assert accepted.returncode == 0, accepted.stderr
    untrusted = await mosquitto_pub(
        broker, "toy-a", "toy-a", broker.device_password("toy-a"), topic, trust="os"
    )
    assert untrusted.returncode != 0
    plain = await mosquitto_pub(
        broker, "toy-a", "toy-a", broker.device_password("toy-a"), topic, trust="none"
    )
    assert plain.returncode != 0


async def test_development_plain_listener_speaks_plain_mqtt(embedded: BrokerUnderTest) -> None:
    """The embedded broker's plain port (development only) serves MQTT without TLS, with the
    same logins. (The Mosquitto configuration serves TLS only.)"""
    assert embedded.plain_port is not None
    async with paho_clients(embedded) as clients:
        toy = await clients.toy("toy-a", tls=False, port=embedded.plain_port)
        assert toy.is_connected
        refused = clients.new(
            "toy-b", username="toy-b", password="hunter2", tls=False, port=embedded.plain_port
        )
        assert not await refused.connect()
        assert refused.connack is not None and refused.connack.is_failure


async def test_production_serves_no_plain_listener(tmp_path: Path) -> None:
    plain_port = free_port()
    async with embedded_broker(tmp_path, env="production", mqtt_port=plain_port) as production:
        assert production.plain_port is None
        async with paho_clients(production) as clients:
            assert (await clients.toy("toy-a")).is_connected
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(
                    (production.host, plain_port), timeout=EVENT_TIMEOUT_S
                ).close()


def _bad_login(broker: BrokerUnderTest, case: str) -> tuple[str, str | None, str | None]:
    """(client id, username, password) of a login the broker must refuse."""
    now = int(time.time())
    token = broker.device_password("toy-a")
    return {
        "bit_flipped": ("toy-a", "toy-a", _flip_bit(token)),
        "expired": ("toy-a", "toy-a", broker.device_password("toy-a", now - 301)),
        "future": ("toy-a", "toy-a", broker.device_password("toy-a", now + 120)),
        "other_devices_token": ("toy-a", "toy-a", broker.device_password("toy-b")),
        "client_id_not_username": ("toy-b", "toy-a", token),
        "plus_in_username": ("toy+a", "toy+a", token),
        "hash_in_username": ("toy#a", "toy#a", token),
        "slash_in_username": ("toy/a", "toy/a", token),
        "not_a_token": ("toy-a", "toy-a", "hunter2"),
        "no_password": ("toy-a", "toy-a", None),
        "anonymous": ("toy-a", None, None),
        "wrong_service_password": ("svc:hub", "svc:hub", _flip_bit(broker.service_password("hub"))),
        "unknown_service": ("svc:root", "svc:root", broker.service_password("hub")),
        "service_client_id_of_another": ("svc:api", "svc:hub", broker.service_password("hub")),
    }[case]


BAD_LOGINS = [
    "bit_flipped",
    "expired",
    "future",
    "other_devices_token",
    "client_id_not_username",
    "plus_in_username",
    "hash_in_username",
    "slash_in_username",
    "not_a_token",
    "no_password",
    "anonymous",
    "wrong_service_password",
    "unknown_service",
    "service_client_id_of_another",
]


@pytest.mark.parametrize("case", BAD_LOGINS)
async def test_paho_bad_login_is_refused(
    broker: BrokerUnderTest, clients: Clients, case: str
) -> None:
    client_id, username, password = _bad_login(broker, case)
    client = clients.new(client_id, username=username, password=password)
    assert not await client.connect()
    assert client.connack is not None, "the broker must answer with a CONNACK"
    assert client.connack.is_failure
    assert client.connack.value in (_BAD_CREDENTIALS, _NOT_AUTHORIZED), client.connack


@needs_cli
async def test_mosquitto_pub_bad_logins_are_refused(broker: BrokerUnderTest) -> None:
    for case in BAD_LOGINS:
        client_id, username, password = _bad_login(broker, case)
        result = await mosquitto_pub(broker, client_id, username, password, broker.uplink("toy-a"))
        assert result.returncode != 0, case
        assert "Connection Refused" in result.stderr, (case, result.stderr)


async def test_replayed_token_is_refused(broker: BrokerUnderTest, clients: Clients) -> None:
    token = broker.device_password("toy-a")
    first = await clients.new("toy-a", username="toy-a", password=token).connected()
    await first.close()
    replay = clients.new("toy-a", username="toy-a", password=token)
    assert not await replay.connect()
    assert replay.connack is not None and replay.connack.is_failure
    assert (await clients.toy("toy-a")).is_connected  # a fresh token still works


async def test_hub_service_account_logs_in(broker: BrokerUnderTest, clients: Clients) -> None:
    hub = await clients.hub()
    assert hub.is_connected
    api = await clients.new(
        "svc:api-1", username="svc:api", password=broker.service_password("api")
    ).connected()
    assert api.is_connected
