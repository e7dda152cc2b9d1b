"""How every Teddy Hub process opens an MQTT connection.

One place sets what all of them need: TCP_NODELAY (with Nagle's algorithm on, a QoS 1 round
trip waits ~40 ms for the delayed ACK), MQTT 3.1.1 (the embedded broker speaks nothing newer and
frames need no v5 properties) and credentials.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import cast

import aiomqtt

NODELAY: tuple[int, int, int] = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and as whom to connect."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, with a non-blocking batch take for the hub's hot path."""

    def take_now(self, limit: int) -> list[aiomqtt.Message]:
        """Up to ``limit`` messages that are already waiting, without yielding."""
        taken: list[aiomqtt.Message] = []
        while len(taken) < limit and not self.empty():
            taken.append(self.get_nowait())
        return taken


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
    queue_type = None
    if inbox is not None:
        # aiomqtt builds its queue from a class; handing it a factory that returns our inbox
        # lets the hub drain a whole batch without one task per message.
        queue_type = cast("type[asyncio.Queue[aiomqtt.Message]]", lambda maxsize=0: inbox)
    return aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=identifier,
        clean_session=clean_session,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=keepalive,
        timeout=timeout,
        queue_type=queue_type,
        socket_options=(NODELAY,),
    )
