"""The values of FHIR search parameters, parsed into SQL conditions (no database here).

Each parser takes one parameter's text and gives a :class:`Condition` on a column, or
raises :class:`SearchError` saying which parameter is wrong and why. Dates and quantities
are ranges, as FHIR defines them: the precision of the value written decides the interval
it stands for (``2026-11-25`` is the whole day; ``97`` is [96.5, 97.5)), and the prefix
says how the column's value must stand to that interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?")
_PATIENT = re.compile(r"^(Patient/)?(?P<id>[A-Za-z0-9\-.]{1,64})$")
_NUMBER = re.compile(r"[+-]?\d{1,15}(\.\d{1,9})?([eE][+-]?\d{1,3})?")
_APPROXIMATE = 0.1
"""``ap``: FHIR leaves the width to the server and suggests 10 % of the value."""


class SearchError(ValueError):
    """A search the server cannot run; the message says which parameter and why."""


@dataclass
class Condition:
    """One SQL condition with its arguments; several are joined with AND."""

    sql: str
    args: list[Any] = field(default_factory=list)


def join(conditions: list[Condition]) -> Condition:
    if not conditions:
        return Condition("TRUE")
    return Condition(
        " AND ".join(f"({c.sql})" for c in conditions), [a for c in conditions for a in c.args]
    )


def split_prefix(value: str) -> tuple[str, str]:
    if value[:2] in PREFIXES:
        return value[:2], value[2:]
    return "eq", value


def ranged(column: str, prefix: str, low: Any, high: Any) -> Condition:
    """How ``column`` must stand to the interval [low, high) for each prefix; for a column
    holding points (times, measured values) 'starts after' is 'greater than' and 'ends
    before' is 'less than'."""
    if prefix == "eq":
        return Condition(f"{column} >= %s AND {column} < %s", [low, high])
    if prefix == "ne":
        return Condition(f"{column} < %s OR {column} >= %s", [low, high])
    if prefix in ("gt", "sa"):
        return Condition(f"{column} >= %s", [high])
    if prefix == "ge":
        return Condition(f"{column} >= %s", [low])
    if prefix in ("lt", "eb"):
        return Condition(f"{column} < %s", [low])
    if prefix == "le":
        return Condition(f"{column} < %s", [high])
    raise AssertionError(prefix)


def date_condition(name: str, column: str, value: str, now: datetime) -> Condition:
    """A ``date`` (or ``_lastUpdated``) parameter on a timestamptz column."""
    prefix, text = split_prefix(value)
    low, high = date_range(name, text)
    if prefix == "ap":
        margin = max(abs(now - low) * _APPROXIMATE, (high - low) / 2)
        low, high, prefix = _shifted(low, -margin), _shifted(high, margin), "eq"
    return ranged(column, prefix, low, high)


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _shifted(moment: datetime, by: timedelta) -> datetime:
    """``moment + by``, kept within the years Python and PostgreSQL share."""
    try:
        return min(max(moment + by, _EARLIEST), _LATEST)
    except OverflowError:
        return _LATEST if by > timedelta(0) else _EARLIEST


def date_range(name: str, text: str) -> tuple[datetime, datetime]:
    """The interval [low, high) a FHIR date or dateTime of some precision stands for; years
    0001 to 9998, so that the end of any interval is a time PostgreSQL and Python share."""
    try:
        return _interval(name, text)
    except SearchError:
        raise
    except (ValueError, OverflowError):
        raise SearchError(
            f"{name}: {text[:40]!r} is not a FHIR date or dateTime, a calendar date from 0001 "
            "to 9998 (e.g. ge2026-11-25T14:00:00Z)"
        ) from None


def _interval(name: str, text: str) -> tuple[datetime, datetime]:
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
        raise SearchError(f"{name}: {text!r} needs a time zone (e.g. Z or +01:00)")
    fraction = re.search(r"\.(\d+)", text)
    if fraction:
        step = timedelta(microseconds=10 ** (6 - min(len(fraction.group(1)), 6)))
    elif text.count(":") >= 2 + (1 if re.search(r"[+-]\d{2}:\d{2}$", text) else 0):
        step = timedelta(seconds=1)
    else:
        step = timedelta(minutes=1)
    return moment.astimezone(UTC), (moment + step).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A ``value-quantity`` parameter, and the unit it is in when one is given
    (``system|code``). Equality is with the range the number's precision stands for;
    the other comparisons are with the number itself."""

    prefix: str
    value: float
    low: float
    high: float
    system: str | None
    code: str | None

    def condition(self, column: str) -> Condition:
        compared = _COMPARISONS.get(self.prefix)
        if compared is not None:
            return Condition(f"{column} {compared} %s", [self.value])
        return ranged(column, self.prefix, self.low, self.high)


_COMPARISONS = {"gt": ">", "sa": ">", "ge": ">=", "lt": "<", "eb": "<", "le": "<="}


def quantity(name: str, value: str) -> Quantity:
    prefix, text = split_prefix(value)
    number, _, unit = text.partition("|")
    system, _, code = unit.partition("|")
    if not _NUMBER.fullmatch(number):
        raise SearchError(
            f"{name}: expected [prefix]number[|system|code], e.g. lt90|http://unitsofmeasure.org|%"
        )
    exact = Decimal(number)
    exponent = exact.as_tuple().exponent
    half = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0) / 2
    if prefix == "ap":
        half, prefix = max(abs(exact) * Decimal(str(_APPROXIMATE)), half), "eq"
    return Quantity(
        prefix, float(exact), float(exact - half), float(exact + half), system or None, code or None
    )


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


def tokens(name: str, value: str) -> list[tuple[str | None, str]]:
    """A token parameter's alternatives (comma-separated), each ``(system, code)``; a
    system of None means any system (``code``), '' means none (``|code``)."""
    found: list[tuple[str | None, str]] = []
    for token in value.split(","):
        system, bar, code = token.rpartition("|")
        if not code:
            raise SearchError(f"{name}: empty code in {value[:60]!r}")
        found.append((system if bar else None, code))
    return found
