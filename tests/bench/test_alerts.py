"""`vigil bench alerts` on a few patients: the table is there and the defaults meet the goals."""

import json

import pytest

from simulators.scenarios import KINDS
from tests.cli.test_main import vigil


@pytest.mark.slow
def test_the_defaults_meet_the_goals_on_the_labelled_scenarios() -> None:
    result = vigil("bench", "alerts", "--patients", "3", "--hours", "12", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert set(report["scenarios"]) == set(KINDS)
    for kind in ("desaturation", "tachycardia", "bradycardia", "sensor_off", "dropout"):
        assert report["scenarios"][kind]["episodes"] > 0
    assert report["met"], report["scenarios"]
