from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.fhir.search.controls import MAX_COUNT
from api.fhir.search.observations import OBSERVATION, ObservationQuery, parse
from api.fhir.search.values import SearchError
from vigil.metrics import BATTERY, HEART_RATE, PULSE_RATE, RR_INTERVAL, SPO2

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def q(lenient: bool = False, **params: str | list[str]) -> ObservationQuery:
    items = []
    for k, v in params.items():
        items.extend((k.replace("__", "-"), x) for x in (v if isinstance(v, list) else [v]))
    return parse(items, lenient, NOW)


def test_subject_and_code() -> None:
    query = q(subject="Patient/p0001", code="http://loinc.org|59408-5")
    assert query.patient == "p0001" and query.metrics == {SPO2.id}
    assert q(patient="p0002").patient == "p0002"


def test_code_forms_tell_strap_heart_rate_from_oximeter_pulse_rate_by_mdc() -> None:
    assert q(subject="p1", code="8867-4").metrics == {HEART_RATE.id, PULSE_RATE.id}
    assert q(subject="p1", code="urn:iso:std:iso:11073:10101|149530").metrics == {PULSE_RATE.id}
    assert q(subject="p1", code="urn:iso:std:iso:11073:10101|147842").metrics == {HEART_RATE.id}
    assert q(subject="p1", code="http://loinc.org|2708-6,http://loinc.org|8867-4").metrics == {
        HEART_RATE.id,
        SPO2.id,
        PULSE_RATE.id,
    }
    assert q(subject="p1", code="http://loinc.org|0000-0").metrics == set()
    assert q(subject="p1", code="|8867-4").metrics == set()  # |code: a code without a system


def test_categories_part_vital_signs_from_rr_and_battery() -> None:
    vital = {HEART_RATE.id, SPO2.id, PULSE_RATE.id}
    assert q(subject="p1", category="vital-signs").metrics == vital
    assert q(subject="p1", category="procedure").metrics == {RR_INTERVAL.id}
    assert q(subject="p1", category="device").metrics == {BATTERY.id}


def test_value_quantity_with_a_unit_keeps_the_metrics_in_that_unit() -> None:
    query = q(subject="p1", value__quantity="lt90|http://unitsofmeasure.org|%")
    assert query.metrics == {SPO2.id, BATTERY.id}
    assert query.conditions[0].sql == "value < %s" and query.conditions[0].args == [90.0]
    eq = q(subject="p1", value__quantity="97").conditions[0]
    assert eq.args == [96.5, 97.5]


def test_an_id_names_its_patient_and_metric() -> None:
    query = q(_id="p7.2.1764590400000.0a1b2c3d")
    assert query.patient == "p7" and query.metrics == {SPO2.id}
    with pytest.raises(SearchError, match="one patient"):
        q(_id="p7.2.1764590400000.0a1b2c3d,p8.2.1764590400000.0a1b2c3d")


def test_count_and_sort() -> None:
    query = q(subject="p1", _count="5", _sort="date")
    assert (query.controls.count, query.newest_first) == (5, False)
    assert q(subject="p1").newest_first


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "subject: required"),
        ({"subject": "Practitioner/1"}, "expected Patient/{id}"),
        ({"subject": "p1", "value__quantity": "gt1x"}, "value-quantity"),
        ({"subject": "p1", "date": "ge2026-13-45T00:00Z"}, "not a FHIR date"),
        ({"subject": "p1", "date": "ge2026-11-25T10:00:00"}, "time zone"),
        ({"subject": "p1", "_count": str(MAX_COUNT + 1)}, "_count"),
        ({"subject": "p1", "_count": "-1"}, "_count"),
        ({"subject": "p1", "_sort": "value"}, "_sort"),
        ({"subject": "p1", "code": "http://loinc.org|"}, "empty code"),
        ({"subject": "p1", "patient": "p2"}, "only one patient"),
        ({"subject": "p1", "focus": "x"}, "not supported"),
        ({"subject": "p1", "_include": "Observation:performer"}, "_include"),
        ({"subject": "p1", "device": "Device/a b"}, "device"),
    ],
)
def test_refused_searches_say_why(params: dict[str, str], words: str) -> None:
    with pytest.raises(SearchError, match=words.replace("{", r"\{").replace("}", r"\}")):
        q(**params)


def test_lenient_handling_leaves_out_what_it_cannot_use_and_says_so() -> None:
    query = q(True, subject="p1", focus="x", date="ge2026-13-01", code="8867-4")
    assert [(name, value) for name, value, _ in query.controls.ignored] == [
        ("focus", "x"),
        ("date", "ge2026-13-01"),
    ]
    assert query.conditions == [] and query.metrics == {HEART_RATE.id, PULSE_RATE.id}


@pytest.mark.parametrize(
    "date",
    [
        "ge0000",
        "le9999-12",
        "2026-02-30",
        "ge2026-13-01",
        "eq2026-1-01",
        "ge\uff12\uff10\uff12\uff16",  # full-width digits
        "2026-11-25T25:00Z",
    ],
)
def test_impossible_dates_are_refused_as_search_errors(date: str) -> None:
    with pytest.raises(SearchError, match="date"):
        parse([("subject", "p1"), ("date", date)], False, NOW)


@pytest.mark.parametrize("count", ["²", "١٢", "1e3", " 5", "9" * 40])
def test_counts_are_ascii_digits_within_bounds(count: str) -> None:
    with pytest.raises(SearchError, match="_count"):
        parse([("subject", "p1"), ("_count", count)], False, NOW)


@given(
    st.lists(st.tuples(st.sampled_from(OBSERVATION.names), st.text(max_size=40)), max_size=6),
    st.booleans(),
)
def test_any_parameters_parse_or_are_refused_with_a_search_error(
    params: list[tuple[str, str]], lenient: bool
) -> None:
    try:
        query = parse([("subject", "p1"), *params], lenient, NOW)
    except SearchError:
        return
    for condition in query.conditions:
        for arg in condition.args:
            if isinstance(arg, datetime):
                assert 1 <= arg.year <= 9999
