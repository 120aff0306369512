"""Depth-aware persistence: hand-made saturations, and equality with a per-reading
reference on random streams cut into random micro-batches."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batch import Readings
from analytics.detectors.depth import LONGEST_STEP_S, DepthDetector, DepthRule
from vigil.wire.quality import Quality

INVALID = int(Quality.INVALID)
HARD = DepthRule("spo2_desaturation", (), 88, 90, 25, 30, ignore_flags=INVALID)


def detector(rule: DepthRule = HARD, streams: int = 1) -> DepthDetector:
    d = rule.detector()
    for stream in range(streams):
        d.configure(stream, rule)
    return d


def seconds(values: list[float], flags: list[int] | None = None, step_s: float = 1) -> Readings:
    n = len(values)
    return Readings.sorted([0] * n, [round(i * step_s * 1000) for i in range(n)], values, flags)


def kinds(events: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    return [(str(e.kind), e.time / 1000) for e in events]


def test_a_fall_to_80_is_a_condition_within_seconds() -> None:
    values = [95, 93, 90, 86, 82, 80, 80, 80, 80, 80, 92]
    events = detector().score(seconds(values))
    # 86 adds 2, 82 adds 6, then 8 a second: 2 + 6 + 8 + 8 + 8 >= 25 at the seventh second
    assert kinds(events) == [("started", 3), ("persisted", 7), ("cleared", 10)]
    assert events[1].evidence["deficit_pct_s"] == 32.0 and events[1].evidence["onset"] == 3000


def test_87_for_20_s_is_not_a_condition_and_87_for_25_s_is() -> None:
    short = detector().score(seconds([95] + [87] * 20 + [95]))
    assert [k for k, _ in kinds(short)] == ["started", "cleared"]
    long = detector().score(seconds([95] + [87] * 32 + [95]))
    assert kinds(long)[:2] == [("started", 1), ("persisted", 25)]  # 25 %·s


def test_a_saturation_hovering_about_the_limit_adds_nothing() -> None:
    values = [95] + [87, 89] * 60 + [95]  # below on some readings, never on average
    events = detector().score(seconds(values))
    assert "persisted" not in [k for k, _ in kinds(events)]


def test_a_shallow_slow_desaturation_below_the_limit_on_average_is_reported() -> None:
    values = [95] + [87, 87, 88] * 15 + [95]  # an average of 87.3 % for 45 s
    assert ("persisted", 30) in kinds(detector().score(seconds(values)))


def test_a_saturation_sitting_at_the_limit_is_not_below_it() -> None:
    rng = np.random.default_rng(3)
    values = [95.0, *(87 + rng.integers(0, 3, 1200)).astype(float).tolist()]  # 87-89
    events = detector(DepthRule("red", (), 88, 90, None, 600)).score(seconds(values))
    assert "persisted" not in [k for k, _ in kinds(events)]


def test_a_dropout_inside_the_episode_is_not_counted_as_time_spent_low() -> None:
    before = [95, 85, 85]
    gap = seconds(before)
    d = detector()
    d.score(gap)
    # 40 s later (a probe off, a device out of range), one reading at 85: it stands for at
    # most twice the interval before it, 2 s, not for the 40 s nobody saw
    events = d.score(Readings.sorted([0], [42_000], [85.0]))
    assert events == [] and math.isclose(d.area[0], 3 + 3 + 3 * 2)
    assert math.isclose(d.low_for[0], 1 + 1 + 2)  # seconds seen low, not 41


def test_nan_and_flagged_readings_say_nothing() -> None:
    values = [95, 80, float("nan"), 80, 40, 80, 80, 95]
    flags = [0, 0, 0, 0, INVALID, 0, 0, 0]
    events = detector().score(seconds(values, flags))
    assert kinds(events) == [("started", 1), ("persisted", 5), ("cleared", 7)]


def test_a_monitor_sending_a_value_a_minute_still_integrates() -> None:
    events = detector().score(seconds([95, 86, 86, 95], step_s=60))
    # each reading stands for the minute before it: 2 %·60 s = 120 >= 25
    assert kinds(events)[:2] == [("started", 60), ("persisted", 60)]


@dataclass
class Reference:
    """The rule as one would write it for one reading at a time."""

    rule: DepthRule
    area: float = 0.0
    low_for: float = 0.0
    onset: int = 0
    alerted: bool = False
    last_time: int | None = None
    last_step: int = round(LONGEST_STEP_S * 1000)
    scored: int | None = None

    def score(self, time: int, value: float) -> list[str]:
        if self.scored is not None and time <= self.scored:
            return []
        self.scored = time
        if math.isnan(value):
            return []
        step = 0 if self.last_time is None else time - self.last_time
        weight = min(step, 2 * self.last_step, round(LONGEST_STEP_S * 1000)) / 1000
        if step > 0:
            self.last_step = step
        self.last_time = time
        was_positive, was_alerted = self.area > 1e-9, self.alerted
        if value >= self.rule.clear_at:
            self.area = 0.0
        else:
            self.area = max(0.0, self.area + (self.rule.limit - value) * weight)
        positive = self.area > 1e-9
        if positive and not was_positive:
            self.onset, self.low_for = time, 0.0
        self.low_for = self.low_for + weight if positive else 0.0
        sat = self.rule.sat_seconds or math.inf
        long_low = self.low_for >= self.rule.longest_s and self.area >= 0.25 * self.low_for
        due = positive and (self.area >= sat or long_low)
        self.alerted = positive and (was_alerted or due)
        out = []
        if positive and not was_positive:
            out.append("started")
        if self.alerted and not was_alerted:
            out.append("persisted")
        if was_positive and not positive:
            out.append("cleared")
        return out


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 2),  # stream
            st.sampled_from([1000, 1000, 1000, 2000, 5000, 60_000]),  # time since the last
            st.sampled_from([78.0, 84.0, 86.0, 87.0, 88.0, 89.0, 91.0, 95.0, math.nan]),
        ),
        max_size=150,
    ),
    cuts=st.lists(st.integers(0, 150), max_size=6),
)
def test_the_vectorized_detector_equals_the_reference(
    steps: list[tuple[int, int, float]], cuts: list[int]
) -> None:
    clock = [0, 0, 0]
    readings = []
    for stream, gap, value in steps:
        clock[stream] += gap
        readings.append((stream, clock[stream], value))
    readings.sort(key=lambda r: r[1])
    rule = DepthRule("rule", (), 88, 90, 25, 30)
    vectorized = detector(rule, streams=3)
    references = [Reference(rule) for _ in range(3)]
    got, expected = [], []
    edges = sorted({0, len(readings), *[c for c in cuts if c < len(readings)]})
    for a, b in itertools.pairwise(edges):
        part = readings[a:b]
        batch = Readings.sorted([r[0] for r in part], [r[1] for r in part], [r[2] for r in part])
        got += [(e.stream, e.time, str(e.kind)) for e in vectorized.score(batch)]
        expected += [
            (stream, time, kind)
            for stream, time, value in sorted(part)
            for kind in references[stream].score(time, value)
        ]
    assert sorted(got) == sorted(expected)
    for stream in range(3):
        assert math.isclose(vectorized.area[stream], references[stream].area, abs_tol=1e-6)
        if references[stream].area > 1e-9:
            assert math.isclose(vectorized.low_for[stream], references[stream].low_for)


def test_a_long_batch_of_many_streams_equals_the_reference() -> None:
    """Five minutes of 140 streams in one batch, as a benchmark's chunk: many episodes and
    resets, readings about a second apart (so no two areas tie at a threshold)."""
    rng = np.random.default_rng(11)
    rule = DepthRule("rule", (), 88, 90, 25, 30)
    readings = []
    for stream in range(140):
        t, level = 0, 92.0
        while t < 300_000:
            t += int(rng.integers(800, 1300))
            level = float(np.clip(level + rng.normal(0, 1.2), 78, 97))
            readings.append((stream, t, round(level)))
    readings.sort(key=lambda r: (r[1], r[0]))
    batch = Readings.sorted(*(list(c) for c in zip(*readings, strict=True)))
    got = sorted((e.stream, e.time, str(e.kind)) for e in detector(rule, 140).score(batch))
    references = [Reference(rule) for _ in range(140)]
    expected = sorted(
        (stream, time, kind)
        for stream, time, value in sorted(readings)
        for kind in references[stream].score(time, value)
    )
    assert len(expected) > 1000 and got == expected
