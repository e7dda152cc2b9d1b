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
    """aiomqtt's incoming queue, with a non-blocking batch take for the hub's hot path.

    ``read_ahead`` bounds the reading ahead of a client built with this inbox: at most that many
    packets per wake-up, and none beyond the first while the inbox already holds that many.
    """

    def __init__(self, maxsize: int = 0, read_ahead: int = 256) -> None:
        super().__init__(maxsize)
        self.read_ahead = read_ahead

    def take_now(self, limit: int) -> list[aiomqtt.Message]:
        """Up to ``limit`` messages that are already waiting, without yielding."""
        taken: list[aiomqtt.Message] = []
        while len(taken) < limit and not self.empty():
            taken.append(self.get_nowait())
        return taken


class _ReadAheadClient(aiomqtt.Client):
    """aiomqtt's client, reading on after the first packet while more arrive (see the module).

    The first read of each wake-up is aiomqtt's own, so nothing changes when the inbox is full
    (aiomqtt counts and discards, as before) or when a packet is not a message. Only
    ``_on_socket_open`` is replaced, and it calls aiomqtt's first: aiomqtt is pinned below 3.
    """

    def __init__(self, *args: Any, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = inbox

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)
        inbox = self._inbox
        limit = inbox.read_ahead

        def read() -> None:
            try:
                size = inbox.qsize()
                client.loop_read()
                for _ in range(limit - 1):
                    grown = inbox.qsize()
                    # No new message: the socket is drained (or the packet was not a message).
                    if grown == size or grown >= limit:
                        return
                    size = grown
                    client.loop_read()
            except Exception as error:  # noqa: BLE001 - aiomqtt's reader does the same
                if not self._disconnected.done():
                    self._disconnected.set_exception(error)

        # paho calls this from the connecting executor thread; aiomqtt has just scheduled its
        # own reader the same way, so this one replaces it.
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), read)


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
    return client_type(
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
