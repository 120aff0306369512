"""The threshold detector: hand-made physiology, and equality with a per-reading reference
on random streams cut into random micro-batches."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batch import Readings
from analytics.detectors.threshold import ThresholdDetector, ThresholdRule
from vigil.wire.quality import Quality

INVALID = int(Quality.INVALID)


def configured(stream: int, **numbers: float) -> ThresholdDetector:
    rule = ThresholdRule("rule", (), ignore_flags=INVALID, **numbers)  # type: ignore[arg-type]
    detector = rule.detector()
    detector.configure(stream, rule)
    return detector


def spo2_low(persist_s: float = 15) -> ThresholdDetector:
    return configured(0, low_on=88, low_off=90, persist_s=persist_s)


def kinds(events: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(e.kind, e.time // 1000) for e in events]


def one_stream(values: list[float], flags: list[int] | None = None) -> Readings:
    return Readings.sorted([0] * len(values), [i * 1000 for i in range(len(values))], values, flags)


def test_a_desaturation_persists_after_the_delay_and_clears_with_hysteresis() -> None:
    values = [95, 87, 86, 85] + [84] * 14 + [89, 88.5, 87, 91, 95]
    events = spo2_low().score(one_stream(values))
    # starts at 1 s, holds 15 s at 16 s; 89 and 88.5 are between the thresholds and change
    # nothing, 87 is still low, 91 clears
    assert kinds(events) == [("started", 1), ("persisted", 16), ("cleared", 21)]
    persisted = events[1]
    assert persisted.evidence == {
        "thresholds": {"low_on": 88.0, "low_off": 90.0},
        "onset": 1000,
        "persist_s": 15.0,
    }


def test_a_dip_shorter_than_the_delay_is_no_alert_candidate() -> None:
    events = spo2_low().score(one_stream([95, 85, 85, 85, 93, 95]))
    assert kinds(events) == [("started", 1), ("cleared", 4)]


def test_nan_and_invalid_readings_say_nothing() -> None:
    values = [95, 85, float("nan"), 40, 96]
    flags = [0, 0, 0, INVALID, 0]
    assert kinds(spo2_low(0).score(one_stream(values, flags))) == [
        ("started", 1),
        ("persisted", 1),
        ("cleared", 4),
    ]


def test_state_carries_across_batches_and_late_readings_are_ignored() -> None:
    detector = spo2_low(persist_s=2)
    first = detector.score(Readings.sorted([0, 0], [0, 1000], [95, 85]))
    late = detector.score(Readings.sorted([0], [500], [99]))  # before the last one seen
    second = detector.score(Readings.sorted([0, 0], [3000, 4000], [85, 85]))
    assert kinds(first) == [("started", 1)]
    assert late == []
    assert kinds(second) == [("persisted", 3)]  # once: not again at 4 s


def test_the_first_reading_of_a_new_stream_can_start_a_condition() -> None:
    detector = configured(5, high_on=130, high_off=120, persist_s=60)
    events = detector.score(Readings.sorted([5], [0], [140]))
    assert kinds(events) == [("started", 0)] and events[0].stream == 5


def test_thresholds_must_leave_room_for_hysteresis() -> None:
    with pytest.raises(ValueError, match="low_off 87 must be at least low_on 88"):
        ThresholdRule("spo2_low", (), low_on=88, low_off=87)


@dataclass
class Reference:
    """The rule as one would write it for a single reading at a time."""

    low_on: float
    low_off: float
    high_on: float
    high_off: float
    persist_ms: int
    active: bool = False
    onset: int = 0
    alerted: bool = False
    last: int | None = None

    def feed(self, t: int, v: float, flags: int) -> list[tuple[str, int]]:
        if self.last is not None and t <= self.last:
            return []
        self.last = t
        if math.isnan(v) or flags & INVALID:
            enter = clear = False
        else:
            enter = v < self.low_on or v > self.high_on
            inside_low = math.isnan(self.low_on) or v >= self.low_off
            inside_high = math.isnan(self.high_on) or v <= self.high_off
            clear = not enter and inside_low and inside_high
        usable = not (math.isnan(v) or flags & INVALID)
        events = []
        if enter and not self.active:
            self.active, self.onset, self.alerted = True, t, False
            events.append(("started", t))
        elif self.active and (clear if self.alerted else usable and not enter):
            # pending: any usable reading that does not enter ends it; alerted: hysteresis
            self.active, self.alerted = False, False
            events.append(("cleared", t))
        if enter and not self.alerted and t - self.onset >= self.persist_ms:
            self.alerted = True
            events.append(("persisted", t))
        return events


readings_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),  # stream
        st.integers(0, 120),  # seconds (repeats make duplicates and late readings)
        st.one_of(st.floats(60, 110), st.just(float("nan"))),
        st.sampled_from([0, 0, 0, INVALID]),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(
    readings=readings_strategy,
    cuts=st.lists(st.integers(0, 80), max_size=5),
    persist_s=st.integers(0, 20),
    low=st.one_of(st.none(), st.tuples(st.floats(70, 95), st.floats(0, 5))),
    high=st.one_of(st.none(), st.tuples(st.floats(80, 105), st.floats(0, 5))),
)
def test_the_vectorized_detector_equals_the_per_reading_reference(
    readings: list[tuple[int, int, float, int]],
    cuts: list[int],
    persist_s: int,
    low: tuple[float, float] | None,
    high: tuple[float, float] | None,
) -> None:
    bounds = {
        "low_on": low[0] if low else np.nan,
        "low_off": low[0] + low[1] if low else np.nan,
        "high_on": high[0] if high else np.nan,
        "high_off": high[0] - high[1] if high else np.nan,
    }
    detector = ThresholdDetector("rule")
    numbers = {k: None if math.isnan(v) else v for k, v in bounds.items()}
    rule = ThresholdRule("rule", (), persist_s=persist_s, **numbers)  # type: ignore[arg-type]
    references = {}
    for stream in range(4):
        detector.configure(stream, rule)
        references[stream] = Reference(persist_ms=persist_s * 1000, **bounds)

    got: list[tuple[int, str, int]] = []
    edges = sorted({0, len(readings), *[c for c in cuts if c < len(readings)]})
    expected: list[tuple[int, str, int]] = []
    for a, b in itertools.pairwise(edges):
        part = readings[a:b]
        batch = Readings.sorted(
            [r[0] for r in part],
            [r[1] * 1000 for r in part],
            [r[2] for r in part],
            [r[3] for r in part],
        )
        got += [(e.stream, e.kind, e.time) for e in detector.score(batch)]
        # the engine sorts a batch by stream and time, keeping arrival order for ties
        for stream, t, v, f in sorted(part, key=lambda r: (r[0], r[1])):
            expected += [(stream, k, tt) for k, tt in references[stream].feed(t * 1000, v, f)]
    assert sorted(got, key=_key) == sorted(expected, key=_key)


def _key(event: tuple[int, str, int]) -> tuple[int, int, int]:
    return event[0], event[2], {"started": 0, "persisted": 1, "cleared": 2}[event[1]]


def test_the_delay_needs_the_condition_throughout_and_hysteresis_only_holds_an_alert() -> None:
    """Before the alert, a reading between the thresholds ends the pending condition (a
    patient hovering at 88-89 with an odd 87 is not 15 s below 88); after it, such readings
    keep the alert until one is back in the clearing band."""
    values = [87] * 10 + [89] + [87] * 16 + [89, 88, 90]
    events = spo2_low().score(one_stream(values))
    assert kinds(events) == [
        ("started", 0),
        ("cleared", 10),
        ("started", 11),
        ("persisted", 26),
        ("cleared", 29),
    ]
