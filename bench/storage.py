"""`vigil bench storage`: bytes on disk per patient-day, raw and compressed, both storages.

What an oximeter sends, SpO2 and pulse rate at 1 Hz, for ``patients`` patients over
``hours`` from a fixed day, is written into the observation hypertable of a private server
preloading TimescaleDB; the one-minute rollup (the continuous aggregate) is refreshed over
it; both are measured, every chunk of both is compressed, and both are measured again. The
same rows then go into native partitions on a plain server (which compresses nothing),
with their rollup, and are measured the same way; then the batch accounting ingest keeps
of the same batches (``ingest_batch``, a plain table in both storages).

The rows are generated in SQL, a statement per hour, in the order ingest stores them
(every patient's second before the next second): integer values as the device reports
them, around a baseline of each patient's own, with slow swings and noise; one gateway per
patient, a batch a second, received about a second after it was measured. How well a
series compresses depends on all of that, which is why it is not random numbers. Sizes are
PostgreSQL's own: heap, indexes and TOAST (``hypertable_detailed_size``,
``pg_total_relation_size``), without a VACUUM. The native rollup is written once, whole;
ingest's upserts leave dead rows in it until autovacuum comes, so it is a floor.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest import partitions
from vigil import metrics
from vigil.db.migrate import migrate
from vigil.embedded.postgres import preloading_timescaledb, start_postgres

START = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed first second (at midnight, so a day is one chunk): runs compare."""
OXIMETER = (metrics.SPO2, metrics.PULSE_RATE)
FAST = {"max_wal_size": "2GB", "shared_buffers": "1GB"}
"""Fewer checkpoints and more pages cached while filling: quicker, and no table is any
bigger or smaller for it (nor for the session's larger sort memory, below)."""
PEAK_BYTES_PER_ROW = 400
"""Disk a reading takes at the worst moment, at 1000 patients: about 290 bytes while a day's
chunk is compressed (its rows and indexes, and the sort's temporary files), about 360 with
the native partitions and the batch accounting beside them."""

_FILL = """
INSERT INTO observation (patient, metric, effective, value, flags, device, gateway, seq, received)
SELECT patient, CASE k WHEN 0 THEN %(spo2)s ELSE %(pulse)s END, effective,
       CASE k
           WHEN 0 THEN least(100, round(
               94.5 + 4 * mod(p * 0.618034, 1) + 0.8 * sin(2 * pi() * (s / 5400.0 + p * 0.382))
               + random_normal(0, 0.5)))
           ELSE round(
               58 + 30 * mod(p * 0.754877, 1) + 6 * sin(2 * pi() * (s / 86400.0 + p * 0.27))
               + 3 * sin(2 * pi() * s / 700.0 + p) + random_normal(0, 1))
       END,
       0, device, 'gw-' || patient, s,
       effective + interval '1 s' + mod(s * 7919 + p * 104729, 200) * interval '1 ms'
FROM (
    SELECT i / (2 * %(patients)s) AS s, (i / 2) %% %(patients)s AS p, i %% 2 AS k
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) i
) g,
LATERAL (
    SELECT 'p' || lpad((p + 1)::text, 4, '0') AS patient,
           'C2:00:00:00:' || upper(lpad(to_hex(p >> 8), 2, '0') || ':'
                                   || lpad(to_hex(p & 255), 2, '0')) AS device,
           %(start)s::timestamptz + s * interval '1 s' AS effective
) named
"""
_BATCHES = """
INSERT INTO ingest_batch (gateway, seq, readings, stored, received, newest, digest)
SELECT 'gw-p' || lpad((p + 1)::text, 4, '0'), s, 2, 2,
       newest + interval '1 s' + mod(s * 7919 + p * 104729, 200) * interval '1 ms',
       newest, sha256(int8send(s * 1000003 + p))
FROM (
    SELECT i / %(patients)s AS s, i %% %(patients)s AS p
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) i
) g,
LATERAL (SELECT %(start)s::timestamptz + s * interval '1 s' AS newest) t
"""
_NATIVE_ROLLUP = """
INSERT INTO observation_1m (patient, metric, bucket, min, max, sum, count)
SELECT patient, metric, date_bin('1 minute', effective, timestamptz 'epoch'),
       min(value), max(value), sum(value), count(*)
FROM observation WHERE effective >= %s AND effective < %s AND flags & 16 = 0
GROUP BY 1, 2, 3
"""


