"""The TimescaleDB path: hypertable, compression, continuous aggregate, retention policy,
the policies' jobs as days pass, and the plan of $stats.

They run on the ``timescaledb_url`` server (tests/conftest.py): a private embedded
PostgreSQL preloading the TimescaleDB that `make test` installs from ../shared/timescaledb,
or ``VIGIL_TEST_TIMESCALEDB_URL``. They use one connection and a schema of their own, so a
single-session server serves too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.routes.observation_operations import stats_query
from ingest import partitions, retention, writer
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
    rollup_segments = conn.execute(
        "SELECT attname FROM timescaledb_information.compression_settings s"
        " JOIN timescaledb_information.continuous_aggregates c"
        " ON c.materialization_hypertable_name = s.hypertable_name"
        " WHERE c.view_schema = current_schema() AND c.view_name = 'observation_1m'"
        " AND segmentby_column_index IS NOT NULL ORDER BY segmentby_column_index"
    ).fetchall()
    assert [s for (s,) in rollup_segments] == ["patient", "metric"], "017: a patient's own"
    jobs = {
        (p, h)
        for p, h in conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL"
        )
    }
    assert ("policy_compression", "observation") in jobs
    assert ("policy_compression", "observation_1m") in jobs
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


def test_housekeeping_keeps_a_policy_as_asked_and_two_ingests_can_run_it_at_once(
    conn: psycopg.Connection, timescaledb_url: str
) -> None:
    migrate(conn)
    conn.commit()
    conn.autocommit = True  # as ingest's connection: each housekeeping its own transaction
    partitions.housekeeping(conn, retention_days=30, today=date(2026, 11, 25))
    jobs = (
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()"
    )
    before = conn.execute(jobs).fetchall()
    partitions.housekeeping(conn, retention_days=30, today=date(2026, 11, 26))
    assert conn.execute(jobs).fetchall() == before, "not a new job every hour"
    # A second ingest's housekeeping while the first one's changing the policy waits for
    # it, then finds the policy as asked (it used to fail: "tuple concurrently deleted").
    (search_path,) = conn.execute("SHOW search_path").fetchone()  # type: ignore[misc]
    failed: list[BaseException] = []
    with psycopg.connect(timescaledb_url, autocommit=True) as other:
        other.execute(f"SET search_path TO {search_path}")
        (other_pid,) = other.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]

        def second() -> None:
            try:
                partitions.housekeeping(other, retention_days=20, today=date(2026, 11, 26))
            except psycopg.Error as exc:
                failed.append(exc)

        with conn.transaction():
            partitions.retention_policy(conn, 10)
            thread = threading.Thread(target=second)
            thread.start()
            waiting = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s"
            while thread.is_alive() and conn.execute(waiting, (other_pid,)).fetchone() != (True,):
                pass
        thread.join()
    assert failed == []
    drop_after = conn.execute(
        "SELECT DISTINCT config->>'drop_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()"
    ).fetchall()
    assert drop_after == [("20 days",)], "the second one's setting, made after the first's"


def test_stats_reads_the_continuous_aggregates_materialized_rows(conn: psycopg.Connection) -> None:
    """The very query of `Observation/$stats`, over four days of which all but the last
    hour are materialized: its plan reads the materialized hypertable, and raw chunks only
    past the aggregate's watermark."""
    migrate(conn)
    conn.execute(
        "INSERT INTO observation (patient, metric, effective, value, flags, device, gateway, seq)"
        " SELECT 'p0001', 2, now() - g * interval '1 minute', 90 + g % 10, 0, 'd', 'g', g"
        " FROM generate_series(1, 4 * 1440) g"
    )
    conn.commit()
    conn.autocommit = True
    conn.execute(
        "CALL refresh_continuous_aggregate('observation_1m', NULL, now() - interval '1 hour')"
    )
    (materialized, watermark) = conn.execute(
        "SELECT h.table_name, _timescaledb_functions.to_timestamp("
        "_timescaledb_functions.cagg_watermark(c.mat_hypertable_id))"
        " FROM _timescaledb_catalog.continuous_agg c"
        " JOIN _timescaledb_catalog.hypertable h ON h.id = c.mat_hypertable_id"
        " WHERE c.user_view_schema = current_schema() AND c.user_view_name = 'observation_1m'"
    ).fetchone()  # type: ignore[misc]
    end = datetime.now(UTC)
    window = ("p0001", 2, end - timedelta(days=5), end)
    sql = stats_query(["count", "minimum", "maximum", "average", "sum"])
    ((plan,),) = conn.execute("EXPLAIN (FORMAT JSON) " + sql, window).fetchall()
    chunks = {
        name: (table, range_end)
        for name, table, range_end in conn.execute(
            "SELECT chunk_name, hypertable_name, range_end FROM timescaledb_information.chunks"
        )
    }
    read = [chunks[name] for name in relations(plan[0]["Plan"]) if name in chunks]
    assert any(table == materialized for table, _ in read), plan
    raw = [range_end for table, range_end in read if table == "observation"]
    assert raw and all(range_end > watermark for range_end in raw), (watermark, raw)
    assert conn.execute(sql, window).fetchone() == (5760, 90.0, 99.0, 94.5, 5760 * 94.5)


