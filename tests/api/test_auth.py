"""Accounts: register, log in (JSON and form), tokens, refresh rotation and reuse, logout,
password change, rate limits; on the embedded SQLite database the lifespan migrates."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.tokens import issue_access_token
from hub.db.models import AuditEntry, ParentRole
from hub.settings import Settings
from tests.api.conftest import CHEAP_HASHER, serve

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new and long passphrase"
AUTH = "/api/v1/auth"


def auth_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.state.password_hasher = CHEAP_HASHER
    return app


@pytest.fixture
async def app_and_client(
    api_settings: Settings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = auth_app(api_settings)
    async with serve(app) as test_client:
        yield app, test_client


@pytest.fixture
def auth_client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, Any]:
    response = await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str = "ada@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(f"{AUTH}/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def test_register_answers_id_and_email(auth_client: httpx.AsyncClient) -> None:
    body = await register(auth_client, "Ada@Example.com")
    assert uuid.UUID(body["id"]).version == 4
    assert body["email"] == "ada@example.com"
    assert body["role"] == "parent"
    again = await auth_client.post(
        f"{AUTH}/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert_problem(again, 409, "conflict")


async def test_register_refuses_unknown_fields(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(
        f"{AUTH}/register", json={"email": "eve@example.com", "password": PASSWORD, "role": "admin"}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert PASSWORD not in response.text
    assert any(error["loc"][-1] == "role" for error in body["errors"])


@pytest.mark.parametrize("route", ["register", "login"])
@pytest.mark.parametrize("email", ["\u0000@a", "ada\u0007@example.com", "ada@exa\u007fmple.com"])
async def test_control_characters_in_an_email_are_invalid_input(
    auth_client: httpx.AsyncClient, route: str, email: str
) -> None:
    """Found by the schemathesis run: PostgreSQL refuses NUL in text, which was a 500."""
    response = await auth_client.post(
        f"{AUTH}/{route}", json={"email": email, "password": PASSWORD}
    )
    assert_problem(response, 422, "validation_failed")


async def test_control_characters_in_the_token_form_are_an_unknown_account(
    auth_client: httpx.AsyncClient,
) -> None:
    """Found by the schemathesis run: the OAuth2 form skipped the JSON body's e-mail rules."""
    response = await auth_client.post(
        f"{AUTH}/token",
        content="grant_type=password&username=ada%00%40example.com&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 401, "invalid_credentials")


async def test_register_refuses_weak_password(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(
        f"{AUTH}/register", json={"email": "ada@example.com", "password": "password"}
    )
    body = assert_problem(response, 422, "weak_password")
    assert set(body["problems"]) == {"too_short", "common"}


async def test_login_json_and_form_and_me(auth_client: httpx.AsyncClient) -> None:
    account = await register(auth_client)
    tokens = await login(auth_client)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    me = await auth_client.get(f"{AUTH}/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == account["id"]

    form = await auth_client.post(
        f"{AUTH}/token", data={"username": "ada@example.com", "password": PASSWORD}
    )
    assert form.status_code == 200, form.text
    me = await auth_client.get(f"{AUTH}/me", headers=bearer(form.json()["access_token"]))
    assert me.json()["email"] == "ada@example.com"


async def test_unknown_email_and_wrong_password_answer_alike(
    auth_client: httpx.AsyncClient,
) -> None:
    await register(auth_client)
    wrong = await auth_client.post(
        f"{AUTH}/login", json={"email": "ada@example.com", "password": "not the password"}
    )
    unknown = await auth_client.post(
        f"{AUTH}/login", json={"email": "nobody@example.com", "password": "not the password"}
    )
    form = await auth_client.post(
        f"{AUTH}/token", data={"username": "nobody@example.com", "password": "x"}
    )
    for response in (wrong, unknown, form):
        body = assert_problem(response, 401, "invalid_credentials")
        assert response.headers["www-authenticate"] == "Bearer"
        assert body["detail"] == "invalid credentials"
    strip = lambda r: {k: v for k, v in r.json().items() if k != "instance"}  # noqa: E731
    assert strip(wrong) == strip(unknown)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_bad_access_tokens_are_refused(
    auth_client: httpx.AsyncClient, api_settings: Settings
) -> None:
    account = await register(auth_client)
    good = (await login(auth_client))["access_token"]
    assert api_settings.jwt_secret_key is not None
    expired = issue_access_token(
        uuid.UUID(account["id"]),
        ParentRole.PARENT,
        secret=api_settings.jwt_secret_key,
        issuer="teddyhub",
        audience="teddyhub-app",
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    head, payload, signature = good.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload["role"] = "admin"
    tampered = (
        f"{head}."
        + base64.urlsafe_b64encode(json.dumps(tampered_payload).encode()).rstrip(b"=").decode()
        + f".{signature}"
    )
    alg_none = _unsigned(tampered_payload)
    for token in (expired, tampered, alg_none, "not-a-jwt"):
        response = await auth_client.get(f"{AUTH}/me", headers=bearer(token))
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == "Bearer"
    missing = await auth_client.get(f"{AUTH}/me")
    assert_problem(missing, 401, "unauthorized")


async def test_refresh_rotates_and_reuse_revokes_family(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    await register(client)
    first = await login(client)
    rotated = await client.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await client.get(f"{AUTH}/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200

    reused = await client.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reused, 401, "invalid_refresh_token")
    newest = await client.post(f"{AUTH}/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(newest, 401, "invalid_refresh_token")

    async with app.state.sessions() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "refresh_reuse" in actions

    other = await login(client)  # another login is another family, untouched
    ok = await client.post(f"{AUTH}/refresh", json={"refresh_token": other["refresh_token"]})
    assert ok.status_code == 200


async def test_unknown_refresh_token_is_refused(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(f"{AUTH}/refresh", json={"refresh_token": "made-up"})
    assert_problem(response, 401, "invalid_refresh_token")


async def test_logout_ends_the_session(auth_client: httpx.AsyncClient) -> None:
    await register(auth_client)
    tokens = await login(auth_client)
    out = await auth_client.post(
        f"{AUTH}/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )
    assert out.status_code == 204
    after = await auth_client.post(
        f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(after, 401, "invalid_refresh_token")


async def _next_second() -> None:
    # iat is whole seconds; a password change in the same second as a login would not end it.
    await asyncio.sleep(1.05 - (time.time() % 1))


async def test_password_change_ends_other_sessions(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    await register(client)
    other = await login(client)
    mine = await login(client)
    await _next_second()
    wrong = await client.post(
        f"{AUTH}/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=bearer(mine["access_token"]),
    )
    assert_problem(wrong, 401, "invalid_credentials")
    weak = await client.post(
        f"{AUTH}/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(mine["access_token"]),
    )
    assert_problem(weak, 422, "weak_password")

    changed = await client.post(
        f"{AUTH}/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(mine["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()

    for old in (other, mine):
        me = await client.get(f"{AUTH}/me", headers=bearer(old["access_token"]))
        assert_problem(me, 401, "invalid_token")
        refreshed = await client.post(
            f"{AUTH}/refresh", json={"refresh_token": old["refresh_token"]}
        )
        assert_problem(refreshed, 401, "invalid_refresh_token")
    me = await client.get(f"{AUTH}/me", headers=bearer(fresh["access_token"]))
    assert me.status_code == 200
    await login(client, password=NEW_PASSWORD)
    old_password = await client.post(
        f"{AUTH}/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert_problem(old_password, 401, "invalid_credentials")

    async with app.state.sessions() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "password_change" in actions


async def test_login_is_rate_limited(make_settings: Callable[..., Settings]) -> None:
    app = auth_app(make_settings(rate_limit="3/minute"))
    async with serve(app) as client:
        body = {"email": "ada@example.com", "password": "wrong password here"}
        for _ in range(3):
            assert (await client.post(f"{AUTH}/login", json=body)).status_code == 401
        limited = await client.post(f"{AUTH}/login", json=body)
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1


async def test_login_is_rate_limited_per_account_across_ips(
    make_settings: Callable[..., Settings],
) -> None:
    app = auth_app(make_settings(rate_limit="3/minute"))
    body = {"email": "ada@example.com", "password": "wrong password here"}

    def client_from(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with app.router.lifespan_context(app):
        for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            async with client_from(host) as client:
                assert (await client.post(f"{AUTH}/login", json=body)).status_code == 401
        async with client_from("10.0.0.4") as client:
            limited = await client.post(f"{AUTH}/login", json=body)
            assert_problem(limited, 429, "rate_limited")
