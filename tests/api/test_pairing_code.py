"""Pairing with the code the toy speaks: ``POST /api/v1/pair/code``.

The hub's side (a toy's ``pair_request`` answered with a signed ``pair_code``) has its own test
through the broker (tests/integration/test_pairing_code.py); here codes are issued the way the
hub issues them, with :func:`hub.pairing.issue_code` on the app's database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.ratelimit import address_block
from hub.db.models import AuditAction, AuditEntry, PairingCode
from hub.pairing import PairingCodeCooldown, normalise_code
from hub.revocation import write_revocation_file
from hub.settings import Settings
from tests.api.conftest import CHEAP_HASHER, serve
from tests.api.parents import Account, add_child, assert_problem, device_row, register
from tests.api.parents import hub_issues as issue_for

PAIR_CODE = "/api/v1/pair/code"
DEVICE = "toy-0042"


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> Account:
    return await register(client, "ada@example.com")


@pytest.fixture
async def eve(client: httpx.AsyncClient) -> Account:
    return await register(client, "eve@example.com")


async def hub_issues(
    app: FastAPI, device_id: str = DEVICE, *, now: datetime | None = None, ttl_s: int = 600
) -> str:
    return await issue_for(app, device_id, now=now, ttl_s=ttl_s)


async def post_code(
    client: httpx.AsyncClient, account: Account, code: str, child_id: str
) -> httpx.Response:
    return await client.post(
        PAIR_CODE, json={"code": code, "child_id": child_id}, headers=account.headers
    )


async def audit_actions(app: FastAPI) -> list[str]:
    async with app.state.sessions() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.at)))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_parent_pairs_with_the_spoken_code(
    app: FastAPI, client: httpx.AsyncClient, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    code = await hub_issues(app)
    response = await post_code(client, ada, f"{code[:3]} {code[3:]}", child_id)
    assert response.status_code == 200, response.text
    assert response.json()["device_id"] == DEVICE
    assert response.json()["child_id"] == child_id
    row = await device_row(app, DEVICE)
    assert row is not None and row.parent_id == ada.id
    assert AuditAction.PAIR_CODE.value in await audit_actions(app)
    listed = await client.get("/api/v1/devices", headers=ada.headers)
    assert [device["device_id"] for device in listed.json()] == [DEVICE]


async def test_a_code_is_single_use(app: FastAPI, client: httpx.AsyncClient, ada: Account) -> None:
    child_id = await add_child(client, ada)
    code = await hub_issues(app)
    assert (await post_code(client, ada, code, child_id)).status_code == 200
    assert_problem(await post_code(client, ada, code, child_id), 404, "pair_code_invalid")


async def test_an_expired_code_is_refused(
    app: FastAPI, client: httpx.AsyncClient, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    code = await hub_issues(app, now=datetime.now(UTC) - timedelta(seconds=601), ttl_s=600)
    assert_problem(await post_code(client, ada, code, child_id), 404, "pair_code_invalid")
    assert await device_row(app, DEVICE) is None


async def test_a_wrong_code_is_refused_and_audited(
    app: FastAPI, client: httpx.AsyncClient, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    code = await hub_issues(app)
    body = assert_problem(
        await post_code(client, ada, wrong(code), child_id), 404, "pair_code_invalid"
    )
    assert code not in body["detail"]
    assert AuditAction.PAIR_CODE_FAILED.value in await audit_actions(app)
    assert (await post_code(client, ada, code, child_id)).status_code == 200  # still live


@pytest.mark.parametrize(
    "typed", ["12345", "1234567", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16", "12 34 5"]
)
async def test_text_that_is_no_code_is_a_wrong_guess(
    app: FastAPI, client: httpx.AsyncClient, ada: Account, typed: str
) -> None:
    child_id = await add_child(client, ada)
    assert_problem(await post_code(client, ada, typed, child_id), 404, "pair_code_invalid")
    assert (await audit_actions(app))[-1] == AuditAction.PAIR_CODE_FAILED.value


@pytest.mark.parametrize(
    ("ip", "block"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_attempts_count_per_ipv4_address_and_ipv6_64(ip: str, block: str) -> None:
    assert address_block(ip) == block


def test_codes_are_six_digits_as_typed() -> None:
    assert normalise_code("042 917") == "042917"
    assert normalise_code("042-917") == "042917"
    assert normalise_code("0429170") is None
    assert normalise_code("٠٤٢٩١٧") is None  # Arabic-Indic digits are not ASCII digits


async def test_guessing_is_limited_per_account(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(pair_code_guess_limit="3/hour"))
    app.state.password_hasher = CHEAP_HASHER
    async with serve(app) as client:
        ada = await register(client, "ada@example.com")
        child_id = await add_child(client, ada)
        code = await hub_issues(app)
        for _ in range(3):
            assert_problem(
                await post_code(client, ada, wrong(code), child_id), 404, "pair_code_invalid"
            )
        limited = await post_code(client, ada, code, child_id)
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) > 0
        assert await device_row(app, DEVICE) is None  # even the right code waits
        assert (await audit_actions(app)).count(AuditAction.PAIR_CODE_FAILED.value) == 3


async def test_guessing_is_limited_per_ip_across_accounts(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(pair_code_guess_limit="2/hour"))
    app.state.password_hasher = CHEAP_HASHER
    async with serve(app) as client:
        code = await hub_issues(app)
        for email in ("a@example.com", "b@example.com"):
            account = await register(client, email)
            child_id = await add_child(client, account)
            assert_problem(
                await post_code(client, account, wrong(code), child_id), 404, "pair_code_invalid"
            )
        third = await register(client, "c@example.com")
        child_id = await add_child(client, third)
        assert_problem(await post_code(client, third, wrong(code), child_id), 429, "rate_limited")


async def test_another_parents_child_leaves_the_code_live(
    app: FastAPI, client: httpx.AsyncClient, ada: Account, eve: Account
) -> None:
    eves_child = await add_child(client, eve)
    adas_child = await add_child(client, ada)
    code = await hub_issues(app)
    assert_problem(await post_code(client, ada, code, eves_child), 404, "not_found")
    assert (await post_code(client, ada, code, adas_child)).status_code == 200


async def test_a_device_of_another_parent_stays_theirs(
    app: FastAPI, client: httpx.AsyncClient, ada: Account, eve: Account
) -> None:
    adas_child = await add_child(client, ada)
    eves_child = await add_child(client, eve)
    assert (await post_code(client, ada, await hub_issues(app), adas_child)).status_code == 200
    code = await hub_issues(app, now=datetime.now(UTC) + timedelta(seconds=10))
    assert_problem(await post_code(client, eve, code, eves_child), 409, "device_claimed")
    row = await device_row(app, DEVICE)
    assert row is not None and row.parent_id == ada.id
    assert_problem(await post_code(client, ada, code, adas_child), 404, "pair_code_invalid")


async def test_a_revoked_device_cannot_be_paired(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account
) -> None:
    child_id = await add_child(client, ada)
    code = await hub_issues(app)
    write_revocation_file(api_settings.revoked_devices_file, {DEVICE})
    assert_problem(await post_code(client, ada, code, child_id), 403, "device_revoked")
    assert await device_row(app, DEVICE) is None
    write_revocation_file(api_settings.revoked_devices_file, set())
    assert_problem(await post_code(client, ada, code, child_id), 404, "pair_code_invalid")
    async with app.state.sessions() as session:
        refusal = await session.scalar(select(AuditEntry).where(AuditEntry.subject_id == DEVICE))
    assert refusal is not None and refusal.action == AuditAction.PAIR_CODE_FAILED.value
    assert refusal.detail == {"reason": "device_revoked"}


async def test_a_new_code_replaces_the_old_and_requests_cool_down(
    app: FastAPI, client: httpx.AsyncClient, ada: Account
) -> None:
    now = datetime.now(UTC)
    first = await hub_issues(app, now=now)
    with pytest.raises(PairingCodeCooldown):
        await hub_issues(app, now=now + timedelta(seconds=1))
    second = await hub_issues(app, now=now + timedelta(seconds=5))
    async with app.state.sessions() as session:
        rows = list(await session.scalars(select(PairingCode)))
    assert [row.device_id for row in rows] == [DEVICE]
    assert first not in rows[0].code_digest and second not in rows[0].code_digest
    child_id = await add_child(client, ada)
    if first != second:
        assert_problem(await post_code(client, ada, first, child_id), 404, "pair_code_invalid")
    assert (await post_code(client, ada, second, child_id)).status_code == 200


async def test_concurrent_attempts_cannot_outrun_the_budget(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(pair_code_guess_limit="3/hour"))
    app.state.password_hasher = CHEAP_HASHER
    async with serve(app) as client:
        ada = await register(client, "ada@example.com")
        child_id = await add_child(client, ada)
        code = await hub_issues(app)
        answers = await asyncio.gather(
            *(post_code(client, ada, wrong(code), child_id) for _ in range(12))
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [404] * 3 + [429] * 9


async def test_two_parents_racing_for_one_code_one_wins(
    app: FastAPI, client: httpx.AsyncClient, ada: Account, eve: Account
) -> None:
    adas_child = await add_child(client, ada)
    eves_child = await add_child(client, eve)
    code = await hub_issues(app)
    first, second = await asyncio.gather(
        post_code(client, ada, code, adas_child), post_code(client, eve, code, eves_child)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 404]
    winner = ada if first.status_code == 200 else eve
    row = await device_row(app, DEVICE)
    assert row is not None and row.parent_id == winner.id


async def test_expired_codes_are_swept_when_a_code_is_issued(app: FastAPI) -> None:
    now = datetime.now(UTC)
    await hub_issues(app, "toy-old", now=now - timedelta(hours=1), ttl_s=600)
    await hub_issues(app, "toy-new", now=now)
    async with app.state.sessions() as session:
        assert list(await session.scalars(select(PairingCode.device_id))) == ["toy-new"]


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, ada: Account) -> None:
    child_id = await add_child(client, ada)
    response = await client.post(
        PAIR_CODE,
        json={"code": "123456", "child_id": child_id, "device_id": DEVICE},
        headers=ada.headers,
    )
    assert_problem(response, 422, "validation_failed")


async def test_a_token_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post(PAIR_CODE, json={"code": "123456", "child_id": "x"})
    assert response.status_code == 401
