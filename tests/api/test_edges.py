"""Security headers, CORS, problem details, docs and metrics at the API's edge."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, SecretStr

from api.app import create_app
from api.errors import Conflict
from hub.errors import ConfigError
from hub.settings import Settings
from tests.api.conftest import serve

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
ORIGIN = "https://aiteddybear.com"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    return body


def production(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "env": "production",
            "redis_url": None,
            "jwt_secret_key": SecretStr("p" * 48),
        }
    )


async def test_security_headers_without_hsts_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in response.headers


async def test_docs_page_is_served_without_the_api_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


async def test_production_sends_hsts_and_hides_docs(api_settings: Settings) -> None:
    async with serve(create_app(production(api_settings))) as client:
        health = await client.get("/health")
        assert health.headers["strict-transport-security"].startswith("max-age=")
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert_problem(await client.get(path), 404)


async def test_cors_preflight_allows_a_configured_origin_only(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(cors_origins=[ORIGIN]))
    async with serve(app) as client:
        request_headers = {"Access-Control-Request-Method": "POST"}
        allowed = await client.options("/health", headers={"Origin": ORIGIN, **request_headers})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert allowed.headers["access-control-allow-credentials"] == "true"

        other = "https://evil.example"
        refused = await client.options("/health", headers={"Origin": other, **request_headers})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        simple = await client.get("/health", headers={"Origin": other})
        assert "access-control-allow-origin" not in simple.headers


def test_wildcard_origin_with_credentials_is_refused_at_startup(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigError, match="TEDDY_CORS_ORIGINS"):
        create_app(make_settings(cors_origins=[ORIGIN, "*"]))


def test_bad_rate_limit_is_refused_at_startup(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="TEDDY_RATE_LIMIT"):
        create_app(make_settings(rate_limit="lots"))


def test_cors_origins_read_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEDDY_CORS_ORIGINS", f'["{ORIGIN}", "https://www.aiteddybear.com"]')
    assert Settings().cors_origins == [ORIGIN, "https://www.aiteddybear.com"]


async def test_not_found_and_method_not_allowed_are_problems(client: httpx.AsyncClient) -> None:
    missing = assert_problem(await client.get("/nothing/here"), 404)
    assert missing["type"] == "about:blank"
    assert missing["instance"] == "/nothing/here"
    not_allowed = await client.delete("/health")
    assert_problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET"


class Echo(BaseModel):
    name: str
    age: int


def add_test_routes(app: FastAPI) -> None:
    async def echo(body: Echo) -> Echo:
        return body

    async def conflict() -> None:
        raise Conflict("already bound")

    async def boom() -> None:
        raise RuntimeError("secret internals: dsn=postgresql://user:pw@db")

    app.add_api_route("/test/echo", echo, methods=["POST"])
    app.add_api_route("/test/conflict", conflict)
    app.add_api_route("/test/boom", boom)


async def test_validation_error_is_a_problem_with_field_errors(api_settings: Settings) -> None:
    app = create_app(api_settings)
    add_test_routes(app)
    async with serve(app) as client:
        response = await client.post("/test/echo", json={"name": "hunter2-secret", "age": "x"})
    body = assert_problem(response, 422)
    assert body["code"] == "validation_failed"
    assert body["errors"] == [
        {"loc": ["body", "age"], "msg": body["errors"][0]["msg"], "type": "int_parsing"}  # type: ignore[index]
    ]
    assert "hunter2-secret" not in response.text


async def test_domain_error_is_a_problem_with_its_code(api_settings: Settings) -> None:
    app = create_app(api_settings)
    add_test_routes(app)
    async with serve(app) as client:
        body = assert_problem(await client.get("/test/conflict"), 409)
    assert body["code"] == "conflict"
    assert body["type"] == "urn:teddyhub:problem:conflict"
    assert body["detail"] == "already bound"


async def test_unexpected_error_is_a_bare_500_logged_once(
    api_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api_settings)
    add_test_routes(app)
    async with serve(app, raise_app_exceptions=False) as client:
        response = await client.get("/test/boom")
    body = assert_problem(response, 500)
    assert body["detail"] == "Internal Server Error"
    assert "secret" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get("/no/such/path/12345")
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'teddy_api_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/no/such/path/12345" not in text
    assert "teddy_api_request_duration_seconds_bucket" in text
