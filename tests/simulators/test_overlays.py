"""Episodes laid over a recording: labelled where the clean episode is past the line, the
recording's own noise and gaps kept, long enough for a recording of one value a minute."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.overlays import overlay
from simulators.recordings import Recording

HOUR_MS = 3_600_000


def night(hours: float = 3, step_s: float = 1, seed: int = 0, pulse: bool = True) -> Recording:
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 / step_s)
    time = (np.arange(n) * step_s * 1000).astype(np.int64)
    spo2 = (95 + rng.normal(0, 1, n)).round()
    heart = (62 + rng.normal(0, 2, n)).round() if pulse else np.full(n, np.nan)
    spo2[n // 3 : n // 3 + max(n // 200, 2)] = np.nan  # a dropout
    return Recording("night", "test", time, spo2, heart)


def test_a_desaturation_is_labelled_where_its_clean_shape_is_below_88() -> None:
    recording = night()
    over, episodes = overlay(recording, "desaturation", seed=4)
    assert episodes and all(e.kind == "desaturation" for e in episodes)
    inside = np.zeros(len(recording.time), bool)
    for e in episodes:
        assert e.end - e.start >= 30_000
        span = (recording.time >= e.start) & (recording.time <= e.end)
        assert np.nanmedian(over.spo2[span]) < 88
        inside |= (recording.time >= e.start - 120_000) & (recording.time <= e.end + 120_000)
    untouched = ~inside
    assert np.array_equal(over.spo2[untouched], recording.spo2[untouched], equal_nan=True)
    assert np.array_equal(np.isnan(over.spo2), np.isnan(recording.spo2))  # gaps stay gaps
    assert np.array_equal(over.pulse, recording.pulse)


def test_the_nights_own_wobble_rides_on_the_episode() -> None:
    recording = night(seed=2)
    over, episodes = overlay(recording, "desaturation", seed=9)
    e = max(episodes, key=lambda e: e.end - e.start)
    span = (recording.time >= e.start) & (recording.time <= e.end)
    moved = over.spo2[span] - recording.spo2[span]
    wobble = recording.spo2[span] - np.nanmedian(recording.spo2)
    # the episode moves the level; what was noise around the level is still there
    assert np.nanstd(over.spo2[span]) > 0.5 and np.nanstd(moved) < np.nanstd(wobble) + 1


@pytest.mark.parametrize("kind", ["tachycardia", "bradycardia"])
def test_a_pulse_excursion_lasts_a_minute_past_the_line(kind: str) -> None:
    recording = night(seed=5)
    over, episodes = overlay(recording, kind, seed=1)
    assert episodes
    for e in episodes:
        span = (recording.time >= e.start) & (recording.time <= e.end)
        level = np.median(over.pulse[span])
        assert (level > 130) if kind == "tachycardia" else (level < 40)
        assert e.end - e.start >= 59_000
    assert np.array_equal(over.spo2, recording.spo2, equal_nan=True)


def test_a_minute_recording_gets_episodes_of_three_intervals_at_least() -> None:
    recording = night(hours=30, step_s=60, seed=3)
    _, episodes = overlay(recording, "desaturation", seed=2)
    assert episodes and all(e.end - e.start >= 2 * 60_000 for e in episodes)


def test_a_recording_without_pulse_gets_no_pulse_episodes() -> None:
    recording = night(pulse=False)
    assert overlay(recording, "bradycardia", seed=1) == (recording, [])
    with pytest.raises(ValueError, match="not one of"):
        overlay(recording, "fever", seed=1)
