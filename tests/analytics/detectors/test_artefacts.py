"""Artefacts the devices do not flag: jumps no physiology makes, and values stuck still."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batch import Readings
from analytics.detectors.artefacts import FLATLINE, IMPLAUSIBLE_JUMP, LIMITS, ArtefactMarker
from vigil import metrics
from vigil.wire.quality import Quality

SPO2, HR = metrics.SPO2.id, metrics.HEART_RATE.id


def marker() -> ArtefactMarker:
    m = ArtefactMarker()
    m.configure(0, LIMITS[SPO2])
    m.configure(1, LIMITS[HR])
    return m


def stream(values: list[float], stream: int = 0, start_s: int = 0) -> Readings:
    n = len(values)
    return Readings.sorted([stream] * n, (start_s + np.arange(n)) * 1000, values)


def marked(batch: Readings, bit: int) -> list[int]:
    return np.flatnonzero(batch.flags & bit).tolist()


def test_a_real_desaturation_is_not_an_artefact() -> None:
    falling = [97, 96, 94, 92, 90, 88, 86, 85, 84, 84, 85, 87, 90, 93, 96]  # 2 points a second
    assert marked(marker().mark(stream(falling)), IMPLAUSIBLE_JUMP) == []


def test_a_sudden_drop_marks_the_readings_for_the_hold_time() -> None:
    values = [97] * 5 + [84, 80, 86] + [97] * 30
    out = marker().mark(stream(values))
    # the drop at 5 s, the return at 8 s (also a jump), and 20 s after it
    assert marked(out, IMPLAUSIBLE_JUMP) == list(range(5, 29))


def test_a_halved_pulse_is_a_jump_and_a_pulse_of_150_may_move_more() -> None:
    out = marker().mark(stream([56, 56, 28, 28], stream=1))
    assert marked(out, IMPLAUSIBLE_JUMP) == [2, 3]
    # 150 -> 175 is 25 /min, under 30 % of 150
    assert marked(marker().mark(stream([150, 175, 178], stream=1)), IMPLAUSIBLE_JUMP) == []


def test_readings_far_apart_are_not_a_jump() -> None:
    batch = Readings.sorted([0, 0], [0, 10_000], [97, 84])  # 10 s apart: a gap, not a jump
    assert marked(marker().mark(batch), IMPLAUSIBLE_JUMP) == []


def test_flagged_and_missing_values_are_neither_judged_nor_a_reference() -> None:
    values = [97, np.nan, 60, 96]
    flags = [0, 0, int(Quality.NO_CONTACT), 0]
    batch = Readings.sorted([0] * 4, np.arange(4) * 1000, values, flags)
    assert marked(marker().mark(batch), IMPLAUSIBLE_JUMP) == []


def test_a_pulse_stuck_for_three_minutes_is_a_flatline() -> None:
    values = [72.0] * 200
    out = marker().mark(stream(values, stream=1))
    assert marked(out, FLATLINE) == list(range(180, 200))
    assert marked(marker().mark(stream(values, stream=0)), FLATLINE) == []  # SpO2: 30 min


def test_a_value_repeated_by_minute_numerics_is_not_a_flatline() -> None:
    minutes = Readings.sorted([1] * 10, np.arange(10) * 60_000, [88.0] * 10)
    assert marked(marker().mark(minutes), FLATLINE) == []


def test_a_stream_without_limits_is_never_marked() -> None:
    m = ArtefactMarker()
    m.configure(0, None)
    assert marked(m.mark(stream([97, 50, 97])), IMPLAUSIBLE_JUMP | FLATLINE) == []


@pytest.mark.parametrize("cut", [1, 6, 7, 20, 37])
def test_cutting_the_stream_into_batches_or_a_checkpoint_changes_nothing(cut: int) -> None:
    values = [97] * 5 + [84, 80, 86] + [97] * 30
    whole = marker().mark(stream(values)).flags.tolist()
    first = marker()
    head = first.mark(stream(values[:cut])).flags.tolist()
    second = marker()
    second.restore({k: v.copy() for k, v in first.state().items()})
    tail = second.mark(stream(values[cut:], start_s=cut)).flags.tolist()
    assert head + tail == whole


def test_a_late_reading_moves_nothing() -> None:
    m = marker()
    m.mark(stream([97, 97, 97]))
    late = m.mark(Readings.sorted([0], [1000], [60.0]))
    assert late.flags.tolist() == [0] and m.last_value[0] == 97


# --- the vectorized marker against a per-reading reference -----------------------------


def reference_marks(times: list[int], values: list[float], limits) -> list[int]:  # type: ignore[no-untyped-def]
    """One reading at a time, as the rule reads: previous valued reading, latest jump,
    latest change of value."""
    last_value = last_time = jump_time = change_time = None
    out = []
    for t, v in zip(times, values, strict=True):
        if np.isnan(v) or (last_time is not None and t <= last_time):
            out.append(0)
            continue
        if last_value is not None and last_time is not None:
            limit = max(limits.jump, limits.jump_fraction * last_value)
            if abs(v - last_value) > limit and t - last_time <= 3000:
                jump_time = t
        if last_value is None or v != last_value:
            change_time = t
        mark = 0
        if jump_time is not None and t - jump_time <= limits.hold_s * 1000:
            mark |= IMPLAUSIBLE_JUMP
        close = last_time is not None and t - last_time <= 3000
        if change_time is not None and t - change_time >= limits.flatline_s * 1000 and close:
            mark |= FLATLINE
        out.append(mark)
        last_value, last_time = v, t
    return out


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(st.just(0), st.integers(500, 4000), st.integers(4000, 30_000)),
            st.one_of(st.integers(50, 110), st.just(-1)),
        ),
        min_size=1,
        max_size=150,
    ),
    cuts=st.lists(st.integers(0, 149), max_size=5),
    metric=st.sampled_from([SPO2, HR]),
)
def test_the_marker_equals_a_per_reading_reference(
    steps: list[tuple[int, int]], cuts: list[int], metric: int
) -> None:
    times = np.cumsum([dt for dt, _ in steps]).tolist()  # repeats when dt is 0
    values = [float("nan") if v < 0 else float(v) for _, v in steps]
    limits = LIMITS[metric]
    small = type(limits)(limits.jump, limits.jump_fraction, hold_s=5, flatline_s=20)
    expected = reference_marks(times, values, small)
    m = ArtefactMarker()
    m.configure(0, small)
    got: list[int] = []
    bounds = sorted({0, len(times), *[c for c in cuts if c < len(times)]})
    for a, b in itertools.pairwise(bounds):
        batch = Readings.sorted([0] * (b - a), times[a:b], values[a:b])
        got += (m.mark(batch).flags & (IMPLAUSIBLE_JUMP | FLATLINE)).tolist()
    assert got == expected
