"""A fake OpenAI-compatible server: real HTTP on a free port of the test's event loop.

It answers the four endpoints :mod:`hub.voice.openai_providers` uses, the way OpenAI does
(JSON bodies, SSE chat chunks, raw 24 kHz PCM16 speech from ``espeak-ng``), so the providers
are tested through the real SDK and its retries, timeouts and streaming. Per server, a
:class:`FakeOpenAIConfig` sets the answers, the latency before the first byte, the pause between
streamed chunks and a queue of injected failures per endpoint; :attr:`FakeOpenAIServer.requests`
logs what arrived (so a test can assert that nothing did).

Usage::

    async with FakeOpenAIServer().serve() as fake:
        settings = fake.settings_for(settings)  # OPENAI_BASE_URL pointing here
        ...
        assert fake.received("chat") == []
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import socket
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.settings import Settings

Endpoint = Literal["transcriptions", "chat", "speech", "moderations"]
ENDPOINTS: tuple[Endpoint, ...] = ("transcriptions", "chat", "speech", "moderations")
SPEECH_SAMPLE_RATE = 24_000
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


@dataclass(frozen=True)
class Failure:
    """One injected failure: an HTTP error ``status`` (optionally with ``Retry-After``), or a
    ``hang`` that never answers (until the client gives up and disconnects)."""

    status: int = 500
    retry_after_s: float | None = None
    hang: bool = False
    # A hang that ends when this is set: then answered with ``status``.
    until: asyncio.Event | None = None


HANG = Failure(hang=True)


@dataclass
class RequestRecord:
    """One request the server received (failed ones included)."""

    endpoint: Endpoint
    body: dict[str, Any]  # JSON body, or form fields (the uploaded file's bytes under "file")
    at: float  # time.monotonic() on arrival
    status: int | None = None  # what it was answered; None while pending or for a hang
    sent_at: list[float] = field(default_factory=list)  # monotonic time of each streamed chunk
    hung_up: bool = False  # the client closed a held stream before it ended


@dataclass
class FakeOpenAIConfig:
    """What one fake server answers, and how slowly or badly."""

    transcript: str | Callable[[bytes], str] = "Hello Teddy, tell me a story."
    reply: str | Callable[[list[dict[str, Any]]], str] = (
        "Once upon a time a little bear found a shiny red balloon and floated over the hills."
    )
    reply_words_per_chunk: int = 1  # the reply streams as deltas of this many words
    chat_chunk_delay_s: float = 0.0
    speech_chunks: int = 4  # the speech streams in this many chunks (at least)
    speech_chunk_delay_s: float = 0.0
    # When set, chat and speech streams send all but their last chunk, then wait for this
    # event: a test sets it once the client has acted on the first chunks, which proves
    # streaming by order, however slow the machine.
    hold_last_chunk: asyncio.Event | None = None
    flagged_words: frozenset[str] = frozenset({"kill", "weapon"})
    flagged_category: str = "violence"
    latency_s: dict[Endpoint, float] = field(default_factory=dict)
    failures: dict[Endpoint, deque[Failure]] = field(
        default_factory=lambda: {endpoint: deque() for endpoint in ENDPOINTS}
    )

    def fail(self, endpoint: Endpoint, *failures: Failure | int) -> None:
        """Answer the next requests to ``endpoint`` with ``failures``, in order (an int is a
        status code)."""
        for failure in failures:
            self.failures[endpoint].append(
                Failure(status=failure) if isinstance(failure, int) else failure
            )

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def transcript_for(self, wav: bytes) -> str:
        return self.transcript(wav) if callable(self.transcript) else self.transcript


class _Server(uvicorn.Server):
    """uvicorn that leaves signals alone; ``should_exit`` stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FakeOpenAIServer:
    """The fake: a Starlette app, its config and its request log."""

    def __init__(self, config: FakeOpenAIConfig | None = None) -> None:
        self.config = config or FakeOpenAIConfig()
        self.requests: list[RequestRecord] = []
        self.base_url = ""
        self._closing = asyncio.Event()
        self._speech_cache: dict[str, bytes] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/moderations", self._moderations, methods=["POST"]),
            ]
        )

    def received(self, endpoint: Endpoint | None = None) -> list[RequestRecord]:
        """The requests received, all or to one endpoint."""
        return [r for r in self.requests if endpoint is None or r.endpoint == endpoint]

    def settings_for(self, settings: Settings, **overrides: Any) -> Settings:
        """``settings`` pointing the OpenAI-compatible providers at this server."""
        return settings.model_copy(
            update={"voice_provider": "openai", "openai_base_url": self.base_url, **overrides}
        )

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[FakeOpenAIServer]:
        """Serve on a free port of this loop until the block ends."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Accepted connections inherit it: without it small answers wait on Nagle's
            # algorithm and every request looks ~40 ms slower than the hub makes it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind(("127.0.0.1", 0))
            config = uvicorn.Config(
                self.app,
                log_config=None,
                access_log=False,
                lifespan="off",
                ws="none",
                timeout_graceful_shutdown=2,
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    if task.done():
                        task.result()
                        raise RuntimeError("uvicorn stopped before it started")
                    await asyncio.sleep(0.01)
                self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
                yield self
            finally:
                self._closing.set()  # releases hanging requests
                server.should_exit = True
                await task

    # --- the common part of every endpoint ----------------------------------------------

    async def _begin(
        self, endpoint: Endpoint, request: Request, body: dict[str, Any]
    ) -> tuple[RequestRecord, Response | None]:
        """Log the request, wait its latency and play an injected failure if one is queued."""
        record = RequestRecord(endpoint, body, time.monotonic())
        self.requests.append(record)
        queue = self.config.failures[endpoint]
        failure = queue.popleft() if queue else None
        if failure is not None and failure.hang:
            await self._hang(request, failure.until)
            if failure.until is None or not failure.until.is_set():
                return record, Response(status_code=504)  # nobody is listening any more
        latency = self.config.latency_s.get(endpoint, 0.0)
        if latency:
            await asyncio.sleep(latency)
        if failure is not None:
            record.status = failure.status
            return record, _error(failure)
        return record, None

    async def _held(self, request: Request, record: RequestRecord) -> bool:
        """Wait for ``config.hold_last_chunk`` (when set) or for the server to close; False
        (and ``record.hung_up``) when the client hung up meanwhile."""
        held = self.config.hold_last_chunk
        if held is None:
            return True
        try:
            while not held.is_set() and not self._closing.is_set():
                if await request.is_disconnected():
                    record.hung_up = True
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(held.wait(), 0.02)
        except asyncio.CancelledError:  # Starlette cancels a stream whose client went away
            record.hung_up = True
            raise
        return True

    async def _hang(self, request: Request, until: asyncio.Event | None) -> None:
        def over() -> bool:
            return self._closing.is_set() or (until is not None and until.is_set())

        while not over() and not await request.is_disconnected():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), 0.02)

    # --- endpoints -------------------------------------------------------------------------

    async def _transcriptions(self, request: Request) -> Response:
        form = _parse_multipart(request.headers.get("content-type", ""), await request.body())
        record, failed = await self._begin("transcriptions", request, form)
        if failed is not None:
            return failed
        audio = form.get("file", b"")
        text = self.config.transcript_for(audio if isinstance(audio, bytes) else b"")
        record.status = 200
        return JSONResponse({"text": text})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        record, failed = await self._begin("chat", request, body)
        if failed is not None:
            return failed
        reply = self.config.reply_for(body.get("messages", []))
        model = body.get("model", "fake")
        record.status = 200
        if not body.get("stream"):
            return JSONResponse(_completion(model, reply))
        deltas = _split_words(reply, self.config.reply_words_per_chunk)
        return StreamingResponse(
            self._chat_events(request, record, model, deltas), media_type="text/event-stream"
        )

    async def _chat_events(
        self, request: Request, record: RequestRecord, model: str, deltas: list[str]
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        yield event({"role": "assistant", "content": ""})
        for position, delta in enumerate(deltas):
            if position and self.config.chat_chunk_delay_s:
                await asyncio.sleep(self.config.chat_chunk_delay_s)
            if position == len(deltas) - 1 and not await self._held(request, record):
                return
            record.sent_at.append(time.monotonic())
            yield event({"content": delta})
        yield event({}, "stop")
        yield b"data: [DONE]\n\n"

    async def _speech(self, request: Request) -> Response:
        body = await request.json()
        record, failed = await self._begin("speech", request, body)
        if failed is not None:
            return failed
        if body.get("response_format") != "pcm":
            record.status = 400
            return _error(Failure(400), "this fake speaks response_format=pcm only")
        pcm = await self._speak(str(body.get("input", "")))
        record.status = 200
        return StreamingResponse(
            self._speech_chunks(request, record, pcm), media_type="application/octet-stream"
        )

    async def _speech_chunks(
        self, request: Request, record: RequestRecord, pcm: bytes
    ) -> AsyncIterator[bytes]:
        count = max(1, self.config.speech_chunks)
        size = max(2, math.ceil(len(pcm) / count / 2) * 2)
        starts = range(0, len(pcm), size)
        for position, start in enumerate(starts):
            if position and self.config.speech_chunk_delay_s:
                await asyncio.sleep(self.config.speech_chunk_delay_s)
            if position and position == len(starts) - 1 and not await self._held(request, record):
                return
            record.sent_at.append(time.monotonic())
            yield pcm[start : start + size]

    async def _speak(self, text: str) -> bytes:
        if text not in self._speech_cache:
            self._speech_cache[text] = await synthesize_pcm24k(text)
        return self._speech_cache[text]

    async def _moderations(self, request: Request) -> Response:
        body = await request.json()
        record, failed = await self._begin("moderations", request, body)
        if failed is not None:
            return failed
        inputs = body.get("input", "")
        texts = inputs if isinstance(inputs, list) else [inputs]
        record.status = 200
        return JSONResponse(
            {
                "id": "modr-fake",
                "model": body.get("model", "fake"),
                "results": [self._moderation(str(text)) for text in texts],
            }
        )

    def _moderation(self, text: str) -> dict[str, Any]:
        words = {word.strip(".,!?;:'\"").lower() for word in text.split()}
        flagged = bool(words & {word.lower() for word in self.config.flagged_words})
        categories = dict.fromkeys(MODERATION_CATEGORIES, False)
        if flagged:
            categories[self.config.flagged_category] = True
        return {
            "flagged": flagged,
            "categories": categories,
            "category_scores": {
                name: (0.97 if value else 0.001) for name, value in categories.items()
            },
            "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
        }


# --- helpers -------------------------------------------------------------------------------


def _error(failure: Failure, message: str = "injected failure") -> Response:
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(
        failure.status, "server_error"
    )
    headers = {}
    if failure.retry_after_s is not None:
        headers["retry-after-ms"] = str(round(failure.retry_after_s * 1000))
        headers["retry-after"] = str(math.ceil(failure.retry_after_s))
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status_code=failure.status,
        headers=headers,
    )


def _completion(model: str, reply: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _split_words(text: str, words_per_chunk: int) -> list[str]:
    """``text`` in deltas of ``words_per_chunk`` words, each with its trailing space, so that
    the deltas concatenate to ``text`` exactly."""
    tokens = text.split(" ")
    per = max(1, words_per_chunk)
    deltas = []
    for start in range(0, len(tokens), per):
        delta = " ".join(tokens[start : start + per])
        if start + per < len(tokens):
            delta += " "
        deltas.append(delta)
    return deltas


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a multipart/form-data body: text values as str, files as bytes
    (``<name>_filename`` and ``<name>_content_type`` alongside)."""
    boundary = ""
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ValueError("multipart body without a boundary")
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_parameters(headers.get("content-disposition", ""))
        name = disposition.get("name", "")
        if "filename" in disposition:
            fields[name] = content
            fields[f"{name}_filename"] = disposition["filename"]
            fields[f"{name}_content_type"] = headers.get("content-type", "")
        else:
            fields[name] = content.decode("utf-8")
    return fields


