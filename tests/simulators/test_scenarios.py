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
def test_a_day_is_at_most_one_reading_per_second_per_device_in_time_order(kind: str) -> None:
    record = generate(kind, "p", seed=3, hours=6)
    assert np.all(np.diff(record.time) >= 0)
    assert record.time[0] >= T0_MS and record.time[-1] < T0_MS + 6 * 3600 * 1000
    for metric in (HR, SPO2):
        time, _, _ = column(record, metric)
        assert np.all(np.diff(time) >= 1000)
    expected = 2 * 6 * 3600  # less what Bluetooth lost, a few per cent, and the dropouts
    assert 0.9 * expected < len(record.time) < expected or kind == "dropout"


def test_every_day_loses_readings_for_seconds_to_minutes_never_five() -> None:
    gaps = []
    for seed in range(4):
        time, _, _ = column(generate("normal", "p", seed=seed, hours=24), SPO2)
        gaps += (np.diff(time)[np.diff(time) > 1000] / 1000).tolist()
    assert gaps and min(gaps) <= 5 and 60 <= max(gaps) < 300


def test_sleep_spends_stretches_at_88_to_92_without_a_desaturation() -> None:
    near = []
    for seed in range(6):
        record = generate("normal", "p", seed=seed, hours=24)
        time, value, _ = column(record, SPO2)
        night = (time - T0_MS) / 3_600_000 < 6  # midnight to six
        near.append(np.mean((value[night] >= 88) & (value[night] <= 92)))
        kinds = {e.kind for e in record.episodes}
        assert kinds <= {"desaturation", "bradycardia", "tachycardia"}
    assert max(near) > 0.05  # some sleepers spend many minutes a night there


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


def test_what_an_ordinary_day_does_past_the_definitions_is_labelled() -> None:
    labelled = 0
    for seed in range(12):
        record = generate("normal", "p", seed=seed, hours=24)
        time, value, _ = column(record, SPO2)
        for e in (e for e in record.episodes if e.kind == "desaturation"):
            labelled += 1
            assert e.end - e.start >= 30_000 and np.median(value[inside(time, e)]) < 89
    assert labelled  # sleepers' dips do it now and then


def test_normal_and_motion_days_stay_in_range_between_artefacts() -> None:
    normal = generate("normal", "p", seed=6, hours=24)
    _, spo2, _ = column(normal, SPO2)
    assert np.percentile(spo2, 1) >= 86  # sleep dips, seldom a desaturation
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
