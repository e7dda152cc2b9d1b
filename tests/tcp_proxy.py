"""A small asyncio TCP proxy that tests put between a client and a real service.

It lets a test make a shared service (Redis) unreachable for one client without touching the
service itself: :meth:`TcpProxy.cut` resets every open connection and resets each new one as
soon as it is accepted, :meth:`TcpProxy.restore` forwards again.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    """Forwards connections on a free port of 127.0.0.1 to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refusing = False
        self.accepted = 0
        self.refused = 0

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def cut(self) -> None:
        """Reset every open connection and every new one until :meth:`restore`."""
        self._refusing = True
        for link in list(self._links):
            _abort(*link)

    def restore(self) -> None:
        """Forward new connections again."""
        self._refusing = False

    async def close(self) -> None:
        """Stop listening, reset every connection and wait for the forwarding tasks."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._refusing:
            self.refused += 1
            _abort(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            self.refused += 1
            _abort(writer)
            return
        self.accepted += 1
        link = (writer, upstream_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                _pump(reader, upstream_writer, link), _pump(upstream_reader, writer, link)
            )
        finally:
            self._links.discard(link)
            _abort(*link)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
) -> None:
    """Copy bytes one way until either side ends; then end the other direction too."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    _abort(*link)


def _abort(*writers: asyncio.StreamWriter) -> None:
    for writer in writers:
        writer.transport.abort()
        writer.close()
