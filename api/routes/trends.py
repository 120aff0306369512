"""A patient's trend chart and night report, as the patient detail page draws them.

``/patients/{patient_id}/trend``: SpO2 or pulse rate over the last hour, day, week or
month, as ``[t_ms, min, mean, max]`` per bucket, a few thousand points at most whatever the
range, so a month's chart costs about what an hour's does. The hour is read from the raw
readings (two-second buckets: a 1 Hz oximeter is drawn as it was measured); longer ranges
from the one-minute rollup (``observation_1m``, a continuous aggregate on TimescaleDB),
its minutes merged into wider buckets in SQL so only the points drawn leave the database.

``/patients/{patient_id}/night``: the night report's figures from the raw readings: time
below 90 % and below 88 %, the lowest SpO2, the pulse range. Readings come at irregular
intervals, and a gap is not a desaturation: each reading stands for the time until the
next one, :data:`HELD_AT_MOST` at most.

Both read Observations (the policy's ``Observation`` search): a patient outside the
caller's compartment is not found, and the audit row names the patient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Path, Query

from api.deps import Access, Connection, require
from api.fhir.outcome import FhirError
from api.routes.messages import PATIENT_ID
from vigil.metrics import BY_NAME, PULSE_RATE, SPO2
from vigil.wire.quality import Quality
from vigil.wire.times import iso

router = APIRouter()


@dataclass(frozen=True, slots=True)
class Span:
    seconds: int
    bucket_s: int
    """Each point's width: the span over at most ~2,000 points."""
    source: Literal["raw", "rollup"]


SPANS = {
    "1h": Span(3600, 2, "raw"),
    "24h": Span(86_400, 60, "rollup"),
    "7d": Span(7 * 86_400, 600, "rollup"),
    "30d": Span(30 * 86_400, 1800, "rollup"),
}
_VALID = f"flags & {int(Quality.INVALID)} = 0 AND value IS NOT NULL"
RAW_TREND = (
    "SELECT (extract(epoch FROM date_bin(%(bucket)s, effective, timestamptz 'epoch'))"
    " * 1000)::bigint AS t, min(value), avg(value), max(value), count(*) FROM observation"
    " WHERE patient = %(patient)s AND metric = %(metric)s"
    f" AND effective >= %(start)s AND effective < %(end)s AND {_VALID}"
    " GROUP BY 1 ORDER BY 1"
)
ROLLUP_TREND = (
    "SELECT (extract(epoch FROM date_bin(%(bucket)s, bucket, timestamptz 'epoch'))"
    " * 1000)::bigint AS t, min(min), sum(sum) / sum(count), max(max), sum(count)"
    " FROM observation_1m"
    " WHERE patient = %(patient)s AND metric = %(metric)s"
    " AND bucket >= %(start)s AND bucket < %(end)s"
    " GROUP BY 1 ORDER BY 1"
)
"""The rollup's minutes merged into the span's buckets; the mean weighs each minute by its
readings. On TimescaleDB the range condition reaches the aggregate's materialized rows."""

NIGHT_STARTS = time(22)
NIGHT_ENDS = time(7)
"""The night of date D: 22:00 on the day before D to 07:00 on D, in the caller's zone."""
HELD_AT_MOST = timedelta(seconds=10)
"""The longest a reading counts for: past it, a gap in the data, counted as nothing."""
BELOW = (90, 88)
"""The SpO2 thresholds (%) whose time below the report gives."""
_HELD = (
    "WITH held AS ("
    " SELECT value, effective, least(coalesce(lead(effective) OVER"
    " (ORDER BY effective, device), %(end)s) - effective, %(cap)s) AS held"
    " FROM observation WHERE patient = %(patient)s AND metric = %(metric)s"
    f" AND effective >= %(start)s AND effective < %(end)s AND {_VALID})"
    " SELECT count(*), coalesce(extract(epoch FROM sum(held)), 0),"
    + "".join(
        f" coalesce(extract(epoch FROM sum(held) FILTER (WHERE value < {t})), 0)," for t in BELOW
    )
    + " min(value), max(value), avg(value),"
    " (SELECT effective FROM held ORDER BY value, effective LIMIT 1) FROM held"
)
"""Per reading, the time until the next (or the night's end), capped; summed overall and
below each threshold."""
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FIRST_DAY = date(2000, 1, 1)


@router.get("/patients/{patient_id}/trend")
def trend(
    patient_id: Annotated[str, Path(pattern=PATIENT_ID)],
    access: Annotated[Access, require("Observation", "search")],
    conn: Connection,
    metric: Literal["spo2", "pulse_rate"] = "spo2",
    span: Annotated[Literal["1h", "24h", "7d", "30d"], Query(alias="range")] = "24h",
) -> dict[str, Any]:
    patient = _seen(access, patient_id)
    chosen = SPANS[span]
    end = datetime.now(UTC)
    start = _bucket_start(end - timedelta(seconds=chosen.seconds), chosen.bucket_s)
    found = trend_points(conn, patient, BY_NAME[metric].id, chosen, start, end)
    return {
        "patient": patient,
        "metric": metric,
        "unit": BY_NAME[metric].unit,
        "range": span,
        "source": chosen.source,
        "bucket_s": chosen.bucket_s,
        "start": iso(start),
        "end": iso(end),
        "points": found.points,
        "summary": {
            "readings": found.readings,
            "lowest": found.lowest,
            "highest": found.highest,
            "mean": found.mean,
        },
    }


