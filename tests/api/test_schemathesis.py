"""Schemathesis against the API's own OpenAPI schema: no request makes a server error.

The app runs with its lifespan under uvicorn on a free port of this test's event loop, as in
production. A signed-in parent with one consented child gives id-taking routes something real;
then every operation is fuzzed with schema-valid and schema-violating requests and with
schemathesis's boundary cases, the admin routes again as an admin, and a stateful run follows
the links schemathesis infers between operations (a created child's id into the routes that take
one). Hypothesis drives the requests from a worker thread (schemathesis is synchronous) while the
loop serves them.

Every call must not be a server error, must answer with a documented status and media type
(errors are problem details, documented as ``4XX``/``5XX`` ``application/problem+json`` by
``api.openapi``), and must match the documented response schema. Nothing is excluded: logout
needs a refresh token of the caller's and the password change the caller's password, neither
of which the fuzzer can produce, so no generated call ends the test's own session.

Left out: the check that every schema-valid request is accepted. The schema does not state
every rule (password strength, a birth year a child can have), so such requests are refused
with 422 on purpose.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from hub.settings import Settings
from tests.api.conftest import CHEAP_HASHER
from tests.api.parents import add_child, make_admin, register
from tests.timing import EVENT_TIMEOUT_S

UNLIMITED = "100000/minute"  # no 429 may stand in for the answer that would have come
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Budgets: about 2,000 calls a stack, some 15 s; `make test` runs both stacks.
PARENT_EXAMPLES = 700  # stateless calls as the parent, over every operation
ADMIN_EXAMPLES = 300  # stateless calls as the admin, over the admin routes
STATEFUL_SCENARIOS = 60
STATEFUL_STEPS = 8
SEED = 20250101  # a fixed seed: `make test` replays the same requests every run
# The budgets are counts, not seconds: a stack takes some 30 s on a busy laptop and ten times
# that on a slow runner, so pytest-timeout's default (pyproject) is raised for it, with margin.
FUZZ_TEST_TIMEOUT_S = 15 * EVENT_TIMEOUT_S


class _Server(uvicorn.Server):
    """uvicorn that leaves signals alone; ``should_exit`` stops it after lifespan shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan included) on a free port of this loop; yield its base URL."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise its error
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            await task


class Tally:
    """Calls made, by run, operation and status, for the report (shown on failure or with -s)."""

    def __init__(self) -> None:
        self.run = ""
        self.runs: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[tuple[str, int]] = collections.Counter()

    def record(self, case: schemathesis.Case[Any], response: Response) -> None:
        self.runs[self.run] += 1
        self.statuses[case.operation.label, response.status_code] += 1

    @property
    def total(self) -> int:
        return sum(self.runs.values())

    def __str__(self) -> str:
        runs = ", ".join(f"{name}: {count}" for name, count in self.runs.items())
        lines = [
            f"{count:5d}  {status}  {label}" for (label, status), count in self.statuses.items()
        ]
        return "\n".join(
            [f"{self.total} calls ({runs})", *sorted(lines, key=lambda line: line[7:])]
        )


def _settings(max_examples: int, **changes: Any) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # shrinking a server error is the owner's job
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        **changes,
    )


def _load(raw_schema: dict[str, Any], base_url: str, headers: dict[str, str]) -> Any:
    schema = schemathesis.openapi.from_dict(raw_schema)
    # Schemathesis gives up on a response after 10 s by default: a slow machine, not the app.
    schema.config.update(base_url=base_url, headers=headers, request_timeout=EVENT_TIMEOUT_S)
    return schema


def _case_strategy(schema: Any, child_id: str) -> st.SearchStrategy[schemathesis.Case[Any]]:
    """Valid and invalid requests to every operation; the real child's id half the time."""
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        if operation.path_parameters or operation.query or operation.body:
            strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        if "{child_id}" in operation.path:
            real = {"child_id": child_id}
            strategies.append(operation.as_strategy(path_parameters=real))
    return st.one_of(strategies)


def fuzz_stateless(
    strategy: st.SearchStrategy[schemathesis.Case[Any]], examples: int, tally: Tally
) -> None:
    @_settings(examples)
    @seed(SEED)
    @given(case=strategy)
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call()
        tally.record(case, response)
        case.validate_response(response, checks=CHECKS)

    run()


def fuzz_coverage(schema: Any, tally: Tally) -> None:
    """Schemathesis's boundary and type-violation cases of every operation, one call each."""
    failures: list[FailureGroup] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        generation = schema.config.generation_for(operation=operation)
        modes = list(GenerationMode)
        for case in schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=generation
        ):
            response = case.call()
            tally.record(case, response)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as failure:
                failures.append(failure)
    if failures:
        raise BaseExceptionGroup("coverage cases failed", failures)


def fuzz_stateful(schema: Any, tally: Tally) -> None:
    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(
            self, response: Response, case: schemathesis.Case[Any], **_: Any
        ) -> None:
            tally.record(case, response)
            case.validate_response(response, checks=CHECKS)

    run_state_machine_as_test(
        Machine,
        settings=_settings(
            STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, derandomize=True
        ),
    )


def fuzz(
    raw_schema: dict[str, Any],
    base_url: str,
    parent: dict[str, str],
    admin: dict[str, str],
    child_id: str,
) -> Tally:
    """Every run, even after another failed; then the failures of all together."""
    tally = Tally()
    as_parent = _load(raw_schema, base_url, parent)
    as_admin = _load(raw_schema, base_url, admin).include(tag="admin")
    runs: dict[str, Callable[[], None]] = {
        "stateless as parent": lambda: fuzz_stateless(
            _case_strategy(as_parent, child_id), PARENT_EXAMPLES, tally
        ),
        "stateless as admin": lambda: fuzz_stateless(
            _case_strategy(as_admin, child_id), ADMIN_EXAMPLES, tally
        ),
        "coverage as parent": lambda: fuzz_coverage(as_parent, tally),
        "stateful as parent": lambda: fuzz_stateful(as_parent, tally),
    }
    failures: list[BaseException] = []  # a FailureGroup is no Exception
    for name, run in runs.items():
        tally.run = name
        try:
            run()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # raised below, together
            exc.add_note(f"(in the {name} run)")
            failures.append(exc)
    print(tally)
    if failures:
        raise BaseExceptionGroup(f"schemathesis: {len(failures)} run(s) failed", failures)
    return tally


@pytest.mark.timeout(FUZZ_TEST_TIMEOUT_S)
async def test_no_server_error(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit=UNLIMITED, pair_code_guess_limit=UNLIMITED)
    app = create_app(settings)
    app.state.password_hasher = CHEAP_HASHER
    async with served(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=EVENT_TIMEOUT_S) as client:
            parent = await register(client, "fuzz-parent@example.com")
            child_id = await add_child(client, parent)
            admin = await register(client, "fuzz-admin@example.com")
            await make_admin(app, admin)
        tally = await asyncio.to_thread(
            fuzz, app.openapi(), base_url, parent.headers, admin.headers, child_id
        )
    assert tally.total > PARENT_EXAMPLES
