"""`vigil bench storage`: the rows it writes, a tiny real run, and the refusal without
TimescaleDB."""

from __future__ import annotations

import argparse
import json

import psycopg
import pytest

from bench.cli import _storage
from bench.storage import START, StorageBench
from ingest import partitions
from vigil.commands import UserError
from vigil.embedded import postgres
from vigil.metrics import PULSE_RATE, SPO2
from vigil.settings import Settings


@pytest.mark.services
def test_the_rows_are_an_oximeters_hour_in_the_order_ingest_stores_them(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        if partitions.storage(conn) == "partitions":
            partitions.ensure_days(conn, START.date(), START.date())
        assert StorageBench(3, 1, progress=lambda _: None).fill(conn, "test") == 3 * 3600 * 2
        per_series = conn.execute(
            "SELECT patient, metric, count(*), min(value), max(value), stddev(value),"
            " bool_and(value = round(value)), min(effective), max(effective),"
            " bool_and(received > effective), count(DISTINCT (device, gateway))"
            " FROM observation GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        first_second = conn.execute(
            "SELECT patient, metric FROM observation ORDER BY ctid LIMIT 6"
        ).fetchall()
        seqs = conn.execute(
            "SELECT DISTINCT extract(epoch FROM effective - %s)::bigint = seq FROM observation",
            (START,),
        ).fetchall()
    assert [(p, m) for p, m, *_ in per_series] == [
        (p, m) for p in ("p0001", "p0002", "p0003") for m in (SPO2.id, PULSE_RATE.id)
    ]
    for _, metric, count, low, high, spread, whole, first, last, later, sources in per_series:
        assert count == 3600 and (first, (last - first).total_seconds()) == (START, 3599)
        assert whole and later and sources == 1  # integers, as an oximeter reports them
        assert spread > 0.3, "noise, not a flat line"
        if metric == SPO2.id:
            assert 85 <= low <= high <= 100
        else:
            assert 35 <= low <= high <= 130
    baselines = {
        round(float(high + low) / 2) for _, m, _, low, high, *_ in per_series if m == PULSE_RATE.id
    }
    assert len(baselines) == 3, "each patient a pulse of their own"
    assert sorted(first_second) == sorted((p, m) for p, m, *_ in per_series)  # time-major
    assert seqs == [(True,)], "a batch a second, per gateway"


@pytest.mark.slow
@pytest.mark.services
def test_a_tiny_run_compresses_both_tables_and_measures_the_rest() -> None:
    if not postgres.has_extension("timescaledb"):
        pytest.skip("TimescaleDB is not installed in the embedded PostgreSQL (make timescaledb)")
    lines: list[str] = []
    result = json.loads(json.dumps(StorageBench(5, 1, progress=lines.append).run()))
    assert (result["patients"], result["hours"]) == (5, 1)
    rows = {"observation": 5 * 3600 * 2, "observation_1m": 5 * 60 * 2}
    for table, count in rows.items():
        figures = result[table]
        assert set(figures) == {
            "rows",
            "bytes_raw",
            "bytes_compressed",
            "ratio",
            "bytes_per_patient_day",
        }
        assert figures["rows"] == count
        assert 0 < figures["bytes_compressed"] < figures["bytes_raw"]
        assert figures["ratio"] == round(figures["bytes_raw"] / figures["bytes_compressed"], 2)
        per_day = figures["bytes_per_patient_day"]
        assert per_day == {
            "raw": round(figures["bytes_raw"] / (5 / 24)),
            "compressed": round(figures["bytes_compressed"] / (5 / 24)),
        }
        native = result["native_partitions"][table]
        assert native["rows"] == count and native["bytes"] > 0
    batches = result["ingest_batch"]
    assert batches["rows"] == 5 * 3600 and batches["bytes"] > 0, "a batch a second a gateway"
    assert batches["bytes_per_patient_day"] == round(batches["bytes"] / (5 / 24))
    assert "TimescaleDB: hour 1 of 1, 36000 rows" in lines[0]


def test_without_timescaledb_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "has_extension", lambda name: False)
    with pytest.raises(UserError, match=r"not installed .* `make timescaledb`"):
        _storage(argparse.Namespace(patients=5, hours=1), Settings())
