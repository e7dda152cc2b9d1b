"""Pure ASGI middleware at the API's edge: security headers and request metrics."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Interactive docs load their scripts and styles; every other answer is data and may load
# nothing, be framed by nothing, and leak no referrer.
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_HSTS = "max-age=63072000; includeSubDomains"
UNMATCHED_ROUTE = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class SecurityHeadersMiddleware:
    """Add nosniff, frame denial, no referrer, a strict CSP (not on docs) and HSTS (production).

    HSTS only in production: a development server on plain HTTP must not pin browsers to HTTPS
    for ``localhost``.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.hsts = hsts
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope["path"] in self.docs_paths

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if not is_docs:
                    headers.setdefault("Content-Security-Policy", _API_CSP)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", _HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class MetricsMiddleware:
    """Count requests and time them by route template, method and status.

    The label is the matched route's template (``/api/v1/children/{child_id}``), never the raw
    path, so ids and probing scanners cannot grow the series without bound.
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "teddy_api_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "teddy_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or UNMATCHED_ROUTE
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.requests.labels(template, method, str(status)).inc()
            self.latency.labels(template, method).observe(time.perf_counter() - started)
