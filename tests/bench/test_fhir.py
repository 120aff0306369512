"""`vigil bench fhir` on a small table: the table is what was asked for, and every figure
and its reference from the same run are there."""

import json

import pytest

from tests.cli.test_main import vigil


@pytest.mark.slow
@pytest.mark.services
def test_a_small_table_is_loaded_and_every_figure_measured() -> None:
    result = vigil(
        "bench", "fhir", "--patients", "2", "--days", "2", "--interval", "60", "--requests", "20",
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["observations"] == 2 * 3 * 2 * 1440  # patients x metrics x days x minutes
    for figure in (*report["api_ms"].values(), *report["sql_ms"].values()):
        assert 0 < figure["p50"] <= figure["p99"]
    assert set(report["api_ms"]) == {"page_24h_first", "page_24h_middle", "stats_30d"}
    assert isinstance(report["met"], bool)
