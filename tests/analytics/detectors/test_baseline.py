"""The personal baseline: hand-made days, and the vectorized means equal to a per-reading
reference on random irregular streams cut into random micro-batches."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batch import Readings
from analytics.detectors.baseline import BaselineDetector, BaselineRule
from vigil.wire.quality import Quality

HOUR = 3_600_000


def spo2_below(**kwargs: float) -> BaselineDetector:
    rule = BaselineRule(
        "spo2_below_baseline",
        (),
        departure=4,
        sides="below",
        sd_multiple=3,
        persist_s=600,
        ignore_flags=int(Quality.INVALID),
        **kwargs,  # type: ignore[arg-type]
    )
    detector = rule.detector()
    detector.configure(0, rule)
    return detector


def seconds_of(values: np.ndarray, start_s: int = 0) -> Readings:  # type: ignore[type-arg]
    time = (start_s + np.arange(len(values))) * 1000
    return Readings.sorted(np.zeros(len(values), np.int64), time, values)


def day_with_drop(normal: float, drop_to: float, drop_s: int, warm_s: int = 5 * 3600):
    rng = np.random.default_rng(5)
    values = np.r_[
        (normal + rng.normal(0, 0.8, warm_s)).round(),
        (drop_to + rng.normal(0, 0.8, drop_s)).round(),
        (normal + rng.normal(0, 0.8, 1800)).round(),
    ]
    return values


def score_in_minutes(detector: BaselineDetector, values: np.ndarray) -> list:  # type: ignore[type-arg]
    events = []
    for start in range(0, len(values), 60):
        events += detector.score(seconds_of(values[start : start + 60], start))
    return events


def test_a_drift_below_this_patients_normal_is_reported_after_ten_minutes() -> None:
    values = day_with_drop(normal=97, drop_to=92, drop_s=20 * 60)
    events = score_in_minutes(spo2_below(), values)
    kinds = [e.kind for e in events]
    assert kinds == ["started", "persisted", "cleared"]
    started, persisted, cleared = events
    drop_at = 5 * 3600 * 1000
    # The level (1-minute half-life) is 4 points below within three minutes.
    assert drop_at < started.time < drop_at + 4 * 60_000
    assert persisted.time - started.time >= 600_000
    assert persisted.evidence["baseline"] > 96
    assert persisted.evidence["level"] < 93.5
    assert cleared.time > drop_at + 20 * 60_000


def test_a_patient_whose_normal_is_low_is_not_flagged_for_it() -> None:
    """89 % is this COPD patient's normal: no departure, however long."""
    rng = np.random.default_rng(2)
    values = (89 + rng.normal(0, 1.0, 12 * 3600)).round()
    assert score_in_minutes(spo2_below(), values) == []


def test_nothing_is_judged_during_the_warm_up() -> None:
    values = day_with_drop(normal=97, drop_to=90, drop_s=20 * 60, warm_s=3600)
    assert score_in_minutes(spo2_below(), values) == []  # the drop came after 1 h of 4


def test_a_short_dip_does_not_persist() -> None:
    values = day_with_drop(normal=97, drop_to=91, drop_s=5 * 60)
    assert [e.kind for e in score_in_minutes(spo2_below(), values)] in ([], ["started", "cleared"])


def test_poor_signal_and_nan_teach_the_baseline_nothing() -> None:
    clean = spo2_below(warm_up_s=60, warm_up_readings=10)
    noisy = spo2_below(warm_up_s=60, warm_up_readings=10)
    values = np.full(600, 97.0)
    clean.score(seconds_of(values))
    flags = np.where(np.arange(600) % 3 == 0, int(Quality.INVALID), 0)
    with_junk = np.where(np.arange(600) % 3 == 0, 40.0, values)
    with_junk[::7] = np.nan
    noisy.score(Readings.sorted(np.zeros(600, np.int64), np.arange(600) * 1000, with_junk, flags))
    assert noisy.baseline.mean[0] == clean.baseline.mean[0] == 97.0


def test_a_long_gap_lets_the_level_start_afresh_but_keeps_the_baseline() -> None:
    detector = spo2_below()
    detector.score(seconds_of(np.full(6 * 3600, 97.0)))
    detector.score(seconds_of(np.array([93.0]), start_s=6 * 3600 + 3600))
    assert detector.level.mean[0] == 93.0
    assert 96.9 < detector.baseline.mean[0] < 97.0


# --- the vectorized means against a per-reading reference ------------------------------


def reference(times: list[int], values: list[float], half_life_s: float) -> list[tuple]:  # type: ignore[type-arg]
    """Mean, variance and weight after each reading, one reading at a time."""
    rate = math.log(2) / (half_life_s * 1000)
    weight = mean = var = 0.0
    last = None
    out = []
    for t, x in zip(times, values, strict=True):
        decayed = weight * math.exp(-rate * (t - last)) if last is not None else 0.0
        new_weight = decayed + 1.0
        new_mean = mean + (x - mean) / new_weight if decayed else x
        var = (decayed * (var + (mean - new_mean) ** 2) + (x - new_mean) ** 2) / new_weight
        weight, mean, last = new_weight, new_mean, t
        out.append((mean, var, weight))
    return out


@settings(max_examples=100, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 400_000), min_size=1, max_size=120),
    values=st.lists(st.integers(60, 100), min_size=120, max_size=120),
    cuts=st.lists(st.integers(0, 119), max_size=6),
    half_life_s=st.sampled_from([30.0, 120.0, 3600.0]),
)
def test_the_means_equal_a_per_reading_reference(
    gaps: list[int], values: list[int], cuts: list[int], half_life_s: float
) -> None:
    times = np.cumsum(gaps).tolist()
    values = values[: len(times)]
    rule = BaselineRule(
        "x", (), departure=5, sd_multiple=2, baseline_half_life_s=half_life_s, level_half_life_s=30
    )
    detector = rule.detector()
    detector.configure(1, rule)
    expected = reference(times, [float(v) for v in values], half_life_s)
    got = []
    bounds = sorted({0, len(times), *[c for c in cuts if c < len(times)]})
    for a, b in itertools.pairwise(bounds):
        # another stream in the same batches, so the running sums are segmented
        other = Readings.sorted([0] * (b - a), times[a:b], [50.0] * (b - a))
        mine = Readings.sorted([1] * (b - a), times[a:b], values[a:b])
        both = Readings.sorted(
            np.r_[other.stream, mine.stream],
            np.r_[other.time, mine.time],
            np.r_[other.value, mine.value],
        )
        detector.score(both)
        mean = detector.baseline
        got.append((mean.mean[1], mean.var[1], mean.weight[1]))
    for (mean, var, weight), b in zip(got, bounds[1:], strict=False):
        want_mean, want_var, want_weight = expected[b - 1]
        assert math.isclose(mean, want_mean, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(var, want_var, rel_tol=1e-6, abs_tol=1e-6)
        assert math.isclose(weight, want_weight, rel_tol=1e-9)
