"""Storing decoded batches with binary COPY, inside the caller's transaction.

A batch is recognized by ``(gateway, seq, digest)``, the digest being the SHA-256 of its
payload as received: one statement registers every batch of a flush in ``ingest_batch`` and
tells which are new; a redelivered batch (the gateway republishes the very bytes it sealed)
only bumps its delivery count and never reaches the observation table. A different batch
under a ``seq`` already registered is not taken for a redelivery: it is stored like any new
batch and counted as a conflict (``vigil ingest stats``), so whoever squats a gateway's next
``seq`` numbers cannot make its real batches be dropped. The new batches' rows are then copied
straight into ``observation`` under a savepoint. Rows are also unique on ``(patient, metric,
effective, device)``: if a row is already there (a batch re-sealed under a new ``seq``, or
an overlap with another source), the COPY fails as a whole, and the flush goes the slower
way, through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``. Direct COPY is the
common case and runs at the table's own COPY rate. The one-minute rollup is updated from
the same rows in the same transaction, and a row on a day without a partition gets its
day made (:mod:`ingest.partitions`) and the write tried again.

An absent reading (the device sent no value, its flags say why) is stored with a NULL value,
which every aggregate skips and no comparison matches, and with the invalid bit too: every
reader of ``observation`` that leaves invalid readings out leaves these out as well, the
TimescaleDB continuous aggregate among them, whose query only a rebuild could change.
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
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
# RETURNING's subquery sees the table as it was before this statement: whether another
# batch already held the seq.
_REGISTER = """
INSERT INTO ingest_batch (gateway, seq, digest, readings, deliveries, stored, newest)
SELECT * FROM unnest(
    %s::text[], %s::bigint[], %s::bytea[], %s::integer[], %s::integer[], %s::integer[],
    %s::timestamptz[]
)
ON CONFLICT (gateway, seq, digest)
DO UPDATE SET
    deliveries = ingest_batch.deliveries + excluded.deliveries, last_delivered = now()
RETURNING gateway, seq, digest, deliveries, EXISTS (
    SELECT 1 FROM ingest_batch other
    WHERE other.gateway = ingest_batch.gateway AND other.seq = ingest_batch.seq
      AND other.digest <> ingest_batch.digest
)
"""
_SET_STORED = """
UPDATE ingest_batch b SET stored = s.stored
FROM unnest(%s::text[], %s::bigint[], %s::bytea[], %s::integer[])
    AS s (gateway, seq, digest, stored)
WHERE b.gateway = s.gateway AND b.seq = s.seq AND b.digest = s.digest
"""


@dataclass(frozen=True, slots=True)
class Stored:
    readings: int
    """Rows that reached the observation table."""
    duplicates: int
    """Readings not stored because they were already there (redelivery or overlap)."""
    conflicts: tuple[tuple[str, int], ...] = ()
    """(gateway, seq) of new batches under a seq another batch of that gateway holds."""


MAX_REASON_CHARS = 2000
"""Five refused readings explained, or a decoder's complaint, quoting at most this much."""
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


def digest(payload: bytes | bytearray) -> bytes:
    """What tells a redelivery (the same bytes) from another batch under the same seq."""
    return hashlib.sha256(payload).digest()


def store(
    conn: psycopg.Connection, batches: Sequence[Batch], digests: Sequence[bytes] | None = None
) -> Stored:
    """Store the batches' new rows; ``digests`` are those of the payloads the batches came
    in (None: of their encoding, for batches built rather than received)."""
    if not batches:
        return Stored(0, 0)
    if digests is None:
        digests = [digest(b.encode()) for b in batches]
    fresh, duplicates, conflicts = _register(conn, batches, digests)
    if not fresh:
        return Stored(0, duplicates, conflicts)
    try:
        with conn.transaction():  # a savepoint: the flush can be tried again
            return _write(conn, fresh, duplicates, conflicts)
    except psycopg.errors.CheckViolation as exc:
        # A backlog from days ago: make the days' partitions, then write again.
        if "no partition" not in str(exc):
            raise
        try:
            partitions.ensure_span(conn, [b for b, _ in fresh])
        except ValueError:
            raise exc from None
    with conn.transaction():
        return _write(conn, fresh, duplicates, conflicts)


