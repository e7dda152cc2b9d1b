"""Reassembling an utterance from chunks that arrive at any replica, in any order.

With several hubs on a shared subscription, the ``listen_start``, ``audio`` chunks and
``listen_end`` of one utterance are spread over replicas and may overtake each other. Every
replica writes what it receives into one shared record (Redis; a dict in the embedded mode)
and the write that completes the record (every seq from 0 to ``chunks - 1`` present and the
end known) claims it atomically: exactly one replica gets the audio, in seq order, and the
record is deleted in the same step, so raw audio lives in the store only while the child is
still speaking. A record also ends when it grows past the length cap (``too_long``) or when
nothing arrived for ``utterance_timeout_s`` (``expire``, claimed the same way, so the toy
hears one spoken error, not one per replica).

Keys (Redis): ``<prefix>utt:<device>:<utterance hex>`` is a hash (``c:<seq>`` → audio data,
``#codec``, ``#n`` chunks announced, ``#c`` chunks held, ``#ms`` audio milliseconds, ``#t``
last activity in ms); ``...:done`` marks a claimed utterance for a minute so that late or
redelivered chunks of it are ignored. A typed ``text`` claims the same marker
(:meth:`UtteranceStore.claim`), so a resent or redelivered one is answered once.

One clock decides idleness: Redis's own (``TIME``, read inside the scripts), never a
replica's, so replicas whose clocks differ agree on when an utterance went quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.errors import TeddyError
from hub.protocol.conversation import AudioChunk, Codec

DONE_TTL_MS: Final = 60_000


class UtteranceStoreUnavailable(TeddyError):
    """The shared utterance store cannot answer."""


class Outcome(StrEnum):
    """What one write did to its utterance."""

    PENDING = "pending"  # more to come
    COMPLETE = "complete"  # this caller holds the whole utterance now
    TOO_LONG = "too_long"  # past the cap: this caller answers it, the audio is gone
    DONE = "done"  # claimed before (a late or repeated chunk): ignore


@dataclass(frozen=True, slots=True)
class Progress:
    """The result of a write; ``chunks`` (in seq order) only when ``COMPLETE``."""

    outcome: Outcome
    codec: Codec | None = None
    chunks: list[bytes] = field(default_factory=list, repr=False)


class UtteranceStore(Protocol):
    """Shared reassembly state (see the module docstring)."""

    async def add_chunk(
        self, device_id: str, chunk: AudioChunk, duration_ms: int, *, max_ms: int, ttl_ms: int
    ) -> Progress:
        """Store one chunk; complete, cap or ignore the utterance as the rules say."""
        ...

    async def finish(
        self, device_id: str, utterance: bytes, chunks: int, *, ttl_ms: int
    ) -> Progress:
        """Record how many chunks the utterance has; complete it if they are all here."""
        ...

    async def idle_ms(self, device_id: str, utterance: bytes) -> int | None:
        """Milliseconds since the utterance's last write; None when it is gone or claimed."""
        ...

    async def expire(self, device_id: str, utterance: bytes) -> bool:
        """Claim an unfinished utterance for a timeout; True for the one caller that did."""
        ...

    async def claim(self, device_id: str, utterance: bytes) -> bool:
        """Claim an utterance that arrives whole (typed text); True for the one caller that
        did, False for a resent or redelivered one."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Record:
    codec: Codec | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    announced: int | None = None
    audio_ms: int = 0
    touched_ms: int = 0


class MemoryUtteranceStore:
    """One process's reassembly (the embedded mode); same rules as Redis."""

    def __init__(self, clock_ms: Callable[[], int] = _now_ms) -> None:
        self._records: dict[tuple[str, bytes], _Record] = {}
        self._done: dict[tuple[str, bytes], int] = {}
        self._clock_ms = clock_ms

    def _sweep(self, now: int, ttl_ms: int) -> None:
        for key, until in list(self._done.items()):
            if until <= now:
                del self._done[key]
        for key, record in list(self._records.items()):
            if now - record.touched_ms > ttl_ms:
                del self._records[key]

    def _claim(self, key: tuple[str, bytes], now: int) -> _Record | None:
        self._done[key] = now + DONE_TTL_MS
        return self._records.pop(key, None)

    def _complete(self, key: tuple[str, bytes], record: _Record, now: int) -> Progress:
        announced = record.announced
        if announced is not None and all(seq in record.chunks for seq in range(announced)):
            self._claim(key, now)
            ordered = [record.chunks[seq] for seq in range(announced)]
            return Progress(Outcome.COMPLETE, record.codec, ordered)
        return Progress(Outcome.PENDING)

    async def add_chunk(
        self, device_id: str, chunk: AudioChunk, duration_ms: int, *, max_ms: int, ttl_ms: int
    ) -> Progress:
        """Store one chunk (see :class:`UtteranceStore`)."""
        now = self._clock_ms()
        self._sweep(now, ttl_ms)
        key = (device_id, chunk.utterance)
        if key in self._done:
            return Progress(Outcome.DONE)
        record = self._records.setdefault(key, _Record())
        record.touched_ms = now
        record.codec = record.codec or chunk.codec
        beyond = record.announced is not None and chunk.seq >= record.announced
        if chunk.seq not in record.chunks and not beyond:
            record.chunks[chunk.seq] = chunk.data
            record.audio_ms += duration_ms
        if record.audio_ms > max_ms:
            self._claim(key, now)
            return Progress(Outcome.TOO_LONG, record.codec)
        return self._complete(key, record, now)

    async def finish(
        self, device_id: str, utterance: bytes, chunks: int, *, ttl_ms: int
    ) -> Progress:
        """Record the chunk count (see :class:`UtteranceStore`)."""
        now = self._clock_ms()
        self._sweep(now, ttl_ms)
        key = (device_id, utterance)
        if key in self._done:
            return Progress(Outcome.DONE)
        record = self._records.setdefault(key, _Record())
        record.touched_ms = now
        record.announced = chunks
        return self._complete(key, record, now)

    async def idle_ms(self, device_id: str, utterance: bytes) -> int | None:
        """See :class:`UtteranceStore`."""
        record = self._records.get((device_id, utterance))
        return None if record is None else self._clock_ms() - record.touched_ms

    async def expire(self, device_id: str, utterance: bytes) -> bool:
        """See :class:`UtteranceStore`."""
        key = (device_id, utterance)
        now = self._clock_ms()
        self._sweep(now, DONE_TTL_MS)
        if key in self._done:
            return False
        self._claim(key, now)
        return True

    async def claim(self, device_id: str, utterance: bytes) -> bool:
        """See :class:`UtteranceStore`."""
        return await self.expire(device_id, utterance)

    def held(self) -> int:
        """Utterances holding audio now (tests: none may be left after a turn)."""
        return len(self._records)

    async def close(self) -> None:
        """Nothing to release."""
        self._records.clear()


