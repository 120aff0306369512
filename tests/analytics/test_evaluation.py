"""Evaluation against labels: what counts as caught, late or false."""

import numpy as np

from analytics.evaluation import Labelled, Persisted, evaluate, signal_events
from vigil import metrics

SPO2, PULSE = metrics.SPO2.id, metrics.PULSE_RATE.id

MIN = 60_000


def test_caught_missed_false_and_delay() -> None:
    patients = [
        Labelled("a", "desaturation", 24, [("desaturation", 10 * MIN, 11 * MIN)]),
        Labelled("b", "desaturation", 24, [("desaturation", 50 * MIN, 51 * MIN)]),
        Labelled("c", "normal", 12, []),
    ]
    events = [
        Persisted("a", "spo2_desaturation", 10 * MIN + 20_000),  # caught, 20 s
        Persisted("a", "hr_news2_red_high", 300 * MIN),  # false: no pulse episode
        Persisted("b", "hr_extreme_high", 50 * MIN + 5_000),  # not a rule for desaturation
        Persisted("c", "check_sensor", 5 * MIN),  # technical, counted apart
        Persisted("c", "spo2_news2_red", 6 * MIN),  # false
    ]
    table = evaluate(patients, events)
    desat = table["desaturation"]
    assert (desat["episodes"], desat["caught"], desat["sensitivity"]) == (2, 1, 0.5)
    assert desat["median_delay_s"] == 20.0
    assert desat["false_per_patient_day"] == 0.5  # 1 false over 2 patient-days
    normal = table["normal"]
    assert normal["false_per_patient_day"] == 2.0  # 1 false over half a day
    assert normal["false_technical_per_patient_day"] == 2.0
    assert normal["sensitivity"] is None and normal["median_delay_s"] is None


def test_a_condition_already_holding_catches_an_episode_and_known_events_are_not_false() -> None:
    patients = [
        Labelled(
            "a",
            "as_recorded",
            24,
            [("desaturation", 10 * MIN, 11 * MIN), ("desaturation", 20 * MIN, 21 * MIN)],
            known=[("dropout", 40 * MIN, 50 * MIN)],
        )
    ]
    events = [
        Persisted("a", "spo2_news2_red", 5 * MIN, until=30 * MIN),  # holds over both
        Persisted("a", "no_data", 45 * MIN),  # a real silence of the night
    ]
    row = evaluate(patients, events)["as_recorded"]
    assert (row["caught"], row["caught_holding"], row["median_delay_s"]) == (2, 2, None)
    assert row["false_per_patient_day"] == 0 and row["false_technical_per_patient_day"] == 0


def test_the_events_a_recorded_signal_shows_by_the_goals_definitions() -> None:
    seconds = np.arange(0, 900)
    spo2 = np.full(len(seconds), 95.0)
    spo2[100:140] = 86  # 40 s below 88: a desaturation
    spo2[300:320] = 80  # 20 s: too short to be one
    pulse = np.full(len(seconds), 60.0)
    pulse[500:580] = 38  # 80 s below 40
    keep = np.ones(len(seconds), bool)
    keep[600:900] = False  # the oximeter silent five minutes, to the end
    metric = np.r_[np.full(keep.sum(), SPO2), np.full(len(seconds), PULSE)]
    time = np.r_[seconds[keep], seconds] * 1000
    value = np.r_[spo2[keep], pulse]
    order = np.argsort(time, kind="stable")
    found = signal_events(metric[order], time[order], value[order])
    assert found == [
        ("desaturation", 100_000, 140_000),
        ("bradycardia", 500_000, 580_000),
        ("dropout", 599_000, 899_000),
    ]


def test_minute_numerics_each_stand_for_their_minute() -> None:
    minutes = np.arange(10) * 60_000
    spo2 = np.array([96, 96, 85, 96, 96, 96, 96, 96, 96, 96], float)
    found = signal_events(np.full(10, SPO2), minutes, spo2)
    assert found == [("desaturation", 120_000, 180_000)]  # one reading, a minute below