def _write(
    conn: psycopg.Connection,
    fresh: list[tuple[Batch, bytes]],
    duplicates: int,
    conflicts: tuple[tuple[str, int], ...],
) -> Stored:
    batches = [b for b, _ in fresh]
    staged = sum(len(b) for b in batches)
    # TimescaleDB keeps its continuous aggregate itself.
    rolling_up = partitions.storage(conn) == "partitions"
    try:
        with conn.transaction(), conn.cursor() as cur:  # a savepoint
            copy_rows(cur, "observation", batches)
            if rolling_up:
                _roll_up(cur, batches)
        return Stored(staged, duplicates, conflicts)
    except psycopg.errors.UniqueViolation:
        pass
    with conn.cursor() as cur:
        cur.execute(_STAGING)
        copy_rows(cur, "staging_observation", batches)
        cur.execute(_INSERT_NEW_ROLLING_UP if rolling_up else _INSERT_NEW_ONLY)
        inserted = {(g, s): n for g, s, n in cur.fetchall()}
        # Rows carry (gateway, seq), not the digest: two new batches under one seq in one
        # flush (a conflict) have their rows counted once, under the first.
        stored_by_batch = [inserted.pop((b.gateway, b.seq), 0) for b in batches]
        cur.execute(
            _SET_STORED,
            (
                [b.gateway for b in batches],
                [b.seq for b in batches],
                [d for _, d in fresh],
                stored_by_batch,
            ),
        )
    stored = sum(stored_by_batch)
    return Stored(stored, duplicates + staged - stored, conflicts)


def _register(
    conn: psycopg.Connection, batches: Sequence[Batch], digests: Sequence[bytes]
) -> tuple[list[tuple[Batch, bytes]], int, tuple[tuple[str, int], ...]]:
    """Record every delivery; returns the batches seen for the first time (with their
    digests), the readings of the others, and the new batches' conflicts. A batch delivered
    twice within one flush is new once."""
    unique: dict[tuple[str, int, bytes], Batch] = {}
    for batch, d in zip(batches, digests, strict=True):
        unique.setdefault((batch.gateway, batch.seq, d), batch)
    times = Counter((b.gateway, b.seq, d) for b, d in zip(batches, digests, strict=True))
    keys = list(unique)
    rows = conn.execute(
        _REGISTER,
        (
            [g for g, _, _ in keys],
            [s for _, s, _ in keys],
            [d for _, _, d in keys],
            [len(unique[k]) for k in keys],
            [times[k] for k in keys],
            [len(unique[k]) for k in keys],  # stored, unless the slow path finds overlaps
            [_newest(unique[k]) for k in keys],
        ),
    ).fetchall()
    fresh_keys = [(g, s, bytes(d)) for g, s, d, n, _ in rows if n == times[(g, s, bytes(d))]]
    taken = {(g, s) for g, s, _, _, other in rows if other}
    conflicts = []
    for gateway, seq, _ in fresh_keys:  # held before this flush, or by another one in it
        if (gateway, seq) in taken:
            conflicts.append((gateway, seq))
        taken.add((gateway, seq))
    new = set(fresh_keys)
    fresh = [(unique[k], k[2]) for k in keys if k in new]
    duplicates = sum(len(b) for b in batches) - sum(len(b) for b, _ in fresh)
    return fresh, duplicates, tuple(conflicts)


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
            values, flags = _stored_values(batch)
            for row in zip(
                batch.patient,
                batch.metric.tolist(),
                batch.time.tolist(),
                values,
                flags,
                batch.device,
                strict=True,
            ):
                copy.write_row((*row, gateway, seq))


def _stored_values(batch: Batch) -> tuple[list[float | None], list[int]]:
    """Values and flags as ``observation`` holds them: an absent reading's value NULL, and
    its flags with the invalid bit (see the module's docstring)."""
    absent = batch.absent
    if not absent.any():
        return batch.value.tolist(), batch.flags.tolist()
    values = [None if a else v for a, v in zip(absent.tolist(), batch.value.tolist(), strict=True)]
    return values, (batch.flags | np.where(absent, int(Quality.INVALID), 0)).tolist()


def dead_letter(
    conn: psycopg.Connection,
    topic: str,
    gateway: str | None,
    payload: bytes | bytearray,
    reason: str,
    max_bytes: int | None = 65536,
) -> None:
    """Set a payload aside with the reason: at most ``max_bytes`` of it (None: all), with
    the whole payload's length and SHA-256, which identify it; the reason, which can quote
    the payload, is cut at :data:`MAX_REASON_CHARS`."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    conn.execute(
        "INSERT INTO dead_letter (topic, gateway, payload, payload_size, payload_sha256, reason)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (topic, gateway, bytes(payload[:max_bytes]), len(payload), digest(payload), reason),
    )
