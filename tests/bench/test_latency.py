"""`vigil bench latency` on a small fleet: every injected desaturation reaches the webhook."""

import json

import pytest

from tests.cli.test_main import vigil


@pytest.mark.slow
@pytest.mark.services
def test_every_injected_event_is_delivered_and_timed() -> None:
    result = vigil(
        "bench",
        "latency",
        "--patients",
        "200",
        "--gateways",
        "10",
        "--seconds",
        "18",
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["events"] == 18 - 10 - 3  # one a second from the tenth, 3 s to fall
    assert report["delivered"] == report["events"]
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]


def test_a_fleet_that_does_not_split_is_refused() -> None:
    result = vigil("bench", "latency", "--patients", "101", "--gateways", "10")
    assert result.returncode == 2 and "split evenly" in result.stderr
