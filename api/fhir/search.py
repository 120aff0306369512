"""FHIR search parameters for Observation, parsed into a query plan (no database here).

Supported: ``subject`` (or ``patient``), ``code`` (``system|code``, ``|code`` or ``code``,
comma-separated for OR), ``date`` (repeatable, prefixes eq, gt, lt, ge, le, sa, eb, with
the precision of the value deciding the range), ``_count``, ``_sort`` (``date`` or
``-date``) and ``_offset`` for paging. Unknown parameters are refused rather than silently
ignored: a clinician's query that quietly drops a filter returns the wrong patient data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from api.fhir.capability import SearchParam
from vigil.metrics import by_code

DEFAULT_COUNT = 100
MAX_COUNT = 1000
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_PATIENT = re.compile(r"^(Patient/)?(?P<id>[A-Za-z0-9\-.]{1,64})$")
PATIENT_PARAMS = (
    SearchParam("subject", "reference", "the patient (Patient/ID); required"),
    SearchParam("patient", "reference", "the same as subject"),
)
OBSERVATION_PARAMS = (
    *PATIENT_PARAMS,
    SearchParam("code", "token", "system|code, |code or code; comma-separated for any"),
    SearchParam("date", "date", "effective time, prefixes eq gt lt ge le sa eb; repeatable"),
)
KNOWN = {p.name for p in OBSERVATION_PARAMS} | {"_count", "_sort", "_offset"}


class SearchError(ValueError):
    """A search the server cannot run; the message says which parameter and why."""


@dataclass
class ObservationQuery:
    patient: str
    metrics: list[int] | None = None
    """None means every metric."""
    lower: list[tuple[str, datetime]] = field(default_factory=list)
    """(">=" or ">", bound) conditions on the effective time."""
    upper: list[tuple[str, datetime]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    newest_first: bool = True


def parse_observation_search(params: list[tuple[str, str]]) -> ObservationQuery:
    patient: str | None = None
    metrics: set[int] | None = None
    query = ObservationQuery(patient="")
    for name, value in params:
        if name not in KNOWN:
            raise SearchError(
                f"search parameter '{name}' is not supported for Observation "
                f"(supported: {', '.join(sorted(KNOWN))})"
            )
        if name in ("subject", "patient"):
            match = _PATIENT.fullmatch(value)
            if match is None:
                raise SearchError(f"{name}: expected Patient/{{id}}, got {value!r}")
            if patient is not None and patient != match["id"]:
                raise SearchError(f"{name}: only one patient per search")
            patient = match["id"]
        elif name == "code":
            found = _codes(value)
            metrics = found if metrics is None else metrics & found
        elif name == "date":
            _date(value, query)
        elif name == "_count":
            query.count = _int(name, value, 0, MAX_COUNT)
        elif name == "_offset":
            query.offset = _int(name, value, 0, 10_000_000)
        elif name == "_sort":
            if value not in ("date", "-date"):
                raise SearchError(f"_sort: only 'date' or '-date', got {value!r}")
            query.newest_first = value == "-date"
    if patient is None:
        raise SearchError(
            "subject: required (e.g. subject=Patient/p0001); "
            "searches across all patients are not offered"
        )
    query.patient = patient
    query.metrics = sorted(metrics) if metrics is not None else None
    return query


def patient_of(patient: str | None, subject: str | None) -> str:
    """The patient a search is for, from ``patient`` or ``subject`` (``Patient/ID`` or
    ``ID``); a search without one is refused: searches across patients are not offered."""
    reference = patient or subject
    match = _PATIENT.fullmatch(reference or "")
    if match is None:
        raise SearchError(
            "patient: required, as Patient/ID (e.g. patient=Patient/p0001)"
            if not reference
            else f"patient: expected Patient/{{id}}, got {reference!r}"
        )
    return match["id"]


def _int(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise SearchError(f"{name}: expected a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _codes(value: str) -> set[int]:
    found: set[int] = set()
    for token in value.split(","):
        system, _, code = token.rpartition("|")
        if not code:
            raise SearchError(f"code: empty code in {value!r}")
        found.update(m.id for m in by_code(system or None, code))
    return found


def _date(value: str, query: ObservationQuery) -> None:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    low, high = _range(text)
    if prefix in ("ne", "ap"):
        raise SearchError(f"date: prefix '{prefix}' is not supported")
    if prefix == "eq":
        query.lower.append((">=", low))
        query.upper.append(("<", high))
    elif prefix in ("gt", "sa"):
        query.lower.append((">=", high))
    elif prefix == "ge":
        query.lower.append((">=", low))
    elif prefix in ("lt", "eb"):
        query.upper.append(("<", low))
    elif prefix == "le":
        query.upper.append(("<", high))


def _range(text: str) -> tuple[datetime, datetime]:
    """The interval [low, high) a FHIR date or dateTime of some precision stands for."""
    if _DATE.fullmatch(text):
        parts = [int(p) for p in text.split("-")]
        low = datetime(
            parts[0],
            parts[1] if len(parts) > 1 else 1,
            parts[2] if len(parts) > 2 else 1,
            tzinfo=UTC,
        )
        if len(parts) == 3:
            return low, low + timedelta(days=1)
        if len(parts) == 2:
            return low, datetime(low.year + low.month // 12, low.month % 12 + 1, 1, tzinfo=UTC)
        return low, datetime(low.year + 1, 1, 1, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SearchError(
            f"date: {text!r} is not a FHIR date or dateTime (e.g. ge2026-11-25T14:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise SearchError(f"date: {text!r} needs a time zone (e.g. Z or +01:00)")
    fraction = re.search(r"\.(\d+)", text)
    if fraction:
        step = timedelta(microseconds=10 ** (6 - min(len(fraction.group(1)), 6)))
    elif text.count(":") >= 2 + (1 if re.search(r"[+-]\d{2}:\d{2}$", text) else 0):
        step = timedelta(seconds=1)
    else:
        step = timedelta(minutes=1)
    return moment, moment + step
