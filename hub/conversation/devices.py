"""Per-toy conversation state every replica must see: playback format and aborts.

A toy's ``hello`` may reach one replica and its next utterance another, and its ``abort`` may
reach a replica other than the one speaking; both facts therefore live in Redis (in memory in
the embedded mode, which runs one hub). Keys: ``<prefix>play:<device>`` (the playback format,
kept a day after the last hello) and ``<prefix>abort:<device>:<utterance hex>`` (a minute).

An abort mark for "whatever the toy was playing" stops the turns that started before it, so
the mark and a turn's start are compared on one clock: Redis's (``TIME``), never a replica's,
so a replica whose clock runs behind cannot miss an abort, nor one ahead abort a new turn.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.protocol.conversation import Playback

PLAYBACK_TTL_S: Final = 24 * 3600
ABORT_TTL_S: Final = 60
ANY_UTTERANCE: Final = b"\x00" * 8
# KEYS[1] the mark; ARGV: the utterance to keep (hex, or empty), its lifetime in seconds.
# The mark is stamped with Redis's clock, the one every replica's turns start on.
_MARK_ABORT: Final = """
local clock = redis.call('TIME')
local keep = ARGV[1]
if keep == '' then keep = cjson.null end
local mark = cjson.encode({at = tonumber(clock[1]) + tonumber(clock[2]) / 1000000, keep = keep})
redis.call('SET', KEYS[1], mark, 'EX', ARGV[2])
return 1
"""


class DeviceStates(Protocol):
    """Playback formats and abort marks (see the module docstring)."""

    async def set_playback(self, device_id: str, playback: Playback) -> None:
        """Remember how ``device_id`` wants its replies."""
        ...

    async def playback(self, device_id: str) -> Playback:
        """The format last announced; PCM16 at 16 kHz for a toy that never said hello."""
        ...

    async def mark_aborted(
        self, device_id: str, utterance: bytes | None, keep: bytes | None = None
    ) -> None:
        """Record that the toy aborted ``utterance`` (None: whatever it was playing, except
        the utterance ``keep``, the one it is starting)."""
        ...

    async def is_aborted(self, device_id: str, utterance: bytes, since: float) -> bool:
        """True when ``utterance``, or anything of the device after ``since`` (a time from
        :meth:`now`), was aborted."""
        ...

    async def now(self) -> float:
        """Seconds on the clock abort marks are written with (shared by every replica)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryDeviceStates:
    """One process's device state (the embedded mode)."""

    def __init__(self) -> None:
        self._playback: dict[str, Playback] = {}
        self._aborts: dict[tuple[str, bytes], tuple[float, bytes | None]] = {}

    async def set_playback(self, device_id: str, playback: Playback) -> None:
        """See :class:`DeviceStates`."""
        self._playback[device_id] = playback

    async def playback(self, device_id: str) -> Playback:
        """See :class:`DeviceStates`."""
        return self._playback.get(device_id, Playback())

    async def mark_aborted(
        self, device_id: str, utterance: bytes | None, keep: bytes | None = None
    ) -> None:
        """See :class:`DeviceStates`."""
        now = time.time()
        for key, (at, _) in list(self._aborts.items()):
            if now - at > ABORT_TTL_S:
                del self._aborts[key]
        self._aborts[(device_id, utterance or ANY_UTTERANCE)] = (now, keep)

    async def is_aborted(self, device_id: str, utterance: bytes, since: float) -> bool:
        """See :class:`DeviceStates`."""
        if (device_id, utterance) in self._aborts:
            return True
        mark = self._aborts.get((device_id, ANY_UTTERANCE))
        return mark is not None and mark[0] >= since and mark[1] != utterance

    async def now(self) -> float:
        """This process's clock: the embedded mode runs one hub."""
        return time.time()

    async def close(self) -> None:
        """Nothing to release."""


class RedisDeviceStates:
    """Device state shared by every replica."""

    def __init__(self, client: aioredis.Redis, key_prefix: str = "teddy:") -> None:
        self._redis = client
        self._prefix = key_prefix
        self._mark = client.register_script(_MARK_ABORT)

    @classmethod
    def from_url(cls, url: str, key_prefix: str = "teddy:") -> RedisDeviceStates:
        """A client on its own pool with short timeouts."""
        return cls(
            aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0),
            key_prefix,
        )

    def _abort_key(self, device_id: str, utterance: bytes) -> str:
        return f"{self._prefix}abort:{device_id}:{utterance.hex()}"

    async def set_playback(self, device_id: str, playback: Playback) -> None:
        """See :class:`DeviceStates`."""
        await self._redis.set(
            f"{self._prefix}play:{device_id}", json.dumps(playback.to_json()), ex=PLAYBACK_TTL_S
        )

    async def playback(self, device_id: str) -> Playback:
        """See :class:`DeviceStates`; a store that does not answer gives the default."""
        try:
            stored = await self._redis.get(f"{self._prefix}play:{device_id}")
        except (RedisError, OSError):
            return Playback()
        return Playback() if stored is None else Playback.from_json(json.loads(stored))

    async def mark_aborted(
        self, device_id: str, utterance: bytes | None, keep: bytes | None = None
    ) -> None:
        """See :class:`DeviceStates`; a store that does not answer loses the mark (the replica
        holding the turn has cancelled it already when it is this one)."""
        key = self._abort_key(device_id, utterance or ANY_UTTERANCE)
        with contextlib.suppress(RedisError, OSError):
            await self._mark(keys=[key], args=["" if keep is None else keep.hex(), ABORT_TTL_S])

    async def is_aborted(self, device_id: str, utterance: bytes, since: float) -> bool:
        """See :class:`DeviceStates`; a store that does not answer counts as no abort."""
        try:
            specific, any_at = await self._redis.mget(
                self._abort_key(device_id, utterance), self._abort_key(device_id, ANY_UTTERANCE)
            )
        except (RedisError, OSError):
            return False
        if specific is not None:
            return True
        if any_at is None:
            return False
        mark = json.loads(any_at)
        return float(mark["at"]) >= since and mark["keep"] != utterance.hex()

    async def now(self) -> float:
        """Redis's clock; this replica's when Redis does not answer (abort marks cannot be
        read then either, see :meth:`is_aborted`)."""
        try:
            seconds, micros = await self._redis.time()
        except (RedisError, OSError):
            return time.time()
        return seconds + micros / 1_000_000

    async def close(self) -> None:
        """Close the client."""
        await self._redis.aclose()
