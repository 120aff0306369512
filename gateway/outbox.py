"""The gateway's on-disk outbox: readings wait here until the platform has committed them.

SQLite in WAL mode. Readings are appended as they arrive; :meth:`Outbox.seal` moves the
pending readings into a numbered batch (the encoded payload and its ``seq`` are fixed at
that moment and stored); a batch is deleted only when it is released: once ingest says it
is committed (:mod:`vigil.wire.commitment`), or on the broker's PUBACK for a platform that
does not say so. A restart therefore republishes exactly the same batches with the same
``seq``, which ingest recognizes, and ``seq`` itself lives in the database so it never goes
back. ``life``, drawn when the file is made, tells this outbox's ``seq`` from those of a
wiped predecessor's.

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
-- 53 bits: a JSON number any reader keeps exactly.
INSERT OR IGNORE INTO counter VALUES ('life', random() & 9007199254740991);
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

    def append(self, readings: Iterable[Reading]) -> int:
        """Returns how many readings were appended."""
        rows = [(r.device, r.patient, r.metric, r.time, r.value, r.flags) for r in readings]
        with self._db:
            self._db.executemany(
                "INSERT INTO reading (device, patient, metric, time, value, flags)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

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
        """Sealed batches not yet released, oldest first."""
        rows = self._db.execute(
            "SELECT seq, readings, payload FROM batch WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [PendingBatch(seq, n, bytes(p)) for seq, n, p in rows]

    def batches(self, seqs: Iterable[int]) -> list[PendingBatch]:
        """The batches of these ``seq`` values still held, oldest first."""
        wanted = sorted(seqs)
        if not wanted:
            return []
        rows = self._db.execute(
            f"SELECT seq, readings, payload FROM batch WHERE seq IN ({','.join('?' * len(wanted))})"
            " ORDER BY seq",
            wanted,
        ).fetchall()
        return [PendingBatch(seq, n, bytes(p)) for seq, n, p in rows]

    def release(self, seq: int) -> int:
        """Forget a batch the broker acknowledged; returns how many readings it held (0 if
        unknown). Only for a platform that does not confirm commits."""
        with self._db:
            row = self._db.execute("SELECT readings FROM batch WHERE seq = ?", (seq,)).fetchone()
            self._db.execute("DELETE FROM batch WHERE seq = ?", (seq,))
        return int(row[0]) if row else 0

    def release_through(self, seq: int) -> int:
        """Forget every batch up to ``seq``, which the platform has committed; returns how
        many readings they held."""
        with self._db:
            (readings,) = self._db.execute(
                "SELECT coalesce(sum(readings), 0) FROM batch WHERE seq <= ?", (seq,)
            ).fetchone()
            self._db.execute("DELETE FROM batch WHERE seq <= ?", (seq,))
        return int(readings)

    def unconfirmed(self, through_seq: int) -> tuple[int, int | None]:
        """Readings in the batches up to ``through_seq`` (those handed to the broker) and
        the measurement time of the oldest of them."""
        readings, oldest = self._db.execute(
            "SELECT coalesce(sum(readings), 0), min(oldest) FROM batch WHERE seq <= ?",
            (through_seq,),
        ).fetchone()
        return int(readings), oldest

    def oldest_seq(self) -> int:
        """The lowest ``seq`` still held, or the next one when none is."""
        (seq,) = self._db.execute("SELECT min(seq) FROM batch").fetchone()
        return self.next_seq() if seq is None else int(seq)

    def life(self) -> int:
        (life,) = self._db.execute("SELECT value FROM counter WHERE name='life'").fetchone()
        return int(life)

    def loose(self) -> int:
        """Readings not yet sealed into a batch."""
        (count,) = self._db.execute("SELECT count(*) FROM reading").fetchone()
        return int(count)

    def depth(self) -> int:
        """Readings on disk not yet released."""
        (loose,) = self._db.execute("SELECT count(*) FROM reading").fetchone()
        (sealed,) = self._db.execute("SELECT coalesce(sum(readings), 0) FROM batch").fetchone()
        return int(loose) + int(sealed)

    def oldest_ms(self) -> int | None:
        """Measurement time of the oldest reading not yet released."""
        (loose,) = self._db.execute("SELECT min(time) FROM reading").fetchone()
        (sealed,) = self._db.execute("SELECT min(oldest) FROM batch").fetchone()
        times = [t for t in (loose, sealed) if t is not None]
        return min(times) if times else None

    def drop_oldest(self, max_readings: int, keep: set[int]) -> dict[int, int]:
        """Keep the outbox within ``max_readings`` by deleting the oldest sealed batches but
        those in ``keep`` (with the broker right now, awaiting its PUBACK); returns the
        readings of each ``seq`` dropped. The first to go are those the broker has taken and
        the platform has not yet confirmed: most of them reach it anyway. The readings
        dropped are counted for good, and their ``seq`` values become a visible gap."""
        excess = self.depth() - max_readings
        if excess <= 0:
            return {}
        dropped: dict[int, int] = {}
        with self._db:
            for seq, readings in self._db.execute("SELECT seq, readings FROM batch ORDER BY seq"):
                if excess <= 0:
                    break
                if seq not in keep:
                    dropped[seq] = readings
                    excess -= readings
            self._db.executemany("DELETE FROM batch WHERE seq = ?", [(s,) for s in dropped])
            self._count(sum(dropped.values()))
        return dropped

    def count_dropped(self, readings: int) -> int:
        """Readings lost before they reached the outbox (held in memory past its bound);
        returns how many were counted."""
        with self._db:
            self._count(readings)
        return readings

    def _count(self, dropped: int) -> None:
        self._db.execute("UPDATE counter SET value = value + ? WHERE name = 'dropped'", (dropped,))

    def dropped(self) -> int:
        """Readings dropped because the outbox was full, over the gateway's whole life."""
        (count,) = self._db.execute("SELECT value FROM counter WHERE name='dropped'").fetchone()
        return int(count)

    def next_seq(self) -> int:
        (seq,) = self._db.execute("SELECT value FROM counter WHERE name='next_seq'").fetchone()
        return int(seq)
