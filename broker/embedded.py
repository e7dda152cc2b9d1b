"""Runs amqtt as Teddy Hub's development broker.

This is the embedded default only: device authentication, per-device ACLs and the hardening
amqtt lacks come with the broker issue, and until then the embedded broker refuses to run in
production mode. Operators use Mosquitto (``TEDDY_BROKER=external``).
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import structlog
from amqtt.broker import Broker

from hub.errors import ConfigError, PortInUseError
from hub.ports import ensure_free
from hub.settings import Settings

log = structlog.get_logger("broker")


def broker_config(settings: Settings) -> dict[str, Any]:
    """amqtt's configuration for the plain listener on ``TEDDY_BROKER_BIND:TEDDY_MQTT_PORT``."""
    return {
        "listeners": {
            "default": {
                "type": "tcp",
                "bind": f"{settings.broker_bind}:{settings.mqtt_port}",
                "max_connections": 10_000,
            },
        },
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def run_broker(settings: Settings) -> None:
    """Serve until cancelled.

    Raises:
        ConfigError: in production mode (the embedded broker does not authenticate toys yet).
        PortInUseError: when ``TEDDY_MQTT_PORT`` is taken.
    """
    if settings.is_production:
        raise ConfigError(
            "the embedded broker does not authenticate devices; in production set "
            "TEDDY_BROKER=external and run Mosquitto"
        )
    ensure_free(settings.broker_bind, settings.mqtt_port, "TEDDY_MQTT_PORT")
    broker = Broker(broker_config(settings))
    try:
        await broker.start()
    except Exception as error:
        if _is_address_in_use(error):
            raise PortInUseError(
                "TEDDY_MQTT_PORT", settings.broker_bind, settings.mqtt_port
            ) from error
        raise
    log.info("broker_listening", bind=settings.broker_bind, port=settings.mqtt_port)
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def _is_address_in_use(error: BaseException) -> bool:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError) and current.errno == errno.EADDRINUSE:
            return True
        current = current.__cause__ or current.__context__
    return False
