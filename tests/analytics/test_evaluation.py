"""Evaluation against labels: what counts as caught, late or false."""

from analytics.evaluation import Labelled, Persisted, evaluate

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
