"""Observation search: its parameters, parsed into a query plan, and the SQL of one page.

A search is for one patient (``subject``/``patient``, or the patient an ``_id`` names):
searches across patients are not offered. Rows are ordered on the table's own key
(effective time, metric, device), which is total for one patient, so keyset paging is
exact. A page is a UNION of one index range scan per metric, each stopping after the
page's size, merged: the primary key (patient, metric, effective, device) then serves
any mix of codes without a second index on the hot table.

The strap's heart rate and the oximeter's pulse rate share LOINC 8867-4, as FHIR's
vital-signs profile wants; ``code=urn:iso:std:iso:11073:10101|147842`` (MDC, ECG heart
rate) and ``|149530`` (pulse oximeter pulse rate) tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.fhir.capability import SearchParam
from api.fhir.observation import ROW_COLUMNS, ObservationKey, category_of, parse_observation_id
from api.fhir.search.controls import Controls, Searchable
from api.fhir.search.paging import Cursor
from api.fhir.search.values import (
    Condition,
    SearchError,
    date_condition,
    join,
    patient_reference,
    quantity,
    tokens,
)
from vigil.metrics import CATALOGUE, UCUM
from vigil.wire.quality import Quality

_SP = "http://hl7.org/fhir/SearchParameter/"
OBSERVATION = Searchable(
    params=(
        SearchParam("subject", "reference", "the patient, Patient/ID", _SP + "Observation-subject"),
        SearchParam("patient", "reference", "the same as subject", _SP + "clinical-patient"),
        SearchParam(
            "code", "token", "system|code, |code or code; comma: any", _SP + "clinical-code"
        ),
        SearchParam(
            "category",
            "token",
            "vital-signs, procedure (R-R), device",
            _SP + "Observation-category",
        ),
        SearchParam(
            "date", "date", "effective time, every prefix; repeatable", _SP + "clinical-date"
        ),
        SearchParam("device", "reference", "the sensor, Device/ID", _SP + "Observation-device"),
        SearchParam(
            "status", "token", "final or preliminary (early estimate)", _SP + "Observation-status"
        ),
        SearchParam(
            "value-quantity",
            "quantity",
            "[prefix]number[|system|code]",
            _SP + "Observation-value-quantity",
        ),
        SearchParam("_id", "token", "Observation ids, comma-separated", _SP + "Resource-id"),
        SearchParam(
            "_lastUpdated", "date", "when the reading was stored", _SP + "Resource-lastUpdated"
        ),
    ),
    sorts=("date", "-date"),
    includes=("Observation:subject", "Observation:patient", "Observation:device"),
    counts=True,
)
MAX_IDS = 100
_ORDER_KEYS = "effective, metric, device"


@dataclass
class ObservationQuery:
    patient: str
    metrics: set[int]
    conditions: list[Condition] = field(default_factory=list)
    devices: list[str] | None = None
    """FHIR ids of the devices asked for; the route turns them into addresses."""
    ids: list[ObservationKey] | None = None
    controls: Controls = field(default_factory=Controls)

    @property
    def newest_first(self) -> bool:
        return self.controls.sort != "date"


def parse(params: Iterable[tuple[str, str]], lenient: bool, now: datetime) -> ObservationQuery:
    filters, controls = OBSERVATION.parse(params, lenient)
    query = ObservationQuery(patient="", metrics={m.id for m in CATALOGUE}, controls=controls)
    patients: set[str] = set()
    for name, value in filters:
        try:
            _apply(query, patients, name, value, now)
        except SearchError as exc:
            if not lenient:
                raise
            controls.ignored.append((name, value, str(exc)))
    if query.ids is not None:
        patients |= {k.patient for k in query.ids}
    if not patients:
        raise SearchError(
            "subject: required (e.g. subject=Patient/p0001); "
            "searches across all patients are not offered"
        )
    if len(patients) > 1:
        raise SearchError("subject: only one patient per search")
    query.patient = patients.pop()
    return query


def _apply(
    query: ObservationQuery, patients: set[str], name: str, value: str, now: datetime
) -> None:
    if name in ("subject", "patient"):
        patients.add(patient_reference(name, value))
    elif name == "code":
        query.metrics &= {m.id for s, c in tokens(name, value) for m in _coded(s, c)}
    elif name == "category":
        wanted = tokens(name, value)
        query.metrics &= {
            m.id
            for m in CATALOGUE
            if (category := category_of(m)) is not None
            and any(c == category[1] and s in (None, category[0]) for s, c in wanted)
        }
    elif name == "date":
        query.conditions.append(date_condition(name, "effective", value, now))
    elif name == "_lastUpdated":
        query.conditions.append(date_condition(name, "received", value, now))
    elif name == "status":
        query.conditions.append(_status(tokens(name, value)))
    elif name == "value-quantity":
        asked = quantity(name, value)
        if asked.code is not None:
            query.metrics &= {
                m.id for m in CATALOGUE if m.ucum == asked.code and asked.system in (None, UCUM)
            }
        query.conditions.append(asked.condition("value"))
    elif name == "device":
        named_devices = [_device_id(v) for v in value.split(",")]
        query.devices = (
            named_devices
            if query.devices is None
            else [d for d in query.devices if d in named_devices]
        )
    elif name == "_id":
        keys = [parse_observation_id(v) for v in value.split(",")][: MAX_IDS + 1]
        if len(keys) > MAX_IDS:
            raise SearchError(f"_id: at most {MAX_IDS} ids per search")
        named = [k for k in keys if k is not None]
        query.ids = named if query.ids is None else [k for k in query.ids if k in named]
        query.metrics &= {k.metric for k in query.ids}


def _coded(system: str | None, code: str) -> list[Any]:
    return [
        m
        for m in CATALOGUE
        if any(c.code == code and system in (None, c.system) for c in m.codings)
    ]


def _status(wanted: list[tuple[str | None, str]]) -> Condition:
    codes = {c for _, c in wanted}
    early = int(Quality.EARLY_ESTIMATE)
    if {"final", "preliminary"} <= codes:
        return Condition("TRUE")
    if "final" in codes:
        return Condition("flags & %s = 0", [early])
    if "preliminary" in codes:
        return Condition("flags & %s <> 0", [early])
    return Condition("FALSE")


def _device_id(value: str) -> str:
    reference = value.removeprefix("Device/")
    if not reference or len(reference) > 64 or not all(c.isalnum() or c in "-." for c in reference):
        raise SearchError("device: expected Device/{id}")
    return reference


def page_sql(
    query: ObservationQuery, cursor: Cursor, limit: int | None, devices: list[str] | None
) -> tuple[str, list[Any]]:
    """One page in the query's order after ``cursor``; ``limit`` None: every row (an
    ``_id`` search, bounded by its ids); ``devices``: the addresses asked for, if any."""
    order = "DESC" if query.newest_first else "ASC"
    shared = [*query.conditions, Condition("received < %s", [cursor.snapshot])]
    if devices is not None:
        shared.append(Condition("device = ANY(%s)", [devices]))
    parts: list[str] = []
    args: list[Any] = []
    for metric in sorted(query.metrics):
        conditions = [Condition("patient = %s AND metric = %s", [query.patient, metric]), *shared]
        if query.ids is not None:
            times = [k.effective for k in query.ids if k.metric == metric]
            conditions.append(Condition("effective = ANY(%s)", [times]))
        if cursor.after is not None:
            conditions.append(_after(metric, cursor.after, query.newest_first))
        where = join(conditions)
        bounded = "" if limit is None else " LIMIT %s"
        parts.append(
            f"(SELECT {ROW_COLUMNS} FROM observation WHERE {where.sql}"
            f" ORDER BY effective {order}, device {order}{bounded})"
        )
        args += where.args + ([] if limit is None else [limit])
    if not parts:
        return f"SELECT {ROW_COLUMNS} FROM observation WHERE FALSE", []
    merged = " UNION ALL ".join(parts)
    ordered = ", ".join(f"{k} {order}" for k in _ORDER_KEYS.split(", "))
    bounded = "" if limit is None else " LIMIT %s"
    return f"SELECT * FROM ({merged}) page ORDER BY {ordered}{bounded}", [
        *args,
        *([] if limit is None else [limit]),
    ]


def _after(metric: int, key: tuple[Any, ...], newest_first: bool) -> Condition:
    """The rows of ``metric`` that come after ``key`` (effective, metric, device) in the
    order: the same instant counts only on the later side of the key's metric."""
    effective, last_metric, device = key
    before = newest_first
    if metric == last_metric:
        op = "<" if before else ">"
        return Condition(f"(effective, device) {op} (%s, %s)", [effective, device])
    later = metric < last_metric if before else metric > last_metric
    op = ("<=" if later else "<") if before else (">=" if later else ">")
    return Condition(f"effective {op} %s", [effective])


def count_sql(
    query: ObservationQuery, cursor: Cursor, devices: list[str] | None
) -> tuple[str, list[Any]]:
    shared = [
        Condition("patient = %s AND metric = ANY(%s)", [query.patient, sorted(query.metrics)]),
        *query.conditions,
        Condition("received < %s", [cursor.snapshot]),
    ]
    if devices is not None:
        shared.append(Condition("device = ANY(%s)", [devices]))
    where = join(shared)
    return f"SELECT count(*) FROM observation WHERE {where.sql}", where.args


def key_of(row: Any) -> tuple[Any, ...]:
    """The order key of a row selected with this module's columns."""
    return (row.effective, row.metric, row.device)
