"""`vigil bench analytics`: readings per second through the engine, on one core.

100,000 streams (50,000 patients' SpO2 and heart rate), one reading per stream per second,
scored second by second through the full rule bank, from patient ids to events, as the
service will call it. In the same run: one plain numpy pass over the same value arrays
(``value * 1.0`` summed: the memory-bandwidth reference a vectorized core is compared
with), and the memory the engine holds per stream (``tracemalloc``: the numpy state and the
stream registry together).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Readings
from analytics.detectors.base import Place
from analytics.detectors.novelty import NoveltyDetector, NoveltyRule
from analytics.engine import Engine
from analytics.rules import OPTIONAL
from vigil import metrics
from vigil.process import keep_freed_arrays

T0_MS = 1_767_225_600_000


def bench_analytics(streams: int = 100_000, seconds: int = 20) -> dict[str, Any]:
    keep_freed_arrays()  # as `vigil analytics` runs the engine
    patients_n = streams // 2
    patients = [f"p{i:06d}" for i in range(patients_n)] * 2
    metric = np.r_[np.full(patients_n, metrics.SPO2.id), np.full(patients_n, metrics.HEART_RATE.id)]
    rng = np.random.default_rng(11)
    # Mostly steady physiology, and a few patients desaturating: events are part of the cost.
    values = [
        np.r_[rng.normal(96, 1, patients_n).round(), rng.normal(72, 4, patients_n).round()]
        for _ in range(seconds)
    ]
    falling = patients_n // 100  # steady at 96 %, then down 2 points a second to 84 %
    for second in range(seconds):
        values[second][:falling] = max(84, 96 - 2 * max(0, second - seconds // 2 + 1))

    tracemalloc.start()
    engine = Engine()
    engine.streams(patients, metric)
    state_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rate, events = _score(engine, patients, metric, values, seconds)

    # With the optional rules on, river's novelty model among them. Its Python work is one
    # call per completed patient-minute, so this run is long enough to complete minutes
    # (every one of them scored as well as learned: the models count as warm).
    with_river = Engine(optional_rules=[r.name for r in OPTIONAL])
    novelty = with_river.detectors["novelty"]
    assert isinstance(novelty, NoveltyDetector)
    novelty.warm_up_min = 0
    river_seconds = max(seconds, 130)
    river_values = [values[s % seconds] for s in range(river_seconds)]
    river_rate, _ = _score(with_river, patients, metric, river_values, river_seconds)

    reference_started = time.perf_counter()
    total = 0.0
    for second in range(seconds):
        total += float((values[second] * 1.0).sum())
    reference = time.perf_counter() - reference_started
    readings = seconds * len(metric)
    return {
        "streams": len(metric),
        "readings": readings,
        "events": events,
        "readings_per_s": rate,
        "readings_per_s_river": river_rate,
        "state_bytes_per_stream": round(state_bytes / len(metric)),
        "river_bytes_per_patient": _river_bytes_per_patient(),
        "numpy_pass_per_s": round(readings / reference),
        "goals": {"readings_per_s": 2_000_000, "state_bytes_per_stream": 1024},
        "note": "readings_per_s: the default rules (artefact marking, NEWS2 and hard-limit "
        "thresholds, personal baseline, signal quality); readings_per_s_river: with the "
        f"optional rules on (rate of change, river novelty), over {river_seconds} s of readings",
    }


def _score(
    engine: Engine,
    patients: list[str],
    metric: npt.NDArray[np.int64],
    values: list[npt.NDArray[np.float64]],
    seconds: int,
) -> tuple[int, int]:
    """Readings per second through ``engine``, one call per second of readings; events."""
    events = 0
    started = time.perf_counter()
    for second in range(seconds):
        stamp = np.full(len(metric), T0_MS + second * 1000, dtype=np.int64)
        events += len(engine.score(patients, metric, stamp, values[second]))
    elapsed = time.perf_counter() - started
    return round(seconds * len(metric) / elapsed), events


def _river_bytes_per_patient(patients: int = 500, minutes: int = 30) -> int:
    """Memory of the novelty model per patient (river's covariance, and the numpy mean and
    counters beside it), learned on some minutes."""
    rng = np.random.default_rng(3)
    tracemalloc.start()
    rule = NoveltyRule("novelty", (metrics.PULSE_RATE.id, metrics.SPO2.id), warm_up_min=0)
    detector = rule.detector()
    for p in range(patients):
        detector.configure(2 * p, rule, Place(p, metrics.PULSE_RATE.id))
        detector.configure(2 * p + 1, rule, Place(p, metrics.SPO2.id))
    baseline, _ = tracemalloc.get_traced_memory()
    stream = np.arange(2 * patients)
    for minute in range(minutes + 1):
        value = np.where(stream % 2, 96.0, 72.0) + rng.normal(0, 1, 2 * patients).round()
        detector.score(Readings.sorted(stream, np.full(2 * patients, minute * 60_000), value))
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return round((used - baseline) / patients)
