"""Storing decoded batches with binary COPY, inside the caller's transaction.

A batch is recognized by ``(gateway, seq)``: one statement registers every batch of a flush
in ``ingest_batch`` and tells which are new; a redelivered batch only bumps its delivery
count and never reaches the observation table. The new batches' rows are then copied
straight into ``observation`` under a savepoint. Rows are also unique on ``(patient, metric,
effective, device)``: if a row is already there (a batch re-sealed under a new ``seq``, or
an overlap with another source), the COPY fails as a whole, and the flush goes the slower
way, through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``. Direct COPY is the
common case and runs at the table's own COPY rate. The one-minute rollup is updated from
the same rows in the same transaction, and a row on a day without a partition gets its
day made (:mod:`ingest.partitions`) and the write tried again.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ingest import partitions
from ingest.rollup import minute_groups
from vigil.wire.batch import Batch
from vigil.wire.quality import Quality

_COLUMNS = "patient, metric, effective, value, flags, device, gateway, seq"
_TYPES = ["text", "int2", "timestamptz", "float8", "int4", "text", "text", "int8"]
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_observation (
    patient text, metric smallint, effective timestamptz, value double precision,
    flags integer, device text, gateway text, seq bigint
) ON COMMIT DELETE ROWS
"""
_UPSERT_1M = """
ON CONFLICT (patient, metric, bucket) DO UPDATE SET
    min = least(observation_1m.min, excluded.min),
    max = greatest(observation_1m.max, excluded.max),
    sum = observation_1m.sum + excluded.sum,
    count = observation_1m.count + excluded.count
"""
_ROLL_UP_GROUPS = (
    """
INSERT INTO observation_1m (patient, metric, bucket, min, max, sum, count)
SELECT patient, metric, timestamptz 'epoch' + bucket_ms * interval '1 millisecond',
       min, max, sum, count
FROM unnest(
    %s::text[], %s::smallint[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[],
    %s::integer[]
) AS g (patient, metric, bucket_ms, min, max, sum, count)
ORDER BY 1, 2, 3
"""
    + _UPSERT_1M
)
_ROLL_UP_INSERTED = f"""
INSERT INTO observation_1m (patient, metric, bucket, min, max, sum, count)
SELECT patient, metric, date_bin('1 minute', effective, timestamptz 'epoch'),
       min(value), max(value), sum(value), count(*)
FROM inserted
WHERE flags & {int(Quality.INVALID)} = 0
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
{_UPSERT_1M}"""
_INSERT_NEW = f"""
WITH inserted AS (
    INSERT INTO observation ({_COLUMNS})
    SELECT {_COLUMNS} FROM staging_observation
    ON CONFLICT (patient, metric, effective, device) DO NOTHING
    RETURNING patient, metric, effective, value, flags, gateway, seq
){{roll_up}}
SELECT gateway, seq, count(*) FROM inserted GROUP BY gateway, seq
"""
_INSERT_NEW_ROLLING_UP = _INSERT_NEW.format(roll_up=f", rolled_up AS ({_ROLL_UP_INSERTED})")
_INSERT_NEW_ONLY = _INSERT_NEW.format(roll_up="")
_REGISTER = """
INSERT INTO ingest_batch (gateway, seq, readings, deliveries, stored, newest)
SELECT * FROM unnest(
    %s::text[], %s::bigint[], %s::integer[], %s::integer[], %s::integer[], %s::timestamptz[]
)
ON CONFLICT (gateway, seq)
DO UPDATE SET deliveries = ingest_batch.deliveries + excluded.deliveries
RETURNING gateway, seq, deliveries
"""
_SET_STORED = """
UPDATE ingest_batch b SET stored = s.stored
FROM unnest(%s::text[], %s::bigint[], %s::integer[]) AS s (gateway, seq, stored)
WHERE b.gateway = s.gateway AND b.seq = s.seq
"""


@dataclass(frozen=True, slots=True)
class Stored:
    readings: int
    """Rows that reached the observation table."""
    duplicates: int
    """Readings not stored because they were already there (redelivery or overlap)."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, PostgreSQL's timestamp origin
_INT64 = struct.Struct(">q")


class _EpochMillisDumper(Dumper):
    """Epoch milliseconds straight into binary timestamptz (microseconds since 2000-01-01):
    building a datetime per row costs more than the rest of the row."""

    format = Format.BINARY
    oid = postgres.types["timestamptz"].oid

    def dump(self, obj: int) -> bytes:
        return _INT64.pack((obj - _PG_EPOCH_MS) * 1000)


class _EpochMillis(int):
    """Marks the dumper's registration; COPY picks dumpers by column type, not by class."""


