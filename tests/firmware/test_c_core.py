"""The C protocol core (firmware/components/teddy_core) against the shared vector file.

Runs ``make -C firmware test``: the core and its test driver built with AddressSanitizer and
UndefinedBehaviorSanitizer, then every vector of docs/vectors/protocol-vectors.json. Without a C
compiler, make or the mbedTLS headers the test is skipped with the reason, except under
``CI=true``, where a missing tool fails the run (the convention of ``tests/services.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)
MIN_PASSED = 150
BUILD_TIMEOUT_S = 600  # a couple of seconds here, from a clean tree


def unavailable(reason: str) -> None:
    """Skip (or fail, under CI) because a build tool is missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true makes a missing tool a failure)")
    pytest.skip(reason)


def missing_tool() -> str | None:
    """Why the core cannot be built here, or None when it can."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return "no C compiler (cc) on PATH"
    if shutil.which("make") is None:
        return "make is not installed"
    probe = subprocess.run(
        [compiler, "-E", "-x", "c", "-"],
        input="#include <mbedtls/md.h>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return "the mbedTLS headers are missing (Debian: libmbedtls-dev)"
    return None


# Above the build's own limit, so that a slow build fails with make's output, not pytest's
# default timeout (pyproject), which is shorter than BUILD_TIMEOUT_S.
@pytest.mark.timeout(BUILD_TIMEOUT_S + 60)
def test_c_core_passes_every_vector() -> None:
    reason = missing_tool()
    if reason is not None:
        unavailable(reason)
    make = shutil.which("make")
    assert make is not None
    result = subprocess.run(
        [make, "-C", "firmware", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summaries = SUMMARY.findall(result.stdout)
    assert summaries, f"no 'N passed, M failed' line in:\n{output[-6000:]}"
    passed, failed = (int(count) for count in summaries[-1])
    assert failed == 0, output[-6000:]
    assert passed > MIN_PASSED, f"only {passed} cases passed"
