"""The ``broker`` fixture: every test here runs against each broker that is available.

"embedded" (amqtt, hardened, in this process) always; "mosquitto" when the module
``tests.broker.mosquitto_broker`` exists and exposes ``mosquitto_broker(tmp_path, **overrides)``
with the contract of :func:`tests.broker.brokers.embedded_broker`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.broker.brokers import BrokerUnderTest, embedded_broker
from tests.broker.clients import Clients, paho_clients

MOSQUITTO_MODULE = "tests.broker.mosquitto_broker"
BrokerFactory = Callable[..., AbstractAsyncContextManager[BrokerUnderTest]]


def _mosquitto_available() -> bool:
    return importlib.util.find_spec(MOSQUITTO_MODULE) is not None


def _factory(name: str) -> BrokerFactory:
    if name == "embedded":
        return embedded_broker
    module = importlib.import_module(MOSQUITTO_MODULE)
    factory: BrokerFactory = module.mosquitto_broker
    return factory


BROKER_PARAMS = [
    pytest.param("embedded", id="embedded"),
    pytest.param(
        "mosquitto",
        id="mosquitto",
        marks=pytest.mark.skipif(
            not _mosquitto_available(), reason=f"{MOSQUITTO_MODULE} does not exist (yet)"
        ),
    ),
]


@pytest.fixture
def broker_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings a test needs of its broker: parametrize it ``indirect=True`` to set them."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return overrides


@pytest.fixture(params=BROKER_PARAMS)
async def broker(
    request: pytest.FixtureRequest, tmp_path: Path, broker_overrides: dict[str, Any]
) -> AsyncIterator[BrokerUnderTest]:
    """A running broker of each kind available."""
    async with _factory(request.param)(tmp_path, **broker_overrides) as running:
        yield running


@pytest.fixture
async def embedded(
    tmp_path: Path, broker_overrides: dict[str, Any]
) -> AsyncIterator[BrokerUnderTest]:
    """The embedded broker only (for amqtt's own hardening)."""
    async with embedded_broker(tmp_path, **broker_overrides) as running:
        yield running


@pytest.fixture
async def clients(broker: BrokerUnderTest) -> AsyncIterator[Clients]:
    """paho clients of ``broker``, closed after the test."""
    async with paho_clients(broker) as opened:
        yield opened
