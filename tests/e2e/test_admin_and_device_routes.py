"""Through a real ``teddyhub up``: an administrator made with the CLI revokes a toy over the API
(the broker refuses it once its refresh interval has passed, no restart), and the toy's signed
status report reaches the API."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E_TEST_TIMEOUT_S, UpRun

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TEST_TIMEOUT_S)]

PASSWORD = "correct horse battery staple"


def login(up: UpRun, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": PASSWORD}
    assert up.http.post(f"{up.api_url}/api/v1/auth/register", json=credentials).status_code == 201
    tokens = up.http.post(f"{up.api_url}/api/v1/auth/login", json=credentials).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_an_admin_revokes_a_toy_over_the_api(up: UpRun) -> None:
    headers = login(up, "ops@example.com")
    parent = login(up, "ada@example.com")
    admin_devices = f"{up.api_url}/api/v1/admin/devices"
    assert up.http.get(admin_devices, headers=headers).status_code == 404  # not yet an admin
    granted = up.teddyhub("accounts", "grant-admin", "ops@example.com")
    assert granted.returncode == 0, granted.stderr
    assert up.ping("toy-0031").returncode == 0

    revoked = up.http.post(f"{admin_devices}/toy-0031/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    refused = up.ping_refused_after_revocation("toy-0031")
    assert refused.returncode == 1, refused.stdout
    assert "Not authorized" in refused.stderr
    assert up.ping("toy-0032").returncode == 0
    assert up.http.get(admin_devices, headers=parent).status_code == 404

    restored = up.http.post(f"{admin_devices}/toy-0031/restore", headers=headers)
    assert restored.status_code == 200
    up.wait_until_pong("toy-0031")


def test_a_toy_reports_its_status_over_signed_http(up: UpRun) -> None:
    result = up.teddyhub("toy", "status", "--device-id", "toy-0033", "--api-url", up.api_url)
    assert result.returncode == 0, result.stderr
    assert '"revoked": false' in result.stdout
    config = up.http.get(f"{up.api_url}/api/v1/esp32/config").json()
    assert config["brokers"] == [f"mqtts://127.0.0.1:{up.env['TEDDY_MQTTS_PORT']}"]
    unsigned = up.http.post(f"{up.api_url}/api/v1/esp32/private/status", json={})
    assert unsigned.status_code == 401
