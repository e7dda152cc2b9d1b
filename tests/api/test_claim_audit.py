"""Every refused claim proof (403 and 409) leaves one ``claim_failed`` audit entry, like a
refused pairing code does: who tried, which device the proof named, and why; never the
proof's nonce or signature."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from hub.db.models import AuditAction, AuditEntry
from hub.protocol.claims import CLAIM_WINDOW_S
from hub.revocation import write_revocation_file
from hub.settings import Settings
from tests.api.parents import Account, add_child, assert_problem, register
from tests.api.test_pairing_claim import DEVICE, claim, proof_for


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


async def failed_claims(app: FastAPI) -> list[AuditEntry]:
    async with app.state.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == AuditAction.CLAIM_FAILED.value)
            )
        )


Refusal = Callable[[httpx.AsyncClient, Settings, Account, str], Awaitable[dict[str, Any]]]


async def other_account(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    eve = await register(client, "eve@example.com")
    return proof_for(settings, eve.id)  # made for Eve's account, sent by Ada


async def forged(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    return {**proof_for(settings, ada.id), "hmac": "0" * 64}


async def stale(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    return proof_for(settings, ada.id, timestamp=int(time.time()) - CLAIM_WINDOW_S - 60)


async def future(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    return proof_for(settings, ada.id, timestamp=int(time.time()) + CLAIM_WINDOW_S + 60)


async def revoked(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    write_revocation_file(settings.revoked_devices_file, {DEVICE})
    return proof_for(settings, ada.id)


async def replayed(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    proof = proof_for(settings, ada.id)
    assert (await claim(client, ada, proof, child)).status_code == 200
    return proof


async def anothers_device(
    client: httpx.AsyncClient, settings: Settings, ada: Account, child: str
) -> dict[str, Any]:
    eve = await register(client, "eve@example.com")
    eve_child = await add_child(client, eve)
    assert (await claim(client, eve, proof_for(settings, eve.id), eve_child)).status_code == 200
    return proof_for(settings, ada.id)


@pytest.mark.parametrize(
    ("make_proof", "status", "code"),
    [
        (other_account, 403, "claim_bad_signature"),
        (forged, 403, "claim_bad_signature"),
        (stale, 403, "claim_stale"),
        (future, 403, "claim_future"),
        (revoked, 403, "device_revoked"),
        (replayed, 409, "claim_replay"),
        (anothers_device, 409, "device_claimed"),
    ],
    ids=["other-account", "forged", "stale", "future", "revoked", "replay", "claimed"],
)
async def test_a_refused_claim_is_audited_without_the_proof(
    app: FastAPI,
    client: httpx.AsyncClient,
    api_settings: Settings,
    make_proof: Refusal,
    status: int,
    code: str,
) -> None:
    ada = await register(client, "ada@example.com")
    child = await add_child(client, ada)
    proof = await make_proof(client, api_settings, ada, child)

    assert_problem(await claim(client, ada, proof, child), status, code)

    (entry,) = await failed_claims(app)
    assert entry.actor_parent_id == ada.id
    assert entry.subject_type == "device"
    assert entry.subject_id == DEVICE
    assert entry.detail == {"reason": code}
    stored = repr((entry.detail, entry.subject_id))
    assert proof["nonce"] not in stored
    assert proof["hmac"] not in stored


async def test_a_malformed_proof_is_a_bad_request_not_an_audited_refusal(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    ada = await register(client, "ada@example.com")
    child = await add_child(client, ada)
    proof = {**proof_for(api_settings, ada.id), "device_id": "Toy/+#"}
    assert_problem(await claim(client, ada, proof, child), 400, "claim_malformed")
    assert await failed_claims(app) == []


async def test_an_accepted_claim_leaves_no_failure(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    ada = await register(client, "ada@example.com")
    child = await add_child(client, ada)
    assert (await claim(client, ada, proof_for(api_settings, ada.id), child)).status_code == 200
    assert await failed_claims(app) == []
