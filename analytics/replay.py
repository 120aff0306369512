"""Replaying recorded readings through the engine: `vigil analytics replay`.

The input is CSV with a header naming at least ``patient,time,metric,value`` and optionally
``flags``; ``time`` is ISO 8601 (with an offset or ``Z``) or epoch seconds, ``metric`` a
name from the catalogue. A bad row is reported with its line number and skipped: one typo
in a week of recordings must not cost the week. Or the input is the stored observations of
a time range (:class:`DatabaseReplay`). Rows are scored in time order, in chunks, through
the same engine the service runs, so a replay shows what the service would have raised.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

import numpy as np
import numpy.typing as npt
import psycopg

from analytics.engine import Engine, PatientEvent
from vigil.metrics import BY_NAME
from vigil.wire.batch import PATIENT_ID
from vigil.wire.events import AnalyticsEvent
from vigil.wire.times import moment

REQUIRED = ("patient", "time", "metric", "value")
CHUNK = 10_000


class ReplayError(ValueError):
    """The input cannot be replayed at all (no header, missing columns)."""


@dataclass
class Rows:
    patient: list[str] = field(default_factory=list)
    metric: list[int] = field(default_factory=list)
    time: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.time)


def parse_csv(lines: Iterable[str]) -> Rows:
    reader = csv.DictReader(lines)
    try:
        columns = reader.fieldnames or []
    except csv.Error as exc:
        raise ReplayError(f"the header is not valid CSV ({exc})") from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ReplayError(
            f"the CSV header must name {', '.join(REQUIRED)} (and optionally flags); "
            f"missing: {', '.join(missing)}"
        )
    rows = Rows()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
            continue
        line = reader.line_num
        try:
            patient, metric, time, value, flags = _row(row)
        except ValueError as exc:
            rows.problems.append(f"line {line}: {exc}")
            continue
        rows.patient.append(patient)
        rows.metric.append(metric)
        rows.time.append(time)
        rows.value.append(value)
        rows.flags.append(flags)
    return rows


def _row(row: dict[str, str | None]) -> tuple[str, int, int, float, int]:
    patient = (row.get("patient") or "").strip()
    if not PATIENT_ID.fullmatch(patient):
        raise ValueError(f"patient {patient!r} is not 1-36 letters, digits, '-' or '.'")
    name = (row.get("metric") or "").strip()
    metric = BY_NAME.get(name)
    if metric is None:
        raise ValueError(f"metric {name!r} is not one of {', '.join(BY_NAME)}")
    time = parse_time(row.get("time") or "")
    try:
        value = float(row.get("value") or "")
    except ValueError:
        raise ValueError(f"value {row.get('value')!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value {row.get('value')!r} is not a finite number")
    text = (row.get("flags") or "0").strip()
    if not text.isdigit():
        raise ValueError(f"flags {text!r} is not a whole number")
    return patient, metric.id, time, value, int(text)


def parse_time(text: str) -> int:
    """Epoch milliseconds from ISO 8601 with an offset, or from epoch seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds):
            raise ValueError(f"time {text!r} is not a finite number of seconds")
        return round(seconds * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"time {text!r} is neither ISO 8601 (2026-01-01T10:00:00Z) nor epoch seconds"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset (add Z or +01:00)")
    return round(moment.timestamp() * 1000)


def replay(rows: Rows, engine: Engine) -> Iterator[AnalyticsEvent]:
    """Score the rows in time order, a chunk at a time, with the clock following the data;
    the events as the service would publish them."""
    order = np.argsort(np.asarray(rows.time, dtype=np.int64), kind="stable")
    patient = np.asarray(rows.patient, dtype=object)[order]
    metric = np.asarray(rows.metric, dtype=np.int64)[order]
    time = np.asarray(rows.time, dtype=np.int64)[order]
    value = np.asarray(rows.value, dtype=np.float64)[order]
    flags = np.asarray(rows.flags, dtype=np.int32)[order]
    for a in range(0, len(order), CHUNK):
        b = a + CHUNK
        found = engine.score_recorded(
            list(patient[a:b]), metric[a:b], time[a:b], value[a:b], flags[a:b]
        )
        yield from (engine.describe(e) for e in found)


@dataclass(frozen=True, slots=True)
class Stored:
    """A chunk of stored observations, in time order."""

    patient: list[str]
    metric: npt.NDArray[np.int64]
    time: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int64]
    gateway: list[str]

    def __len__(self) -> int:
        return len(self.patient)

    def keep(self, wanted: list[bool]) -> Stored:
        mask = np.asarray(wanted, dtype=bool)
        return Stored(
            [p for p, w in zip(self.patient, wanted, strict=True) if w],
            self.metric[mask],
            self.time[mask],
            self.value[mask],
            self.flags[mask],
            [g for g, w in zip(self.gateway, wanted, strict=True) if w],
        )

    def score(self, engine: Engine) -> list[PatientEvent]:
        return engine.score_recorded(self.patient, self.metric, self.time, self.value, self.flags)


def read_stored(
    conn: psycopg.Connection, condition: str, args: tuple[object, ...], cursor: str
) -> Iterator[Stored]:
    """The observations meeting ``condition`` (SQL on ``effective`` and ``received``), in
    time order, a chunk at a time through the server-side cursor named ``cursor``, so a
    month of a ward's readings never sits in memory at once."""
    with conn.transaction(), conn.cursor(name=cursor) as cur:
        cur.execute(
            "SELECT patient, metric, (extract(epoch FROM effective) * 1000)::bigint,"
            f" value, flags, gateway FROM observation WHERE {condition} ORDER BY effective",
            args,
        )
        while chunk := cur.fetchmany(CHUNK):
            patient, metric, time, value, flags, gateway = zip(*chunk, strict=True)
            yield Stored(
                list(patient),
                np.array(metric, dtype=np.int64),
                np.array(time, dtype=np.int64),
                np.array(value, dtype=np.float64),
                np.array(flags, dtype=np.int64),
                list(gateway),
            )


class DatabaseReplay:
    """Stored observations from ``since`` (inclusive) to ``until`` (exclusive)."""

    def __init__(self, conn: psycopg.Connection, since_ms: int, until_ms: int) -> None:
        self.conn = conn
        self.since = moment(since_ms)
        self.until = moment(until_ms)
        self.rows = 0

    def events(self, engine: Engine) -> Iterator[AnalyticsEvent]:
        span = (self.since, self.until)
        for chunk in read_stored(self.conn, "effective >= %s AND effective < %s", span, "replay"):
            self.rows += len(chunk)
            yield from (engine.describe(e) for e in chunk.score(engine))


def write_events(events: Iterable[AnalyticsEvent], out: TextIO) -> int:
    """One JSON object per line; returns how many."""
    count = 0
    for event in events:
        out.write(event.encode().decode() + "\n")
        count += 1
    return count