def _header_parameters(value: str) -> dict[str, str]:
    parameters = {}
    for item in value.split(";")[1:]:
        key, _, raw = item.strip().partition("=")
        parameters[key.lower()] = raw.strip('"')
    return parameters


async def synthesize_pcm24k(text: str) -> bytes:
    """``text`` spoken by ``espeak-ng`` as 24 kHz PCM16 mono (a tone per word without it)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return _tones(text)
    process = await asyncio.create_subprocess_exec(
        binary,
        "--stdout",
        "-v",
        "en-us",
        "--",
        text or " ",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    wav, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"espeak-ng failed with {process.returncode}")
    rate, samples = _read_streamed_wav(wav)
    return _resample(samples, rate, SPEECH_SAMPLE_RATE).astype("<i2").tobytes()


def _read_streamed_wav(wav: bytes) -> tuple[int, np.ndarray[Any, np.dtype[np.int16]]]:
    """Sample rate and samples of a mono PCM16 WAV whose sizes may be placeholders (espeak-ng
    writes to a pipe and cannot go back to fill them in)."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    position = 12
    rate = 0
    while position + 8 <= len(wav):
        chunk_id = wav[position : position + 4]
        size = struct.unpack_from("<I", wav, position + 4)[0]
        start = position + 8
        if chunk_id == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", wav, start)
            if channels != 1 or bits != 16:
                raise ValueError("expected mono PCM16")
        elif chunk_id == b"data":
            data = wav[start:]
            data = data[: len(data) - len(data) % 2]
            return rate, np.frombuffer(data, dtype="<i2")
        position = start + size + (size % 2)
    raise ValueError("WAV without data")


def _resample(
    samples: np.ndarray[Any, np.dtype[np.int16]], source_rate: int, target_rate: int
) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Linear interpolation: crude, and plenty for a fake."""
    if source_rate == target_rate or samples.size == 0:
        return samples
    count = round(samples.size * target_rate / source_rate)
    positions = np.arange(count) * (source_rate / target_rate)
    resampled = np.interp(positions, np.arange(samples.size), samples.astype(np.float64))
    clipped: np.ndarray[Any, np.dtype[np.float64]] = np.clip(np.round(resampled), -32768, 32767)
    return clipped.astype(np.int16)


def _tones(text: str) -> bytes:
    """A 440 Hz beep of 0.2 s per word, for machines without espeak-ng."""
    words = max(1, len(text.split()))
    t = np.arange(int(0.2 * SPEECH_SAMPLE_RATE * words)) / SPEECH_SAMPLE_RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
