"""``teddyhub toy say`` against a real ``teddyhub up`` with no key: the unpaired toy is asked to
get a grown-up, the paired one gets a real spoken reply saved as a playable WAV."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.voice.audio import wav_to_pcm
from tests.e2e.conftest import E2E_TEST_TIMEOUT_S, TOY_TIMEOUT_S, UpRun, running_up
from tests.fakes.openai_server import FakeOpenAIServer
from tests.timing import EVENT_TIMEOUT_S

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TEST_TIMEOUT_S)]
PASSWORD = "correct horse battery staple"
TOY_WAITS = ("--timeout", str(TOY_TIMEOUT_S))  # for the hub's answer, on any machine


def pair_with_code(up: UpRun, device_id: str) -> None:
    """Register a parent, add a child with consent, pair ``device_id`` with its spoken code."""
    api = up.api_url
    credentials = {"email": "ada@example.com", "password": PASSWORD}
    assert up.http.post(f"{api}/api/v1/auth/register", json=credentials).status_code == 201
    token = up.http.post(f"{api}/api/v1/auth/login", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    child = up.http.post(
        f"{api}/api/v1/children",
        headers=headers,
        json={
            "first_name": "Mia",
            "consent": {
                "agreed": True,
                "method": "in_app_checkbox",
                "notice_version": "2025-01",
                "cloud_ai": False,
            },
        },
    ).json()
    spoken = up.teddyhub("toy", "pair", "--device-id", device_id, *TOY_WAITS)
    assert spoken.returncode == 0, spoken.stderr
    match = re.search(r"(\d{3} \d{3})", spoken.stdout)
    assert match is not None, spoken.stdout
    paired = up.http.post(
        f"{api}/api/v1/pair/code",
        headers=headers,
        json={"code": match.group(1), "child_id": child["id"]},
    )
    assert paired.status_code == 200, paired.text


def test_toy_say_unpaired_then_paired(up: UpRun, tmp_path: Path) -> None:
    unpaired_wav = tmp_path / "unpaired.wav"
    result = up.teddyhub(
        "toy", "say", "hello", "--device-id", "toy-0101", "--out", str(unpaired_wav), *TOY_WAITS
    )
    assert result.returncode == 0, result.stderr
    assert "ask a grown-up to set me up" in result.stdout
    assert "(ended: setup_needed)" in result.stdout
    pcm, rate = wav_to_pcm(unpaired_wav.read_bytes())
    assert len(pcm) / (2 * rate) > 1.0  # a spoken sentence, not a click

    pair_with_code(up, "toy-0101")
    reply_wav = tmp_path / "reply.wav"
    result = up.teddyhub(
        "toy",
        "say",
        "what is your name",
        *("--device-id", "toy-0101", "--out", str(reply_wav), *TOY_WAITS),
    )
    assert result.returncode == 0, result.stderr
    assert "toy says: I'm Teddy" in result.stdout
    assert "(ended: done)" in result.stdout
    assert re.search(r"first audio after \d+ ms", result.stdout)
    pcm, rate = wav_to_pcm(reply_wav.read_bytes())
    assert rate == 16_000 and len(pcm) / (2 * rate) > 1.0

    opus = up.teddyhub(
        "toy", "say", "hello", "--device-id", "toy-0101", "--codec", "opus", *TOY_WAITS
    )
    assert opus.returncode == 0, opus.stderr
    assert "Hello, Mia" in opus.stdout


@contextlib.contextmanager
def fake_openai_in_a_thread() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI-compatible server on its own event loop, for a test that is not async."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    server = FakeOpenAIServer()
    server.config.reply = "Hello from the cloud. Bears love honey."

    async def serve() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        async with server.serve():
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(EVENT_TIMEOUT_S), "the fake server did not start"
    try:
        yield server
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(EVENT_TIMEOUT_S)


def test_toy_say_uses_an_openai_compatible_server_when_configured(tmp_path: Path) -> None:
    with (
        fake_openai_in_a_thread() as fake,
        running_up(tmp_path / "data", tmp_path / "up.log", OPENAI_BASE_URL=fake.base_url) as up,
    ):
        api = up.api_url
        credentials = {"email": "ada@example.com", "password": PASSWORD}
        assert up.http.post(f"{api}/api/v1/auth/register", json=credentials).status_code == 201
        token = up.http.post(f"{api}/api/v1/auth/login", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        consent = {
            "agreed": True,
            "method": "in_app_checkbox",
            "notice_version": "2025-01",
            "cloud_ai": True,
        }
        child = up.http.post(
            f"{api}/api/v1/children",
            headers=headers,
            json={"first_name": "Mia", "consent": consent},
        ).json()
        account = up.http.get(f"{api}/api/v1/auth/me", headers=headers).json()["id"]
        proof = up.teddyhub("toy", "claim-proof", "--account", account, "--device-id", "toy-0202")
        claimed = up.http.post(
            f"{api}/api/v1/pair/claim",
            headers=headers,
            json={**json.loads(proof.stdout), "child_id": child["id"]},
        )
        assert claimed.status_code == 200, claimed.text

        result = up.teddyhub("toy", "say", "hello", "--device-id", "toy-0202", *TOY_WAITS)

    assert result.returncode == 0, result.stderr
    assert "toy says: Hello from the cloud. Bears love honey." in result.stdout
    assert fake.received("transcriptions") and fake.received("chat")
