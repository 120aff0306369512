"""`vigil bench analytics` on a small fleet: the figures are there and consistent."""

import pytest

from bench.analytics import bench_analytics


@pytest.mark.slow
def test_a_small_run_scores_every_reading_and_sees_the_desaturations() -> None:
    result = bench_analytics(streams=400, seconds=40)
    assert (result["streams"], result["readings"]) == (400, 16_000)
    # two of 200 patients desaturate to 84 % in the last 20 s, 2 points a second: each
    # starts both SpO2 rules, and holds the 15 s hard limit
    assert result["events"] == 2 * 3
    assert result["readings_per_s"] > 0 and result["numpy_pass_per_s"] > 0
    assert result["state_bytes_per_stream"] > 0
    assert result["readings_per_s_river"] > 0 and result["river_bytes_per_patient"] > 0
