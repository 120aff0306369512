"""`vigil bench web` on a tiny ward: every page is loaded in real Chromium until it marks
itself ready, and each gets its figures."""

import importlib.util
import json

import pytest

from bench.web import percentiles
from tests.cli.test_main import vigil
from vigil.embedded.chromium import executable

PAGES = ("station", "patient", "patient_view")


def test_figures_are_nearest_rank_percentiles() -> None:
    assert percentiles([float(ms) for ms in range(100, 0, -1)]) == {
        "p50_ms": 50.5,
        "p99_ms": 99.0,
        "max_ms": 100.0,
    }
    assert percentiles([7.0]) == {"p50_ms": 7.0, "p99_ms": 7.0, "max_ms": 7.0}


@pytest.mark.slow
@pytest.mark.services
def test_every_page_is_loaded_and_measured() -> None:
    if executable() is None:
        pytest.skip("no Chromium: install Debian's chromium package (`.ci/run` does, as root)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: `make .venv/.installed-dev` installs it")
    result = vigil(
        "bench", "web", "--patients", "3", "--days", "1", "--repeats", "1", timeout=240
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert (report["patients"], report["days"], report["goal_ms"]) == (3, 1, 1000)
    assert set(PAGES) <= set(report["pages"])
    for name, figures in report["pages"].items():
        assert name.startswith(PAGES), name  # a page, or one of its ranges
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert report["met"] == all(f["max_ms"] < 1000 for f in report["pages"].values())
