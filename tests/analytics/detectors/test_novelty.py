"""Multivariate novelty: a combination new for this patient, though no threshold is crossed."""

from __future__ import annotations

import numpy as np

from analytics.batch import Readings
from analytics.detectors.base import Place
from analytics.detectors.novelty import NoveltyDetector, NoveltyRule
from vigil.metrics import PULSE_RATE, SPO2

RULE = NoveltyRule("novelty", (PULSE_RATE.id, SPO2.id), ignore_flags=0)


def patient_minutes(pulse: np.ndarray, spo2: np.ndarray, start_s: int = 0) -> Readings:  # type: ignore[type-arg]
    n = len(pulse)
    time = (start_s + np.arange(n)) * 1000
    return Readings.sorted(np.r_[np.zeros(n), np.ones(n)], np.r_[time, time], np.r_[pulse, spo2])


def detector() -> NoveltyDetector:
    d = RULE.detector()
    d.configure(0, RULE, Place(0, PULSE_RATE.id))
    d.configure(1, RULE, Place(0, SPO2.id))
    return d


def test_pulse_up_and_spo2_down_together_is_new_for_a_steady_patient() -> None:
    rng = np.random.default_rng(4)
    hours = 6 * 3600
    d = detector()
    events = []
    pulse = np.r_[
        70 + rng.normal(0, 3, hours), 96 + rng.normal(0, 3, 900), 70 + rng.normal(0, 3, 600)
    ]
    spo2 = np.r_[
        97 + rng.normal(0, 0.7, hours), 93 + rng.normal(0, 0.7, 900), 97 + rng.normal(0, 0.7, 600)
    ]
    for start in range(0, len(pulse), 300):
        chunk = slice(start, start + 300)
        events += d.score(patient_minutes(pulse[chunk].round(), spo2[chunk].round(), start))
    persisted = [e for e in events if e.kind == "persisted"]
    assert len(persisted) == 1  # an odd minute of noise may start a condition, not hold it
    onset, at = persisted[0].evidence["onset"] // 1000, persisted[0].time // 1000
    # the first changed minute completes a minute after the change; then three minutes held
    assert hours + 60 <= onset <= hours + 120 and at - onset >= 180
    assert persisted[0].evidence["mahalanobis_d2"] >= 30
    assert d.patients.learned[0] == len(pulse) // 60 - 1  # every complete minute learned once


def test_nothing_is_judged_before_the_warm_up() -> None:
    d = detector()
    rng = np.random.default_rng(5)
    pulse = np.r_[70 + rng.normal(0, 3, 3600), np.full(900, 120.0)]
    spo2 = np.r_[97 + rng.normal(0, 0.7, 3600), np.full(900, 90.0)]
    assert d.score(patient_minutes(pulse.round(), spo2.round())) == []  # 1 h of 4


def test_a_minute_with_one_vital_sign_is_not_judged_or_learned() -> None:
    d = RULE.detector()
    d.configure(0, RULE, Place(0, PULSE_RATE.id))
    n = 600
    d.score(Readings.sorted(np.zeros(n), np.arange(n) * 1000, np.full(n, 70.0)))
    assert d.patients.learned[0] == 0 and not d.models
