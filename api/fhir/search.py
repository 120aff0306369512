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
from typing import Protocol

from api.fhir.capability import SearchParam
from vigil.metrics import by_code

DEFAULT_COUNT = 100
MAX_COUNT = 1000
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?")
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
            named = patient_reference(name, value)
            if patient is not None and patient != named:
                raise SearchError(f"{name}: only one patient per search")
            patient = named
        elif name == "code":
            found = _codes(value)
            metrics = found if metrics is None else metrics & found
        elif name == "date":
            add_date(value, query)
        elif name == "_count":
            query.count = whole_number(name, value, 0, MAX_COUNT)
        elif name == "_offset":
            query.offset = whole_number(name, value, 0, 10_000_000)
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
    if not (patient or subject):
        raise SearchError("patient: required, as Patient/ID (e.g. patient=Patient/p0001)")
    found = {patient_reference(n, v) for n, v in (("patient", patient), ("subject", subject)) if v}
    if len(found) > 1:
        raise SearchError("patient and subject name different patients: one patient per search")
    return found.pop()


def patient_reference(name: str, value: str) -> str:
    """The id of a ``Patient/ID`` (or bare ``ID``) reference: FHIR id syntax, 64 at most."""
    match = _PATIENT.fullmatch(value)
    if match is None:
        raise SearchError(
            f"{name}: expected Patient/{{id}} (letters, digits, '-', '.'; 64 at most)"
        )
    return match["id"]


def whole_number(name: str, value: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or not (
        low <= int(value) <= high
    ):
        raise SearchError(f"{name}: expected a whole number from {low} to {high}")
    return int(value)


def _codes(value: str) -> set[int]:
    found: set[int] = set()
    for token in value.split(","):
        system, _, code = token.rpartition("|")
        if not code:
            raise SearchError(f"code: empty code in {value!r}")
        found.update(m.id for m in by_code(system or None, code))
    return found


class Bounded(Protocol):
    lower: list[tuple[str, datetime]]
    upper: list[tuple[str, datetime]]


@dataclass
class DateBounds:
    """The conditions of ``date`` parameters, for any resource's time column."""

    lower: list[tuple[str, datetime]] = field(default_factory=list)
    upper: list[tuple[str, datetime]] = field(default_factory=list)

    def sql(self, column: str) -> tuple[list[str], list[datetime]]:
        conditions = self.lower + self.upper
        return [f"{column} {op} %s" for op, _ in conditions], [b for _, b in conditions]


def add_date(value: str, query: Bounded) -> None:
    """Add one ``date`` parameter's conditions (it may repeat: they all hold)."""
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
    """The interval [low, high) a FHIR date or dateTime of some precision stands for; years
    0001 to 9998, so that the end of any interval is a time PostgreSQL and Python share."""
    try:
        low, high = _interval(text)
    except SearchError:
        raise
    except (ValueError, OverflowError):
        raise SearchError(
            f"date: {text[:40]!r} is not a FHIR date or dateTime, a calendar date from 0001 "
            "to 9998 (e.g. ge2026-11-25T14:00:00Z)"
        ) from None
    return low, high


def _interval(text: str) -> tuple[datetime, datetime]:
    if not text.isascii():
        raise ValueError(text)
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
    if not _DATETIME.fullmatch(text):
        raise ValueError(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise SearchError(f"date: {text!r} needs a time zone (e.g. Z or +01:00)")
    fraction = re.search(r"\.(\d+)", text)
    if fraction:
        step = timedelta(microseconds=10 ** (6 - min(len(fraction.group(1)), 6)))
    elif text.count(":") >= 2 + (1 if re.search(r"[+-]\d{2}:\d{2}$", text) else 0):
        step = timedelta(seconds=1)
    else:
        step = timedelta(minutes=1)
    return moment.astimezone(UTC), (moment + step).astimezone(UTC)
