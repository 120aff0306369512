"""Storing decoded batches: binary COPY into a staging table, then one INSERT that skips
rows already stored. Both steps run inside the caller's transaction.

A batch is recognized by ``(gateway, seq)``: a redelivered batch only bumps its delivery
count and never reaches the observation table. Rows are also unique on
``(patient, metric, effective, device)``, so even a batch re-sealed under a new ``seq``
cannot double a reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from vigil.wire.batch import Batch

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_observation (
    patient text, metric smallint, effective_ms bigint, value double precision,
    flags integer, device text, gateway text, seq bigint
) ON COMMIT DELETE ROWS
"""
_COPY = (
    "COPY staging_observation (patient, metric, effective_ms, value, flags, device, gateway, seq)"
    " FROM STDIN (FORMAT BINARY)"
)
_TYPES = ["text", "int2", "int8", "float8", "int4", "text", "text", "int8"]
_INSERT = """
INSERT INTO observation (patient, metric, effective, value, flags, device, gateway, seq)
SELECT patient, metric, timestamptz 'epoch' + effective_ms * interval '1 millisecond',
       value, flags, device, gateway, seq
FROM staging_observation
ON CONFLICT (patient, metric, effective, device) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class Stored:
    readings: int
    """Rows that reached the observation table."""
    duplicates: int
    """Readings not stored because they were already there (redelivery or overlap)."""


def store(conn: psycopg.Connection, batches: Sequence[Batch]) -> Stored:
    fresh: list[Batch] = []
    duplicates = 0
    seen: set[tuple[str, int]] = set()
    with conn.cursor() as cur:
        for batch in batches:
            key = (batch.gateway, batch.seq)
            cur.execute(
                "INSERT INTO ingest_batch (gateway, seq, readings) VALUES (%s, %s, %s)"
                " ON CONFLICT (gateway, seq)"
                " DO UPDATE SET deliveries = ingest_batch.deliveries + 1"
                " RETURNING deliveries",
                (batch.gateway, batch.seq, len(batch)),
            )
            row = cur.fetchone()
            if key in seen or (row is not None and row[0] > 1):
                duplicates += len(batch)
            else:
                fresh.append(batch)
            seen.add(key)
        staged = sum(len(b) for b in fresh)
        if not staged:
            return Stored(0, duplicates)
        cur.execute(_STAGING)
        with cur.copy(_COPY) as copy:
            copy.set_types(_TYPES)
            for batch in fresh:
                for i in range(len(batch)):
                    copy.write_row(
                        (
                            batch.patient[i],
                            int(batch.metric[i]),
                            int(batch.time[i]),
                            float(batch.value[i]),
                            int(batch.flags[i]),
                            batch.device[i],
                            batch.gateway,
                            batch.seq,
                        )
                    )
        cur.execute(_INSERT)
        inserted = cur.rowcount
    return Stored(inserted, duplicates + staged - inserted)


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
