"""``Observation/$lastn`` and ``Observation/$stats``, R4's two Observation operations.

``$lastn`` gives, per patient and code, the last ``max`` Observations. A group is one of
Vigil's metrics, not one coding: an SpO2 reading carries LOINC 2708-6 and 59408-5 and is
one Observation of one group, and the strap's heart rate and the oximeter's pulse rate
(both LOINC 8867-4) stay two groups, as their MDC codes differ.

``$stats`` summarizes a period per code from the one-minute rollup (``observation_1m``,
a continuous aggregate on TimescaleDB), so a month costs about as much as an hour: count,
minimum, maximum, mean and sum. Statistics that need every reading (median, percentiles,
standard deviation) would cost a scan of the raw rows and are not offered; asking for one
is an error that says so. Readings the device flagged invalid are not in the rollup, and
so not in the statistics.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Request

from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import PATIENT_PARAMS, Interaction, SearchParam
from api.fhir.observation import ROW_COLUMNS, Row, render_observation
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here
from api.fhir.search import observations as search
from api.fhir.search.values import SearchError, join, whole_number
from api.routes.searching import is_lenient, notes, now, params_of, refused
from vigil.metrics import BY_ID, UCUM
from vigil.wire.times import iso

router = APIRouter(prefix="/fhir")
_OP = "http://hl7.org/fhir/OperationDefinition/"
LASTN = Interaction(
    "Observation",
    "operation",
    (*PATIENT_PARAMS, SearchParam("max", "number", "Observations per code, 1 to 100 (default 1)")),
    operation=("lastn", _OP + "Observation-lastn"),
)
STATS = Interaction(
    "Observation",
    "operation",
    (
        *PATIENT_PARAMS,
        SearchParam("duration", "number", "hours back from now (default 24)"),
        SearchParam("statistic", "token", "count, minimum, maximum, average, sum"),
    ),
    operation=("stats", _OP + "Observation-stats"),
)
STATISTICS_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-statistics"
_STATISTICS = {
    "count": ("Count", "sum(count)"),
    "minimum": ("Minimum", "min(min)"),
    "maximum": ("Maximum", "max(max)"),
    "average": ("Average", "sum(sum) / nullif(sum(count), 0)"),
    "sum": ("Sum", "sum(sum)"),
}
_LASTN_PARAMS = frozenset({"patient", "subject", "code", "category", "date", "max", "_format"})
_RAW_ONLY = {"median", "std-dev", "variance", "20-percent", "80-percent", "totalcount"}
_MAX_HOURS = 24 * 400


@router.get(
    "/Observation/$lastn",
    response_class=FhirJSON,
    openapi_extra=LASTN.declared(("max", *search.OBSERVATION.names)),
)
def last_n(
    request: Request,
    access: Annotated[Access, require("Observation", "search")],
    conn: Connection,
) -> FhirJSON:
    params = params_of(request)
    lenient = is_lenient(request)
    others = [(k, v) for k, v in params if k not in _LASTN_PARAMS]
    try:
        if others and not lenient:
            raise SearchError(
                f"$lastn takes {', '.join(sorted(_LASTN_PARAMS))}, not {others[0][0][:40]!r}"
            )
        given = [v for k, v in params if k == "max"]
        most = whole_number("max", given[-1], 1, 100) if given else 1
        taken = [(k, v) for k, v in params if k in _LASTN_PARAMS and k != "max"]
        query = search.parse(taken, lenient, now())
    except SearchError as exc:
        raise refused(exc) from None
    query.controls.ignored += [(k, v, f"'{k[:40]}' is not a $lastn parameter") for k, v in others]
    outcome = notes(access, query.patient, query.controls.ignored)
    base, self_url = fhir_base(request), here(request)
    if not access.sees(query.patient):
        return FhirJSON(searchset([], base, self_url, 0, outcome=outcome))
    access.touch([query.patient])
    where = join(query.conditions)
    resources = []
    for metric in sorted(query.metrics):
        rows = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM observation"
            f" WHERE patient = %s AND metric = %s AND {where.sql}"
            " ORDER BY effective DESC, device DESC LIMIT %s",
            [query.patient, metric, *where.args, most],
        ).fetchall()
        resources += [render_observation(Row(*r)) for r in rows]
    return FhirJSON(searchset(resources, base, self_url, len(resources), outcome=outcome))


@router.get(
    "/Observation/$stats",
    response_class=FhirJSON,
    openapi_extra=STATS.declared(("subject", "patient", "code", "duration", "statistic")),
)
def stats(
    request: Request,
    access: Annotated[Access, require("Observation", "search")],
    conn: Connection,
) -> FhirJSON:
    params = params_of(request)
    try:
        hours = _hours([v for k, v in params if k == "duration"])
        wanted = _wanted([v for k, v in params if k == "statistic"])
        query = search.parse(
            [p for p in params if p[0] in ("subject", "patient", "code")], False, now()
        )
    except SearchError as exc:
        raise refused(exc) from None
    if any(k not in ("subject", "patient", "code", "duration", "statistic") for k, _ in params):
        raise FhirError(400, "invalid", "$stats takes subject, code, duration and statistic")
    end = now()
    start = end - timedelta(hours=float(hours))
    if not access.sees(query.patient):  # as a search for them: nothing, and nothing said
        return FhirJSON({"resourceType": "Parameters"})
    access.touch([query.patient])
    sql = stats_query(wanted)
    found = []
    for metric in sorted(query.metrics):
        row = conn.execute(sql, (query.patient, metric, start, end)).fetchone()
        if row is not None:
            found.append(_statistics(query.patient, metric, wanted, row, start, end))
    return FhirJSON(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "statistics", "resource": r} for r in found],
        }
    )


def stats_query(wanted: list[str]) -> str:
    """The statistics asked for (names of ``_STATISTICS``) of one patient and metric over
    ``[start, end)``, parameters in that order. On TimescaleDB it reads the continuous
    aggregate's materialized rows, and raw rows only past its watermark
    (tests/ingest/test_timescaledb.py shows the plan)."""
    columns = ", ".join(_STATISTICS[s][1] for s in wanted)
    return (
        f"SELECT {columns} FROM observation_1m"
        " WHERE patient = %s AND metric = %s AND bucket >= %s AND bucket < %s"
    )


def _hours(given: list[str]) -> Decimal:
    if not given:
        return Decimal(24)
    try:
        hours = Decimal(given[-1])
    except InvalidOperation:
        hours = Decimal(-1)
    if not (hours.is_finite() and 0 < hours <= _MAX_HOURS):
        raise SearchError(f"duration: hours, a number above 0 and at most {_MAX_HOURS}")
    return hours


def _wanted(given: list[str]) -> list[str]:
    names = [s for value in given for s in value.split(",")] or list(_STATISTICS)
    for name in names:
        if name in _RAW_ONLY:
            raise SearchError(
                f"statistic: {name} needs every raw reading and is not offered "
                f"(offered: {', '.join(_STATISTICS)})"
            )
        if name not in _STATISTICS:
            raise SearchError(f"statistic: one of {', '.join(_STATISTICS)}, got {name[:30]!r}")
    return list(dict.fromkeys(names))


def _statistics(
    patient: str,
    metric_id: int,
    wanted: list[str],
    row: tuple[Any, ...],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """One Observation per code, a component per statistic (R4's $stats output)."""
    metric = BY_ID[metric_id]
    components = []
    for name, value in zip(wanted, row, strict=True):
        display, _ = _STATISTICS[name]
        component: dict[str, Any] = {
            "code": {"coding": [{"system": STATISTICS_SYSTEM, "code": name, "display": display}]}
        }
        if name == "count":
            component["valueInteger"] = int(value or 0)
        elif value is None:
            component["dataAbsentReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "code": "not-applicable",
                    }
                ],
                "text": "no readings in the period",
            }
        else:
            component["valueQuantity"] = {
                "value": round(float(value), 4),
                "unit": metric.unit,
                "system": UCUM,
                "code": metric.ucum,
            }
        components.append(component)
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [
                {"system": c.system, "code": c.code, "display": c.display} for c in metric.codings
            ],
            "text": f"{metric.title}, statistics",
        },
        "subject": {"reference": f"Patient/{patient}"},
        "effectivePeriod": {"start": iso(start), "end": iso(end)},
        "component": components,
    }
