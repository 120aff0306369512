"""FHIR views of the alerts: alerts as Flag, their notifications as Communication, each
for one patient of the caller's compartment, newest first, a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from alerts.queries import STATES, notifications_of_patient, page_of_patient, read_alert
from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import PATIENT_PARAMS, Interaction, SearchParam
from api.fhir.communication import render_communication
from api.fhir.flag import render_flag
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here, read_response
from api.fhir.search import paging
from api.fhir.search.controls import Controls, Searchable, shape
from api.fhir.search.values import (
    Condition,
    SearchError,
    date_condition,
    join,
    patient_of,
    tokens,
)
from api.routes.searching import (
    include_patients,
    is_lenient,
    next_link,
    notes,
    now,
    params_of,
    refused,
    used,
)

router = APIRouter(prefix="/fhir")
_SP = "http://hl7.org/fhir/SearchParameter/"
FLAG = Searchable(
    params=(
        *PATIENT_PARAMS,
        SearchParam(
            "date", "date", "when the alert was raised; every prefix", _SP + "clinical-date"
        ),
        SearchParam("status", "token", "active (open alerts) or inactive", _SP + "Flag-status"),
    ),
    includes=("Flag:patient", "Flag:subject"),
)
COMMUNICATION = Searchable(
    params=(
        *PATIENT_PARAMS,
        SearchParam("sent", "date", "when the notification went out", _SP + "Communication-sent"),
        SearchParam(
            "status", "token", "in-progress, completed or not-done", _SP + "Communication-status"
        ),
    ),
    includes=("Communication:patient", "Communication:subject"),
)
FLAGS = FLAG.interaction("Flag")
READ_FLAG = Interaction("Flag", "read")
COMMUNICATIONS = COMMUNICATION.interaction("Communication")
_FLAG_STATES = {"active": STATES["open"], "inactive": STATES["resolved"]}
_SENT_STATES = {"in-progress": "pending", "completed": "sent", "not-done": "failed"}


@router.get("/Flag/{resource_id}", response_class=FhirJSON, openapi_extra=READ_FLAG.declared())
def read_flag(
    request: Request,
    resource_id: str,
    access: Annotated[Access, require("Flag", "read")],
    conn: Connection,
) -> Response:
    alert = (
        read_alert(conn, int(resource_id))
        if resource_id.isdecimal() and len(resource_id) < 19
        else None
    )
    if alert is None or not access.sees(alert.patient):
        raise FhirError(404, "not-found", "no such Flag")
    access.touch([alert.patient])
    return read_response(request, render_flag(alert))


@router.get("/Flag", response_class=FhirJSON, openapi_extra=FLAGS.declared(FLAG.names))
def search_flags(
    request: Request,
    access: Annotated[Access, require("Flag", "search")],
    conn: Connection,
) -> FhirJSON:
    params, patient, controls, filters, cursor = _parse(request, FLAG)
    states = STATES["all"]
    conditions: list[Condition] = []
    try:
        for name, value in filters:
            if name == "date":
                conditions.append(date_condition(name, "triggered_at", value, now()))
            elif name == "status":
                wanted = sorted({c for _, c in tokens(name, value)} & set(_FLAG_STATES))
                states = tuple(s for code in wanted for s in _FLAG_STATES[code])
    except SearchError as exc:
        raise refused(exc) from None
    if not access.sees(patient):
        return _bundle(request, [], None, notes(access, patient, controls.ignored))
    access.touch([patient])
    where = join(conditions)
    after = None if cursor.after is None else (cursor.after[0], cursor.after[1])
    alerts = page_of_patient(
        conn, patient, states, (where.sql, where.args), after, controls.count + 1
    )
    shown = alerts[: controls.count]
    next_url = None
    if len(alerts) > controls.count and shown:
        key = paging.Cursor(cursor.snapshot, (shown[-1].triggered_at, shown[-1].id))
        next_url = next_link(request, "Flag", used(params, controls.ignored), key.encode())
    included = include_patients(conn, access, [patient]) if shown and controls.include else []
    resources = [shape(render_flag(a), controls, frozenset()) for a in shown]
    total = len(shown) if len(alerts) <= controls.count and cursor.after is None else None
    return _bundle(
        request, resources, next_url, notes(access, patient, controls.ignored), included, total
    )


@router.get(
    "/Communication",
    response_class=FhirJSON,
    openapi_extra=COMMUNICATIONS.declared(COMMUNICATION.names),
)
def search_communications(
    request: Request,
    access: Annotated[Access, require("Communication", "search")],
    conn: Connection,
) -> FhirJSON:
    params, patient, controls, filters, cursor = _parse(request, COMMUNICATION)
    conditions: list[Condition] = []
    try:
        for name, value in filters:
            if name == "sent":
                conditions.append(date_condition(name, "n.sent", value, now()))
            elif name == "status":
                wanted = [_SENT_STATES[c] for _, c in tokens(name, value) if c in _SENT_STATES]
                conditions.append(Condition("n.state = ANY(%s)", [wanted]))
    except SearchError as exc:
        raise refused(exc) from None
    if not access.sees(patient):
        return _bundle(request, [], None, notes(access, patient, controls.ignored))
    access.touch([patient])
    where = join(conditions)
    before = None if cursor.after is None else int(cursor.after[0])
    found = notifications_of_patient(
        conn, patient, controls.count + 1, (where.sql, where.args), before
    )
    shown = found[: controls.count]
    next_url = None
    if len(found) > controls.count and shown:
        key = paging.Cursor(cursor.snapshot, (shown[-1].id,))
        next_url = next_link(request, "Communication", used(params, controls.ignored), key.encode())
    included = include_patients(conn, access, [patient]) if shown and controls.include else []
    resources = [shape(render_communication(n), controls, frozenset()) for n in shown]
    total = len(shown) if len(found) <= controls.count and cursor.after is None else None
    return _bundle(
        request, resources, next_url, notes(access, patient, controls.ignored), included, total
    )


def _parse(
    request: Request, searchable: Searchable
) -> tuple[list[tuple[str, str]], str, Controls, list[tuple[str, str]], paging.Cursor]:
    """The parameters, the patient, the controls, the resource's own filters and where the
    page starts. Only the first page's cursor has no key; its snapshot is unused here
    (alerts and notifications are few, and a new one is newer than any page shown)."""
    params = params_of(request)
    try:
        filters, controls = searchable.parse(params, is_lenient(request))
        named = [(n, v) for n, v in filters if n in ("patient", "subject")]
        if len({v for _, v in named}) > 1:
            raise SearchError("patient: one patient per search")
        given = dict(named)
        patient = patient_of(given.get("patient"), given.get("subject"))
        key = (datetime, int) if searchable is FLAG else (int,)
        cursor = (
            paging.decode(controls.cursor, *key) if controls.cursor else paging.Cursor(now(), None)
        )
    except SearchError as exc:
        raise refused(exc) from None
    return params, patient, controls, filters, cursor


def _bundle(
    request: Request,
    resources: list[dict[str, Any]],
    next_url: str | None,
    outcome: dict[str, Any] | None,
    included: list[dict[str, Any]] | None = None,
    total: int | None = 0,
) -> FhirJSON:
    """``total``: known when the whole result is on the first page (0 when it is empty)."""
    return FhirJSON(
        searchset(resources, fhir_base(request), here(request), total, next_url, outcome, included)
    )
