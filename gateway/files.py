"""The gateway's files are readable by their owner only.

The outbox holds a patient's readings, the inbox what the patient is told, the pairings
which wearable is whose: nobody else on a shared home box (another user, a service
account) has any business reading them. Files are created 0600, and a file an earlier
version left 0644 is made so when next opened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

OWNER_ONLY = 0o600


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of ``path`` (created when missing) with its mode set to 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, flags | os.O_CREAT, OWNER_ONLY)
    try:
        os.fchmod(fd, OWNER_ONLY)
    except OSError:
        os.close(fd)
        raise
    return fd


def private_database(path: Path) -> None:
    """Make an SQLite database file 0600 before SQLite opens it. SQLite creates the
    database's ``-wal`` and ``-shm`` files with the database file's own mode, so they follow;
    ones an earlier version left behind are tightened here."""
    os.close(open_private(path, os.O_RDWR))
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", OWNER_ONLY)


def append_private(path: Path, text: str) -> None:
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8") as out:
        out.write(text)


def replace_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and durably: a power cut leaves the old file
    or the new one, never a part (home gateways lose power). The temporary file is made
    afresh, so a leftover or a planted link is never written through."""
    temporary = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = open_private(temporary, os.O_WRONLY | os.O_EXCL | os.O_NOFOLLOW)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
