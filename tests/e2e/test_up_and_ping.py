"""``teddyhub up`` and ``teddyhub toy ping`` as a newcomer would run them."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    COMMAND_TIMEOUT_S,
    E2E_TEST_TIMEOUT_S,
    TEDDYHUB,
    TOY_TIMEOUT_S,
    UpRun,
    embedded_env,
)
from tests.services import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TEST_TIMEOUT_S)]


def metric(up: UpRun, name: str, labels: dict[str, str]) -> float:
    text = up.http.get(f"{up.hub_status_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"{name}{labels} not exposed")


def test_up_prints_where_everything_listens(up: UpRun) -> None:
    text = up.output.read_text()
    for part in ("broker", "hub", "api"):
        assert f"  {part} " in text
    assert up.env["TEDDY_API_PORT"] in text
    assert up.env["TEDDY_MQTT_PORT"] in text
    assert up.http.get(f"{up.hub_status_url}/ready").json()["status"] == "ready"


def test_toy_ping_gets_a_verified_pong(up: UpRun) -> None:
    result = up.teddyhub("toy", "ping", "--timeout", str(TOY_TIMEOUT_S))
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout
    other = up.ping("toy-0042")
    assert other.returncode == 0, other.stderr
    assert metric(up, "teddy_hub_frames_dispatched_total", {"kind": "ping"}) == 2


def test_a_toy_from_another_fleet_cannot_even_log_in(up: UpRun) -> None:
    env = up.env | {"ESP32_SHARED_SECRET": "a-different-fleet-secret-that-the-hub-lacks-0123"}
    # Refused at CONNECT, before any ping: the pong's timeout never starts.
    result = up.teddyhub("toy", "ping", "--timeout", "1.5", env=env)
    assert result.returncode == 1
    assert "cannot connect to the broker" in result.stderr
    assert "Not authorized" in result.stderr
    assert metric(up, "teddy_hub_frames_received_total", {}) == 0


def test_an_unsafe_device_id_is_refused(up: UpRun) -> None:
    result = up.teddyhub("toy", "ping", "--device-id", "toy/#")
    assert result.returncode == 2
    assert "device id" in result.stderr


def test_sigterm_stops_the_whole_tree(up: UpRun) -> None:
    assert up.stop() == 0
    for port in (
        up.env["TEDDY_API_PORT"],
        up.env["TEDDY_MQTT_PORT"],
        up.env["TEDDY_HUB_STATUS_PORT"],
    ):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", int(port)))  # free again: no orphan kept it


@pytest.mark.parametrize("setting", ["TEDDY_API_PORT", "TEDDY_MQTT_PORT", "TEDDY_HUB_STATUS_PORT"])
def test_a_taken_port_gets_one_line_naming_its_setting(tmp_path: Path, setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        env = embedded_env(tmp_path / "data") | {setting: str(taken.getsockname()[1])}
        result = subprocess.run(
            [TEDDYHUB, "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "in use" in lines[0]


def test_a_revoked_toy_is_refused_within_seconds_and_restored(up: UpRun) -> None:
    assert up.teddyhub("devices", "revoke", "toy-0007").returncode == 0
    # Within the broker's refresh interval (2 s), however slow the machine: one try.
    result = up.ping_refused_after_revocation("toy-0007")
    assert result.returncode == 1, result.stdout
    assert "Not authorized" in result.stderr
    assert up.ping("toy-0008").returncode == 0, "others unharmed"
    assert up.teddyhub("devices", "restore", "toy-0007").returncode == 0
    up.wait_until_pong("toy-0007")
