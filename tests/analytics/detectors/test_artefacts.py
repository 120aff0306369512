"""Artefacts the devices do not flag: jumps no physiology makes, and values stuck still."""

from __future__ import annotations

import numpy as np
import pytest

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
