"""Claiming a toy with its claim proof: ``POST /api/v1/pair/claim``."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from hub.db.models import AuditAction, AuditEntry, Device
from hub.protocol.claims import CLAIM_WINDOW_S, make_claim_proof
from hub.protocol.keys import derive_device_key
from hub.revocation import write_revocation_file
from hub.settings import Settings
from tests.api.conftest import CHEAP_HASHER, serve
from tests.api.parents import Account, add_child, assert_problem, register
from tests.api.parents import device_row as stored_device
from tests.conftest import TEST_FLEET_SECRET
from tests.timing import EVENT_TIMEOUT_S

CLAIM = "/api/v1/pair/claim"
DEVICE = "toy-0001"
ROOT = Path(__file__).resolve().parents[2]
# A Python start and one command: under a second here, far below this on any machine.
CLI_TIMEOUT_S = 5 * EVENT_TIMEOUT_S


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> Account:
    return await register(client, "ada@example.com")


@pytest.fixture
async def eve(client: httpx.AsyncClient) -> Account:
    return await register(client, "eve@example.com")


def proof_for(
    settings: Settings,
    account_id: uuid.UUID,
    *,
    device_id: str = DEVICE,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A claim proof as the toy makes it, with the app's fleet secret."""
    key = derive_device_key(settings.fleet_secret(), device_id)
    stamp = int(time.time()) if timestamp is None else timestamp
    return dict(make_claim_proof(key, device_id, account_id, stamp, secrets.token_bytes(16)))


async def claim(
    client: httpx.AsyncClient, account: Account, proof: dict[str, Any], child_id: str
) -> httpx.Response:
    return await client.post(CLAIM, json={**proof, "child_id": child_id}, headers=account.headers)


async def device_row(app: FastAPI, device_id: str = DEVICE) -> Device | None:
    return await stored_device(app, device_id)


async def test_parent_claims_a_device_for_their_child(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    response = await claim(client, ada, proof_for(api_settings, ada.id), child_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device_id"] == DEVICE
    assert body["child_id"] == child_id
    device = await device_row(app)
    assert device is not None
    assert device.parent_id == ada.id
    assert str(device.child_id) == child_id
    async with app.state.sessions() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == AuditAction.CLAIM.value)
            )
        )
    assert len(entries) == 1
    assert entries[0].actor_parent_id == ada.id
    assert entries[0].subject_id == DEVICE
    assert entries[0].detail["child_id"] == child_id


def run_claim_proof_cli(
    environment: dict[str, str], account_id: str
) -> subprocess.CompletedProcess[str]:
    """Run the real ``teddyhub toy claim-proof`` (the venv's script, else ``python -m hub``)."""
    teddyhub = Path(sys.executable).with_name("teddyhub")
    program = [str(teddyhub)] if teddyhub.exists() else [sys.executable, "-m", "hub"]
    arguments = ["toy", "claim-proof", "--account", account_id, "--device-id", "toy-cli-1"]
    return subprocess.run(
        [*program, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        check=False,
        timeout=CLI_TIMEOUT_S,
    )


async def test_proof_printed_by_the_cli_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TEDDY_", "ESP32_"))
    }
    environment.update(
        TEDDY_DATA_DIR=str(api_settings.data_dir), ESP32_SHARED_SECRET=TEST_FLEET_SECRET
    )
    result = await asyncio.to_thread(run_claim_proof_cli, environment, str(ada.id))
    assert result.returncode == 0, result.stderr
    proof = json.loads(result.stdout)
    assert proof["device_id"] == "toy-cli-1"
    response = await claim(client, ada, proof, child_id)
    assert response.status_code == 200, response.text
    assert response.json()["device_id"] == "toy-cli-1"


async def test_replay_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    proof = proof_for(api_settings, ada.id)
    assert (await claim(client, ada, proof, child_id)).status_code == 200
    assert_problem(await claim(client, ada, proof, child_id), 409, "claim_replay")


async def test_proof_made_for_another_account_is_refused(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account, eve: Account
) -> None:
    eve_child = await add_child(client, eve)
    captured = proof_for(api_settings, ada.id)  # the toy vouched for Ada's account
    response = await claim(client, eve, captured, eve_child)
    assert_problem(response, 403, "claim_bad_signature")
    assert await device_row(app) is None