def store(conn: psycopg.Connection, batches: Sequence[Batch]) -> Stored:
    if not batches:
        return Stored(0, 0)
    fresh, duplicates = _register(conn, batches)
    if not fresh:
        return Stored(0, duplicates)
    try:
        with conn.transaction():  # a savepoint: the flush can be tried again
            return _write(conn, fresh, duplicates)
    except psycopg.errors.CheckViolation as exc:
        # A backlog from days ago: make the days' partitions, then write again.
        if "no partition" not in str(exc):
            raise
        try:
            partitions.ensure_span(conn, fresh)
        except ValueError:
            raise exc from None
    with conn.transaction():
        return _write(conn, fresh, duplicates)


def _write(conn: psycopg.Connection, fresh: list[Batch], duplicates: int) -> Stored:
    staged = sum(len(b) for b in fresh)
    # TimescaleDB keeps its continuous aggregate itself.
    rolling_up = partitions.storage(conn) == "partitions"
    try:
        with conn.transaction(), conn.cursor() as cur:  # a savepoint
            copy_rows(cur, "observation", fresh)
            if rolling_up:
                _roll_up(cur, fresh)
        return Stored(staged, duplicates)
    except psycopg.errors.UniqueViolation:
        pass
    with conn.cursor() as cur:
        cur.execute(_STAGING)
        copy_rows(cur, "staging_observation", fresh)
        cur.execute(_INSERT_NEW_ROLLING_UP if rolling_up else _INSERT_NEW_ONLY)
        inserted = {(g, s): n for g, s, n in cur.fetchall()}
        keys = [(b.gateway, b.seq) for b in fresh]
        cur.execute(
            _SET_STORED,
            ([g for g, _ in keys], [s for _, s in keys], [inserted.get(k, 0) for k in keys]),
        )
    stored = sum(inserted.values())
    return Stored(stored, duplicates + staged - stored)


def _register(conn: psycopg.Connection, batches: Sequence[Batch]) -> tuple[list[Batch], int]:
    """Record every delivery; returns the batches seen for the first time, and the readings
    of the others. A batch delivered twice within one flush is new once."""
    unique: dict[tuple[str, int], Batch] = {}
    for batch in batches:
        unique.setdefault((batch.gateway, batch.seq), batch)
    times = Counter((b.gateway, b.seq) for b in batches)
    keys = list(unique)
    rows = conn.execute(
        _REGISTER,
        (
            [g for g, _ in keys],
            [s for _, s in keys],
            [len(unique[k]) for k in keys],
            [times[k] for k in keys],
            [len(unique[k]) for k in keys],  # stored, unless the slow path finds overlaps
            [_newest(unique[k]) for k in keys],
        ),
    ).fetchall()
    fresh_keys = {(g, s) for g, s, deliveries in rows if deliveries == times[(g, s)]}
    fresh = [unique[k] for k in keys if k in fresh_keys]
    duplicates = sum(len(b) for b in batches) - sum(len(b) for b in fresh)
    return fresh, duplicates


def _roll_up(cur: psycopg.Cursor, batches: Sequence[Batch]) -> None:
    """Fold the copied rows into the one-minute rollup, in the same transaction."""
    groups = minute_groups(batches)
    if len(groups):
        cur.execute(
            _ROLL_UP_GROUPS,
            (
                groups.patient,
                groups.metric.tolist(),
                groups.bucket_ms.tolist(),
                groups.min.tolist(),
                groups.max.tolist(),
                groups.sum.tolist(),
                groups.count.tolist(),
            ),
        )


def _at(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _newest(batch: Batch) -> datetime | None:
    if not len(batch):
        return None
    return _at(int(batch.time.max()))


def copy_rows(cur: psycopg.Cursor, table: str, batches: Sequence[Batch]) -> None:
    """Binary COPY of the batches' rows into ``table`` (observation's columns)."""
    cur.adapters.register_dumper(_EpochMillis, _EpochMillisDumper)
    with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_TYPES)
        for batch in batches:
            gateway, seq = batch.gateway, batch.seq
            for row in zip(
                batch.patient,
                batch.metric.tolist(),
                batch.time.tolist(),
                batch.value.tolist(),
                batch.flags.tolist(),
                batch.device,
                strict=True,
            ):
                copy.write_row((*row, gateway, seq))


def dead_letter(
    conn: psycopg.Connection,
    topic: str,
    gateway: str | None,
    payload: bytes | bytearray,
    reason: str,
) -> None:
    conn.execute(
        "INSERT INTO dead_letter (topic, gateway, payload, reason) VALUES (%s, %s, %s, %s)",
        (topic, gateway, payload, reason),
    )
