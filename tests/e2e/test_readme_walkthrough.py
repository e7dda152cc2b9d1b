"""The README's shell walkthrough, run as written against a real ``teddyhub up``.

The block between ``<!-- walkthrough -->`` and the end of its code fence is extracted and run
with bash (errors fatal), so the README cannot drift from what the API and the simulated toy do.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import COMMAND_TIMEOUT_S, E2E_TEST_TIMEOUT_S, TEDDYHUB, UpRun

pytestmark = pytest.mark.timeout(E2E_TEST_TIMEOUT_S)
BASH = shutil.which("bash") or "/bin/bash"
# The walkthrough is a dozen commands, each a Python start or an API call: seconds here.
WALKTHROUGH_TIMEOUT_S = COMMAND_TIMEOUT_S
README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- walkthrough -->\n```sh\n(?P<script>.*?)\n```", re.DOTALL)


def walkthrough() -> str:
    match = BLOCK.search(README.read_text(encoding="utf-8"))
    assert match is not None, "the README has no walkthrough block"
    return match.group("script")


def json_documents(text: str) -> list[object]:
    """The JSON documents jq printed, in order (other lines are the simulator's)."""
    decoder = json.JSONDecoder()
    documents: list[object] = []
    position = 0
    while True:
        start = min(
            (i for i in (text.find("{", position), text.find("[", position)) if i >= 0), default=-1
        )
        if start < 0:
            return documents
        document, position = decoder.raw_decode(text, start)
        documents.append(document)


def test_the_readme_walkthrough_works_when_pasted(up: UpRun) -> None:
    env = {**up.env, "API": up.api_url, "TEDDYHUB": TEDDYHUB}
    result = subprocess.run(
        [BASH, "-euo", "pipefail", "-c", walkthrough()],
        env=env,
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=WALKTHROUGH_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    registered, claimed, coded, listed, unpaired = json_documents(result.stdout)
    assert isinstance(registered, dict) and registered["role"] == "parent"
    assert isinstance(claimed, dict) and claimed["device_id"] == "toy-0001"
    assert isinstance(coded, dict) and coded["device_id"] == "toy-0002"
    assert coded["child_id"] == claimed["child_id"]
    assert isinstance(listed, list)
    assert [device["device_id"] for device in listed] == ["toy-0001", "toy-0002"]
    assert unpaired == {"device_id": "toy-0002", "toy_notified": True}
    assert "toy-0002 received unpaired" in result.stdout
