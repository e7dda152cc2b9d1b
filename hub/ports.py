"""Binding listening sockets with errors that name the setting to change."""

from __future__ import annotations

import errno
import socket

from hub.errors import PortInUseError


def bind_listener(host: str, port: int, setting: str) -> socket.socket:
    """A bound, listening TCP socket on ``host:port``.

    Raises:
        PortInUseError: when the port is taken, naming ``setting`` (the variable that moves it).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(setting, host, port) from error
        raise
    sock.setblocking(False)
    return sock


def ensure_free(host: str, port: int, setting: str) -> None:
    """Raise ``PortInUseError`` now if ``host:port`` cannot be bound."""
    bind_listener(host, port, setting).close()
