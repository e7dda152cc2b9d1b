"""The shipped broker/mosquitto/mosquitto.conf, with only its paths and port moved, loads the
plugin, serves TLS and enforces token logins."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.certs import ensure_dev_certificates
from hub.protocol.keys import derive_connect_key, derive_connect_root
from hub.protocol.tokens import make_connect_token
from tests.broker.brokers import wait_accepting
from tests.conftest import TEST_FLEET_SECRET
from tests.services import free_port
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "broker" / "mosquitto" / "mosquitto.conf"
PLUGIN = ROOT / "broker" / "mosquitto" / "build" / "teddy_auth.so"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def localised(tmp_path: Path, port: int) -> Path:
    """The shipped file with its paths under ``tmp_path`` and its listener on ``port``."""
    certs = ensure_dev_certificates(tmp_path / "certs")
    root_file = tmp_path / "connect-root.hex"
    root_file.write_text(derive_connect_root(TEST_FLEET_SECRET.encode()).hex() + "\n")
    replacements = {
        "/var/lib/mosquitto/": f"{tmp_path}/",
        "log_dest syslog": f"log_dest file {tmp_path}/mosquitto.log",
        "listener 8883": f"listener {port} 127.0.0.1",
        "/etc/teddy/tls/broker-chain.pem": str(certs.server_cert),
        "/etc/teddy/tls/broker-key.pem": str(certs.server_key),
        "/etc/teddy/tls/ca.pem": str(certs.ca_cert),
        "/usr/lib/teddy/teddy_auth.so": str(PLUGIN),
        "/etc/teddy/connect-root.hex": str(root_file),
        "/var/lib/teddy/revoked-devices.txt": str(tmp_path / "revoked-devices.txt"),
    }
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"the shipped configuration no longer contains {old!r}"
        text = text.replace(old, new)
    config = tmp_path / "mosquitto.conf"
    config.write_text(text + "user root\n", encoding="utf-8")
    return config


def login(port: int, ca_file: Path, password: str) -> int:
    """The CONNACK's code; -1 when the broker closed the connection without one."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="toy-0001",
        protocol=paho.MQTTv311,
    )
    client.tls_set(ca_certs=str(ca_file))
    client.username_pw_set("toy-0001", password)
    codes: list[int] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason.value)
    client.connect("127.0.0.1", port)
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while not codes:
        if client.loop(timeout=0.1) != paho.MQTT_ERR_SUCCESS:
            break  # closed without a CONNACK
        if time.monotonic() > deadline:
            raise TimeoutError(f"neither a CONNACK nor a disconnection in {EVENT_TIMEOUT_S:g} s")
    client.disconnect()
    client.loop(timeout=0.1)
    sock = client.socket()
    if sock is not None:
        sock.close()
    return codes[0] if codes else -1


async def test_the_shipped_configuration_serves_token_logins_over_tls(tmp_path: Path) -> None:
    build = await asyncio.create_subprocess_exec("make", "-s", "-C", str(PLUGIN.parents[1]))
    assert await build.wait() == 0
    port = free_port()
    config = localised(tmp_path, port)
    process = await asyncio.create_subprocess_exec(MOSQUITTO, "-c", str(config))
    try:
        await wait_accepting("127.0.0.1", port, None)
        key = derive_connect_key(derive_connect_root(TEST_FLEET_SECRET.encode()), "toy-0001")
        good = make_connect_token(key, "toy-0001", int(time.time()), b"\x01" * 8)
        ca_file = tmp_path / "certs" / "ca.pem"
        assert await asyncio.to_thread(login, port, ca_file, good) == 0
        assert await asyncio.to_thread(login, port, ca_file, good) != 0, "a replayed token"
        assert await asyncio.to_thread(login, port, ca_file, "v1.0.00.00") != 0
    finally:
        process.terminate()
        await process.wait()
