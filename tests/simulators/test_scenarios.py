"""Labelled scenarios: labels where the clean signal says, artefacts where they should be."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.scenarios import HR, KINDS, SPO2, T0_MS, generate
from vigil.wire.quality import Quality


def column(record, metric):  # type: ignore[no-untyped-def]
    mine = record.metric == metric
    return record.time[mine], record.value[mine], record.flags[mine]


def inside(time, episode):  # type: ignore[no-untyped-def]
    return (time >= episode.start) & (time <= episode.end)


@pytest.mark.parametrize("kind", KINDS)
def test_a_day_is_one_reading_per_second_per_device_in_time_order(kind: str) -> None:
    record = generate(kind, "p", seed=3, hours=6)
    assert np.all(np.diff(record.time) >= 0)
    assert record.time[0] >= T0_MS and record.time[-1] < T0_MS + 6 * 3600 * 1000
    expected = 2 * 6 * 3600
    assert len(record.time) == expected if kind != "dropout" else len(record.time) < expected


def test_desaturations_are_labelled_below_88_for_at_least_30_seconds() -> None:
    record = generate("desaturation", "p", seed=4, hours=24)
    time, value, _ = column(record, SPO2)
    assert len(record.episodes) >= 4
    for episode in record.episodes:
        assert episode.end - episode.start >= 30_000
        assert np.median(value[inside(time, episode)]) < 88


def test_pulse_excursions_are_past_130_or_below_40() -> None:
    for kind, past in (("tachycardia", lambda v: v > 130), ("bradycardia", lambda v: v < 40)):
        record = generate(kind, "p", seed=5, hours=24)
        time, value, _ = column(record, HR)
        assert record.episodes
        for episode in record.episodes:
            assert episode.end - episode.start >= 60_000
            assert np.mean(past(value[inside(time, episode)])) > 0.8


def test_normal_and_motion_days_have_no_labels_and_stay_in_range_between_artefacts() -> None:
    normal = generate("normal", "p", seed=6, hours=24)
    assert normal.episodes == []
    _, spo2, _ = column(normal, SPO2)
    assert np.percentile(spo2, 1) >= 90  # sleep dips, no desaturation
    motion = generate("motion", "p", seed=6, hours=24)
    _, _, flags = column(motion, SPO2)
    assert (flags & int(Quality.MOTION)).any()  # some bursts flagged, some not


def test_sensor_off_is_flagged_without_a_value() -> None:
    record = generate("sensor_off", "p", seed=7, hours=24)
    time, value, flags = column(record, SPO2)
    for episode in record.episodes:
        span = (time >= episode.start) & (time < episode.end)
        assert np.isnan(value[span]).all() and (flags[span] & int(Quality.NO_CONTACT)).all()


def test_an_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="one of desaturation"):
        generate("fever", "p", seed=1)
