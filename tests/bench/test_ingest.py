"""`vigil bench ingest`: the batches it sends, and a short real run."""

from __future__ import annotations

import pytest

from bench.ingest import IngestBench, fleet_batches
from vigil.commands import UserError
from vigil.embedded.postgres import has_extension
from vigil.metrics import BY_ID
from vigil.settings import Settings


def test_fleet_batches_hold_every_reading_once_with_plausible_values() -> None:
    batches = list(fleet_batches(readings=2_500, batch_readings=100, gateways=7))
    assert sum(len(b) for b in batches) == 2_500
    keys = {
        (p, int(m), int(t), d)
        for b in batches
        for p, m, t, d in zip(b.patient, b.metric, b.time, b.device, strict=True)
    }
    assert len(keys) == 2_500  # no two readings collide on the table's key
    seqs: dict[str, list[int]] = {}
    for b in batches:
        seqs.setdefault(b.gateway, []).append(b.seq)
        assert all(BY_ID[int(m)].plausible(v) for m, v in zip(b.metric, b.value, strict=True))
    assert all(s == list(range(len(s))) for s in seqs.values())


@pytest.mark.slow
@pytest.mark.services
def test_a_short_run_stores_everything_once() -> None:
    lines: list[str] = []
    result = IngestBench(20_000, 250, 10, Settings(), progress=lines.append).run()
    assert (result["lost"], result["duplicates"]) == (0, 0)
    assert result["batches"] == 80
    assert result["readings_per_s"] > 0 and result["copy_limit_per_s"] > 0
    ratio = result["readings_per_s"] / result["copy_limit_per_s"]
    assert result["ratio"] == pytest.approx(ratio, rel=0.01)
    assert result["peak_rss_mb"] > 20
    assert lines == ["80 batches of up to 250 readings ready"]
    assert result["storage"] == "partitions"


@pytest.mark.slow
@pytest.mark.services
def test_the_timescaledb_variant_stores_into_a_hypertable() -> None:
    if not has_extension("timescaledb"):
        pytest.skip("TimescaleDB is not installed in the embedded PostgreSQL (make timescaledb)")
    result = IngestBench(5_000, 250, 5, Settings(), progress=lambda _: None, timescaledb=True).run()
    assert (result["lost"], result["duplicates"], result["storage"]) == (0, 0, "timescaledb")


@pytest.mark.slow
@pytest.mark.services
def test_any_empty_database_can_be_measured_and_a_full_one_is_refused(
    empty_database_url: str,
) -> None:
    result = IngestBench(
        5_000, 250, 5, Settings(), progress=lambda _: None, database_url=empty_database_url
    ).run()
    assert (result["lost"], result["duplicates"], result["storage"]) == (0, 0, "partitions")
    with pytest.raises(UserError, match="already holds 5000 observations"):
        IngestBench(
            5_000, 250, 5, Settings(), progress=lambda _: None, database_url=empty_database_url
        ).run()
