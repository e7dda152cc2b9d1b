"""Children: create only with consent, read, update, consent changes, export and delete with the
password again, and the other-parent matrix (another parent's id answers like a missing one)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from hub.db.models import AuditEntry, Device

PASSWORD = "correct horse battery staple"
AUTH = "/api/v1/auth"
CHILDREN = "/api/v1/children"
CONSENT = {
    "method": "in_app_checkbox",
    "notice_version": "2025-01",
    "agreed": True,
    "cloud_ai": False,
}


def new_child(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": "Mia",
        "birth_year": datetime.now(UTC).year - 6,
        "language": "de",
        "consent": dict(CONSENT),
    }
    body.update(changes)
    return body


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


async def account(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Register ``email`` and answer the Authorization header of a fresh login."""
    credentials = {"email": email, "password": PASSWORD}
    registered = await client.post(f"{AUTH}/register", json=credentials)
    assert registered.status_code == 201, registered.text
    tokens = await client.post(f"{AUTH}/login", json=credentials)
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> dict[str, str]:
    return await account(client, "ada@example.com")


@pytest.fixture
async def eve(client: httpx.AsyncClient) -> dict[str, str]:
    return await account(client, "eve@example.com")


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], **changes: Any
) -> dict[str, Any]:
    response = await client.post(CHILDREN, json=new_child(**changes), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def audit_rows(app: FastAPI, child_id: str) -> list[AuditEntry]:
    async with app.state.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_type == "child", AuditEntry.subject_id == child_id)
            .order_by(AuditEntry.at)
        )
        return list(rows)


async def test_create_records_consent(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    before = datetime.now(UTC)
    child = await create(client, ada)
    assert uuid.UUID(child["id"]).version == 4
    assert child["first_name"] == "Mia"
    assert child["language"] == "de"
    consent = child["consent"]
    assert consent["method"] == "in_app_checkbox"
    assert consent["notice_version"] == "2025-01"
    assert consent["cloud_ai"] is False
    assert datetime.fromisoformat(consent["given_at"]) >= before.replace(microsecond=0)

    rows = await audit_rows(app, child["id"])
    assert [row.action for row in rows] == ["consent_change"]
    assert rows[0].detail["cloud_ai"] is False
    assert "Mia" not in str(rows[0].detail)


@pytest.mark.parametrize(
    "consent",
    [
        None,
        {**CONSENT, "agreed": False},
        {key: value for key, value in CONSENT.items() if key != "agreed"},
        {**CONSENT, "method": "carrier_pigeon"},
        {**CONSENT, "given_at": "2020-01-01T00:00:00Z"},
    ],
    ids=["missing", "not_agreed", "agreed_missing", "unknown_method", "unknown_field"],
)
async def test_create_requires_consent(
    client: httpx.AsyncClient, ada: dict[str, str], consent: dict[str, Any] | None
) -> None:
    body = new_child(consent=consent)
    if consent is None:
        del body["consent"]
    response = await client.post(CHILDREN, json=body, headers=ada)
    assert_problem(response, 422, "validation_failed")
    listed = await client.get(CHILDREN, headers=ada)
    assert listed.json() == []


@pytest.mark.parametrize(
    "extra",
    [
        {"parent_id": str(uuid.uuid4())},
        {"consent_given_at": "2020-01-01T00:00:00Z"},
        {"cloud_ai_consent": True},
        {"id": str(uuid.uuid4())},
    ],
    ids=["parent_id", "consent_given_at", "cloud_ai_consent", "id"],
)
async def test_create_refuses_unknown_fields(
    client: httpx.AsyncClient, ada: dict[str, str], extra: dict[str, Any]
) -> None:
    response = await client.post(CHILDREN, json=new_child(**extra), headers=ada)
    body = assert_problem(response, 422, "validation_failed")
    assert any(error["loc"][-1] == next(iter(extra)) for error in body["errors"])


@pytest.mark.parametrize(
    "changes",
    [
        {"birth_year": 1980},
        {"birth_year": datetime.now(UTC).year + 1},
        {"language": "English please"},
        {"first_name": "  "},
        {"first_name": "x" * 65},
    ],
)
async def test_create_refuses_bad_values(
    client: httpx.AsyncClient, ada: dict[str, str], changes: dict[str, Any]
) -> None:
    response = await client.post(CHILDREN, json=new_child(**changes), headers=ada)
    assert_problem(response, 422, "validation_failed")


async def test_routes_require_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(CHILDREN), 401, "unauthorized")
    assert_problem(await client.post(CHILDREN, json=new_child()), 401, "unauthorized")


