"""`vigil bench api` on a few streams: both latencies measured, every stream held open."""

import json

import pytest

from tests.cli.test_main import vigil


@pytest.mark.slow
@pytest.mark.services
def test_latency_is_measured_with_and_without_open_streams() -> None:
    result = vigil("bench", "api", "--streams", "12", "--requests", "30", timeout=180)
    assert result.returncode == 0, result.stderr
    assert "12 streams open" in result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    for side in ("no_streams_ms", "with_streams_ms"):
        assert 0 < report[side]["p50"] <= report[side]["p99"]
    assert report["p50_ratio"] == round(
        report["with_streams_ms"]["p50"] / report["no_streams_ms"]["p50"], 3
    )
