"""Daily partitions of ``observation`` and ``observation_1m``: made ahead, made on demand,
dropped after the retention period. With TimescaleDB (see :func:`storage`) chunks are the
extension's business and retention is one of its policies, set here from the setting.

Ingest creates today's and the next two days' partitions when it starts and every hour, so
the live stream never waits on DDL. A gateway's backlog can carry readings from days
before (its outbox holds days): a flush that finds no partition for a row makes the days
it spans and retries (:func:`ensure_span`). Retention drops a whole day at once, which
costs nothing like deleting its rows; readings older than the retention period are refused
before they are stored (see :mod:`vigil.screening`), so a dropped day is not recreated.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import psycopg

from vigil.wire.batch import Batch

log = logging.getLogger(__name__)

TABLES = ("observation", "observation_1m")
AHEAD_DAYS = 2
MAX_SPAN_DAYS = 400
"""A flush spanning more days than this is refused rather than given a partition per day."""
_PARTITION = re.compile(r"^(observation(?:_1m)?)_(\d{8})$")


_storage: weakref.WeakKeyDictionary[psycopg.Connection, str] = weakref.WeakKeyDictionary()


def storage(conn: psycopg.Connection) -> str:
    """'partitions' or 'timescaledb': which variant of the schema this database has."""
    if conn not in _storage:
        with conn.transaction():  # never leaves a transaction open behind the caller
            row = conn.execute("SELECT vigil_storage()").fetchone()
        _storage[conn] = str(row[0]) if row else "partitions"
    return _storage[conn]


def ensure_days(conn: psycopg.Connection, first: date, last: date) -> int:
    """Partitions for every day from ``first`` to ``last`` (UTC) in both tables; returns
    how many were created."""
    created = 0
    day = first
    while day <= last:
        for table in TABLES:
            row = conn.execute("SELECT vigil_ensure_day(%s, %s)", (table, day)).fetchone()
            created += bool(row and row[0])
        day += timedelta(days=1)
    return created


def ensure_span(conn: psycopg.Connection, batches: Sequence[Batch]) -> int:
    """Partitions for the days the batches' readings fall on."""
    times = [t for b in batches if len(b) for t in (int(b.time.min()), int(b.time.max()))]
    if not times:
        return 0
    first, last = (datetime.fromtimestamp(t / 1000, UTC).date() for t in (min(times), max(times)))
    if (last - first).days > MAX_SPAN_DAYS:
        raise ValueError(f"readings span {(last - first).days} days; refusing to partition")
    return ensure_days(conn, first, last)


def drop_expired(conn: psycopg.Connection, retention_days: int, today: date) -> list[str]:
    """Drop the day partitions entirely older than ``retention_days``; 0 keeps everything."""
    if retention_days <= 0:
        return []
    cutoff = today - timedelta(days=retention_days)
    dropped = []
    for (name,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE c.relkind = 'r'"
        " AND i.inhparent IN ('observation'::regclass, 'observation_1m'::regclass)"
    ).fetchall():
        match = _PARTITION.fullmatch(name)
        if match and datetime.strptime(match[2], "%Y%m%d").date() < cutoff:
            conn.execute(f'DROP TABLE "{name}"')
            dropped.append(name)
    return sorted(dropped)


def housekeeping(conn: psycopg.Connection, retention_days: int, today: date) -> None:
    """Partitions ahead, expired ones dropped: one transaction, run at start and hourly."""
    if storage(conn) == "timescaledb":
        with conn.transaction():
            retention_policy(conn, retention_days)
        return
    with conn.transaction():
        created = ensure_days(conn, today - timedelta(days=1), today + timedelta(days=AHEAD_DAYS))
        dropped = drop_expired(conn, retention_days, today)
    if created:
        log.info("created %d day partitions", created)
    if dropped:
        log.info("dropped %d day partitions past the retention period", len(dropped))


_RETENTION_JOB = """
SELECT (j.config->>'drop_after')::interval FROM timescaledb_information.jobs j
JOIN pg_namespace n ON n.nspname = j.hypertable_schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = j.hypertable_name
WHERE j.proc_name = 'policy_retention' AND c.oid = %s::regclass
"""


def retention_policy(conn: psycopg.Connection, retention_days: int) -> None:
    """TimescaleDB: drop chunks of both tables older than ``retention_days`` (0: none).

    A policy already as asked is left alone, and the lock makes each ingest process wait
    for the one before: replaced at every housekeeping, a policy was a new job every hour
    (its run history gone), and two ingest processes replacing it at once failed with
    "tuple concurrently deleted"."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('vigil_retention_policy'))")
    wanted = [timedelta(days=retention_days)] if retention_days > 0 else []
    for table in TABLES:
        if [r[0] for r in conn.execute(_RETENTION_JOB, (table,))] == wanted:
            continue
        conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
        if wanted:
            conn.execute(
                "SELECT add_retention_policy(%s, make_interval(days => %s))",
                (table, retention_days),
            )
