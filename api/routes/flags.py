"""FHIR views of the alerts: alerts as Flag, their notifications as Communication."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from alerts.queries import STATES, list_alerts, notifications_of_patient
from api.audit import Outcome, audit
from api.deps import Caller, Connection
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction, SearchParam
from api.fhir.communication import render_communication
from api.fhir.flag import render_flag
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base
from api.fhir.search import PATIENT_PARAMS, SearchError, patient_of
from api.tokens import Principal

router = APIRouter(prefix="/fhir")
FLAGS = Interaction(
    "Flag",
    "search-type",
    (*PATIENT_PARAMS, SearchParam("status", "token", "active (open alerts) or inactive")),
)
COMMUNICATIONS = Interaction("Communication", "search-type", PATIENT_PARAMS)
LIMIT = 500
_STATUS = {"active": STATES["open"], "inactive": STATES["resolved"], None: STATES["all"]}


@router.get("/Flag", response_class=FhirJSON, openapi_extra=FLAGS.declared())
def search_flags(
    request: Request,
    conn: Connection,
    who: Caller,
    patient: str | None = None,
    subject: str | None = None,
    status: Literal["active", "inactive"] | None = None,
) -> FhirJSON:
    whose = _patient(request, conn, who, "/fhir/Flag", patient, subject)
    alerts = list_alerts(conn, _STATUS[status], whose, limit=LIMIT)
    audit(conn, who.name, "search", "/fhir/Flag", request.url.query, Outcome.SUCCESS, [whose])
    return _bundle(request, [render_flag(a) for a in alerts])


@router.get("/Communication", response_class=FhirJSON, openapi_extra=COMMUNICATIONS.declared())
def search_communications(
    request: Request,
    conn: Connection,
    who: Caller,
    patient: str | None = None,
    subject: str | None = None,
) -> FhirJSON:
    whose = _patient(request, conn, who, "/fhir/Communication", patient, subject)
    notifications = notifications_of_patient(conn, whose, LIMIT)
    audit(
        conn, who.name, "search", "/fhir/Communication", request.url.query, Outcome.SUCCESS, [whose]
    )
    return _bundle(request, [render_communication(n) for n in notifications])


def _patient(
    request: Request,
    conn: Connection,
    who: Principal,
    resource: str,
    patient: str | None,
    subject: str | None,
) -> str:
    try:
        return patient_of(patient, subject)
    except SearchError as exc:
        audit(conn, who.name, "search", resource, request.url.query, Outcome.INVALID)
        raise FhirError(400, "required", str(exc)) from None


def _bundle(request: Request, resources: list[dict[str, object]]) -> FhirJSON:
    return FhirJSON(searchset(resources, fhir_base(request), str(request.url)))
