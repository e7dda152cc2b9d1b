"""A parent's view of their children's conversations and alerts: list, read, delete,
acknowledge; export carries them decrypted; deleting the child leaves no row behind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from api.routes.history import MAX_OFFSET, MAX_PAGE_SIZE
from hub.conversation.store import ConversationStore
from hub.db.models import Alert, AuditEntry, Conversation, Turn
from hub.transcripts import TranscriptCipher
from tests.api.parents import PASSWORD, Account, add_child, assert_problem, register

CHILDREN = "/api/v1/children"
START = datetime.now(UTC) - timedelta(hours=2)


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


def store_of(app: FastAPI) -> ConversationStore:
    return ConversationStore.from_settings(app.state.sessions, app.state.settings)


@dataclass
class History:
    child_id: str
    first: uuid.UUID  # two turns, the second flagged with an alert
    second: uuid.UUID  # one turn
    alert: uuid.UUID


async def record_history(app: FastAPI, child_id: str) -> History:
    """Two conversations of the child, the later one newer, and one alert."""
    store = store_of(app)
    child = uuid.UUID(child_id)
    first = await store.open_conversation(child, "toy-0001", now=START)
    await store.record_turn(
        child_id=child,
        conversation_id=first,
        device_id="toy-0001",
        child_text="Why is the sky blue?",
        reply_text="Because of sunlight scattering!",
        input_mode="voice",
        provider="offline",
        timings={"stt": 210, "total": 1400},
        redactions=["name"],
        duration_ms=2100,
        at=START + timedelta(seconds=5),
    )
    flagged = await store.record_turn(
        child_id=child,
        conversation_id=first,
        device_id="toy-0001",
        child_text="I want to hurt [redacted]",
        reply_text="That sounds hard. Let's talk to a grown-up.",
        input_mode="text",
        provider="offline",
        safety_flags=["violence"],
        flagged=True,
        at=START + timedelta(seconds=30),
    )
    alert = await store.raise_alert(
        child, flagged, ["violence"], "I want to hurt [redacted]", at=START + timedelta(seconds=31)
    )
    later = START + timedelta(hours=1)
    second = await store.open_conversation(child, "toy-0001", now=later)
    await store.record_turn(
        child_id=child,
        conversation_id=second,
        device_id="toy-0001",
        child_text="Tell me a story",
        reply_text="Once upon a time...",
        input_mode="voice",
        provider="openai",
        at=later + timedelta(seconds=3),
    )
    return History(child_id, first, second, alert)


async def family(app: FastAPI, client: httpx.AsyncClient) -> tuple[Account, History]:
    ada = await register(client, "ada@example.com")
    child_id = await add_child(client, ada)
    return ada, await record_history(app, child_id)


async def rows_of_child(app: FastAPI, child_id: str) -> dict[str, int]:
    counts = {}
    async with app.state.sessions() as session:
        for model in (Conversation, Turn, Alert):
            counts[model.__tablename__] = (
                await session.scalar(
                    select(func.count())
                    .select_from(model)
                    .where(model.child_id == uuid.UUID(child_id))
                )
                or 0
            )
    return counts


async def audit_actions(app: FastAPI, child_id: str) -> list[AuditEntry]:
    async with app.state.sessions() as session:
        entries = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_id == child_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return list(entries)


async def test_list_and_read_conversations(app: FastAPI, client: httpx.AsyncClient) -> None:
    ada, history = await family(app, client)
    url = f"{CHILDREN}/{history.child_id}/conversations"

    listed = await client.get(url, headers=ada.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 2 and page["limit"] == 20 and page["offset"] == 0
    assert [item["id"] for item in page["items"]] == [str(history.second), str(history.first)]
    assert [item["turn_count"] for item in page["items"]] == [1, 2]

    read = await client.get(f"{url}/{history.first}", headers=ada.headers)
    assert read.status_code == 200, read.text
    conversation = read.json()
    assert conversation["turn_count"] == 2
    first, second = conversation["turns"]
    assert first["child_text"] == "Why is the sky blue?"
    assert first["reply_text"] == "Because of sunlight scattering!"
    assert first["input_mode"] == "voice" and first["provider"] == "offline"
    assert first["timings"] == {"stt": 210.0, "total": 1400.0}
    assert first["redactions"] == ["name"]
    assert first["flagged"] is False and first["safety_flags"] == []
    assert second["flagged"] is True and second["safety_flags"] == ["violence"]
    assert second["input_mode"] == "text"


async def test_pagination_is_bounded(app: FastAPI, client: httpx.AsyncClient) -> None:
    ada, history = await family(app, client)
    for url in (
        f"{CHILDREN}/{history.child_id}/conversations",
        f"{CHILDREN}/{history.child_id}/alerts",
    ):
        second_page = await client.get(url, params={"limit": 1, "offset": 1}, headers=ada.headers)
        assert second_page.status_code == 200, second_page.text
        assert second_page.json()["offset"] == 1
        assert len(second_page.json()["items"]) <= 1
        past_the_end = await client.get(url, params={"offset": MAX_OFFSET}, headers=ada.headers)
        assert past_the_end.status_code == 200, past_the_end.text
        assert past_the_end.json()["items"] == []
        for params in (
            {"offset": MAX_OFFSET + 1},
            {"offset": 10**30},
            {"offset": -1},
            {"limit": 0},
            {"limit": MAX_PAGE_SIZE + 1},
            {"limit": 10**30},
        ):
            refused = await client.get(url, params=params, headers=ada.headers)
            assert_problem(refused, 422, "validation_failed")
    conversations = f"{CHILDREN}/{history.child_id}/conversations"
    first_page = await client.get(conversations, params={"limit": 1}, headers=ada.headers)
    assert [item["id"] for item in first_page.json()["items"]] == [str(history.second)]


async def test_delete_one_conversation(app: FastAPI, client: httpx.AsyncClient) -> None:
    ada, history = await family(app, client)
    url = f"{CHILDREN}/{history.child_id}/conversations/{history.first}"
    deleted = await client.delete(url, headers=ada.headers)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_problem(await client.get(url, headers=ada.headers), 404, "not_found")
    assert_problem(await client.delete(url, headers=ada.headers), 404, "not_found")
    # Its turns and the alert they raised went with it; the other conversation stayed.
    assert await rows_of_child(app, history.child_id) == {
        "conversations": 1,
        "turns": 1,
        "alerts": 0,
    }
    listed = await client.get(f"{CHILDREN}/{history.child_id}/conversations", headers=ada.headers)
    assert [item["id"] for item in listed.json()["items"]] == [str(history.second)]
    entries = await audit_actions(app, history.child_id)
    assert entries[-1].action == "history_delete"
    assert entries[-1].detail == {
        "scope": "conversation",
        "conversation_id": str(history.first),
        "turns": 2,
        "alerts": 1,
    }


async def test_delete_all_history(app: FastAPI, client: httpx.AsyncClient) -> None:
    ada, history = await family(app, client)
    url = f"{CHILDREN}/{history.child_id}/conversations"
    deleted = await client.delete(url, headers=ada.headers)
    assert deleted.status_code == 204, deleted.text
    assert (await client.get(url, headers=ada.headers)).json()["items"] == []
    alerts = await client.get(f"{CHILDREN}/{history.child_id}/alerts", headers=ada.headers)
    assert alerts.json()["items"] == []
    assert await rows_of_child(app, history.child_id) == {
        "conversations": 0,
        "turns": 0,
        "alerts": 0,
    }
    entries = await audit_actions(app, history.child_id)
    assert entries[-1].action == "history_delete"
    assert entries[-1].detail == {"scope": "all", "conversations": 2, "turns": 3, "alerts": 1}
    again = await client.delete(url, headers=ada.headers)
    assert again.status_code == 204


async def test_alerts_list_acknowledge_delete(app: FastAPI, client: httpx.AsyncClient) -> None:
    ada, history = await family(app, client)
    url = f"{CHILDREN}/{history.child_id}/alerts"
    listed = await client.get(url, headers=ada.headers)
    assert listed.status_code == 200, listed.text
    (alert,) = listed.json()["items"]
    assert alert["id"] == str(history.alert)
    assert alert["excerpt"] == "I want to hurt [redacted]"
    assert alert["categories"] == ["violence"]
    assert alert["conversation_id"] == str(history.first)
    assert alert["acknowledged_at"] is None

    acknowledged = await client.post(f"{url}/{history.alert}/acknowledge", headers=ada.headers)
    assert acknowledged.status_code == 200, acknowledged.text
    first_ack = acknowledged.json()["acknowledged_at"]
    assert first_ack is not None
    again = await client.post(f"{url}/{history.alert}/acknowledge", headers=ada.headers)
    assert again.json()["acknowledged_at"] == first_ack
    unread = await client.get(url, params={"unacknowledged": True}, headers=ada.headers)
    assert unread.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}

    deleted = await client.delete(f"{url}/{history.alert}", headers=ada.headers)
    assert deleted.status_code == 204, deleted.text
    assert (await client.get(url, headers=ada.headers)).json()["total"] == 0
    assert_problem(
        await client.delete(f"{url}/{history.alert}", headers=ada.headers), 404, "not_found"
    )
    assert_problem(
        await client.post(f"{url}/{history.alert}/acknowledge", headers=ada.headers),
        404,
        "not_found",
    )
    entries = await audit_actions(app, history.child_id)
    assert entries[-1].action == "alert_delete"
    assert entries[-1].detail == {"alert_id": str(history.alert)}
    # The turn stays.
    assert (await rows_of_child(app, history.child_id))["turns"] == 3


async def test_ids_of_another_child_of_the_same_parent_are_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada, history = await family(app, client)
    sibling = await add_child(client, ada, first_name="Leo")
    base = f"{CHILDREN}/{sibling}"
    for method, url in (
        ("GET", f"{base}/conversations/{history.first}"),
        ("DELETE", f"{base}/conversations/{history.first}"),
        ("POST", f"{base}/alerts/{history.alert}/acknowledge"),
        ("DELETE", f"{base}/alerts/{history.alert}"),
    ):
        response = await client.request(method, url, headers=ada.headers)
        assert_problem(response, 404, "not_found")
    assert await rows_of_child(app, history.child_id) == {
        "conversations": 2,
        "turns": 3,
        "alerts": 1,
    }


async def test_a_text_whose_key_is_gone_reads_as_null(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada, history = await family(app, client)
    app.state.transcript_cipher = TranscriptCipher([bytes(32)])  # not the key that sealed them
    read = await client.get(
        f"{CHILDREN}/{history.child_id}/conversations/{history.second}", headers=ada.headers
    )
    assert read.status_code == 200, read.text
    (turn,) = read.json()["turns"]
    assert turn["child_text"] is None and turn["reply_text"] is None
    alerts = await client.get(f"{CHILDREN}/{history.child_id}/alerts", headers=ada.headers)
    assert alerts.json()["items"][0]["excerpt"] is None


async def test_export_contains_the_decrypted_history(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada, history = await family(app, client)
    response = await client.post(
        f"{CHILDREN}/{history.child_id}/export", json={"password": PASSWORD}, headers=ada.headers
    )
    assert response.status_code == 200, response.text
    document = response.json()
    conversations = document["conversations"]
    assert [c["id"] for c in conversations] == [str(history.first), str(history.second)]
    assert [t["child_text"] for t in conversations[0]["turns"]] == [
        "Why is the sky blue?",
        "I want to hurt [redacted]",
    ]
    assert conversations[1]["turns"][0]["reply_text"] == "Once upon a time..."
    (alert,) = document["alerts"]
    assert alert["excerpt"] == "I want to hurt [redacted]"
    assert alert["conversation_id"] == str(history.first)


async def test_deleting_the_child_leaves_no_row_of_theirs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada, history = await family(app, client)
    bob = await register(client, "bob@example.com")
    bobs = await record_history(app, await add_child(client, bob, first_name="Bo"))

    deleted = await client.post(
        f"{CHILDREN}/{history.child_id}/delete", json={"password": PASSWORD}, headers=ada.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert await rows_of_child(app, history.child_id) == {
        "conversations": 0,
        "turns": 0,
        "alerts": 0,
    }
    async with app.state.sessions() as session:
        for table in ("conversations", "turns", "alerts"):
            rows = await session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            assert rows == {"conversations": 2, "turns": 3, "alerts": 1}[table]  # Bob's only
    assert await rows_of_child(app, bobs.child_id) == {
        "conversations": 2,
        "turns": 3,
        "alerts": 1,
    }
