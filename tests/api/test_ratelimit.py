"""Rate limits: memory storage, the real local Redis, and Redis unreachable (fail closed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI

from api.app import create_app
from api.ratelimit import AccountLimit, rate_limited
from hub.settings import Settings
from tests.api.conftest import serve
from tests.services import free_port

LIMIT = 3


def limited_app(settings: Settings) -> FastAPI:
    """The app with test-only routes behind the rate-limit dependency."""
    app = create_app(settings)

    async def by_ip() -> dict[str, str]:
        return {"status": "ok"}

    async def by_account(
        account: str,
        account_limit: Annotated[AccountLimit, Depends(rate_limited("login", per_account=True))],
    ) -> dict[str, str]:
        await account_limit(account)
        return {"status": "ok"}

    app.add_api_route("/test/limited", by_ip, dependencies=[Depends(rate_limited("test"))])
    app.add_api_route("/test/account", by_account)
    return app


async def assert_limited_after(client: httpx.AsyncClient, url: str, allowed: int) -> None:
    for _ in range(allowed):
        assert (await client.get(url)).status_code == 200
    response = await client.get(url)
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60


async def test_memory_limit_answers_429_with_retry_after(
    make_settings: Callable[..., Settings],
) -> None:
    app = limited_app(make_settings(rate_limit=f"{LIMIT}/minute"))
    async with serve(app) as client:
        await assert_limited_after(client, "/test/limited", LIMIT)
        # Unlimited routes and other clients are not affected.
        assert (await client.get("/health")).status_code == 200
    async with serve(app, client_host="10.0.0.2") as other:
        assert (await other.get("/test/limited")).status_code == 200


async def test_per_account_limit_spans_client_addresses(
    make_settings: Callable[..., Settings],
) -> None:
    app = limited_app(make_settings(rate_limit=f"{LIMIT}/minute"))
    async with app.router.lifespan_context(app):
        for number in range(LIMIT):
            transport = httpx.ASGITransport(app=app, client=(f"10.0.1.{number}", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/test/account", params={"account": "A@x.org"})
                assert response.status_code == 200
        transport = httpx.ASGITransport(app=app, client=("10.0.2.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # The account key is compared case-insensitively.
            response = await client.get("/test/account", params={"account": "a@X.org"})
            assert response.status_code == 429
            assert "retry-after" in response.headers
            response = await client.get("/test/account", params={"account": "b@x.org"})
            assert response.status_code == 200


async def test_forwarded_for_is_ignored_unless_trusted(
    make_settings: Callable[..., Settings],
) -> None:
    app = limited_app(make_settings(rate_limit="1/minute"))
    async with serve(app) as client:
        first = await client.get("/test/limited", headers={"X-Forwarded-For": "1.1.1.1"})
        assert first.status_code == 200
        spoofed = await client.get("/test/limited", headers={"X-Forwarded-For": "2.2.2.2"})
        assert spoofed.status_code == 429

    trusted = limited_app(make_settings(rate_limit="1/minute", trust_proxy_headers=True))
    async with serve(trusted) as client:
        # The proxy appends the real address last; what the client wrote before it is ignored.
        first = await client.get("/test/limited", headers={"X-Forwarded-For": "9.9.9.9, 1.1.1.1"})
        assert first.status_code == 200
        same = await client.get("/test/limited", headers={"X-Forwarded-For": "8.8.8.8, 1.1.1.1"})
        assert same.status_code == 429
        other = await client.get("/test/limited", headers={"X-Forwarded-For": "2.2.2.2"})
        assert other.status_code == 200


@pytest.mark.integration
async def test_redis_limit_answers_429_with_retry_after(
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(
        rate_limit=f"{LIMIT}/minute", redis_url=redis_url, redis_key_prefix=redis_prefix
    )
    async with serve(limited_app(settings)) as client:
        await assert_limited_after(client, "/test/limited", LIMIT)
        ready = await client.get("/ready")
        assert ready.json()["checks"]["redis"] is True
    keys = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert keys, "the limit was not counted under the configured key prefix"
    # A second app (another replica) shares the count.
    async with serve(limited_app(settings)) as replica:
        assert (await replica.get("/test/limited")).status_code == 429


@pytest.mark.integration
async def test_redis_unreachable_fails_closed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve(limited_app(settings)) as client:
        response = await client.get("/test/limited")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "rate_limit_unavailable"
        assert (await client.get("/health")).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] is False
