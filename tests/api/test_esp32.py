"""Toys over HTTP: ``/api/v1/esp32/config`` (public) and the signed ``/api/v1/esp32/private``."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from api.app import create_app
from api.device_auth import authenticated_device
from hub.db.models import Device
from hub.errors import ToyError
from hub.protocol.device_http import (
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MAX_BODY_SIZE,
    SIGNED_HEADERS,
    sign_request,
)
from hub.protocol.keys import derive_device_key
from hub.protocol.verify import CLOCK_WINDOW_MS
from hub.revocation import write_revocation_file
from hub.settings import Settings
from hub.toy.http import SIMULATOR_FIRMWARE_VERSION, report_status, send_signed
from tests.api.conftest import serve

DEVICE = "toy-0001"
CONFIG = "/api/v1/esp32/config"
STATUS = "/api/v1/esp32/private/status"
FIRMWARE = "/api/v1/esp32/private/firmware"
REPORT = {"firmware_version": "1.2.3", "uptime_s": 42, "rssi_dbm": -61, "battery_pct": 80}
BUILD = {
    "firmware_version": "1.3.0",
    "firmware_sha256": "ab" * 32,
    "firmware_url": "https://updates.example.com/teddy-1.3.0.bin",
}


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
async def firmware_client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that offers firmware build 1.3.0."""
    async with serve(create_app(make_settings(**BUILD))) as test_client:
        yield test_client


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed_headers(
    settings: Settings,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    device_id: str = DEVICE,
    fleet_secret: bytes | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """The headers the toy sends, signed with its key under ``fleet_secret`` (the app's)."""
    key = derive_device_key(fleet_secret or settings.fleet_secret(), device_id)
    stamp = now_ms() if timestamp_ms is None else timestamp_ms
    return sign_request(key, method, target, device_id, stamp, secrets.token_bytes(16), body)


async def send(
    client: httpx.AsyncClient,
    settings: Settings,
    method: str,
    target: str,
    body: bytes = b"",
    **signing: Any,
) -> httpx.Response:
    """A request signed exactly as sent."""
    headers = signed_headers(settings, method, target, body, **signing)
    return await client.request(method, target, content=body, headers=headers)


async def post_status(
    client: httpx.AsyncClient, settings: Settings, report: dict[str, Any] | None = None
) -> httpx.Response:
    body = json.dumps(REPORT if report is None else report).encode()
    return await send(client, settings, "POST", STATUS, body)


def assert_problem(response: httpx.Response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json().get("code") == code


async def device_row(app: FastAPI, device_id: str = DEVICE) -> Device | None:
    async with app.state.sessions() as session:
        device: Device | None = await session.get(Device, device_id)
        return device


# --- public configuration ---------------------------------------------------------------------


async def test_config_is_public_and_not_cached(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    before = now_ms()
    response = await client.get(CONFIG)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    config = response.json()
    assert set(config) == {"brokers", "server_time_ms", "topic_root", "firmware"}
    assert config["brokers"] == api_settings.toy_broker_urls()
    assert config["topic_root"] == api_settings.topic_root
    assert config["firmware"] is None
    assert before <= config["server_time_ms"] <= now_ms()


async def test_config_names_the_configured_brokers_and_firmware(
    make_settings: Callable[..., Settings],
) -> None:
    brokers = ["mqtts://mqtt.example.com:8883", "mqtts://mqtt2.example.com:8883"]
    settings = make_settings(device_broker_urls=brokers, **BUILD)
    async with serve(create_app(settings)) as client:
        config = (await client.get(CONFIG)).json()
    assert config["brokers"] == brokers
    assert config["firmware"] == {
        "version": BUILD["firmware_version"],
        "sha256": BUILD["firmware_sha256"],
        "url": BUILD["firmware_url"],
    }


# --- status -----------------------------------------------------------------------------------


async def test_status_creates_then_updates_the_device_row(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    before = datetime.now(UTC)
    sent_ms = now_ms()
    response = await post_status(client, api_settings)
    answered_ms = now_ms()
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["revoked"] is False
    assert sent_ms <= answer["server_time_ms"] <= answered_ms  # the clock while it answered
    row = await device_row(app)
    assert row is not None
    assert row.firmware_version == "1.2.3"
    assert row.last_seen_at is not None
    assert row.last_seen_at >= before
    assert row.parent_id is None

    first_seen = row.last_seen_at
    response = await post_status(client, api_settings, {**REPORT, "firmware_version": "1.3.0"})
    assert response.status_code == 200, response.text
    row = await device_row(app)
    assert row is not None
    assert row.firmware_version == "1.3.0"
    assert row.last_seen_at is not None
    assert row.last_seen_at >= first_seen


async def test_status_body_is_checked_after_authentication(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    for report in (
        {**REPORT, "extra": 1},
        {**REPORT, "battery_pct": 101},
        {**REPORT, "uptime_s": -1},
        {**REPORT, "uptime_s": "42"},
        {**REPORT, "firmware_version": "x" * 33},
        {**REPORT, "firmware_version": "1.0 beta"},
        {"uptime_s": 1},
    ):
        response = await post_status(client, api_settings, report)
        assert_problem(response, 422, "validation_failed")
        assert response.json()["errors"][0]["loc"][0] == "body"
    response = await send(client, api_settings, "POST", STATUS, b"{not json")
    assert_problem(response, 422, "validation_failed")


async def test_an_unsigned_body_is_never_parsed(client: httpx.AsyncClient) -> None:
    response = await client.post(STATUS, content=b"{not json")
    assert_problem(response, 401, "device_auth_missing")


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", SIGNED_HEADERS)
async def test_each_header_is_required(
    client: httpx.AsyncClient, api_settings: Settings, missing: str
) -> None:
    body = json.dumps(REPORT).encode()
    headers = signed_headers(api_settings, "POST", STATUS, body)
    del headers[missing]
    response = await client.post(STATUS, content=body, headers=headers)
    assert_problem(response, 401, "device_auth_missing")
    assert response.headers["www-authenticate"].startswith("TeddyHMAC")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_DEVICE, "Toy-0001"),
        (HEADER_TIMESTAMP, "soon"),
        (HEADER_NONCE, "00"),
        (HEADER_SIGNATURE, "not-hex"),
    ],
)
async def test_malformed_headers(
    client: httpx.AsyncClient, api_settings: Settings, header: str, value: str
) -> None:
    headers = {**signed_headers(api_settings, "GET", FIRMWARE), header: value}
    response = await client.get(FIRMWARE, headers=headers)
    assert_problem(response, 401, "device_auth_malformed")


async def test_another_fleets_key_is_refused(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    other_fleet = b"another-fleet-secret-0123456789-abcdefghijkl"
    response = await send(client, api_settings, "GET", FIRMWARE, fleet_secret=other_fleet)
    assert_problem(response, 401, "device_auth_bad_signature")


async def test_a_tampered_body_is_refused(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    body = json.dumps(REPORT).encode()
    headers = signed_headers(api_settings, "POST", STATUS, body)
    tampered = body.replace(b"1.2.3", b"6.6.6")
    response = await client.post(STATUS, content=tampered, headers=headers)
    assert_problem(response, 401, "device_auth_bad_signature")
    assert await device_row(app) is None


@pytest.mark.parametrize(
    ("signed_target", "sent_target"),
    [
        (f"{FIRMWARE}?current=1.3.0", f"{FIRMWARE}?current=1.0.0"),
        (FIRMWARE, f"{FIRMWARE}?current=1.0.0"),
        (f"{FIRMWARE}?current=1.0.0", FIRMWARE),
        ("/api/v1/esp32/private/other", FIRMWARE),
    ],
)
async def test_a_tampered_path_or_query_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, signed_target: str, sent_target: str
) -> None:
    headers = signed_headers(api_settings, "GET", signed_target)
    response = await client.get(sent_target, headers=headers)
    assert_problem(response, 401, "device_auth_bad_signature")


async def test_a_request_signed_for_another_method_is_refused(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    headers = signed_headers(api_settings, "POST", FIRMWARE)
    response = await client.get(FIRMWARE, headers=headers)
    assert_problem(response, 401, "device_auth_bad_signature")


async def test_stale_and_future_requests_are_refused(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    stale = now_ms() - CLOCK_WINDOW_MS - 5_000
    response = await send(client, api_settings, "GET", FIRMWARE, timestamp_ms=stale)
    assert_problem(response, 401, "device_auth_stale")
    future = now_ms() + CLOCK_WINDOW_MS + 5_000
    response = await send(client, api_settings, "GET", FIRMWARE, timestamp_ms=future)
    assert_problem(response, 401, "device_auth_future")


async def test_a_replayed_request_is_refused(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    body = json.dumps(REPORT).encode()
    headers = signed_headers(api_settings, "POST", STATUS, body)
    first = await client.post(STATUS, content=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(STATUS, content=body, headers=headers)
    assert_problem(again, 409, "device_request_replay")


async def test_a_body_over_the_cap_is_refused(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    body = b"x" * (MAX_BODY_SIZE + 1)
    response = await send(client, api_settings, "POST", STATUS, body)
    assert_problem(response, 413, "device_request_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while read
        for _ in range(MAX_BODY_SIZE // 1024 + 2):
            yield b"x" * 1024

    headers = signed_headers(api_settings, "POST", STATUS, b"")
    response = await client.post(STATUS, content=chunks(), headers=headers)
    assert_problem(response, 413, "device_request_too_large")


async def test_a_device_revoked_in_the_file_is_refused(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    write_revocation_file(api_settings.revoked_devices_file, {DEVICE})
    response = await post_status(client, api_settings)
    assert_problem(response, 403, "device_revoked")
    write_revocation_file(api_settings.revoked_devices_file, set())
    assert (await post_status(client, api_settings)).status_code == 200


async def test_the_revocation_file_alone_decides(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    """The row only records when an administrator revoked; the file is what brokers, hubs and
    the API all obey, so a row left marked after a restore through the CLI refuses nothing."""
    async with app.state.sessions() as session:
        session.add(Device(device_id=DEVICE, revoked_at=datetime.now(UTC)))
        await session.commit()
    assert (await post_status(client, api_settings)).status_code == 200


async def test_a_forged_request_does_not_spend_the_nonce(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    body = json.dumps(REPORT).encode()
    headers = signed_headers(api_settings, "POST", STATUS, body)
    forged = {**headers, HEADER_SIGNATURE: "0" * 64}
    assert_problem(
        await client.post(STATUS, content=body, headers=forged), 401, "device_auth_bad_signature"
    )
    assert (await client.post(STATUS, content=body, headers=headers)).status_code == 200


async def test_each_refusal_is_logged_once_without_the_signature(
    client: httpx.AsyncClient, api_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    headers = signed_headers(api_settings, "GET", FIRMWARE, fleet_secret=b"x" * 40)
    with caplog.at_level(logging.INFO, logger="api.device_auth"):
        await client.get(FIRMWARE, headers=headers)
    records = [record for record in caplog.records if record.name == "api.device_auth"]
    assert len(records) == 1
    record = records[0]
    assert (record.device_id, record.reason) == (DEVICE, "bad_signature")  # type: ignore[attr-defined]
    logged = record.getMessage() + repr(record.__dict__)
    assert headers[HEADER_SIGNATURE] not in logged


# --- firmware ---------------------------------------------------------------------------------


async def test_firmware_without_a_build_is_not_found(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    response = await send(client, api_settings, "GET", FIRMWARE)
    assert_problem(response, 404, "no_firmware")


async def test_firmware_manifest_says_whether_to_update(
    firmware_client: httpx.AsyncClient, api_settings: Settings
) -> None:
    manifest = {
        "version": BUILD["firmware_version"],
        "sha256": BUILD["firmware_sha256"],
        "url": BUILD["firmware_url"],
    }
    response = await send(firmware_client, api_settings, "GET", f"{FIRMWARE}?current=1.2.3")
    assert response.status_code == 200, response.text
    assert response.json() == {**manifest, "update_available": True}
    assert response.headers["cache-control"] == "no-store"
    response = await send(firmware_client, api_settings, "GET", f"{FIRMWARE}?current=1.3.0")
    assert response.json() == {**manifest, "update_available": False}


async def test_firmware_compares_the_last_reported_version_without_current(
    firmware_client: httpx.AsyncClient, api_settings: Settings
) -> None:
    response = await send(firmware_client, api_settings, "GET", FIRMWARE)
    assert response.json()["update_available"] is True  # never reported: offered the build
    await post_status(firmware_client, api_settings, {**REPORT, "firmware_version": "1.3.0"})
    response = await send(firmware_client, api_settings, "GET", FIRMWARE)
    assert response.json()["update_available"] is False


async def test_firmware_refuses_a_malformed_current_after_authentication(
    firmware_client: httpx.AsyncClient, api_settings: Settings
) -> None:
    target = f"{FIRMWARE}?current={'9' * 33}"
    assert_problem(await firmware_client.get(target), 401, "device_auth_missing")
    response = await send(firmware_client, api_settings, "GET", target)
    assert_problem(response, 422, "validation_failed")


# --- the simulated toy -------------------------------------------------------------------------


async def test_the_simulated_toy_reports_its_status(app: FastAPI, api_settings: Settings) -> None:
    key = derive_device_key(api_settings.fleet_secret(), DEVICE)
    transport = httpx.ASGITransport(app=app)
    answer = await report_status("http://testserver", DEVICE, key, transport=transport)
    assert answer["revoked"] is False
    row = await device_row(app)
    assert row is not None
    assert row.firmware_version == SIMULATOR_FIRMWARE_VERSION


async def test_the_simulated_toy_signs_the_query_as_sent(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    key = derive_device_key(api_settings.fleet_secret(), DEVICE)
    response = await send_signed(client, DEVICE, key, "GET", f"{FIRMWARE}?current=1.2.3")
    assert_problem(response, 404, "no_firmware")  # through authentication
    other = derive_device_key(b"another-fleet-secret-0123456789-abcdefghijkl", DEVICE)
    with pytest.raises(ToyError, match="device_auth_bad_signature"):
        await report_status(
            "http://testserver", DEVICE, other, transport=httpx.ASGITransport(app=app)
        )


# --- routing ----------------------------------------------------------------------------------


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def served_routes(app: FastAPI) -> list[Any]:
    """Every route as the app serves it, with the dependencies of the routers it sits in.

    Recent FastAPI keeps an included router whole in ``app.routes`` and flattens it with
    ``iter_route_contexts``; older versions list the flattened routes themselves.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(app.routes) if flatten is None else list(flatten(app.routes))


def test_every_private_route_requires_device_auth_and_no_public_route_shadows_it(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())
    private, public = set(), set()
    for route in served_routes(app):
        path = getattr(route, "path", None) or ""
        if not path.startswith("/api/v1/esp32"):
            continue
        if path.startswith("/api/v1/esp32/private"):
            private.add(path)
            assert authenticated_device in _calls(route.dependant), path
        else:
            public.add(path)
            assert route.path_regex.match("/api/v1/esp32/private/anything") is None, path
            assert route.path_regex.match("/api/v1/esp32/private") is None, path
    assert {STATUS, FIRMWARE} <= private
    assert CONFIG in public


async def test_an_unknown_private_path_is_a_plain_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/esp32/private/nope")
    assert_problem(response, 404, None)
    assert set(response.json()) == {"type", "title", "status", "detail", "instance"}
    assert response.json()["detail"] == "Not Found"
