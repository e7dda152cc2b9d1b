"""The native Mosquitto plugin (broker/mosquitto) builds, loads and decides logins and topics.

The full broker-rule suite runs against Mosquitto through ``tests.broker.mosquitto_broker``;
this module is the quick check that the plugin exists and works at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from tests.broker.brokers import BrokerUnderTest
from tests.broker.mosquitto_broker import build_plugin, mosquitto_broker
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 135  # "Not authorized" (paho maps MQTT 3.1.1 code 5 to it)
SUBACK_FAILURE = 128


@asynccontextmanager
async def mqtt_client(
    broker: BrokerUnderTest, client_id: str, username: str | None, password: str | None
) -> AsyncIterator[aiomqtt.Client]:
    """A client connected over TLS, checking the broker's certificate against the dev CA."""
    client = aiomqtt.Client(
        broker.host,
        broker.tls_port,
        identifier=client_id,
        username=username,
        password=password,
        tls_params=aiomqtt.TLSParameters(ca_certs=str(broker.ca_file)),
        timeout=EVENT_TIMEOUT_S,
    )
    async with client:
        yield client


async def refusal(
    broker: BrokerUnderTest, client_id: str, username: str | None, password: str | None
) -> int:
    """The CONNACK code of a login the broker must refuse."""
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with mqtt_client(broker, client_id, username, password):
            pass
    return code(refused.value.rc)


def code(value: object) -> int:
    """An MQTT reason or return code as an int (paho gives ``ReasonCode`` or ``int``)."""
    raw = getattr(value, "value", value)
    assert isinstance(raw, int), value
    return raw


async def granted(client: aiomqtt.Client, topic_filter: str) -> int:
    """The SUBACK code of one subscription at QoS 1."""
    (result,) = await client.subscribe(topic_filter, qos=1)
    return code(result)


def log_of(tmp_path: Path) -> str:
    return (tmp_path / "mosquitto" / "mosquitto.log").read_text(errors="replace")


def test_plugin_builds_and_exports_only_the_v5_entry_points() -> None:
    plugin = build_plugin()
    assert plugin.stat().st_size > 0
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm to list the plugin's symbols")
    exported = subprocess.run(
        [nm, "-D", "--defined-only", str(plugin)], capture_output=True, text=True, check=True
    ).stdout.split()
    names = {name for name in exported if name.startswith("mosquitto_") or name.startswith("teddy")}
    assert names == {
        "mosquitto_plugin_version",
        "mosquitto_plugin_init",
        "mosquitto_plugin_cleanup",
    }


async def test_valid_token_accepted_over_tls_and_bad_logins_refused(tmp_path: Path) -> None:
    async with mosquitto_broker(tmp_path) as broker:
        token = broker.device_password("toy-1")
        async with mqtt_client(broker, "toy-1", "toy-1", token) as toy:
            await toy.publish(broker.uplink("toy-1"), b"ping", qos=1)

        tampered = broker.device_password("toy-2")
        tampered = tampered[:-1] + ("0" if tampered[-1] != "0" else "1")
        assert await refusal(broker, "toy-2", "toy-2", tampered) == NOT_AUTHORIZED
        assert await refusal(broker, "toy-1", "toy-1", token) == NOT_AUTHORIZED  # replayed
        expired = broker.device_password("toy-3", int(time.time()) - 301)
        assert await refusal(broker, "toy-3", "toy-3", expired) == NOT_AUTHORIZED
        future = broker.device_password("toy-3", int(time.time()) + 120)
        assert await refusal(broker, "toy-3", "toy-3", future) == NOT_AUTHORIZED
        other_id = broker.device_password("toy-4")
        assert await refusal(broker, "toy-5", "toy-4", other_id) == NOT_AUTHORIZED
        assert await refusal(broker, "toy/+", "toy/+", "x") == NOT_AUTHORIZED
        assert await refusal(broker, "anon-1", None, None) == NOT_AUTHORIZED
        assert await refusal(broker, "svc:hub", "svc:hub", "0" * 64) == NOT_AUTHORIZED
        assert await refusal(broker, "svc:root", "svc:root", "0" * 64) == NOT_AUTHORIZED
        hub_password = broker.service_password("hub")
        assert await refusal(broker, "hub-1", "svc:hub", hub_password) == NOT_AUTHORIZED
        async with mqtt_client(broker, "svc:hub-1", "svc:hub", hub_password):
            pass

    log = log_of(tmp_path)
    for reason in (
        "bad_signature",
        "replay",
        "expired",
        "future",
        "id_mismatch",
        "malformed",
        "anonymous",
        "unknown_service",
    ):
        assert f"reason={reason} " in log, reason
    assert token not in log and hub_password not in log


