"""Rate of change: hand-made heart rates, and equality with a per-reading reference that
keeps every reading."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batch import Readings
from analytics.detectors.rate_of_change import RateOfChangeDetector, RateOfChangeRule
from tests.analytics.detectors.test_threshold import Reference


def configured(**numbers: object) -> RateOfChangeDetector:
    rule = RateOfChangeRule("rule", (), ignore_flags=0, **numbers)  # type: ignore[arg-type]
    detector = rule.detector()
    detector.configure(0, rule)
    return detector


def hr_rise() -> RateOfChangeDetector:
    return configured(rise=30, clear_below=20, window_min=5, persist_s=60)


def test_a_rise_of_30_within_5_minutes_held_for_a_minute() -> None:
    minutes = np.r_[np.full(3, 70.0), np.full(3, 105.0)]  # per minute, one reading a second
    values = np.repeat(minutes, 60)
    batch = Readings.sorted(np.zeros(len(values), int), np.arange(len(values)) * 1000, values)
    events = hr_rise().score(batch)
    assert [(e.kind, e.time // 1000) for e in events] == [("started", 180), ("persisted", 240)]
    started = events[0]
    assert started.value == 105.0
    assert started.evidence["change"] == 35.0 and started.evidence["window_min"] == 5


def test_a_slow_drift_is_not_a_rise() -> None:
    values = np.repeat(70.0 + np.arange(20) * 5, 60)  # +5 a minute: +20 within any 5 minutes
    batch = Readings.sorted(np.zeros(len(values), int), np.arange(len(values)) * 1000, values)
    assert hr_rise().score(batch) == []


def test_a_fall_is_a_rise_of_the_negated_values() -> None:
    detector = configured(rise=4, clear_below=2, window_min=2, falling=True, persist_s=0)
    values = [97, 97, 96, 92, 92, 95, 96]
    events = detector.score(Readings.sorted([0] * 7, [i * 10_000 for i in range(7)], values))
    assert [(e.kind, e.time // 1000, e.evidence["change"]) for e in events] == [
        ("started", 30, 5.0),
        ("persisted", 30, 5.0),
        ("cleared", 50, 2.0),  # 95 is 2 below the window's 97: back within the band
    ]


class RateReference:
    def __init__(self, window: int, rise: float, clear_below: float, persist_ms: int) -> None:
        self.window = window
        self.history: list[tuple[int, float]] = []
        self.last: int | None = None
        nan = float("nan")
        self.condition = Reference(nan, nan, rise, clear_below, persist_ms)

    def feed(self, t: int, v: float) -> list[tuple[str, int]]:
        if self.last is not None and t <= self.last:
            return []
        self.last = t
        if math.isnan(v):
            return self.condition.feed(t, float("nan"), 0)
        self.history.append((t, v))
        minute = t // 60_000
        window = [x for tt, x in self.history if tt // 60_000 >= minute - (self.window - 1)]
        return self.condition.feed(t, v - min(window), 0)


@settings(max_examples=150, deadline=None)
@given(
    readings=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 600),
            st.one_of(st.floats(40, 160).map(round), st.just(float("nan"))),
        ),
        max_size=80,
    ),
    cuts=st.lists(st.integers(0, 80), max_size=4),
    window=st.integers(1, 4),
    persist_s=st.integers(0, 30),
)
def test_the_vectorized_detector_equals_the_reference(
    readings: list[tuple[int, int, float]], cuts: list[int], window: int, persist_s: int
) -> None:
    rule = RateOfChangeRule("rule", (), 25, 15, window, persist_s, ignore_flags=0)
    detector = rule.detector()
    references: dict[int, RateReference] = defaultdict(
        lambda: RateReference(window, 25, 15, persist_s * 1000)
    )
    for stream in range(3):
        detector.configure(stream, rule)
    got, expected = [], []
    edges = sorted({0, len(readings), *[c for c in cuts if c < len(readings)]})
    for a, b in itertools.pairwise(edges):
        part = readings[a:b]
        batch = Readings.sorted(
            [r[0] for r in part], [r[1] * 1000 for r in part], [r[2] for r in part]
        )
        got += [(e.stream, e.time, e.kind) for e in detector.score(batch)]
        for stream, t, v in sorted(part, key=lambda r: (r[0], r[1])):
            expected += [(stream, tt, k) for k, tt in references[stream].feed(t * 1000, v)]
    order = {"started": 0, "persisted": 1, "cleared": 2}
    assert sorted(got, key=lambda e: (e[0], e[1], order[e[2]])) == sorted(
        expected, key=lambda e: (e[0], e[1], order[e[2]])
    )