class StorageBench:
    def __init__(
        self,
        patients: int,
        hours: int,
        progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self.patients = patients
        self.hours = hours
        self.progress = progress

    @property
    def patient_days(self) -> float:
        return self.patients * self.hours / 24

    def run(self) -> dict[str, Any]:
        rows = self.patients * self.hours * 3600 * len(OXIMETER)
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if rows * PEAK_BYTES_PER_ROW > free:
            raise RuntimeError(
                f"{rows} rows need about {rows * PEAK_BYTES_PER_ROW / 1e9:.0f} GB free in "
                f"{tempfile.gettempdir()}, which has {free / 1e9:.0f} GB: use fewer --patients "
                "or --hours, or point TMPDIR at a bigger disk"
            )
        started = time.monotonic()
        server = start_postgres(None, {**preloading_timescaledb(background_jobs=False), **FAST})
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                migrate(conn)
                if partitions.storage(conn) != "timescaledb":
                    raise RuntimeError(
                        "the server preloads TimescaleDB, yet migrate did not use it"
                    )
                timescaledb = self._timescaledb(conn)
        finally:
            server.stop()  # its disk back before the second copy is written
        server = start_postgres(None, FAST)
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                with _quiet("vigil.db.migrate"):  # its advice to preload TimescaleDB
                    migrate(conn)
                native = self._native(conn)
                batches = self._batch_accounting(conn)
        finally:
            server.stop()
        return {
            "patients": self.patients,
            "hours": self.hours,
            "metrics": [m.name for m in OXIMETER],
            **timescaledb,
            "native_partitions": native,
            "ingest_batch": batches,
            "seconds": round(time.monotonic() - started, 1),
        }

    def _timescaledb(self, conn: psycopg.Connection) -> dict[str, Any]:
        _sort_memory(conn)
        rows = self.fill(conn, "TimescaleDB")
        self.progress("refreshing the continuous aggregate")
        conn.execute(
            "CALL refresh_continuous_aggregate('observation_1m', %s, %s)",
            (START, START + timedelta(hours=self.hours)),
        )
        (rollup_rows,) = _one(conn, "SELECT count(*) FROM observation_1m")
        raw = {table: _hypertable_bytes(conn, table) for table in partitions.TABLES}
        for table in partitions.TABLES:
            self.progress(f"compressing {table}")
            conn.execute(
                "SELECT count(compress_chunk(c, if_not_compressed => true))"
                " FROM show_chunks(%s::regclass) c",
                (table,),
            )
        return {
            table: self._figures(count, raw[table], _hypertable_bytes(conn, table))
            for table, count in zip(partitions.TABLES, (rows, rollup_rows), strict=True)
        }

    def _native(self, conn: psycopg.Connection) -> dict[str, Any]:
        end = START + timedelta(hours=self.hours)
        _sort_memory(conn)
        partitions.ensure_days(conn, START.date(), (end - timedelta(microseconds=1)).date())
        rows = self.fill(conn, "native partitions")
        self.progress("native partitions: writing the rollup")
        # one pass: a native partition has no index by time alone
        rollup_rows = conn.execute(_NATIVE_ROLLUP, (START, end)).rowcount
        found = {}
        for table, count in zip(partitions.TABLES, (rows, rollup_rows), strict=True):
            (size,) = _one(
                conn, "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(%s)", table
            )
            found[table] = self._sized(count, int(size))
        return found

    def _batch_accounting(self, conn: psycopg.Connection) -> dict[str, Any]:
        """What ingest keeps of each batch (:mod:`ingest.retention`), the same in both
        storages and never compressed: a row per gateway and second, a gateway per patient
        (at home); written after the native tables were measured, where disk is to spare."""
        per_hour = 3600 * self.patients
        for hour in range(self.hours):
            conn.execute(
                _BATCHES,
                {
                    "patients": self.patients,
                    "first": hour * per_hour,
                    "last": (hour + 1) * per_hour - 1,
                    "start": START,
                },
            )
            self.progress(f"batch accounting: hour {hour + 1} of {self.hours}")
        (rows, size) = _one(
            conn, "SELECT count(*), pg_total_relation_size('ingest_batch') FROM ingest_batch"
        )
        return self._sized(int(rows), int(size))

    def _sized(self, rows: int, size: int) -> dict[str, Any]:
        return {
            "rows": rows,
            "bytes": size,
            "bytes_per_patient_day": round(size / self.patient_days),
        }

    def fill(self, conn: psycopg.Connection, variant: str) -> int:
        """Every reading, an hour a statement and a commit; the same rows on every run."""
        per_hour = 3600 * len(OXIMETER) * self.patients
        rows = 0
        started = time.monotonic()
        for hour in range(self.hours):
            conn.execute("SELECT setseed(%s)", ((hour + 1) / (self.hours + 1),))
            rows += conn.execute(
                _FILL,
                {
                    "spo2": metrics.SPO2.id,
                    "pulse": metrics.PULSE_RATE.id,
                    "patients": self.patients,
                    "first": hour * per_hour,
                    "last": (hour + 1) * per_hour - 1,
                    "start": START,
                },
            ).rowcount
            rate = rows / (time.monotonic() - started)
            self.progress(f"{variant}: hour {hour + 1} of {self.hours}, {rows} rows ({rate:.0f}/s)")
        return rows

    def _figures(self, rows: int, raw: int, compressed: int) -> dict[str, Any]:
        return {
            "rows": rows,
            "bytes_raw": raw,
            "bytes_compressed": compressed,
            "ratio": round(raw / compressed, 2),
            "bytes_per_patient_day": {
                "raw": round(raw / self.patient_days),
                "compressed": round(compressed / self.patient_days),
            },
        }


def _sort_memory(conn: psycopg.Connection) -> None:
    """Room for the aggregate and the compression's sort of a day's chunk in memory."""
    conn.execute("SET work_mem = '512MB'")
    conn.execute("SET maintenance_work_mem = '2GB'")


def _hypertable_bytes(conn: psycopg.Connection, table: str) -> int:
    """Heap, indexes and TOAST of every chunk, compressed ones included."""
    (size,) = _one(conn, "SELECT total_bytes FROM hypertable_detailed_size(%s)", table)
    return int(size)


def _one(conn: psycopg.Connection, sql: str, *args: object) -> tuple[Any, ...]:
    row = conn.execute(sql, args).fetchone()
    if row is None:
        raise RuntimeError(f"no answer to {sql!r}")
    return tuple(row)


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """That logger's warnings unsaid for the block: ones that do not apply to this run."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