async def test_list_get_and_patch_own_child(
    client: httpx.AsyncClient, ada: dict[str, str], eve: dict[str, str]
) -> None:
    mia = await create(client, ada)
    ben = await create(client, ada, first_name="Ben")
    await create(client, eve, first_name="Other")

    listed = await client.get(CHILDREN, headers=ada)
    assert [child["id"] for child in listed.json()] == [mia["id"], ben["id"]]

    got = await client.get(f"{CHILDREN}/{mia['id']}", headers=ada)
    assert got.status_code == 200
    assert got.json() == mia

    patched = await client.patch(
        f"{CHILDREN}/{mia['id']}",
        json={"first_name": "Mira", "daily_limit_minutes": 45, "birth_year": None},
        headers=ada,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["first_name"] == "Mira"
    assert body["daily_limit_minutes"] == 45
    assert body["birth_year"] is None
    assert body["language"] == "de"
    assert body["consent"] == mia["consent"]
    assert (await client.get(f"{CHILDREN}/{mia['id']}", headers=ada)).json() == body


@pytest.mark.parametrize(
    "body",
    [
        {"parent_id": str(uuid.uuid4())},
        {"consent_given_at": "2020-01-01T00:00:00Z"},
        {"cloud_ai_consent": True},
        {"first_name": None},
        {"language": None},
        {"daily_limit_minutes": 0},
    ],
)
async def test_patch_refuses_unknown_fields_and_bad_values(
    client: httpx.AsyncClient, ada: dict[str, str], body: dict[str, Any]
) -> None:
    child = await create(client, ada)
    response = await client.patch(f"{CHILDREN}/{child['id']}", json=body, headers=ada)
    assert_problem(response, 422, "validation_failed")
    assert (await client.get(f"{CHILDREN}/{child['id']}", headers=ada)).json() == child


async def test_consent_change_is_recorded_and_audited(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    child = await create(client, ada)
    response = await client.patch(
        f"{CHILDREN}/{child['id']}/consent",
        json={"cloud_ai": True, "notice_version": "2025-06"},
        headers=ada,
    )
    assert response.status_code == 200, response.text
    consent = response.json()["consent"]
    assert consent["cloud_ai"] is True
    assert consent["notice_version"] == "2025-06"
    assert consent["method"] == "in_app_checkbox"
    assert consent["given_at"] >= child["consent"]["given_at"]

    refused = await client.patch(
        f"{CHILDREN}/{child['id']}/consent",
        json={"cloud_ai": False, "notice_version": "2025-07", "agreed": True},
        headers=ada,
    )
    assert_problem(refused, 422, "validation_failed")

    rows = await audit_rows(app, child["id"])
    assert [row.action for row in rows] == ["consent_change", "consent_change"]
    assert rows[1].detail["previous_cloud_ai"] is False
    assert rows[1].detail["cloud_ai"] is True


async def test_export_requires_the_password_and_returns_everything(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    child = await create(client, ada)
    async with app.state.sessions() as session:
        session.add(Device(device_id="teddy-0001", child_id=uuid.UUID(child["id"])))
        await session.commit()

    wrong = await client.post(
        f"{CHILDREN}/{child['id']}/export", json={"password": "not the password"}, headers=ada
    )
    assert_problem(wrong, 401, "invalid_credentials")
    missing = await client.post(f"{CHILDREN}/{child['id']}/export", json={}, headers=ada)
    assert_problem(missing, 422, "validation_failed")

    response = await client.post(
        f"{CHILDREN}/{child['id']}/export", json={"password": PASSWORD}, headers=ada
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["child"] == child
    assert [device["device_id"] for device in document["devices"]] == ["teddy-0001"]
    assert [entry["action"] for entry in document["audit"]] == ["consent_change"]

    rows = await audit_rows(app, child["id"])
    assert [row.action for row in rows] == ["consent_change", "export"]


async def test_delete_requires_the_password_and_removes_the_child(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    child = await create(client, ada)
    async with app.state.sessions() as session:
        session.add(Device(device_id="teddy-0002", child_id=uuid.UUID(child["id"])))
        await session.commit()
    url = f"{CHILDREN}/{child['id']}/delete"

    wrong = await client.post(url, json={"password": "not the password"}, headers=ada)
    assert_problem(wrong, 401, "invalid_credentials")
    assert (await client.get(f"{CHILDREN}/{child['id']}", headers=ada)).status_code == 200

    deleted = await client.post(url, json={"password": PASSWORD}, headers=ada)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_problem(await client.get(f"{CHILDREN}/{child['id']}", headers=ada), 404, "not_found")
    assert (await client.get(CHILDREN, headers=ada)).json() == []
    assert_problem(
        await client.post(url, json={"password": PASSWORD}, headers=ada), 404, "not_found"
    )

    async with app.state.sessions() as session:
        device = await session.get(Device, "teddy-0002")
        assert device is not None
        assert device.child_id is None
    rows = await audit_rows(app, child["id"])
    assert [row.action for row in rows] == ["consent_change", "deletion"]
    assert rows[1].detail == {"devices_unbound": 1}
