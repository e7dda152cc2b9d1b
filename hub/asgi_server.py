"""Serving an ASGI app with uvicorn inside an event loop this process already runs."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


class _InLoopServer(uvicorn.Server):
    """uvicorn that leaves signals to the process's own handlers (cancellation stops it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_asgi(app: Any, sock: socket.socket, *, factory: bool = False) -> None:
    """Serve ``app`` on the already bound ``sock`` until cancelled.

    ``app`` may be an import string, so the CLI can start the API without ``hub`` importing
    ``api``.
    """
    config = uvicorn.Config(
        app, factory=factory, log_config=None, access_log=False, lifespan="auto"
    )
    await _InLoopServer(config).serve(sockets=[sock])
