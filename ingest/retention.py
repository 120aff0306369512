"""What ingest keeps beside the observations, kept no longer than they are.

Dead letters hold raw payloads, patient data like the readings themselves, and batch
accounting (``ingest_batch``) grows by a row a second per gateway: both go with
``VIGIL_RETENTION_DAYS``, in ingest's hourly housekeeping. The observations' own days are
dropped by :mod:`ingest.partitions`.

Batch accounting is pruned per gateway up to a ``seq``: the highest received before the
cut-off, with every lower one, and that ``seq`` is kept in ``ingest_pruned`` so that gaps
(:mod:`ingest.stats`) are counted from the next one, not from 0. A late batch below it
(a backlog received after the cut-off with an older ``seq``) goes too: accounting of what
is past retention is not worth a hole in the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

_PRUNE_BATCHES = """
WITH floor AS (
    SELECT gateway, max(seq) AS through_seq FROM ingest_batch
    WHERE received < %(cutoff)s GROUP BY gateway
), pruned AS (
    DELETE FROM ingest_batch b USING floor f
    WHERE b.gateway = f.gateway AND b.seq <= f.through_seq
    RETURNING 1
), noted AS (
    INSERT INTO ingest_pruned (gateway, through_seq) SELECT gateway, through_seq FROM floor
    ON CONFLICT (gateway) DO UPDATE
    SET through_seq = greatest(ingest_pruned.through_seq, excluded.through_seq)
)
SELECT count(*) FROM pruned
"""


@dataclass(frozen=True, slots=True)
class Pruned:
    dead_letters: int
    batches: int


def prune(conn: psycopg.Connection, retention_days: int, now: datetime) -> Pruned:
    """Delete dead letters and batch accounting received more than ``retention_days``
    before ``now``, in one transaction; 0 keeps everything."""
    if retention_days <= 0:
        return Pruned(0, 0)
    cutoff = now - timedelta(days=retention_days)
    with conn.transaction():
        letters = conn.execute("DELETE FROM dead_letter WHERE received < %s", (cutoff,)).rowcount
        row = conn.execute(_PRUNE_BATCHES, {"cutoff": cutoff}).fetchone()
    return Pruned(letters, int(row[0]) if row else 0)
