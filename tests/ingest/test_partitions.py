"""Day partitions and the one-minute rollup, against a real PostgreSQL."""

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from ingest import partitions, writer
from tests.builders import T0, batch
from vigil.db.migrate import available, migrate
from vigil.wire.quality import Quality

pytestmark = pytest.mark.services
DAY_MS = 86_400_000
T0_DAY = datetime.fromtimestamp(T0 / 1000, UTC).date()


@pytest.fixture
def plain_database_url(database_url: str) -> str:
    """Native partitions are the plain-PostgreSQL path; with TimescaleDB the extension's
    chunks replace them (tests/ingest/test_timescaledb.py)."""
    with psycopg.connect(database_url) as conn:
        if partitions.storage(conn) != "partitions":
            pytest.skip("this database uses TimescaleDB, not native partitions")
    return database_url


def partition_names(conn: psycopg.Connection) -> list[str]:
    return sorted(
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE c.relkind = 'r'"
        )
    )


def test_a_backlog_from_earlier_days_gets_its_partitions(plain_database_url: str) -> None:
    database_url = plain_database_url
    rows = [("p0001", "spo2", T0 - 3 * DAY_MS, 95.0), ("p0001", "spo2", T0, 96.0)]
    with psycopg.connect(database_url) as conn:
        assert writer.store(conn, [batch(rows=rows)]) == writer.Stored(2, 0)
        conn.commit()
        names = partition_names(conn)
    days = [(T0_DAY - timedelta(days=d)).strftime("%Y%m%d") for d in (3, 2, 1, 0)]
    assert names == sorted(
        [f"observation_{d}" for d in days] + [f"observation_1m_{d}" for d in days]
    )


def test_days_are_made_once(plain_database_url: str) -> None:
    database_url = plain_database_url
    with psycopg.connect(database_url) as conn:
        assert partitions.ensure_days(conn, date(2026, 3, 1), date(2026, 3, 3)) == 6
        assert partitions.ensure_days(conn, date(2026, 3, 2), date(2026, 3, 4)) == 2


def test_retention_drops_whole_days_and_keeps_the_rest(plain_database_url: str) -> None:
    database_url = plain_database_url
    with psycopg.connect(database_url) as conn:
        partitions.ensure_days(conn, date(2026, 3, 1), date(2026, 3, 10))
        dropped = partitions.drop_expired(conn, retention_days=7, today=date(2026, 3, 10))
        kept = partition_names(conn)
        assert partitions.drop_expired(conn, retention_days=0, today=date(2026, 3, 10)) == []
    assert dropped == sorted(
        f"observation{suffix}_2026030{d}" for d in (1, 2) for suffix in ("", "_1m")
    )
    assert kept[0] == "observation_1m_20260303" and len(kept) == 16


def test_housekeeping_makes_today_and_the_days_ahead(plain_database_url: str) -> None:
    database_url = plain_database_url
    with psycopg.connect(database_url) as conn:
        partitions.housekeeping(conn, retention_days=30, today=date(2026, 11, 25))
        names = [n for n in partition_names(conn) if not n.startswith("observation_1m")]
    assert names == [f"observation_202611{d}" for d in (24, 25, 26, 27)]


def test_a_batch_spanning_centuries_is_refused_not_partitioned(plain_database_url: str) -> None:
    database_url = plain_database_url
    rows = [("p0001", "spo2", T0, 95.0), ("p0001", "spo2", T0 + 3000 * DAY_MS, 95.0)]
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        writer.store(conn, [batch(rows=rows)])


def test_the_rollup_agrees_with_the_rows_it_summarizes(database_url: str) -> None:
    minute = T0 - T0 % 60_000
    first = [("p0001", "spo2", minute + i * 1000, 90.0 + i) for i in range(5)]
    with psycopg.connect(database_url) as conn:
        writer.store(conn, [batch(seq=0, rows=first)])
        writer.store(conn, [batch(seq=0, rows=first)])  # redelivered: not counted twice
        overlapping = [*first[3:], ("p0001", "spo2", minute + 70_000, 99.0)]
        writer.store(conn, [batch(seq=1, rows=overlapping)])  # the slow path
        invalid = [("p0001", "spo2", minute + 10_000, 50.0)]
        writer.store(conn, [batch(seq=2, rows=invalid, flags=[int(Quality.INVALID)])])
        conn.commit()
        rollup = conn.execute(
            "SELECT bucket, min, max, sum, count FROM observation_1m ORDER BY bucket"
        ).fetchall()
        raw = conn.execute(
            "SELECT date_bin('1 minute', effective, timestamptz 'epoch'),"
            " min(value), max(value), sum(value), count(*)"
            " FROM observation WHERE flags & 16 = 0 GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert rollup == raw
    assert [r[1:] for r in rollup] == [(90.0, 94.0, 460.0, 5), (99.0, 99.0, 99.0, 1)]


def test_rows_stored_before_migration_3_are_kept_and_rolled_up(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url) as conn:
        for version, _name, sql in available():
            if version < 3:
                conn.execute(sql.encode())
        conn.execute(
            "CREATE TABLE schema_migration (version integer PRIMARY KEY, name text NOT NULL,"
            " applied timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO schema_migration (version, name) VALUES (1, 'a'), (2, 'b')")
        conn.execute(
            "INSERT INTO observation (patient, metric, effective, value, device, gateway, seq)"
            " VALUES ('p1', 2, '2026-01-01T10:00:05Z', 95, 'd', 'g', 0),"
            " ('p1', 2, '2026-01-01T10:00:35Z', 97, 'd', 'g', 0),"
            " ('p1', 2, '2026-01-03T08:00:00Z', 93, 'd', 'g', 1)"
        )
        conn.commit()
        applied = migrate(conn)
        kind = partitions.storage(conn)
        names = [n for n in partition_names(conn) if not n.startswith("observation_1m")]
        (rows,) = conn.execute("SELECT count(*) FROM observation").fetchone()  # type: ignore[misc]
        buckets = conn.execute("SELECT count, sum FROM observation_1m ORDER BY bucket").fetchall()
    if kind == "partitions":
        assert applied[0] == "003_partitions_and_rollup.sql"
        assert names == ["observation_20260101", "observation_20260103"]
    else:
        assert applied[0] == "003_partitions_and_rollup.timescaledb.sql"
    assert rows == 3 and buckets == [(2, 192.0), (1, 93.0)]


def test_asking_which_storage_leaves_no_transaction_open(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert partitions.storage(conn) in ("partitions", "timescaledb")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
