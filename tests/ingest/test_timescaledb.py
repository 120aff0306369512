"""The TimescaleDB path: hypertable, compression, continuous aggregate, retention policy.

They run on the ``timescaledb_url`` server (tests/conftest.py): a private embedded
PostgreSQL preloading the TimescaleDB that `make test` installs from ../shared/timescaledb,
or ``VIGIL_TEST_TIMESCALEDB_URL``. They use one connection and a schema of their own, so a
single-session server serves too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from ingest import partitions, writer
from ingest.stats import gateway_stats
from tests.builders import T0, batch
from vigil.db.migrate import migrate
from vigil.wire.quality import Quality

pytestmark = pytest.mark.services


@pytest.fixture
def conn(timescaledb_url: str) -> Iterator[psycopg.Connection]:
    schema = f"vigil_ts_{os.getpid()}"
    with psycopg.connect(timescaledb_url, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        c.execute(f"CREATE SCHEMA {schema}")
        c.execute(f"SET search_path TO {schema}, public")
        c.autocommit = False
        yield c
        c.rollback()
        c.autocommit = True
        c.execute(f"DROP SCHEMA {schema} CASCADE")


def test_migrations_make_a_compressed_hypertable_and_a_continuous_aggregate(
    conn: psycopg.Connection,
) -> None:
    applied = migrate(conn)
    assert "003_partitions_and_rollup.timescaledb.sql" in applied
    assert partitions.storage(conn) == "timescaledb"
    (interval,) = conn.execute(
        "SELECT time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_name = 'observation'"
    ).fetchone()  # type: ignore[misc]
    assert interval.days == 1
    segments = conn.execute(
        "SELECT attname FROM timescaledb_information.compression_settings"
        " WHERE hypertable_name = 'observation' AND segmentby_column_index IS NOT NULL"
        " ORDER BY segmentby_column_index"
    ).fetchall()
    assert [s for (s,) in segments] == ["patient", "metric"]
    jobs = {
        (p, h)
        for p, h in conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL"
        )
    }
    assert ("policy_compression", "observation") in jobs
    assert any(p == "policy_refresh_continuous_aggregate" for p, _ in jobs)


def test_rows_and_their_rollup_through_both_write_paths(conn: psycopg.Connection) -> None:
    migrate(conn)
    minute = T0 - T0 % 60_000
    first = [("p0001", "spo2", minute + i * 1000, 90.0 + i) for i in range(5)]
    assert writer.store(conn, [batch(seq=0, rows=first)]) == writer.Stored(5, 0)
    assert writer.store(conn, [batch(seq=0, rows=first)]) == writer.Stored(0, 5)
    overlapping = [*first[3:], ("p0001", "spo2", minute + 70_000, 99.0)]
    assert writer.store(conn, [batch(seq=1, rows=overlapping)]) == writer.Stored(1, 2)
    invalid = [("p0001", "spo2", minute + 10_000, 50.0)]
    writer.store(conn, [batch(seq=2, rows=invalid, flags=[int(Quality.INVALID)])])
    conn.commit()
    rollup = conn.execute(
        "SELECT min, max, sum, count FROM observation_1m ORDER BY bucket"
    ).fetchall()
    assert rollup == [(90.0, 94.0, 460.0, 5), (99.0, 99.0, 99.0, 1)]
    found = {g.gateway: g for g in gateway_stats(conn)}
    assert found["gw-1"].readings_stored == 7 and found["gw-1"].duplicates == 7


def test_the_continuous_aggregate_leaves_invalid_readings_out(conn: psycopg.Connection) -> None:
    migrate(conn)
    conn.execute(
        "INSERT INTO observation (patient, metric, effective, value, flags, device, gateway, seq)"
        " VALUES ('p1', 2, '2026-01-01T10:00:05Z', 95, 0, 'd', 'g', 0),"
        " ('p1', 2, '2026-01-01T10:00:35Z', 97, 0, 'd', 'g', 0),"
        " ('p1', 2, '2026-01-01T10:00:40Z', 20, 16, 'd', 'g', 0),"
        " ('p1', 2, '2026-01-01T10:01:00Z', 93, 0, 'd', 'g', 1)"
    )
    conn.commit()
    rollup = conn.execute(
        "SELECT bucket, min, max, sum, count FROM observation_1m ORDER BY bucket"
    ).fetchall()
    assert [r[1:] for r in rollup] == [(95.0, 97.0, 192.0, 2), (93.0, 93.0, 93.0, 1)]
    assert rollup[0][0].isoformat().startswith("2026-01-01T10:00:00")


def test_retention_is_a_policy_on_both_tables(conn: psycopg.Connection) -> None:
    migrate(conn)
    partitions.housekeeping(conn, retention_days=30, today=date(2026, 11, 25))
    policies = conn.execute(
        "SELECT hypertable_name, config->>'drop_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' ORDER BY hypertable_name"
    ).fetchall()
    assert [d for _, d in policies] == ["30 days", "30 days"]
    partitions.housekeeping(conn, retention_days=0, today=date(2026, 11, 25))
    (left,) = conn.execute(
        "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
    ).fetchone()  # type: ignore[misc]
    assert left == 0


def test_absent_readings_reach_compressed_chunks_and_stay_out_of_the_aggregate(
    conn: psycopg.Connection,
) -> None:
    """Migration 015 over a hypertable whose chunk is already compressed (undone first, so
    that it runs again as on an upgrade), then an absent reading through the writer."""
    migrate(conn)
    conn.execute("ALTER TABLE observation DROP CONSTRAINT observation_value_or_reason")
    conn.execute("ALTER TABLE observation ALTER COLUMN value SET NOT NULL")
    conn.execute("DELETE FROM schema_migration WHERE version = 15")
    minute = T0 - T0 % 60_000
    writer.store(conn, [batch(rows=[("p0001", "spo2", minute, 95.0)])])
    conn.execute("SELECT compress_chunk(c) FROM show_chunks('observation') c")
    assert "015_absent_values.sql" in migrate(conn)
    absent = [("p0001", "spo2", minute + 1000, float("nan"))]
    writer.store(conn, [batch(seq=1, rows=absent, flags=[int(Quality.NOT_A_NUMBER)])])
    conn.commit()
    stored = conn.execute("SELECT value FROM observation ORDER BY effective").fetchall()
    rollup = conn.execute("SELECT min, max, sum, count FROM observation_1m").fetchall()
    assert stored == [(95.0,), (None,)]
    assert rollup == [(95.0, 95.0, 95.0, 1)]
