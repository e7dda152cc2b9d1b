"""Revoked devices, held in memory and refreshed in the background.

The gate asks "is this device revoked?" for every frame, so the answer must come from memory;
a background task replaces the set from its source every ``refresh_s`` seconds (at most 5), so a
revocation reaches the hub within seconds and without a restart. If the source fails, the last
known set stays in force and the list's age shows in metrics and readiness.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Protocol

import structlog

from hub.metrics import HubMetrics

log = structlog.get_logger("hub.revocation")


class RevocationSource(Protocol):
    """Where the authoritative list of revoked device ids lives."""

    async def revoked_device_ids(self) -> frozenset[str]:
        """Every revoked device id, now."""
        ...


class InMemoryRevocations:
    """A revocation source held by this process: the embedded default and the tests' source."""

    def __init__(self, revoked: frozenset[str] = frozenset()) -> None:
        self._revoked = set(revoked)

    def revoke(self, device_id: str) -> None:
        """Add ``device_id`` to the list."""
        self._revoked.add(device_id)

    def restore(self, device_id: str) -> None:
        """Remove ``device_id`` from the list."""
        self._revoked.discard(device_id)

    async def revoked_device_ids(self) -> frozenset[str]:
        """Every revoked device id, now."""
        return frozenset(self._revoked)


class FileRevocations:
    """Revoked device ids in a text file, one a line: what brokers and hubs on one host share.

    The file is re-read only when its modification time or size changes, so polling it every
    few seconds costs a ``stat``. A missing file means nobody is revoked. Writers replace the
    file atomically (:func:`write_revocation_file`), so a reader never sees half a list.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int, int, int] | None = None
        self._revoked: frozenset[str] = frozenset()

    async def revoked_device_ids(self) -> frozenset[str]:
        """Every revoked device id, now."""
        try:
            status = self._path.stat()
        except FileNotFoundError:
            self._stamp, self._revoked = None, frozenset()
            return self._revoked
        # The inode and change time as well: a replaced file, or one copied in with its old
        # modification time kept (cp -p, rsync -t), is seen even at the same size.
        stamp = (status.st_ino, status.st_mtime_ns, status.st_ctime_ns, status.st_size)
        if stamp != self._stamp:
            self._revoked = read_revocation_file(self._path)
            self._stamp = stamp
        return self._revoked


def read_revocation_file(path: Path) -> frozenset[str]:
    """The device ids in the file at ``path``; none when it does not exist."""
    try:
        # Undecodable bytes cannot spell a device id; they must not stop the rest being read.
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return frozenset()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def write_revocation_file(path: Path, revoked: set[str] | frozenset[str]) -> None:
    """Replace the revocation file with ``revoked`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    body = "".join(f"{device_id}\n" for device_id in sorted(revoked))
    temporary.write_text("# revoked device ids, one a line\n" + body, encoding="utf-8")
    temporary.replace(path)


def change_revocation(path: Path, device_id: str, *, revoked: bool) -> bool:
    """Add ``device_id`` to the file (``revoked``) or remove it; True when the file changed.

    Read, change and write happen under an exclusive lock on a file beside it, so the CLI and
    API replicas changing the list at once cannot lose each other's change. Blocking: call it
    from a thread in async code.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f".{path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_revocation_file(path)
        wanted = current | {device_id} if revoked else current - {device_id}
        if wanted == current:
            return False
        write_revocation_file(path, wanted)
        return True


class RevocationList:
    """The gate's view of revoked devices: a frozenset swapped whole on each refresh."""

    def __init__(
        self, source: RevocationSource, metrics: HubMetrics, refresh_s: float = 2.0
    ) -> None:
        if not 0 < refresh_s <= 5:
            raise ValueError("refresh_s must be in (0, 5]")
        self._source = source
        self._metrics = metrics
        self._refresh_s = refresh_s
        self._revoked: frozenset[str] = frozenset()
        self._refreshed_at: float | None = None

    def is_revoked(self, device_id: str) -> bool:
        """True when the device was revoked as of the last refresh."""
        return device_id in self._revoked

    @property
    def age_s(self) -> float | None:
        """Seconds since the last successful refresh; ``None`` before the first."""
        if self._refreshed_at is None:
            return None
        return time.monotonic() - self._refreshed_at

    @property
    def is_fresh(self) -> bool:
        """True when the list was refreshed within three refresh periods."""
        age = self.age_s
        return age is not None and age <= 3 * self._refresh_s

    async def refresh(self) -> None:
        """Replace the set from the source; raises what the source raises."""
        revoked = await self._source.revoked_device_ids()
        self._revoked = revoked
        self._refreshed_at = time.monotonic()
        self._metrics.revoked_devices.set(len(revoked))
        self._metrics.revocation_age.set(0)

    async def run(self) -> None:
        """Refresh forever; a failing source is logged once per failure streak."""
        failing = False
        while True:
            try:
                await self.refresh()
            except Exception as error:
                if not failing:
                    log.exception("revocation_refresh_failed", error=type(error).__name__)
                failing = True
                age = self.age_s
                if age is not None:
                    self._metrics.revocation_age.set(age)
            else:
                if failing:
                    log.info("revocation_refresh_recovered")
                failing = False
            await asyncio.sleep(self._refresh_s)
