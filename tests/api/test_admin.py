"""Fleet administration: ``/api/v1/admin`` (list devices, revoke, restore), admins only."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from hub.db.models import AuditAction, AuditEntry
from hub.revocation import read_revocation_file
from hub.settings import Settings
from tests.api.parents import (
    Account,
    add_child,
    assert_problem,
    device_row,
    hub_issues,
    make_admin,
    pair,
    register,
)

ADMIN = "/api/v1/admin"
DEVICE = "toy-0011"


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> Account:
    return await register(client, "ada@example.com")


@pytest.fixture
async def root(app: FastAPI, client: httpx.AsyncClient) -> Account:
    account = await register(client, "ops@example.com")
    await make_admin(app, account)
    return account


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{ADMIN}/devices"),
        ("POST", f"{ADMIN}/devices/{DEVICE}/revoke"),
        ("POST", f"{ADMIN}/devices/{DEVICE}/restore"),
    ],
)
async def test_a_parent_finds_no_admin_route(
    client: httpx.AsyncClient, api_settings: Settings, ada: Account, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=ada.headers)
    assert_problem(response, 404, "not_found")
    assert read_revocation_file(api_settings.revoked_devices_file) == frozenset()


async def test_admin_lists_every_device(
    app: FastAPI, client: httpx.AsyncClient, ada: Account, root: Account
) -> None:
    child_id = await add_child(client, ada)
    await pair(app, client, ada, child_id, DEVICE)
    await pair(app, client, ada, child_id, "toy-0012")
    listed = await client.get(f"{ADMIN}/devices", headers=root.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [device["device_id"] for device in body] == [DEVICE, "toy-0012"]
    assert body[0]["parent_id"] == str(ada.id)
    assert body[0]["revoked"] is False
    page = await client.get(f"{ADMIN}/devices?limit=1&offset=1", headers=root.headers)
    assert [device["device_id"] for device in page.json()] == ["toy-0012"]


async def test_revoke_and_restore(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, ada: Account, root: Account
) -> None:
    child_id = await add_child(client, ada)
    await pair(app, client, ada, child_id, DEVICE)
    revoked = await client.post(f"{ADMIN}/devices/{DEVICE}/revoke", headers=root.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True
    assert DEVICE in read_revocation_file(api_settings.revoked_devices_file)
    row = await device_row(app, DEVICE)
    assert row is not None and row.revoked_at is not None
    # The binding stays; a revoked toy just cannot connect or be paired again.
    assert row.parent_id == ada.id

    restored = await client.post(f"{ADMIN}/devices/{DEVICE}/restore", headers=root.headers)
    assert restored.json()["revoked"] is False
    assert read_revocation_file(api_settings.revoked_devices_file) == frozenset()
    async with app.state.sessions() as session:
        audited = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.actor_parent_id == root.id)
                .order_by(AuditEntry.at)
            )
        )
    assert audited == [AuditAction.ADMIN_REVOKE.value, AuditAction.ADMIN_RESTORE.value]


async def test_revoking_an_unseen_device_lists_it(
    client: httpx.AsyncClient, api_settings: Settings, root: Account
) -> None:
    response = await client.post(f"{ADMIN}/devices/toy-0099/revoke", headers=root.headers)
    assert response.status_code == 200
    listed = await client.get(f"{ADMIN}/devices", headers=root.headers)
    assert [(d["device_id"], d["revoked"]) for d in listed.json()] == [("toy-0099", True)]


async def test_a_revoked_device_cannot_be_paired(
    app: FastAPI, client: httpx.AsyncClient, ada: Account, root: Account
) -> None:
    await client.post(f"{ADMIN}/devices/{DEVICE}/revoke", headers=root.headers)
    child_id = await add_child(client, ada)
    code = await hub_issues(app, DEVICE)
    response = await client.post(
        "/api/v1/pair/code", json={"code": code, "child_id": child_id}, headers=ada.headers
    )
    assert_problem(response, 403, "device_revoked")


async def test_malformed_device_ids_are_refused(client: httpx.AsyncClient, root: Account) -> None:
    response = await client.post(f"{ADMIN}/devices/..%2Fetc/revoke", headers=root.headers)
    assert response.status_code in (404, 422)


async def test_a_huge_page_offset_is_refused_not_a_server_error(
    client: httpx.AsyncClient, root: Account
) -> None:
    """Found by the schemathesis run: an offset past 64 bits once reached the database."""
    response = await client.get(f"{ADMIN}/devices?offset={2**70}", headers=root.headers)
    assert_problem(response, 422, "validation_failed")
