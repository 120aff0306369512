"""Small builders for test data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vigil.metrics import BY_NAME
from vigil.wire.batch import Batch

if TYPE_CHECKING:
    import psycopg

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def batch(
    gateway: str = "gw-1",
    seq: int = 0,
    rows: list[tuple[str, str, int, float]] | None = None,
    flags: list[int] | None = None,
) -> Batch:
    """rows: (patient, metric name, time ms, value)."""
    rows = (
        rows
        if rows is not None
        else [("p0001", "heart_rate", T0, 72.0), ("p0001", "spo2", T0, 97.0)]
    )
    n = len(rows)
    return Batch(
        gateway=gateway,
        seq=seq,
        sent=T0,
        device=tuple("C1:00:00:00:00:01" for _ in rows),
        patient=tuple(r[0] for r in rows),
        metric=np.array([BY_NAME[r[1]].id for r in rows], dtype=np.int16),
        time=np.array([r[2] for r in rows], dtype=np.int64),
        value=np.array([r[3] for r in rows], dtype=np.float64),
        flags=np.array(flags if flags is not None else [0] * n, dtype=np.int32),
    )


def schema_before(conn: psycopg.Connection, version: int) -> None:
    """An empty database brought up to the migrations before ``version``, recorded as
    applied: what an upgrade to ``version`` starts from."""
    from vigil.db.migrate import available

    conn.execute(
        "CREATE TABLE schema_migration (version integer PRIMARY KEY, name text NOT NULL,"
        " applied timestamptz NOT NULL DEFAULT now())"
    )
    for number, name, sql in available():
        if number < version:
            conn.execute(sql.encode())
            conn.execute("INSERT INTO schema_migration VALUES (%s, %s)", (number, name))
