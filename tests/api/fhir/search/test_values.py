from datetime import UTC, datetime, timedelta

import pytest

from api.fhir.search.values import SearchError, date_condition, patient_of, quantity

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    ("prefix", "sql", "args"),
    [
        ("", "t >= %s AND t < %s", [DAY, DAY + timedelta(days=1)]),
        ("eq", "t >= %s AND t < %s", [DAY, DAY + timedelta(days=1)]),
        ("ne", "t < %s OR t >= %s", [DAY, DAY + timedelta(days=1)]),
        ("gt", "t >= %s", [DAY + timedelta(days=1)]),
        ("sa", "t >= %s", [DAY + timedelta(days=1)]),
        ("ge", "t >= %s", [DAY]),
        ("lt", "t < %s", [DAY]),
        ("eb", "t < %s", [DAY]),
        ("le", "t < %s", [DAY + timedelta(days=1)]),
    ],
)
def test_every_date_prefix_on_a_day(prefix: str, sql: str, args: list[datetime]) -> None:
    condition = date_condition("date", "t", f"{prefix}2026-11-25", NOW)
    assert (condition.sql, condition.args) == (sql, args)


def test_approximately_widens_by_a_tenth_of_the_distance_from_now() -> None:
    condition = date_condition("date", "t", "ap2026-11-21T12:00Z", NOW)
    low, high = condition.args
    # ten days back: a day either side of the minute written
    assert low == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert high == datetime(2026, 11, 22, 12, 1, tzinfo=UTC)


def test_precision_decides_the_interval() -> None:
    gt = date_condition("date", "t", "gt2026-11-25T10:00:00.5+01:00", NOW)
    assert gt.args == [datetime(2026, 11, 25, 9, 0, 0, 600000, tzinfo=UTC)]
    month = date_condition("date", "t", "le2026-12", NOW)
    assert month.args == [datetime(2027, 1, 1, tzinfo=UTC)]
    low, high = date_condition("date", "t", "2026-11-25T10:00Z", NOW).args
    assert high - low == timedelta(minutes=1)


def test_quantities_compare_with_the_number_or_its_precision() -> None:
    assert quantity("v", "97.0").condition("x").args == [96.95, 97.05]
    assert quantity("v", "ne97").condition("x").sql == "x < %s OR x >= %s"
    assert quantity("v", "ge88").condition("x").args == [88.0]
    assert quantity("v", "ap100").condition("x").args == [90.0, 110.0]
    with_unit = quantity("v", "le90|http://unitsofmeasure.org|%")
    assert (with_unit.system, with_unit.code) == ("http://unitsofmeasure.org", "%")
    with pytest.raises(SearchError, match="value"):
        quantity("value", "lots")


def test_patient_and_subject_must_agree() -> None:
    assert patient_of("Patient/p1", "p1") == "p1"
    with pytest.raises(SearchError, match="different patients"):
        patient_of("p1", "Patient/p2")
