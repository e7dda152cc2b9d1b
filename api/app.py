"""The FastAPI application: its edges (errors, CORS, headers, rate limits) and the probes.

Accounts, children, consent, pairing and device routes plug into this app (see the README's
roadmap). Built by :func:`create_app`; the lifespan owns the database engine and the Redis
pool, which routes reach through ``request.app.state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus

import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.middleware import MetricsMiddleware, SecurityHeadersMiddleware
from api.openapi import install_problem_openapi
from api.problems import UnexpectedErrorMiddleware, install_problem_handlers, problem_response
from api.ratelimit import REDIS_TIMEOUT_S, RateLimiter, parse_limit
from api.routes import admin, auth, children, devices, esp32, history, pairing
from hub.db.engine import create_engine_for, database_url, is_sqlite, session_factory
from hub.db.migrate import upgrade
from hub.errors import ConfigError
from hub.settings import Settings, load_settings

# The parent app may keep its refresh token in a cookie; with credentials allowed, browsers
# forbid (and we refuse) the "*" origin.
CORS_ALLOW_CREDENTIALS = True
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")
READY_TIMEOUT_S = 2.0
logger = logging.getLogger(__name__)


async def _broker_reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _database_answers(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        logger.warning("readiness: database did not answer", exc_info=True)
        return False
    return True


async def _redis_answers(pool: aioredis.ConnectionPool) -> bool:
    client = aioredis.Redis(connection_pool=pool)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            return bool(await client.ping())
    except (aioredis.RedisError, OSError, TimeoutError):
        return False


def check_cors(settings: Settings) -> None:
    """Refuse the wildcard origin while credentials are allowed.

    Raises:
        ConfigError: naming TEDDY_CORS_ORIGINS.
    """
    if CORS_ALLOW_CREDENTIALS and "*" in settings.cors_origins:
        raise ConfigError(
            'TEDDY_CORS_ORIGINS must list origins, not "*": the API allows credentials'
        )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine_for(settings)
    url = database_url(settings)
    if not settings.is_production and is_sqlite(url):
        # The embedded database migrates itself; production runs `teddyhub db upgrade`.
        await upgrade(url)
    pool = (
        aioredis.ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        if settings.redis_url
        else None
    )
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.redis_pool = pool
    app.state.rate_limiter = RateLimiter.from_settings(settings, pool)
    try:
        yield
    finally:
        if pool is not None:
            await pool.aclose()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; ``settings`` defaults to the environment's.

    Raises:
        ConfigError: for CORS origins or a rate limit that must not be used.
    """
    settings = settings or load_settings()
    check_cors(settings)
    # A bad limit stops startup, not the first login.
    parse_limit(settings.rate_limit)
    parse_limit(settings.pair_code_guess_limit, "TEDDY_PAIR_CODE_GUESS_LIMIT")
    docs = not settings.is_production
    app = FastAPI(
        title="Teddy Hub API",
        version="0.1.0",
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    registry = CollectorRegistry()
    install_problem_handlers(app)
    install_problem_openapi(app)
    # Added innermost first: unexpected errors become 500s that still get CORS and security
    # headers and are counted.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=CORS_ALLOW_CREDENTIALS,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts=settings.is_production,
        docs_paths=DOCS_PATHS if docs else (),
    )
    app.add_middleware(MetricsMiddleware, registry=registry)

    app.include_router(auth.router)
    app.include_router(children.router)
    app.include_router(history.router)
    app.include_router(pairing.router)
    app.include_router(devices.router)
    app.include_router(admin.router)
    app.include_router(esp32.public_router)
    app.include_router(esp32.private_router)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    async def ready(request: Request) -> JSONResponse:
        """Readiness: the database, Redis (when configured) and the broker answer."""
        state = request.app.state
        broker = settings.broker_address()
        checks = {
            "database": await _database_answers(state.engine),
            "broker": await _broker_reachable(broker.host, broker.port),
        }
        if state.redis_pool is not None:
            checks["redis"] = await _redis_answers(state.redis_pool)
        if all(checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        failed = ", ".join(name for name, ok in checks.items() if not ok)
        return problem_response(
            request.url.path,
            HTTPStatus.SERVICE_UNAVAILABLE,
            detail=f"not ready: {failed}",
            code="not_ready",
            checks=checks,
        )

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this API process."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
