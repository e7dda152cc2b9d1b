"""Through a real ``teddyhub up``: an administrator made with the CLI revokes a toy over the API
(the broker and hub refuse it within seconds, no restart), and the toy's signed status report
reaches the API."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import UpRun

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


def login(up: UpRun, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{up.api_url}/api/v1/auth/register", json=credentials).status_code == 201
    tokens = httpx.post(f"{up.api_url}/api/v1/auth/login", json=credentials).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def wait_for_ping(up: UpRun, device_id: str, *, succeeds: bool) -> float:
    """Seconds until ``toy ping`` gives the wanted outcome (fails the test after 10 s)."""
    started = time.monotonic()
    while True:
        result = up.teddyhub("toy", "ping", "--device-id", device_id, "--timeout", "2")
        if (result.returncode == 0) == succeeds:
            return time.monotonic() - started
        assert time.monotonic() - started < 10, result.stderr
        time.sleep(0.3)


def test_an_admin_revokes_a_toy_over_the_api(up: UpRun) -> None:
    headers = login(up, "ops@example.com")
    parent = login(up, "ada@example.com")
    admin_devices = f"{up.api_url}/api/v1/admin/devices"
    assert httpx.get(admin_devices, headers=headers).status_code == 404  # not yet an admin
    granted = up.teddyhub("accounts", "grant-admin", "ops@example.com")
    assert granted.returncode == 0, granted.stderr
    assert up.teddyhub("toy", "ping", "--device-id", "toy-0031").returncode == 0

    revoked = httpx.post(f"{admin_devices}/toy-0031/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    wait_for_ping(up, "toy-0031", succeeds=False)
    assert up.teddyhub("toy", "ping", "--device-id", "toy-0032").returncode == 0
    assert httpx.get(admin_devices, headers=parent).status_code == 404

    restored = httpx.post(f"{admin_devices}/toy-0031/restore", headers=headers)
    assert restored.status_code == 200
    wait_for_ping(up, "toy-0031", succeeds=True)


def test_a_toy_reports_its_status_over_signed_http(up: UpRun) -> None:
    result = up.teddyhub("toy", "status", "--device-id", "toy-0033", "--api-url", up.api_url)
    assert result.returncode == 0, result.stderr
    assert '"revoked": false' in result.stdout
    config = httpx.get(f"{up.api_url}/api/v1/esp32/config").json()
    assert config["brokers"] == [f"mqtts://127.0.0.1:{up.env['TEDDY_MQTTS_PORT']}"]
    unsigned = httpx.post(f"{up.api_url}/api/v1/esp32/private/status", json={})
    assert unsigned.status_code == 401
