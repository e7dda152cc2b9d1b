"""Finding the real services the integration tests use.

Order of preference: the service on localhost (the development machines and CI run PostgreSQL,
Redis and Mosquitto there); else a container through testcontainers when a Docker engine
answers; else the test is skipped with the reason, except under ``CI=true``, where a missing
service fails the run instead of hiding it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Endpoint:
    """Where a service answers."""

    host: str
    port: int


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_engine_available() -> bool:
    """True when a Docker engine answers its ping (the client alone is not enough).

    Asked over the engine's socket directly: the docker library leaks the socket of a failed
    connection, which the test run's warnings-as-errors would report against a test.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(host.removeprefix("unix://"))
                sock.sendall(request)
                return b" 200 " in sock.recv(1024)
        if host.startswith("tcp://"):
            address, _, port = host.removeprefix("tcp://").rpartition(":")
            with socket.create_connection((address, int(port)), timeout=2) as sock:
                sock.sendall(request)
                return b" 200 " in sock.recv(1024)
    except (OSError, ValueError):
        return False
    return False


def unavailable(service: str, endpoint: Endpoint) -> None:
    """Skip (or fail, under CI) because ``service`` is not reachable."""
    reason = (
        f"{service} is not reachable on {endpoint.host}:{endpoint.port} and no Docker engine "
        "answers for testcontainers"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true makes a missing service a failure)")
    pytest.skip(reason)


@contextlib.contextmanager
def redis_endpoint() -> Iterator[Endpoint]:
    """The local Redis, or a container."""
    local = Endpoint(
        os.environ.get("TEST_REDIS_HOST", "127.0.0.1"),
        int(os.environ.get("TEST_REDIS_PORT", "6379")),
    )
    if port_open(local.host, local.port):
        yield local
        return
    if not docker_engine_available():
        unavailable("Redis", local)
    from testcontainers.redis import RedisContainer  # noqa: PLC0415

    with RedisContainer("redis:7-alpine") as container:
        yield Endpoint(container.get_container_host_ip(), int(container.get_exposed_port(6379)))


@contextlib.contextmanager
def mosquitto_endpoint() -> Iterator[Endpoint]:
    """The local Mosquitto, or a container."""
    local = Endpoint(
        os.environ.get("TEST_MQTT_HOST", "127.0.0.1"), int(os.environ.get("TEST_MQTT_PORT", "1883"))
    )
    if port_open(local.host, local.port):
        yield local
        return
    if not docker_engine_available():
        unavailable("Mosquitto", local)
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415

    container = (
        DockerContainer("eclipse-mosquitto:2")
        .with_exposed_ports(1883)
        .with_command("mosquitto -c /mosquitto-no-auth.conf")
    )
    with container:
        wait_for_logs(container, "running")
        yield Endpoint(container.get_container_host_ip(), int(container.get_exposed_port(1883)))
