"""The engine: streams per (patient, metric), the default rules, scale 2 patients."""

import numpy as np
import pytest

from analytics.engine import Engine
from vigil import metrics
from vigil.wire.batch import ABSENT_VALUE
from vigil.wire.quality import Quality

T0 = 1_767_261_600_000  # 2026-01-01T10:00:00Z
SPO2, HR, PR = metrics.SPO2.id, metrics.HEART_RATE.id, metrics.PULSE_RATE.id


def seconds(n: int) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * 1000


def test_one_stream_per_patient_and_metric_in_order_of_arrival() -> None:
    engine = Engine()
    slots = engine.streams(["b", "a", "b", "a", "b"], np.array([SPO2, SPO2, HR, SPO2, SPO2]))
    assert slots.tolist() == [0, 1, 2, 1, 0]
    assert engine.keys == [("b", SPO2), ("a", SPO2), ("b", HR)]
    assert engine.streams(["a", "b"], np.array([HR, SPO2])).tolist() == [3, 0]


def test_a_desaturation_raises_the_hard_limit_at_once_and_news2_after_ten_minutes() -> None:
    engine = Engine()
    n = 620
    # falling 2 points a second, as fast as a real desaturation (a faster step would be
    # an artefact), then held 2 points below the hard limit: 50 %·s in 25 s
    values = np.r_[np.full(5, 96.0), [94, 92, 90, 88], np.full(n - 9, 86.0)]
    events = engine.score(["p1"] * n, np.full(n, SPO2), seconds(n), values)
    summary = [(e.event.rule, e.event.kind, (e.event.time - T0) // 1000) for e in events]
    assert summary == [
        ("spo2_news2_red", "started", 7),
        ("spo2_desaturation", "started", 9),
        ("spo2_desaturation", "persisted", 9 + 24),
        ("spo2_news2_red", "persisted", 7 + 599),
    ]
    assert events[0].patient == "p1" and events[0].metric == "spo2"


def test_a_scale_2_patient_is_not_alarmed_at_their_target_saturation() -> None:
    engine = Engine(scale2_patients=["copd"])
    n = 120
    values = np.full(n, 87.0)  # within reach of a scale 2 target, a desaturation on scale 1
    events = engine.score(
        ["copd"] * n + ["p1"] * n,
        np.full(2 * n, SPO2),
        np.r_[seconds(n), seconds(n)],
        np.r_[values, values],
    )
    assert {e.patient for e in events} == {"p1"}


def test_pulse_rules_watch_the_strap_and_the_oximeter_but_not_spo2() -> None:
    engine = Engine()
    n = 80
    events = engine.score(
        ["p1"] * n * 3,
        np.r_[np.full(n, HR), np.full(n, PR), np.full(n, SPO2)],
        np.r_[seconds(n), seconds(n), seconds(n)],
        np.full(3 * n, 140.0),  # tachycardia; and an impossible SpO2 that no HR rule reads
    )
    persisted = {(e.metric, e.event.rule) for e in events if e.event.kind == "persisted"}
    assert persisted == {("heart_rate", "hr_news2_red_high"), ("pulse_rate", "hr_news2_red_high")}


def test_events_are_published_with_iso_times_a_stable_id_and_the_gateway() -> None:
    engine = Engine()
    falling = np.array([96.0, 94, 92, 90, 88, 86])
    events = engine.score(["p1"] * 6, np.full(6, SPO2), seconds(6), falling)
    published = engine.describe(events[1], gateway="gw-1")  # the hard limit's start, at 86 %
    doc = published.document()
    assert doc["time"] == "2026-01-01T10:00:05.000Z"
    assert doc["evidence"]["onset"] == "2026-01-01T10:00:05.000Z"
    assert doc["evidence"]["limit"] == 88.0 and doc["evidence"]["clear_at"] == 90.0
    assert doc["evidence"]["deficit_pct_s"] == 2.0
    assert doc["id"] == f"p1/spo2/spo2_desaturation/started/{T0 + 5000}"
    assert doc["gateway"] == "gw-1"
    assert engine.describe(events[1]).id == published.id  # the same if published again


def test_an_event_is_described_in_the_words_of_the_patients_scale() -> None:
    engine = Engine(scale2_patients=["copd"])
    n = 620
    values = np.r_[np.linspace(96, 80, 9), np.full(n - 9, 79.0)]  # below both red bands
    events = engine.score(
        ["p1"] * n + ["copd"] * n,
        np.full(2 * n, SPO2),
        np.r_[seconds(n), seconds(n)],
        np.r_[values, values],
    )
    news2 = {
        e.patient: engine.describe(e).description
        for e in events
        if e.event.rule == "spo2_news2_red" and e.event.kind == "persisted"
    }
    assert "scale 1" in news2["p1"] and "scale 2" in news2["copd"]


def test_a_pulse_rising_30_within_5_minutes_is_reported_when_turned_on() -> None:
    engine = Engine(optional_rules=["hr_rising"])
    values = np.repeat([72.0, 74.0, 110.0, 112.0], 60)  # +38 /min within two minutes
    values[120:132] = np.linspace(77, 110, 12)  # 3 /min a second, as a heart can
    n = len(values)
    events = engine.score(["p1"] * n, np.full(n, HR), seconds(n), values)
    rising = [
        (e.event.kind, (e.event.time - T0) // 1000) for e in events if e.event.rule == "hr_rising"
    ]
    # 72 + 30 is passed at 129 s (104 /min), and held from then on
    assert rising == [("started", 129), ("persisted", 189)]
    default = Engine().score(["p1"] * n, np.full(n, HR), seconds(n), values)
    assert not [e for e in default if e.event.rule == "hr_rising"]


def test_an_unknown_optional_rule_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown optional rule hr_falling: one of hr_rising"):
        Engine(optional_rules=["hr_falling"])


def test_a_probe_off_the_finger_asks_for_the_sensor_not_for_a_doctor() -> None:
    engine = Engine()
    n = 60
    flags = np.r_[np.zeros(5, int), np.full(n - 5, int(Quality.SENSOR_FAULT))]
    values = np.r_[np.full(5, 97.0), np.full(n - 5, 60.0)]  # what a probe in the air reads
    events = engine.score(["p1"] * n, np.full(n, SPO2), seconds(n), values, flags)
    assert [(e.event.rule, e.event.kind, (e.event.time - T0) // 1000) for e in events] == [
        ("check_sensor", "started", 5),
        ("check_sensor", "persisted", 35),
    ]


@pytest.mark.parametrize(
    "absent_value",
    [np.nan, ABSENT_VALUE],
    ids=["decoded", "the wire's number"],  # the reason alone keeps a number from scoring
)
def test_readings_without_a_value_ask_for_the_sensor_and_never_alert(absent_value: float) -> None:
    """An oximeter sending NaN: the sensor is there but cannot measure. Its readings are
    not a low SpO2 (nor 0), and when they persist the sensor needs checking."""
    engine = Engine()
    n = 60
    reasons = [Quality.NOT_A_NUMBER, Quality.NOT_AT_RESOLUTION, Quality.NEGATIVE_INFINITY]
    flags = np.r_[np.zeros(5, int), [int(reasons[i % 3]) for i in range(n - 5)]]
    values = np.r_[np.full(5, 97.0), np.full(n - 5, absent_value)]
    events = engine.score(["p1"] * n, np.full(n, SPO2), seconds(n), values, flags)
    assert [(e.event.rule, e.event.kind, (e.event.time - T0) // 1000) for e in events] == [
        ("check_sensor", "started", 5),
        ("check_sensor", "persisted", 35),
    ]
