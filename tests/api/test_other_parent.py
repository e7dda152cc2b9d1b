"""The other-parent matrix: every route that takes an id, called by Eve with Ada's ids.

Each answers 404 ``not_found`` exactly as for an id that does not exist (the same body but for
``instance``), changes nothing, and Ada's data is intact afterwards. The matrix is checked
against the app's routes, so a new route with an id cannot be added without a row here.
Routes that take an id in the body (a ``child_id`` to bind a toy to) are covered too.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hub.conversation.store import ConversationStore
from hub.db.models import Alert, Conversation, Device
from hub.protocol.claims import make_claim_proof
from hub.protocol.keys import derive_device_key
from tests.api.parents import (
    PASSWORD,
    Account,
    add_child,
    assert_problem,
    hub_issues,
    pair,
    register,
)

CHILD = "{child_id}"
DEVICE = "{device_id}"
CONVERSATION = "{conversation_id}"
ALERT = "{alert_id}"
# (method, path template, body template); "{child}" in a body stands for the child id used.
MATRIX: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", f"/api/v1/children/{CHILD}", None),
    ("PATCH", f"/api/v1/children/{CHILD}", {"first_name": "Stolen"}),
    ("PATCH", f"/api/v1/children/{CHILD}/consent", {"cloud_ai": True, "notice_version": "x"}),
    ("POST", f"/api/v1/children/{CHILD}/export", {"password": PASSWORD}),
    ("POST", f"/api/v1/children/{CHILD}/delete", {"password": PASSWORD}),
    ("GET", f"/api/v1/devices/{DEVICE}", None),
    ("PATCH", f"/api/v1/devices/{DEVICE}", {"child_id": "{own_child}"}),
    ("DELETE", f"/api/v1/devices/{DEVICE}", None),
    ("GET", f"/api/v1/children/{CHILD}/conversations", None),
    ("DELETE", f"/api/v1/children/{CHILD}/conversations", None),
    ("GET", f"/api/v1/children/{CHILD}/conversations/{CONVERSATION}", None),
    ("DELETE", f"/api/v1/children/{CHILD}/conversations/{CONVERSATION}", None),
    ("GET", f"/api/v1/children/{CHILD}/alerts", None),
    ("POST", f"/api/v1/children/{CHILD}/alerts/{ALERT}/acknowledge", None),
    ("DELETE", f"/api/v1/children/{CHILD}/alerts/{ALERT}", None),
]
# Routes with an id in the path that answer to something else than a parent's ownership.
NOT_PARENT_OWNED = {
    ("POST", "/api/v1/admin/devices/{device_id}/revoke"),  # admins only (404 for parents)
    ("POST", "/api/v1/admin/devices/{device_id}/restore"),
}


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


def test_the_matrix_covers_every_route_with_an_id(app: FastAPI) -> None:
    with_ids = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "{" in path
        for method in operations
    }
    assert with_ids - NOT_PARENT_OWNED == {(method, path) for method, path, _ in MATRIX}


def _fill(value: Any, child_id: str, own_child: str) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, child_id, own_child) for key, item in value.items()}
    if value == "{own_child}":
        return own_child
    return value


def _url(template: str, ids: dict[str, str]) -> str:
    for placeholder, value in ids.items():
        template = template.replace(placeholder, value)
    return template


async def _adas_history(app: FastAPI, child_id: str) -> dict[str, str]:
    """A conversation with one turn and an alert of Ada's child, made as the hub makes them."""
    store = ConversationStore.from_settings(app.state.sessions, app.state.settings)
    child = uuid.UUID(child_id)
    conversation_id = await store.open_conversation(child, "toy-ada1")
    turn_id = await store.record_turn(
        child_id=child,
        conversation_id=conversation_id,
        device_id="toy-ada1",
        child_text="hello",
        reply_text="hi there",
        input_mode="voice",
        provider="offline",
    )
    alert_id = await store.raise_alert(child, turn_id, ["violence"], "hello")
    return {CONVERSATION: str(conversation_id), ALERT: str(alert_id)}


async def test_another_parents_ids_answer_like_missing_ones(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada = await register(client, "ada@example.com")
    eve = await register(client, "eve@example.com")
    adas_child = await add_child(client, ada)
    eves_child = await add_child(client, eve, first_name="Eli")
    await pair(app, client, ada, adas_child, "toy-ada1")
    ids = {CHILD: adas_child, DEVICE: "toy-ada1", **await _adas_history(app, adas_child)}
    missing = {
        CHILD: str(uuid.uuid4()),
        DEVICE: "toy-none",
        CONVERSATION: str(uuid.uuid4()),
        ALERT: str(uuid.uuid4()),
    }

    for method, template, body_template in MATRIX:
        body = _fill(body_template, adas_child, eves_child)
        theirs_url = _url(template, ids)
        nobodys_url = _url(template, missing)
        theirs = await client.request(method, theirs_url, json=body, headers=eve.headers)
        nobodys = await client.request(method, nobodys_url, json=body, headers=eve.headers)
        theirs_body = assert_problem(theirs, 404, "not_found")
        nobodys_body = assert_problem(nobodys, 404, "not_found")
        assert theirs_body.pop("instance") == theirs_url
        assert nobodys_body.pop("instance") == nobodys_url
        assert theirs_body == nobodys_body, (method, template)

    # Ids in the body: binding a toy to Ada's child, or Eve's toy to it.
    code = await hub_issues(app, "toy-eve1")
    to_adas_child = await client.post(
        "/api/v1/pair/code", json={"code": code, "child_id": adas_child}, headers=eve.headers
    )
    assert_problem(to_adas_child, 404, "not_found")
    kept = await client.post(
        "/api/v1/pair/code", json={"code": code, "child_id": eves_child}, headers=eve.headers
    )
    assert kept.status_code == 200, kept.text  # the code was not spent
    moved = await client.patch(
        "/api/v1/devices/toy-eve1", json={"child_id": adas_child}, headers=eve.headers
    )
    assert_problem(moved, 404, "not_found")

    # Nothing of Ada's changed.
    child = await client.get(f"/api/v1/children/{adas_child}", headers=ada.headers)
    assert child.status_code == 200 and child.json()["first_name"] == "Mia"
    assert child.json()["consent"]["cloud_ai"] is False
    async with app.state.sessions() as session:
        device = await session.get(Device, "toy-ada1")
        eves_device = await session.get(Device, "toy-eve1")
    assert device is not None and device.parent_id == ada.id
    assert str(device.child_id) == adas_child
    assert eves_device is not None and str(eves_device.child_id) == eves_child
    async with app.state.sessions() as session:
        conversation = await session.get(Conversation, uuid.UUID(ids[CONVERSATION]))
        alert = await session.get(Alert, uuid.UUID(ids[ALERT]))
    assert conversation is not None and conversation.turn_count == 1
    assert alert is not None and alert.acknowledged_at is None
    listed = await client.get("/api/v1/devices", headers=eve.headers)
    assert [d["device_id"] for d in listed.json()] == ["toy-eve1"]


async def test_the_claim_route_refuses_another_parents_child(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada: Account = await register(client, "ada@example.com")
    eve: Account = await register(client, "eve@example.com")
    adas_child = await add_child(client, ada)
    settings = app.state.settings
    key = derive_device_key(settings.fleet_secret(), "toy-eve2")
    proof = make_claim_proof(key, "toy-eve2", eve.id, int(time.time()), secrets.token_bytes(16))
    response = await client.post(
        "/api/v1/pair/claim", json={**proof, "child_id": adas_child}, headers=eve.headers
    )
    assert_problem(response, 404, "not_found")