@dataclass(frozen=True, slots=True)
class Trend:
    points: list[list[float]]
    """``[t_ms, min, mean, max]`` per bucket, oldest first; a bucket without a reading is
    left out (the chart shows the gap)."""
    readings: int
    lowest: float | None
    highest: float | None
    mean: float | None
    """Of every reading, not of the buckets' means (a bucket of few readings weighs less),
    so a screen reader hears what the chart's data says."""


def trend_points(
    conn: Connection, patient: str, metric: int, span: Span, start: datetime, end: datetime
) -> Trend:
    """The buckets of ``span`` in ``[start, end)``."""
    sql = RAW_TREND if span.source == "raw" else ROLLUP_TREND
    rows = conn.execute(
        sql,
        {
            "bucket": timedelta(seconds=span.bucket_s),
            "patient": patient,
            "metric": metric,
            "start": start,
            "end": end,
        },
    ).fetchall()
    readings = sum(int(n) for *_, n in rows)
    return Trend(
        [[t, low, round(mean, 2), high] for t, low, mean, high, _ in rows],
        readings,
        min((r[1] for r in rows), default=None),
        max((r[3] for r in rows), default=None),
        round(sum(r[2] * r[4] for r in rows) / readings, 1) if readings else None,
    )


@router.get("/patients/{patient_id}/night")
def night(
    patient_id: Annotated[str, Path(pattern=PATIENT_ID)],
    access: Annotated[Access, require("Observation", "search")],
    conn: Connection,
    day: Annotated[str | None, Query(alias="date", max_length=10)] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> dict[str, Any]:
    """The night ending on ``date`` (default: the one that ended this morning in ``tz``)."""
    zone = _zone(tz)
    ends_on = _day(day) if day is not None else datetime.now(zone).date()
    patient = _seen(access, patient_id)
    start, end = night_of(ends_on, zone)
    spo2 = night_figures(conn, patient, SPO2.id, start, end)
    pulse = night_figures(conn, patient, PULSE_RATE.id, start, end)
    return {
        "patient": patient,
        "date": ends_on.isoformat(),
        "tz": tz,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "held_at_most_s": HELD_AT_MOST.total_seconds(),
        "spo2": {
            "readings": spo2.readings,
            "monitored_s": spo2.monitored_s,
            **{f"below_{t}_s": s for t, s in zip(BELOW, spo2.below_s, strict=True)},
            "lowest": spo2.lowest,
            "lowest_at": iso(spo2.lowest_at) if spo2.lowest_at else None,
            "mean": spo2.mean,
        },
        "pulse_rate": {
            "readings": pulse.readings,
            "monitored_s": pulse.monitored_s,
            "lowest": pulse.lowest,
            "highest": pulse.highest,
            "mean": pulse.mean,
        },
    }


def night_of(ends_on: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The night ending on a day, as two aware times in ``zone`` (DST included)."""
    start = datetime.combine(ends_on - timedelta(days=1), NIGHT_STARTS, zone)
    return start, datetime.combine(ends_on, NIGHT_ENDS, zone)


@dataclass(frozen=True, slots=True)
class Figures:
    readings: int
    monitored_s: float
    below_s: tuple[float, ...]
    """Per threshold of :data:`BELOW`."""
    lowest: float | None
    highest: float | None
    mean: float | None
    lowest_at: datetime | None


def night_figures(
    conn: Connection, patient: str, metric: int, start: datetime, end: datetime
) -> Figures:
    row = conn.execute(
        _HELD,
        {"patient": patient, "metric": metric, "start": start, "end": end, "cap": HELD_AT_MOST},
    ).fetchone()
    assert row is not None  # an aggregate always answers
    count, monitored, *below, lowest, highest, mean, lowest_at = row
    return Figures(
        int(count),
        float(monitored),
        tuple(float(b) for b in below),
        lowest,
        highest,
        None if mean is None else round(float(mean), 1),
        lowest_at,
    )


def _seen(access: Access, patient: str) -> str:
    if not access.sees(patient):
        raise FhirError(404, "not-found", "no such patient")
    access.touch([patient])
    return patient


def _bucket_start(at: datetime, bucket_s: int) -> datetime:
    """The start of the bucket ``at`` falls in, so the first point is a whole bucket."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % bucket_s, UTC)


def _day(text: str) -> date:
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
        if day < _FIRST_DAY:
            raise ValueError(text)
    except ValueError:
        raise FhirError(
            400,
            "invalid",
            "date: the day the night ends, as YYYY-MM-DD (2000-01-01 or later)",
        ) from None
    return day


def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    if name not in _zones():
        raise FhirError(
            400, "invalid", "tz: an IANA time zone such as Europe/Paris (the browser's own)"
        )
    return ZoneInfo(name)


@cache
def _zones() -> frozenset[str]:
    """The time zones this machine knows, read once (a name is checked against them, never
    used as a path first)."""
    return frozenset(available_timezones())
