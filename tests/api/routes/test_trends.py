"""The trend chart's points and the night report's figures, against values worked out here
from the readings seeded, on real PostgreSQL (and on TimescaleDB's continuous aggregate)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.trends import ROLLUP_TREND, SPANS, night_of, trend_points
from ingest import writer
from tests.api.conftest import clinician_token
from tests.builders import batch
from tests.ingest.test_timescaledb import conn, relations  # noqa: F401 (conn: its fixture)
from vigil.db.migrate import migrate
from vigil.metrics import SPO2
from vigil.settings import Settings
from vigil.wire.quality import Quality

pytestmark = pytest.mark.services
MINUTE_MS = 60_000
PARIS = ZoneInfo("Europe/Paris")


def week_of_readings(now_ms: int) -> list[tuple[str, str, int, float]]:
    """SpO2 twice a minute for a week, ending an hour ago; the ten-minute buckets differ in
    their minimum, maximum and mean."""
    first = now_ms - 7 * 86_400_000 + 3_600_000
    first -= first % MINUTE_MS
    readings = []
    for k in range((7 * 86_400_000 - 2 * 3_600_000) // 30_000):
        ms = first + k * 30_000
        readings.append(("p1", "spo2", ms, 80.0 + ms // 600_000 % 15 + k * 7 % 5))
    return readings


def by_bucket(rows: list[tuple[str, str, int, float]], width_ms: int) -> list[list[float]]:
    groups: dict[int, list[float]] = defaultdict(list)
    for _, _, ms, value in rows:
        groups[ms - ms % width_ms].append(value)
    return [[t, min(vs), round(sum(vs) / len(vs), 2), max(vs)] for t, vs in sorted(groups.items())]


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], str, dict[str, Any]]]:
    now_ms = int(time.time() * 1000)
    week = week_of_readings(now_ms)
    hour_start = now_ms - 1_800_000
    hour_start -= hour_start % 2000
    hour = [("p1", "spo2", hour_start + s * 1000, 90.0 + s % 5) for s in range(600)]
    with psycopg.connect(database_url) as db:
        writer.store(db, [batch(seq=0, rows=week), batch(seq=1, rows=hour)])
        # Raw readings older than two hours are gone: only the rollup can still tell the week.
        db.execute("DELETE FROM observation WHERE effective < now() - interval '2 hours'")
        token = clinician_token(db, "dr-trend", ["p1"])
        clinician_token(db, "dr-other", ["p2"], team="t-other")
        writer.store(db, [batch(seq=2, rows=[("p2", "spo2", hour_start, 80.0)])])
        db.commit()
    seeded = {"week": week, "hour": hour}
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, {"Authorization": f"Bearer {token}"}, database_url, seeded


def test_an_hour_is_drawn_from_the_raw_readings(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url, seeded = api
    answer = client.get("/patients/p1/trend?metric=spo2&range=1h", headers=auth)
    assert answer.status_code == 200
    doc = answer.json()
    assert (doc["source"], doc["bucket_s"], doc["patient"], doc["unit"]) == ("raw", 2, "p1", "%")
    assert doc["points"] == by_bucket(seeded["hour"], 2000)  # finer than any rollup
    with psycopg.connect(url) as db:
        audited = db.execute(
            "SELECT actor, action, resource, patients FROM audit_event ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert audited == ("dr-trend", "search", "/patients/p1/trend", ["p1"])


def test_a_week_is_drawn_from_the_rollup_in_ten_minute_buckets(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _, seeded = api
    doc = client.get("/patients/p1/trend?metric=spo2&range=7d", headers=auth).json()
    assert (doc["source"], doc["bucket_s"]) == ("rollup", 600)
    expected = by_bucket(seeded["week"] + seeded["hour"], 600_000)
    assert doc["points"] == expected
    assert len(doc["points"]) <= 2016
    assert len({(p[1], p[3]) for p in doc["points"]}) >= 15
    values = [r[3] for r in seeded["week"] + seeded["hour"]]
    assert doc["summary"] == {
        "readings": len(values),
        "lowest": min(values),
        "highest": max(values),
        "mean": round(sum(values) / len(values), 1),
    }
    month = client.get("/patients/p1/trend?range=30d", headers=auth).json()
    assert month["points"] == by_bucket(seeded["week"] + seeded["hour"], 1_800_000)
    assert (
        client.get("/patients/p1/trend?metric=pulse_rate&range=24h", headers=auth).json()["points"]
        == []
    )


def test_a_patient_outside_the_compartment_is_not_found_and_bad_values_are_refused(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _, _ = api
    for path in ("/patients/p2/trend", "/patients/p2/night", "/patients/nobody/trend"):
        answer = client.get(path, headers=auth)
        assert answer.status_code == 404, path
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert "p2" not in answer.text
    for query in (
        "trend?range=2h",
        "trend?metric=heart_rate",
        "night?date=2026-02-30",
        "night?date=26-01-01",
        "night?date=١٢٣٤-01-01",
        "night?date=0001-01-01",
        "night?tz=Mars/Olympus",
        "night?tz=../../etc/passwd",
    ):
        answer = client.get(f"/patients/p1/{query}", headers=auth)
        assert answer.status_code == 400, query
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert client.get("/patients/p1/trend").status_code == 401


def paris_ms(day: date, hour: int, minute: int = 0, second: int = 0) -> int:
    moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PARIS)
    return int(moment.timestamp() * 1000)


def test_the_night_report_counts_each_reading_until_the_next_ten_seconds_at_most(
    database_url: str,
) -> None:
    """One hour at 1 Hz, 95 % but for ten minutes at 87 % and five at 89 %; an isolated
    85 % an hour later and a last 95 % half an hour after it (each holds 10 s, not the
    gap); around them, readings that do not count: before 22:00, at 07:00, invalid."""
    before, day = date(2025, 11, 23), date(2025, 11, 24)
    spo2 = []
    for s in range(3600):
        value = 87.0 if 600 <= s < 1200 else 89.0 if 1800 <= s < 2100 else 95.0
        spo2.append(("p1", "spo2", paris_ms(before, 23) + s * 1000, value))
    spo2 += [
        ("p1", "spo2", paris_ms(day, 1), 85.0),
        ("p1", "spo2", paris_ms(day, 1, 30), 95.0),
        ("p1", "spo2", paris_ms(before, 21, 59, 59), 80.0),
        ("p1", "spo2", paris_ms(day, 7), 80.0),
    ]
    invalid = [("p1", "spo2", paris_ms(day, 2), 70.0)]
    pulse = [
        ("p1", "pulse_rate", paris_ms(day, h), v) for h, v in ((0, 52.0), (3, 71.0), (6, 118.0))
    ] + [("p1", "pulse_rate", paris_ms(day, 8), 40.0)]
    with psycopg.connect(database_url) as db:
        writer.store(
            db,
            [
                batch(seq=0, rows=spo2 + pulse),
                batch(seq=1, rows=invalid, flags=[int(Quality.INVALID)]),
            ],
        )
        token = clinician_token(db, "dr-night", ["p1"])
        db.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        answer = client.get(
            "/patients/p1/night?date=2025-11-24&tz=Europe/Paris",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["start"], doc["end"]) == ("2025-11-23T22:00:00+01:00", "2025-11-24T07:00:00+01:00")
    assert doc["held_at_most_s"] == 10
    assert doc["spo2"] == {
        "readings": 3602,
        "monitored_s": 3599 + 10 + 10 + 10,  # the hour's last reading, the 85 %, the last 95 %
        "below_90_s": 600 + 300 + 10,
        "below_88_s": 600 + 10,
        "lowest": 85.0,
        "lowest_at": "2025-11-24T00:00:00.000Z",
        "mean": round((3600 * 95 - 600 * 8 - 300 * 6 + 85 + 95) / 3602, 1),
    }
    assert doc["pulse_rate"] == {
        "readings": 3,
        "monitored_s": 30,
        "lowest": 52.0,
        "highest": 118.0,
        "mean": 80.3,
    }


def test_a_night_across_a_clock_change_is_ten_hours() -> None:
    start, end = night_of(date(2025, 10, 26), PARIS)
    # Python subtracts times of one zone by their clocks: the instants are compared in UTC.
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=10)
    assert start.astimezone(UTC) == datetime(2025, 10, 25, 20, tzinfo=UTC)


def test_on_timescaledb_a_week_reads_the_continuous_aggregate(
    conn: psycopg.Connection,  # noqa: F811
) -> None:
    """The trend's query over the continuous aggregate, materialized but for the last
    hour: the same points as the rows give, read from the materialized hypertable."""
    migrate(conn)
    now_ms = int(time.time() * 1000)
    week = week_of_readings(now_ms)
    writer.store(conn, [batch(seq=0, rows=week)])
    conn.commit()
    conn.autocommit = True
    conn.execute(
        "CALL refresh_continuous_aggregate('observation_1m', NULL, now() - interval '3 hours')"
    )
    end = datetime.fromtimestamp(now_ms / 1000, UTC)
    start = end - timedelta(days=7, minutes=10)
    span = SPANS["7d"]
    assert trend_points(conn, "p1", SPO2.id, span, start, end).points == by_bucket(week, 600_000)
    args = {"bucket": timedelta(seconds=span.bucket_s), "patient": "p1", "metric": SPO2.id}
    ((plan,),) = conn.execute(
        "EXPLAIN (FORMAT JSON) " + ROLLUP_TREND, {**args, "start": start, "end": end}
    ).fetchall()
    chunks = dict(
        conn.execute("SELECT chunk_name, hypertable_name FROM timescaledb_information.chunks")
    )
    read = {chunks[name] for name in relations(plan[0]["Plan"]) if name in chunks}
    assert any(table.startswith("_materialized_hypertable") for table in read), plan
