from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.fhir.search import KNOWN, MAX_COUNT, SearchError, parse_observation_search, patient_of
from vigil.metrics import HEART_RATE, PULSE_RATE, SPO2


def q(**params: str | list[str]):  # type: ignore[no-untyped-def]
    items = []
    for k, v in params.items():
        items.extend((k, x) for x in (v if isinstance(v, list) else [v]))
    return parse_observation_search(items)


def test_subject_and_code() -> None:
    query = q(subject="Patient/p0001", code="http://loinc.org|59408-5")
    assert query.patient == "p0001" and query.metrics == [SPO2.id]
    assert q(patient="p0002").patient == "p0002"


def test_code_forms() -> None:
    assert q(subject="p1", code="8867-4").metrics == sorted([HEART_RATE.id, PULSE_RATE.id])
    assert q(subject="p1", code="urn:iso:std:iso:11073:10101|149530").metrics == [PULSE_RATE.id]
    assert q(
        subject="p1", code="http://loinc.org|2708-6,http://loinc.org|8867-4"
    ).metrics == sorted([HEART_RATE.id, SPO2.id, PULSE_RATE.id])
    assert q(subject="p1", code="http://loinc.org|0000-0").metrics == []


def test_date_prefixes_and_precision() -> None:
    query = q(subject="p1", date=["ge2026-11-25T10:00:00Z", "lt2026-11-26"])
    assert query.lower == [(">=", datetime(2026, 11, 25, 10, tzinfo=UTC))]
    assert query.upper == [("<", datetime(2026, 11, 26, tzinfo=UTC))]
    day = q(subject="p1", date="2026-11-25")
    assert day.lower[0][1] == datetime(2026, 11, 25, tzinfo=UTC)
    assert day.upper[0][1] == datetime(2026, 11, 26, tzinfo=UTC)
    gt = q(subject="p1", date="gt2026-11-25T10:00:00.5+01:00")
    assert gt.lower == [(">=", datetime(2026, 11, 25, 9, 0, 0, 600000, tzinfo=UTC))]
    month = q(subject="p1", date="le2026-12")
    assert month.upper == [("<", datetime(2027, 1, 1, tzinfo=UTC))]
    minute = q(subject="p1", date="eq2026-11-25T10:00Z")
    assert minute.upper[0][1] - minute.lower[0][1] == timedelta(minutes=1)


def test_count_sort_offset() -> None:
    query = q(subject="p1", _count="5", _sort="date", _offset="10")
    assert (query.count, query.newest_first, query.offset) == (5, False, 10)
    assert q(subject="p1").newest_first


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "subject: required"),
        ({"subject": "Practitioner/1"}, "expected Patient/{id}"),
        ({"subject": "p1", "value-quantity": "gt100"}, "not supported"),
        ({"subject": "p1", "date": "ge2026-13-45T00:00Z"}, "not a FHIR date"),
        ({"subject": "p1", "date": "ge2026-11-25T10:00:00"}, "time zone"),
        ({"subject": "p1", "date": "ne2026-11-25"}, "prefix 'ne'"),
        ({"subject": "p1", "_count": str(MAX_COUNT + 1)}, "_count"),
        ({"subject": "p1", "_count": "-1"}, "_count"),
        ({"subject": "p1", "_sort": "value"}, "_sort"),
        ({"subject": "p1", "code": "http://loinc.org|"}, "empty code"),
        ({"subject": "p1", "patient": "p2"}, "only one patient"),
    ],
)
def test_refused_searches_say_why(params: dict[str, str], words: str) -> None:
    with pytest.raises(SearchError, match=words.replace("{", r"\{").replace("}", r"\}")):
        q(**params)


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
        parse_observation_search([("subject", "p1"), ("date", date)])


@pytest.mark.parametrize("count", ["²", "١٢", "1e3", " 5", "9" * 40])
def test_counts_are_ascii_digits_within_bounds(count: str) -> None:
    with pytest.raises(SearchError, match="_count"):
        parse_observation_search([("subject", "p1"), ("_count", count)])


@given(st.lists(st.tuples(st.sampled_from(sorted(KNOWN)), st.text(max_size=40)), max_size=6))
def test_any_parameters_parse_or_are_refused_with_a_search_error(
    params: list[tuple[str, str]],
) -> None:
    try:
        query = parse_observation_search(params)
    except SearchError:
        return
    for _, bound in query.lower + query.upper:
        assert 1 <= bound.year <= 9999


def test_patient_and_subject_must_agree() -> None:
    assert patient_of("Patient/p1", "p1") == "p1"
    with pytest.raises(SearchError, match="different patients"):
        patient_of("p1", "Patient/p2")
