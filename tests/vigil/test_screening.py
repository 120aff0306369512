"""Screening readings before they are stored: pure logic over decoded batches."""

from tests.builders import T0, batch
from vigil.screening import EARLIEST_MS, FUTURE_TOLERANCE_MS, screen
from vigil.wire.quality import Quality

NOW = T0 + 60_000


def test_a_plausible_batch_passes_untouched() -> None:
    good = batch()
    screened = screen(good, NOW)
    assert screened.kept is good and screened.reason is None and screened.unassigned == 0


def test_implausible_values_and_wrong_clocks_are_refused_one_by_one() -> None:
    rows = [
        ("p0001", "heart_rate", T0, 72.0),
        ("p0001", "spo2", T0, 140.0),
        ("p0002", "heart_rate", NOW + FUTURE_TOLERANCE_MS + 2000, 80.0),
        ("p0003", "spo2", EARLIEST_MS - 1, 97.0),
        ("p0004", "heart_rate", T0, 350.0),
    ]
    screened = screen(batch(rows=rows), NOW)
    kept, reason = screened.kept, screened.reason
    assert kept.patient == ("p0001",) and kept.value.tolist() == [72.0]
    assert kept.metric.tolist() == [1] and kept.time.tolist() == [T0]
    assert reason == (
        "4 of 5 readings refused: reading 1 (spo2 140 outside 50..100), "
        "reading 2 (time 302 s in the future), "
        "reading 3 (time before 2020 (gateway clock not set)), "
        "reading 4 (heart_rate 350 outside 20..300)"
    )


def test_a_reading_the_device_flagged_invalid_is_kept_with_its_flag() -> None:
    flagged = batch(rows=[("p0001", "spo2", T0, 127.0)], flags=[int(Quality.INVALID)])
    screened = screen(flagged, NOW)
    assert screened.reason is None and screened.kept.flags.tolist() == [int(Quality.INVALID)]


def test_long_lists_of_refusals_are_summarized() -> None:
    rows = [("p0001", "spo2", T0 + i, 120.0) for i in range(8)]
    reason = screen(batch(rows=rows), NOW).reason
    assert reason is not None and reason.startswith("8 of 8 readings refused")
    assert reason.endswith("and 3 more")


def test_readings_older_than_the_retention_period_are_refused() -> None:
    rows = [("p0001", "spo2", NOW - 31 * 86_400_000, 95.0), ("p0001", "spo2", T0, 96.0)]
    screened = screen(batch(rows=rows), NOW, retention_days=30)
    assert screened.kept.value.tolist() == [96.0]
    assert screened.reason == (
        "1 of 2 readings refused: reading 0 (older than the 30-day retention period)"
    )
    assert screen(batch(rows=rows), NOW).reason is None  # no retention: kept for ever


def test_readings_from_a_device_assigned_to_someone_else_are_refused() -> None:
    rows = [("p0001", "spo2", T0, 95.0), ("p0002", "spo2", T0, 96.0)]  # one device, two names
    assigned = {"C1:00:00:00:00:01": ("gw-1", "p0001")}
    screened = screen(batch(rows=rows), NOW, assignments=assigned)
    assert screened.kept.patient == ("p0001",) and screened.unassigned == 1
    assert screened.reason == (
        "1 of 2 readings refused: reading 1 (device C1:00:00:00:00:01 is not assigned to p0002"
        " on gw-1)"
    )
    unknown = screen(batch(rows=rows[:1]), NOW, assignments={})
    assert unknown.reason is not None and "is not assigned to p0001 on gw-1" in unknown.reason


def test_the_device_and_patient_of_another_gateway_are_refused() -> None:
    """A gateway naming another gateway's patient with that gateway's device: the triple
    (gateway, device, patient) is not assigned, whatever the pair (device, patient) is."""
    assigned = {"C1:00:00:00:00:01": ("gw-a", "p0001")}
    rows = [("p0001", "spo2", T0, 80.0), ("p0001", "spo2", T0 + 1, 81.0)]
    forged = screen(batch("gw-b", rows=rows), NOW, assignments=assigned)
    assert len(forged.kept) == 0 and forged.unassigned == 2
    assert screen(batch("gw-a", rows=rows), NOW, assignments=assigned).reason is None


def test_an_absent_reading_is_kept_with_its_reason() -> None:
    """No value is not an implausible value: it is stored, never dead-lettered."""
    rows = [("p0001", "spo2", T0, float("nan")), ("p0001", "pulse_rate", T0, float("nan"))]
    reasons = [int(Quality.NOT_AT_RESOLUTION), int(Quality.NEGATIVE_INFINITY)]
    screened = screen(batch(rows=rows, flags=reasons), NOW)
    assert screened.reason is None and screened.kept.flags.tolist() == reasons