async def test_forged_hmac_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    proof = {**proof_for(api_settings, ada.id), "hmac": "0" * 64}
    assert_problem(await claim(client, ada, proof, child_id), 403, "claim_bad_signature")


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-CLAIM_WINDOW_S - 60, "claim_stale"), (CLAIM_WINDOW_S + 60, "claim_future")],
)
async def test_proof_outside_the_window_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, ada: Account, offset: int, code: str
) -> None:
    child_id = await add_child(client, ada)
    proof = proof_for(api_settings, ada.id, timestamp=int(time.time()) + offset)
    assert_problem(await claim(client, ada, proof, child_id), 403, code)


async def test_malformed_proof_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    proof = {**proof_for(api_settings, ada.id), "device_id": "Toy/+#"}
    assert_problem(await claim(client, ada, proof, child_id), 400, "claim_malformed")


async def test_another_parents_child_answers_404(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account, eve: Account
) -> None:
    eve_child = await add_child(client, eve)
    response = await claim(client, ada, proof_for(api_settings, ada.id), eve_child)
    assert_problem(response, 404, "not_found")
    missing = await claim(client, ada, proof_for(api_settings, ada.id), str(uuid.uuid4()))
    assert_problem(missing, 404, "not_found")
    assert response.json()["detail"] == missing.json()["detail"]
    assert await device_row(app) is None


async def test_device_bound_to_another_parent_is_refused(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account, eve: Account
) -> None:
    ada_child = await add_child(client, ada)
    eve_child = await add_child(client, eve)
    assert (await claim(client, ada, proof_for(api_settings, ada.id), ada_child)).status_code == 200
    response = await claim(client, eve, proof_for(api_settings, eve.id), eve_child)
    assert_problem(response, 409, "device_claimed")
    device = await device_row(app)
    assert device is not None
    assert device.parent_id == ada.id
    assert str(device.child_id) == ada_child


async def test_same_parent_reclaims_for_another_child(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    first = await add_child(client, ada)
    second = await add_child(client, ada)
    assert (await claim(client, ada, proof_for(api_settings, ada.id), first)).status_code == 200
    response = await claim(client, ada, proof_for(api_settings, ada.id), second)
    assert response.status_code == 200, response.text
    assert response.json()["child_id"] == second
    device = await device_row(app)
    assert device is not None
    assert device.parent_id == ada.id
    assert str(device.child_id) == second


async def test_revoked_device_is_refused(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    write_revocation_file(api_settings.revoked_devices_file, {DEVICE})
    response = await claim(client, ada, proof_for(api_settings, ada.id), child_id)
    assert_problem(response, 403, "device_revoked")
    assert await device_row(app) is None


async def test_unknown_field_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    body = {**proof_for(api_settings, ada.id), "child_id": child_id, "parent_id": str(ada.id)}
    response = await client.post(CLAIM, json=body, headers=ada.headers)
    assert_problem(response, 422, "validation_failed")


async def test_claim_needs_an_access_token(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    body = {**proof_for(api_settings, uuid.uuid4()), "child_id": str(uuid.uuid4())}
    response = await client.post(CLAIM, json=body)
    assert response.status_code == 401


@pytest.mark.integration
async def test_replay_is_refused_with_the_redis_nonce_store(
    api_settings: Settings, redis_url: str, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    app = create_app(
        api_settings.model_copy(update={"redis_url": redis_url, "redis_key_prefix": redis_prefix})
    )
    app.state.password_hasher = CHEAP_HASHER
    async with serve(app) as client:
        ada = await register(client, "ada@example.com")
        child_id = await add_child(client, ada)
        proof = proof_for(api_settings, ada.id)
        assert (await claim(client, ada, proof, child_id)).status_code == 200
        assert_problem(await claim(client, ada, proof, child_id), 409, "claim_replay")
    key = f"{redis_prefix}n:claim/{DEVICE}/{proof['nonce']}"
    assert await redis_client.exists(key) == 1
    assert 0 < await redis_client.pttl(key) <= 601_000