async def test_topic_rules_shared_subscription_and_revocation(tmp_path: Path) -> None:
    async with mosquitto_broker(tmp_path) as broker:
        hub_password = broker.service_password("hub")
        async with (
            mqtt_client(broker, "svc:hub-rules", "svc:hub", hub_password) as hub,
            mqtt_client(broker, "toy-1", "toy-1", broker.device_password("toy-1")) as toy,
        ):
            # Mosquitto 2.0.11 hands the ACL check the whole "$share/<group>/..." filter.
            assert await granted(hub, f"$share/hubs/{broker.uplinks}") == 1
            assert await granted(hub, f"{broker.topic_root}/v1/#") == SUBACK_FAILURE
            assert await granted(toy, broker.downlinks("toy-1")) == 1
            assert await granted(toy, broker.downlinks("toy-2")) == SUBACK_FAILURE
            assert await granted(toy, "$SYS/#") == SUBACK_FAILURE

            await toy.publish(broker.uplink("toy-1", "pong"), b"wrong direction", qos=1)
            await toy.publish(broker.uplink("toy-2"), b"someone else", qos=1)
            await toy.publish(broker.uplink("toy-1"), b"ping", qos=1)
            hub_message = await asyncio.wait_for(anext(hub.messages.__aiter__()), EVENT_TIMEOUT_S)
            assert (str(hub_message.topic), hub_message.payload) == (
                broker.uplink("toy-1"),
                b"ping",
            )

            await hub.publish(broker.downlink("toy-1"), b"pong", qos=1)
            toy_message = await asyncio.wait_for(anext(toy.messages.__aiter__()), EVENT_TIMEOUT_S)
            assert (str(toy_message.topic), toy_message.payload) == (
                broker.downlink("toy-1"),
                b"pong",
            )

        with contextlib.suppress(aiomqtt.MqttError):
            async with mqtt_client(
                broker, "toy-9", "toy-9", broker.device_password("toy-9")
            ) as doomed:
                await broker.revoke("toy-9")
                # The plugin closes a newly revoked toy's connection on a later tick.
                with pytest.raises(aiomqtt.MqttError):
                    await asyncio.wait_for(anext(doomed.messages.__aiter__()), EVENT_TIMEOUT_S)
        assert await refusal(broker, "toy-9", "toy-9", broker.device_password("toy-9")) == (
            NOT_AUTHORIZED
        )
        async with mqtt_client(broker, "toy-8", "toy-8", broker.device_password("toy-8")):
            pass

    log = log_of(tmp_path)
    assert "reason=revoked " in log
    assert "revocation list loaded: 1 revoked" in log
    assert "toy-9 is revoked: closing its connection" in log


async def test_a_full_replay_table_refuses_rather_than_grows(tmp_path: Path) -> None:
    async with mosquitto_broker(tmp_path, replay_capacity=2) as broker:
        for device_id in ("toy-1", "toy-2"):
            async with mqtt_client(broker, device_id, device_id, broker.device_password(device_id)):
                pass
        password = broker.device_password("toy-3")
        assert await refusal(broker, "toy-3", "toy-3", password) == NOT_AUTHORIZED
    assert 'detail="replay cache full"' in log_of(tmp_path)


REPLAY_MAX_PER_DEVICE = 32  # live replay entries (logins in the last 360 s) one device may hold


async def test_one_device_at_its_login_limit_does_not_lock_out_the_others(
    tmp_path: Path,
) -> None:
    # 64 slots: without the per-device rule (or if a refusal took a slot) toy-1 alone would
    # fill the table and toy-2 would be refused with "replay cache full".
    async with mosquitto_broker(tmp_path, replay_capacity=64) as broker:
        for _ in range(REPLAY_MAX_PER_DEVICE):
            async with mqtt_client(broker, "toy-1", "toy-1", broker.device_password("toy-1")):
                pass
        for _ in range(REPLAY_MAX_PER_DEVICE + 1):
            password = broker.device_password("toy-1")
            assert await refusal(broker, "toy-1", "toy-1", password) == NOT_AUTHORIZED
        for device_id in ("toy-2", "toy-3"):
            async with mqtt_client(broker, device_id, device_id, broker.device_password(device_id)):
                pass

    log = log_of(tmp_path)
    assert log.count('reason=replay detail="too many logins"') == REPLAY_MAX_PER_DEVICE + 1
    refused = [line for line in log.splitlines() if "login refused" in line]
    assert not [line for line in refused if "toy-2" in line or "toy-3" in line]
    assert "replay cache full" not in log


async def test_a_nul_byte_in_the_revocation_file_does_not_hide_the_ids_after_it(
    tmp_path: Path,
) -> None:
    revocation_file = tmp_path / "mosquitto" / "revoked-devices.txt"
    revocation_file.parent.mkdir(parents=True)
    # Each line holding a NUL is not a device id; the file goes on after it.
    revocation_file.write_bytes(b"# revoked device ids\ntoy-1\x00junk\ntoy-\x002\n\x00\n  toy-9 \n")
    async with mosquitto_broker(tmp_path) as broker:
        assert broker.revocation_file == revocation_file
        password = broker.device_password("toy-9")
        assert await refusal(broker, "toy-9", "toy-9", password) == NOT_AUTHORIZED
        async with mqtt_client(broker, "toy-1", "toy-1", broker.device_password("toy-1")):
            pass

    log = log_of(tmp_path)
    assert "revocation list loaded: 1 revoked, 3 lines skipped" in log
    assert "reason=revoked " in log


async def test_a_service_client_id_outside_its_alphabet_is_refused(tmp_path: Path) -> None:
    async with mosquitto_broker(tmp_path) as broker:
        hub_password = broker.service_password("hub")
        for client_id in ("svc:hub-Hub", "svc:hub-a.b", "svc:hub- ", "svc:hub-\u00e9"):
            assert await refusal(broker, client_id, "svc:hub", hub_password) == NOT_AUTHORIZED
        async with mqtt_client(broker, "svc:hub-a_1:2", "svc:hub", hub_password):
            pass

    refused = [line for line in log_of(tmp_path).splitlines() if "login refused" in line]
    assert len(refused) == 4
    assert all("reason=malformed " in line for line in refused)