# KEYS[1] record hash, KEYS[2] done marker. ARGV: (unused), ttl_ms, done_ttl_ms, then per
# script. "now" is Redis's clock, the one every replica shares.
_NOW_MS = """
local clock = redis.call('TIME')
local now = string.format('%d', tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
"""
_ADD_CHUNK = (
    _NOW_MS
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'done'} end
local ttl, done_ttl = ARGV[2], ARGV[3]
local field, data, codec = ARGV[4], ARGV[5], ARGV[8]
local ms, max_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('HSETNX', KEYS[1], '#codec', codec)
local total = tonumber(redis.call('HGET', KEYS[1], '#ms') or '0')
local known = redis.call('HGET', KEYS[1], '#n')
local seq = tonumber(ARGV[9])
if known and seq >= tonumber(known) then
  -- beyond the announced count: not part of this utterance
elseif redis.call('HSETNX', KEYS[1], field, data) == 1 then
  redis.call('HINCRBY', KEYS[1], '#c', 1)
  total = redis.call('HINCRBY', KEYS[1], '#ms', ms)
end
redis.call('HSET', KEYS[1], '#t', now)
redis.call('PEXPIRE', KEYS[1], ttl)
if total > max_ms then
  redis.call('SET', KEYS[2], '1', 'PX', done_ttl)
  redis.call('DEL', KEYS[1])
  return {'too_long', codec}
end
local n = redis.call('HGET', KEYS[1], '#n')
if n and tonumber(redis.call('HGET', KEYS[1], '#c')) >= tonumber(n) then
  for seq = 0, tonumber(n) - 1 do
    if redis.call('HEXISTS', KEYS[1], 'c:' .. seq) == 0 then return {'pending'} end
  end
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', done_ttl)
  redis.call('DEL', KEYS[1])
  return {'complete', all}
