"""Parents and children made through the API itself, for the tests of what comes after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from hub.db.models import Device, Parent, ParentRole
from hub.pairing import issue_code
from hub.protocol.keys import derive_pair_code_key
from hub.settings import Settings

PASSWORD = "correct horse battery staple"
AUTH = "/api/v1/auth"


class Account:
    """A registered parent: the Authorization header and the account id."""

    def __init__(self, headers: dict[str, str], account_id: uuid.UUID) -> None:
        self.headers = headers
        self.id = account_id


async def register(client: httpx.AsyncClient, email: str) -> Account:
    """Register ``email`` and log in."""
    credentials = {"email": email, "password": PASSWORD}
    registered = await client.post(f"{AUTH}/register", json=credentials)
    assert registered.status_code == 201, registered.text
    tokens = await client.post(f"{AUTH}/login", json=credentials)
    assert tokens.status_code == 200, tokens.text
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    return Account(headers, uuid.UUID(registered.json()["id"]))


async def add_child(client: httpx.AsyncClient, account: Account, *, first_name: str = "Mia") -> str:
    """A child of ``account``'s with consent recorded; its id."""
    body = {
        "first_name": first_name,
        "consent": {
            "method": "in_app_checkbox",
            "notice_version": "2025-01",
            "agreed": True,
            "cloud_ai": False,
        },
    }
    response = await client.post("/api/v1/children", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    child_id: str = response.json()["id"]
    return child_id


async def make_admin(app: FastAPI, account: Account) -> None:
    """Give ``account`` the admin role (only an operator can: there is no route for it)."""
    async with app.state.sessions() as session:
        await session.execute(
            update(Parent).where(Parent.id == account.id).values(role=ParentRole.ADMIN)
        )
        await session.commit()


async def device_row(app: FastAPI, device_id: str) -> Device | None:
    """The device's row as stored."""
    async with app.state.sessions() as session:
        device: Device | None = await session.get(Device, device_id)
        return device


async def hub_issues(
    app: FastAPI, device_id: str, *, now: datetime | None = None, ttl_s: int = 600
) -> str:
    """A pairing code for ``device_id``, issued as the hub issues it, on the app's database."""
    settings: Settings = app.state.settings
    return await issue_code(
        app.state.sessions,
        derive_pair_code_key(settings.fleet_secret()),
        device_id,
        now=now or datetime.now(UTC),
        ttl_s=ttl_s,
    )


async def pair(
    app: FastAPI, client: httpx.AsyncClient, account: Account, child_id: str, device_id: str
) -> dict[str, Any]:
    """Pair ``device_id`` with the child through a pairing code."""
    code = await hub_issues(app, device_id)
    response = await client.post(
        "/api/v1/pair/code", json={"code": code, "child_id": child_id}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """``response`` is problem details with ``status`` and ``code``; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body
