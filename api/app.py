"""The FastAPI application: health, readiness and metrics so far.

Accounts, children, consent, pairing and device routes plug into this app (see the README's
roadmap); the probes are here first because ``teddyhub up`` waits on ``/health``.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from hub.settings import Settings, load_settings


async def _broker_reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; ``settings`` defaults to the environment's."""
    settings = settings or load_settings()
    docs = not settings.is_production
    app = FastAPI(
        title="Teddy Hub API",
        version="0.1.0",
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    registry = CollectorRegistry()
    probes = Counter("teddy_api_probes", "Readiness probes answered.", registry=registry)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        """Readiness: the services this API depends on answer."""
        probes.inc()
        checks = {"broker": await _broker_reachable(settings.mqtt_host, settings.mqtt_port)}
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