end
return {'pending'}
"""
)
_FINISH = (
    _NOW_MS
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'done'} end
local ttl, done_ttl, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('HSET', KEYS[1], '#n', n, '#t', now)
redis.call('PEXPIRE', KEYS[1], ttl)
if tonumber(redis.call('HGET', KEYS[1], '#c') or '0') >= n then
  for seq = 0, n - 1 do
    if redis.call('HEXISTS', KEYS[1], 'c:' .. seq) == 0 then return {'pending'} end
  end
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', done_ttl)
  redis.call('DEL', KEYS[1])
  return {'complete', all}
end
return {'pending'}
"""
)
_IDLE = (
    _NOW_MS
    + """
local touched = redis.call('HGET', KEYS[1], '#t')
if not touched then return false end
return now - tonumber(touched)
"""
)
_EXPIRE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class RedisUtteranceStore:
    """Reassembly shared by every replica, one script call per write."""

    def __init__(self, client: aioredis.Redis, key_prefix: str = "teddy:") -> None:
        self._redis = client
        self._prefix = key_prefix
        self._add = client.register_script(_ADD_CHUNK)
        self._finish = client.register_script(_FINISH)
        self._expire = client.register_script(_EXPIRE)
        self._idle = client.register_script(_IDLE)

    @classmethod
    def from_url(cls, url: str, key_prefix: str = "teddy:") -> RedisUtteranceStore:
        """A store on its own pool, with short timeouts so an outage shows fast."""
        client = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, key_prefix)

    def _keys(self, device_id: str, utterance: bytes) -> list[str]:
        base = f"{self._prefix}utt:{device_id}:{utterance.hex()}"
        return [base, base + ":done"]

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            raise UtteranceStoreUnavailable(f"utterance store: {error}") from error

    @staticmethod
    def _progress(reply: list[Any]) -> Progress:
        outcome = Outcome(reply[0].decode() if isinstance(reply[0], bytes) else reply[0])
        if outcome is Outcome.TOO_LONG:
            return Progress(outcome, Codec(int(reply[1])))
        if outcome is not Outcome.COMPLETE:
            return Progress(outcome)
        flat = reply[1]
        fields = dict(zip(flat[0::2], flat[1::2], strict=True))
        count = int(fields[b"#n"])
        return Progress(
            outcome,
            Codec(int(fields[b"#codec"])),
            [fields[f"c:{seq}".encode()] for seq in range(count)],
        )

    async def add_chunk(
        self, device_id: str, chunk: AudioChunk, duration_ms: int, *, max_ms: int, ttl_ms: int
    ) -> Progress:
        """Store one chunk (see :class:`UtteranceStore`)."""
        reply = await self._run(
            self._add,
            self._keys(device_id, chunk.utterance),
            [
                0,  # now: Redis's clock, read by the script
                ttl_ms,
                DONE_TTL_MS,
                f"c:{chunk.seq}",
                chunk.data,
                duration_ms,
                max_ms,
                int(chunk.codec),
                chunk.seq,
            ],
        )
        return self._progress(reply)

    async def finish(
        self, device_id: str, utterance: bytes, chunks: int, *, ttl_ms: int
    ) -> Progress:
        """Record the chunk count (see :class:`UtteranceStore`)."""
        reply = await self._run(
            self._finish,
            self._keys(device_id, utterance),
            [0, ttl_ms, DONE_TTL_MS, chunks],
        )
        return self._progress(reply)

    async def idle_ms(self, device_id: str, utterance: bytes) -> int | None:
        """See :class:`UtteranceStore` (measured on Redis's clock)."""
        idle = await self._run(self._idle, self._keys(device_id, utterance), [])
        return None if idle is None else int(idle)

    async def expire(self, device_id: str, utterance: bytes) -> bool:
        """See :class:`UtteranceStore`."""
        return bool(await self._run(self._expire, self._keys(device_id, utterance), [DONE_TTL_MS]))

    async def claim(self, device_id: str, utterance: bytes) -> bool:
        """See :class:`UtteranceStore`."""
        return await self.expire(device_id, utterance)

    async def close(self) -> None:
        """Close the client."""
        await self._redis.aclose()
