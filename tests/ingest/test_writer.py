import hashlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest import writer
from ingest.stats import gateway_stats, ingest_stats
from tests.builders import T0, batch
from vigil.wire.quality import Quality

pytestmark = pytest.mark.services
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_rows_land_with_millisecond_times(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        result = writer.store(conn, [batch(rows=[("p0001", "spo2", T0 + 123, 91.5)], flags=[4])])
        conn.commit()
        row = conn.execute(
            "SELECT patient, metric, effective, value, flags, gateway, seq FROM observation"
        ).fetchone()
    assert result == writer.Stored(1, 0)
    assert row == ("p0001", 2, EPOCH + timedelta(milliseconds=T0 + 123), 91.5, 4, "gw-1", 0)


def test_a_redelivered_batch_changes_nothing(database_url: str) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    with psycopg.connect(database_url) as conn:
        first = writer.store(conn, [batch(seq=5)])
        again = writer.store(conn, [batch(seq=5)])
        twice_in_one_go = writer.store(conn, [batch(seq=6, rows=[("p2", "spo2", T0, 95.0)])] * 2)
        conn.commit()
        stats = ingest_stats(conn, since)
        (count,) = conn.execute("SELECT count(*) FROM observation").fetchone()  # type: ignore[misc]
    assert first == writer.Stored(2, 0)
    assert again == writer.Stored(0, 2)
    assert twice_in_one_go == writer.Stored(1, 1)
    assert count == 3
    assert (stats.readings_stored, stats.duplicates, stats.batches) == (3, 3, 2)


def test_overlapping_rows_from_a_new_seq_are_not_doubled(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        writer.store(conn, [batch(seq=0)])
        result = writer.store(
            conn,
            [
                batch(
                    seq=1,
                    rows=[
                        ("p0001", "heart_rate", T0, 72.0),
                        ("p0001", "heart_rate", T0 + 1000, 73.0),
                    ],
                )
            ],
        )
        conn.commit()
    assert result == writer.Stored(1, 1)


def test_a_rolled_back_store_can_be_redelivered(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        writer.store(conn, [batch(seq=9)])
        conn.rollback()  # as if ingest died before commit
        assert writer.store(conn, [batch(seq=9)]) == writer.Stored(2, 0)


def test_dead_letter_keeps_raw_bytes(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        writer.dead_letter(conn, "vigil/v1/gw/x/readings", "x", b"\x00\xff", "payload: not JSON")
        conn.commit()
        row = conn.execute("SELECT topic, gateway, payload, reason FROM dead_letter").fetchone()
    assert row == ("vigil/v1/gw/x/readings", "x", b"\x00\xff", "payload: not JSON")


def test_the_slow_path_records_what_each_batch_stored(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        writer.store(conn, [batch(seq=0)])
        overlapping = batch(
            seq=1,
            rows=[("p0001", "heart_rate", T0, 72.0), ("p0001", "heart_rate", T0 + 1000, 73.0)],
        )
        fresh = batch(seq=2, rows=[("p0005", "spo2", T0, 95.0)])
        result = writer.store(conn, [overlapping, fresh])
        conn.commit()
        stored = conn.execute(
            "SELECT seq, readings, stored FROM ingest_batch ORDER BY seq"
        ).fetchall()
    assert result == writer.Stored(2, 1)
    assert stored == [(0, 2, 2), (1, 2, 1), (2, 1, 1)]


def test_another_batch_under_a_seq_already_seen_is_stored_as_a_conflict(
    database_url: str,
) -> None:
    """Someone publishing as the gateway takes seq 3 first: the gateway's own seq 3 is not
    taken for a redelivery of it, but stored, and counted as a conflict."""
    squatter = batch(seq=3, rows=[("p0001", "spo2", T0, 91.0)])
    genuine = batch(seq=3, rows=[("p0001", "spo2", T0 + 1000, 97.0)])
    with psycopg.connect(database_url) as conn:
        first = writer.store(conn, [squatter])
        second = writer.store(conn, [genuine])
        redelivered = writer.store(conn, [genuine])
        (gw,) = gateway_stats(conn)
        values = [v for (v,) in conn.execute("SELECT value FROM observation ORDER BY effective")]
    assert first == writer.Stored(1, 0)
    assert second == writer.Stored(1, 0, (("gw-1", 3),))
    assert redelivered == writer.Stored(0, 1)
    assert values == [91.0, 97.0]
    assert (gw.batches, gw.conflicts, gw.gaps, gw.duplicates) == (2, 1, [(0, 2)], 1)


def test_two_batches_under_one_seq_in_one_flush_are_both_stored(database_url: str) -> None:
    one = batch(seq=0, rows=[("p0001", "spo2", T0, 91.0)])
    other = batch(seq=0, rows=[("p0001", "spo2", T0 + 1000, 97.0)])
    with psycopg.connect(database_url) as conn:
        result = writer.store(conn, [one, other])
    assert result == writer.Stored(2, 0, (("gw-1", 0),))


def test_a_large_dead_letter_keeps_a_prefix_its_size_and_its_digest(database_url: str) -> None:
    payload = b"x" * 100_000
    with psycopg.connect(database_url) as conn:
        writer.dead_letter(conn, "vigil/v1/gw/x/readings", "x", payload, "y" * 5000, 1024)
        row = conn.execute(
            "SELECT payload, payload_size, payload_sha256, reason FROM dead_letter"
        ).fetchone()
    assert row is not None
    kept, size, digest, reason = row
    assert (kept, size, digest) == (payload[:1024], 100_000, hashlib.sha256(payload).digest())
    assert len(reason) == writer.MAX_REASON_CHARS and reason.endswith("…")


def test_absent_readings_are_stored_without_a_value_and_out_of_the_rollup(
    database_url: str,
) -> None:
    minute = T0 - T0 % 60_000
    rows = [
        ("p0001", "spo2", minute + 1000, 95.0),
        ("p0001", "spo2", minute + 2000, float("nan")),
        ("p0001", "spo2", minute + 3000, float("nan")),
    ]
    nres, nan = int(Quality.NOT_AT_RESOLUTION), int(Quality.NOT_A_NUMBER | Quality.LOW_PERFUSION)
    with psycopg.connect(database_url) as conn:
        assert writer.store(conn, [batch(rows=rows, flags=[0, nres, nan])]) == writer.Stored(3, 0)
        # Through the slow path too: an overlap sends the next batch through staging.
        late = [rows[0], ("p0001", "spo2", minute + 4000, float("nan"))]
        infinity = int(Quality.POSITIVE_INFINITY)
        assert writer.store(conn, [batch(seq=1, rows=late, flags=[0, infinity])]) == (
            writer.Stored(1, 1)
        )
        conn.commit()
        stored = conn.execute("SELECT value, flags FROM observation ORDER BY effective").fetchall()
        rollup = conn.execute("SELECT min, max, sum, count FROM observation_1m").fetchall()
    invalid = int(Quality.INVALID)
    assert stored == [
        (95.0, 0),
        (None, nres | invalid),
        (None, nan | invalid),
        (None, infinity | invalid),
    ]
    assert rollup == [(95.0, 95.0, 95.0, 1)]


def test_the_table_refuses_a_missing_value_without_a_reason(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT vigil_ensure_day('observation', '2026-01-01')")
        with pytest.raises(psycopg.errors.CheckViolation, match="observation_value_or_reason"):
            conn.execute(
                "INSERT INTO observation (patient, metric, effective, value, flags, device,"
                " gateway, seq) VALUES ('p1', 2, '2026-01-01T10:00:00Z', NULL, 16, 'd', 'g', 0)"
            )