def relations(node: dict[str, Any]) -> Iterator[str]:
    """The names of the relations a plan's nodes scan."""
    if "Relation Name" in node:
        yield node["Relation Name"]
    for child in node.get("Plans", ()):
        yield from relations(child)


DAY = timedelta(days=1)


def run_policies(conn: psycopg.Connection, at: datetime) -> None:
    """This schema's retention and compression jobs as the scheduler would run them at
    ``at``: each its own procedure with its own config, the age in it less the time from
    now to ``at`` (the policies count age from now(), which a test cannot move)."""
    jobs = conn.execute(
        "SELECT job_id, format('%I.%I', proc_schema, proc_name), config,"
        " CASE proc_name WHEN 'policy_retention' THEN 'drop_after' ELSE 'compress_after' END"
        " FROM timescaledb_information.jobs WHERE hypertable_schema = current_schema()"
        " AND proc_name IN ('policy_retention', 'policy_compression') ORDER BY proc_name DESC"
    ).fetchall()
    assert len(jobs) == 4, jobs  # both tables, both policies
    for job_id, procedure, config, age in jobs:
        conn.execute(
            f"CALL {procedure}(%s, %s::jsonb || jsonb_build_object(%s::text,"
            " (%s::interval - (%s::timestamptz - now()))::text))",
            (job_id, psycopg.types.json.Jsonb(config), age, config[age], at),
        )


@pytest.mark.slow
def test_retention_and_compression_follow_the_days_as_they_pass(conn: psycopg.Connection) -> None:
    """A reading at noon on each of the last 40 days, its batch received then; each day
    for a week, at 01:00, what ingest's housekeeping and the policies do with 30 days of
    retention: the days past it are gone, readings and batch accounting alike, the chunks
    past 7 days are compressed, and the newest stay as they are."""
    migrate(conn)
    conn.autocommit = True
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    noons = [today + day * DAY + timedelta(hours=12) for day in range(-40, 1)]
    readings = [("p0001", "spo2", int(noon.timestamp() * 1000), 95.0) for noon in noons]
    writer.store(conn, [batch(seq=seq, rows=[r]) for seq, r in enumerate(readings)])
    conn.execute(
        "UPDATE ingest_batch SET received = timestamptz 'epoch'"
        " + (seq - 40) * interval '1 day' + %s::interval",
        (today - datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=12, seconds=1),),
    )
    conn.execute("CALL refresh_continuous_aggregate('observation_1m', NULL, NULL)")
    materialized = conn.execute(
        "SELECT materialization_hypertable_name FROM timescaledb_information.continuous_aggregates"
        " WHERE view_schema = current_schema() AND view_name = 'observation_1m'"
    ).fetchone()
    for passed in range(7):
        at = today + passed * DAY + timedelta(hours=1)
        partitions.housekeeping(conn, retention_days=30, today=at.date())
        run_policies(conn, at)
        retention.prune(conn, 30, at)
        kept = set(range(passed - 30, 1))

        def days(sql: str) -> set[int]:
            return {(t - today) // DAY for (t,) in conn.execute(sql)}

        assert days("SELECT effective FROM observation") == kept
        assert days("SELECT received FROM ingest_batch") == kept
        assert kept <= days("SELECT bucket FROM observation_1m")
        chunks = {
            (t - today) // DAY: compressed
            for t, compressed in conn.execute(
                "SELECT range_start, is_compressed FROM timescaledb_information.chunks"
                " WHERE hypertable_schema = current_schema() AND hypertable_name = 'observation'"
            )
        }
        assert set(chunks) == kept
        assert {d for d, compressed in chunks.items() if compressed} == set(
            range(passed - 30, passed - 7)
        ), f"day {passed}: the chunks that ended 7 days before"
        for end, compressed in conn.execute(
            "SELECT range_end, is_compressed FROM timescaledb_information.chunks"
            " WHERE hypertable_name = %s",
            materialized,
        ):
            assert end > at - 30 * DAY, "a rollup chunk past retention"
            assert compressed == (end <= at - 7 * DAY), (passed, end)
