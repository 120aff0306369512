"""`vigil bench alerts` on a few patients and on real nights: the tables are there and the
defaults meet the goals."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from simulators.scenarios import KINDS
from tests.cli.test_main import vigil


@pytest.mark.slow
def test_the_defaults_meet_the_goals_on_the_labelled_scenarios() -> None:
    result = vigil("bench", "alerts", "--patients", "8", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert set(report["scenarios"]) == set(KINDS)
    for kind in ("desaturation", "tachycardia", "bradycardia", "sensor_off", "dropout"):
        assert report["scenarios"][kind]["episodes"] > 0
    assert report["met"], report["scenarios"]


def emay_night(path: Path, hours: float, seed: int) -> None:
    """A made-up night in a sleep oximeter's export format (12-hour clock, blank cells),
    with a real device's smoothing: a few tenths of a point from one second to the next."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 1, 22, 0, 0)
    lines = ["Date,Time,SpO2(%),PR(bpm)"]
    for i in range(int(hours * 3600)):
        at = start + timedelta(seconds=i)
        spo2, pulse = round(95.3 + rng.normal(0, 0.3)), round(58.3 + rng.normal(0, 0.7))
        blank = 1000 <= i < 1010  # a finger out for ten seconds
        cells = ("", "") if blank else (str(spo2), str(pulse))
        lines.append(f"{at:%m/%d/%Y},{at:%I:%M:%S %p},{cells[0]},{cells[1]}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_real_nights_are_read_scored_as_recorded_and_laid_over(tmp_path: Path) -> None:
    folder = tmp_path / "nights"
    folder.mkdir()
    for n in range(2):
        emay_night(folder / f"night-{n}.csv", 2.0, seed=n)
    (folder / "README.md").write_text("two made-up nights\n")
    result = vigil(
        "bench", "alerts", "--patients", "1", "--hours", "6", "--real", str(folder),
        "--copies", "2", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    real = json.loads(result.stdout.splitlines()[-1])["real"]
    assert real["recordings"] == 2 and real["skipped"] == []
    assert real["as_recorded"]["clinical_alerts_per_patient_day"] == 0  # quiet nights
    for kind in ("desaturation", "tachycardia", "bradycardia"):
        row = real["laid_over"][kind]
        assert row["episodes"] > 0 and row["sensitivity"] >= 0.95
    naive = real["reference"]["spo2_below_88_for_30s"]["laid_over"]
    assert naive["median_delay_s"] >= 30  # the reference waits its 30 s
    assert real["laid_over"]["desaturation"]["median_delay_s"] < naive["median_delay_s"]


def test_real_needs_a_folder() -> None:
    result = vigil("bench", "alerts", "--real", "/nonexistent/recordings")
    assert result.returncode == 2 and "not a folder of recordings" in result.stderr


REAL_VITALS = Path(__file__).resolve().parents[3] / "shared" / "real-vitals"


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_VITALS.is_dir(),
    reason=f"the real recordings are not on this machine ({REAL_VITALS}); `vigil bench alerts "
    "--real DIR` is then measured where they are",
)
def test_the_defaults_meet_the_goals_on_the_real_recordings() -> None:
    result = vigil(
        "bench", "alerts", "--patients", "8", "--real", str(REAL_VITALS), "--copies", "2",
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["real"]["as_recorded"]["false_per_patient_day"] <= 1
    assert report["met"], report["real"]["laid_over"]
