"""How every Teddy Hub process opens an MQTT connection.

One place sets what all of them need: TCP_NODELAY (with Nagle's algorithm on, a QoS 1 round
trip waits ~40 ms for the delayed ACK), MQTT 3.1.1 (the embedded broker speaks nothing newer and
frames need no v5 properties) and credentials.

A client given an :class:`Inbox` also reads ahead. aiomqtt reads one packet each time the socket
wakes the event loop, so under load the hub's batches were only as large as the number of loop
turns one batch took (about 8 messages) and every message cost a turn of the loop; the full hub
path kept about half of aiomqtt's own receive rate (``python -m bench``). Reading on while
packets keep coming and the inbox is short of a batch fills the batches (255 of 256), which is
what the one-script-call nonce claim needs to pay off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho

NODELAY: tuple[int, int, int] = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and as whom to connect."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls_ca_file: Path | None = None

    def with_login(self, username: str | None, password: str | None) -> BrokerAddress:
        """The same broker, logged in as ``username``."""
        return dataclasses.replace(self, username=username, password=password)


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """Client TLS: the broker's certificate must chain to ``ca_file`` and name the host."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, with a batch take and backpressure for the hub's hot path.

    ``read_ahead`` bounds the reading ahead of a client built with this inbox: at most that many
    packets per wake-up, and none beyond the first while the inbox already holds that many.
    When the inbox is one message short of ``maxsize``, the client stops reading its socket
    (the broker keeps the rest, unacknowledged) until :meth:`take_now` makes room, so nothing
    the broker handed over is ever discarded for lack of space.
    """

    def __init__(self, maxsize: int = 0, read_ahead: int = 256) -> None:
        super().__init__(maxsize)
        self.read_ahead = read_ahead
        self._resume: Callable[[], None] | None = None

    @property
    def has_room(self) -> bool:
        """True while one more read (at most one message) cannot overflow the inbox."""
        return self.maxsize <= 0 or self.qsize() < self.maxsize - 1

    @property
    def is_paused(self) -> bool:
        """True while the client has stopped reading for lack of room."""
        return self._resume is not None

    def pause(self, resume: Callable[[], None]) -> None:
        """Called by the client when it stops reading; ``resume`` restarts it."""
        self._resume = resume

    def take_now(self, limit: int) -> list[aiomqtt.Message]:
        """Up to ``limit`` messages that are already waiting, without yielding."""
        taken: list[aiomqtt.Message] = []
        while len(taken) < limit and not self.empty():
            taken.append(self.get_nowait())
        if self._resume is not None and self.has_room:
            resume, self._resume = self._resume, None
            resume()
        return taken


class _ReadAheadClient(aiomqtt.Client):
    """aiomqtt's client, reading on while packets arrive and pausing when the inbox is full.

    Only ``_on_socket_open`` is replaced (aiomqtt is pinned below 3; tests/integration/
    test_read_ahead.py pins the behaviour). Like aiomqtt's reader it keeps reading while a TLS
    socket holds decrypted bytes, which the file descriptor would never signal again.
    """

    def __init__(self, *args: Any, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = inbox

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)
        inbox, loop, fileno = self._inbox, self._loop, sock.fileno()
        limit = inbox.read_ahead

        def tls_pending() -> bool:
            pending = getattr(sock, "pending", None)
            return pending is not None and pending() > 0

        def read() -> None:
            try:
                for _ in range(limit):
                    if not inbox.has_room:
                        loop.remove_reader(fileno)
                        inbox.pause(resume)
                        return
                    size = inbox.qsize()
                    client.loop_read()
                    if tls_pending():
                        continue
                    grown = inbox.qsize()
                    # No new message: the socket is drained (or the packet was not a message).
                    if grown == size or grown >= limit:
                        return
                if tls_pending():
                    loop.call_soon(read)  # the budget is spent; decrypted bytes are waiting
            except Exception as error:  # noqa: BLE001 - aiomqtt's reader does the same
                if not self._disconnected.done():
                    self._disconnected.set_exception(error)

        def resume() -> None:
            if sock.fileno() != fileno or self._disconnected.done():
                return  # this connection is gone; a new one reads for itself
            loop.add_reader(fileno, read)
            read()  # now: a TLS socket may hold bytes its descriptor will not signal

        # paho calls this from the connecting executor thread; aiomqtt has just scheduled its
        # own reader the same way, so this one replaces it.
        loop.call_soon_threadsafe(loop.add_reader, fileno, read)


PENDING_CALLS_WARNING = 2_000


def open_client(
    address: BrokerAddress,
    *,
    identifier: str | None = None,
    clean_session: bool = True,
    inbox: Inbox | None = None,
    keepalive: int = 30,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """An aiomqtt client (not yet connected: use it as ``async with``)."""
    options: dict[str, Any] = {}
    client_type: type[aiomqtt.Client] = aiomqtt.Client
    if inbox is not None:
        # aiomqtt builds its queue from a class; handing it a factory that returns our inbox
        # lets the hub drain a whole batch without one task per message.
        options["queue_type"] = cast(
            "type[asyncio.Queue[aiomqtt.Message]]", lambda maxsize=0: inbox
        )
        options["inbox"] = inbox
        client_type = _ReadAheadClient
    client = client_type(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=identifier,
        clean_session=clean_session,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=keepalive,
        timeout=timeout,
        socket_options=(NODELAY,),
        tls_context=tls_context(address.tls_ca_file) if address.tls_ca_file else None,
        **options,
    )
    # aiomqtt warns past 10 unacknowledged publishes; a hub speaking to many toys at once has
    # hundreds in flight by design (the broker's inflight limit paces them).
    client.pending_calls_threshold = PENDING_CALLS_WARNING
    return client
