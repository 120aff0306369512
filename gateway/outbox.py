"""The gateway's on-disk outbox: readings wait here until the broker has acknowledged them.

SQLite in WAL mode. Readings are appended as they arrive; :meth:`Outbox.seal` moves the
pending readings into a numbered batch (the encoded payload and its ``seq`` are fixed at
that moment and stored); a batch is deleted only when the broker acknowledges it. A
restart therefore republishes exactly the same batches with the same ``seq``, which ingest
recognizes, and ``seq`` itself lives in the database so it never goes back.

``synchronous=NORMAL``: in WAL mode a commit survives the gateway process crashing or
being killed (the common failure on a home box), with no fsync per reading. A power cut can
lose the last commits before the next checkpoint; FULL would close that at the price of an
fsync per notification, which wears SD cards. Revisit if gateways run on battery-less
hardware that loses power often.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.files import private_database
from gateway.readings import Reading
from vigil.wire.batch import Batch

BATCH_LIMIT = 5000
"""Readings per sealed batch at most: a backlog drains in batches this size."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reading (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL, patient TEXT NOT NULL, metric INTEGER NOT NULL,
    time INTEGER NOT NULL, value REAL NOT NULL, flags INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batch (
    seq INTEGER PRIMARY KEY,
    readings INTEGER NOT NULL,
    oldest INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES ('next_seq', 0);
INSERT OR IGNORE INTO counter VALUES ('dropped', 0);
"""


@dataclass(frozen=True, slots=True)
class PendingBatch:
    seq: int
    readings: int
    payload: bytes


class Outbox:
    def __init__(self, path: Path, gateway: str) -> None:
        private_database(path)  # readings of patients: owner only, with the -wal and -shm
        self.gateway = gateway
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def append(self, readings: Iterable[Reading]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO reading (device, patient, metric, time, value, flags)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(r.device, r.patient, r.metric, r.time, r.value, r.flags) for r in readings],
            )

    def seal(self, sent_ms: int, limit: int = BATCH_LIMIT) -> PendingBatch | None:
        """Move up to ``limit`` pending readings into the next batch; None if there are none."""
        with self._db:
            rows = self._db.execute(
                "SELECT id, device, patient, metric, time, value, flags FROM reading"
                " ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            if not rows:
                return None
            (seq,) = self._db.execute("SELECT value FROM counter WHERE name='next_seq'").fetchone()
            _, device, patient, metric, time, value, flags = zip(*rows, strict=True)
            batch = Batch(
                gateway=self.gateway,
                seq=seq,
                sent=sent_ms,
                device=device,
                patient=patient,
                metric=np.array(metric, dtype=np.int16),
                time=np.array(time, dtype=np.int64),
                value=np.array(value, dtype=np.float64),
                flags=np.array(flags, dtype=np.int32),
            )
            payload = batch.encode()
            self._db.execute(
                "INSERT INTO batch (seq, readings, oldest, payload) VALUES (?, ?, ?, ?)",
                (seq, len(rows), min(time), payload),
            )
            self._db.execute("DELETE FROM reading WHERE id <= ?", (rows[-1][0],))
            self._db.execute("UPDATE counter SET value = value + 1 WHERE name='next_seq'")
        return PendingBatch(seq, len(rows), payload)

    def pending(self, after_seq: int = -1, limit: int = 100) -> list[PendingBatch]:
        """Sealed batches not yet acknowledged, oldest first."""
        rows = self._db.execute(
            "SELECT seq, readings, payload FROM batch WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [PendingBatch(seq, n, bytes(p)) for seq, n, p in rows]

    def acknowledge(self, seq: int) -> int:
        """Forget an acknowledged batch; returns how many readings it held (0 if unknown)."""
        with self._db:
            row = self._db.execute("SELECT readings FROM batch WHERE seq = ?", (seq,)).fetchone()
            self._db.execute("DELETE FROM batch WHERE seq = ?", (seq,))
        return int(row[0]) if row else 0

    def loose(self) -> int:
        """Readings not yet sealed into a batch."""
        (count,) = self._db.execute("SELECT count(*) FROM reading").fetchone()
        return int(count)

    def depth(self) -> int:
        """Readings on disk not yet acknowledged by the broker."""
        (loose,) = self._db.execute("SELECT count(*) FROM reading").fetchone()
        (sealed,) = self._db.execute("SELECT coalesce(sum(readings), 0) FROM batch").fetchone()
        return int(loose) + int(sealed)

    def oldest_ms(self) -> int | None:
        """Measurement time of the oldest unacknowledged reading."""
        (loose,) = self._db.execute("SELECT min(time) FROM reading").fetchone()
        (sealed,) = self._db.execute("SELECT min(oldest) FROM batch").fetchone()
        times = [t for t in (loose, sealed) if t is not None]
        return min(times) if times else None

    def drop_oldest(self, max_readings: int, after_seq: int) -> int:
        """Keep the outbox within ``max_readings`` by deleting the oldest sealed batches
        after ``after_seq`` (those before it are already with the publisher). The readings
        dropped are counted for good, and their ``seq`` values become a visible gap."""
        excess = self.depth() - max_readings
        dropped = 0
        with self._db:
            while excess > 0:
                row = self._db.execute(
                    "SELECT seq, readings FROM batch WHERE seq > ? ORDER BY seq LIMIT 1",
                    (after_seq,),
                ).fetchone()
                if row is None:
                    break
                self._db.execute("DELETE FROM batch WHERE seq = ?", (row[0],))
                excess -= row[1]
                dropped += row[1]
            self._db.execute(
                "UPDATE counter SET value = value + ? WHERE name = 'dropped'", (dropped,)
            )
        return dropped

    def dropped(self) -> int:
        """Readings dropped because the outbox was full, over the gateway's whole life."""
        (count,) = self._db.execute("SELECT value FROM counter WHERE name='dropped'").fetchone()
        return int(count)

    def next_seq(self) -> int:
        (seq,) = self._db.execute("SELECT value FROM counter WHERE name='next_seq'").fetchone()
        return int(seq)
