"""The hub process's own HTTP endpoints: ``/health``, ``/ready`` and ``/metrics``.

Served by uvicorn inside the hub's event loop (no thread), on ``TEDDY_HUB_STATUS_PORT``, so an
orchestrator can probe each hub replica and Prometheus can scrape it.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ReadinessCheck = Callable[[], dict[str, bool]]


def status_app(registry: CollectorRegistry, readiness: ReadinessCheck) -> Starlette:
    """An ASGI app answering liveness, readiness (with the failing parts) and metrics."""

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        checks = readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
        ]
    )
