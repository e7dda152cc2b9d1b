"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from api.app import create_app
from hub.settings import Settings
from tests.api.conftest import serve
from tests.services import free_port


async def test_health_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.json() == {"status": "ok"}


def _expected(settings: Settings, **checks: bool) -> dict[str, bool]:
    """Every check true, as changed by ``checks``; Redis only where the stack has it."""
    expected = {"database": True, "broker": True}
    if settings.redis_url:
        expected["redis"] = True
    return expected | checks


async def test_ready_with_a_database_and_a_broker(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": _expected(api_settings)}


async def test_not_ready_when_postgresql_is_unreachable(
    make_settings: Callable[..., Settings], api_settings: Settings
) -> None:
    url = f"postgresql://teddy:unused@127.0.0.1:{free_port()}/teddy"
    async with serve(create_app(make_settings(database_url=url))) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"] == _expected(api_settings, database=False)
    assert body["code"] == "not_ready"


async def test_not_ready_when_the_broker_is_unreachable(
    make_settings: Callable[..., Settings], api_settings: Settings
) -> None:
    async with serve(create_app(make_settings(mqtt_port=free_port()))) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == _expected(api_settings, broker=False)
