"""The ``fake_openai`` fixture: a :class:`FakeOpenAIServer` serving for one test.

Import it where it is needed::

    from tests.fakes.fixtures import fake_openai  # noqa: F401
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fakes.openai_server import FakeOpenAIServer


@pytest_asyncio.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server on a free port; ``.base_url`` ends in ``/v1``,
    ``.config`` sets its answers and failures, ``.requests`` logs what it received."""
    async with FakeOpenAIServer().serve() as server:
        yield server
