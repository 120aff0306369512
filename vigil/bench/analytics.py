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

from analytics.engine import Engine
from vigil import metrics
from vigil.resources import keep_freed_arrays

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
    for second in range(seconds // 2, seconds):
        values[second][: patients_n // 100] = 84

    tracemalloc.start()
    engine = Engine()
    engine.streams(patients, metric)
    state_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    events = 0
    started = time.perf_counter()
    for second in range(seconds):
        stamp = np.full(len(metric), T0_MS + second * 1000, dtype=np.int64)
        events += len(engine.score(patients, metric, stamp, values[second]))
    elapsed = time.perf_counter() - started

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
        "readings_per_s": round(readings / elapsed),
        "readings_per_s_river": None,
        "state_bytes_per_stream": round(state_bytes / len(metric)),
        "numpy_pass_per_s": round(readings / reference),
        "goals": {"readings_per_s": 2_000_000, "state_bytes_per_stream": 1024},
        "note": "threshold, rate-of-change and signal-quality rules; the personal baseline "
        "and river are not built yet",
    }
