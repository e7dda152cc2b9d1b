"""The revocation file: atomic, locked changes, and readers that never miss one."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from hub.revocation import FileRevocations, change_revocation, read_revocation_file


async def test_a_same_size_change_with_the_old_modification_time_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    reader = FileRevocations(path)
    change_revocation(path, "toy-aaaa", revoked=True)
    assert await reader.revoked_device_ids() == {"toy-aaaa"}
    stat = path.stat()
    change_revocation(path, "toy-aaaa", revoked=False)
    change_revocation(path, "toy-bbbb", revoked=True)
    # Same size, and the old modification time put back (as cp -p or rsync -t would).
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert await reader.revoked_device_ids() == {"toy-bbbb"}


def test_concurrent_changes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    ids = [f"toy-{number:04d}" for number in range(40)]
    threads = [
        threading.Thread(target=change_revocation, args=(path, device_id), kwargs={"revoked": True})
        for device_id in ids
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_revocation_file(path) == frozenset(ids)


def test_a_change_reports_whether_the_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    assert change_revocation(path, "toy-0001", revoked=True) is True
    assert change_revocation(path, "toy-0001", revoked=True) is False
    assert change_revocation(path, "toy-0001", revoked=False) is True
    assert asyncio.run(FileRevocations(path).revoked_device_ids()) == frozenset()
