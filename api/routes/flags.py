"""FHIR views of the alerts: alerts as Flag, their notifications as Communication, each
for one patient of the caller's compartment."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request

from alerts.queries import STATES, list_alerts, notifications_of_patient
from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction, SearchParam
from api.fhir.communication import render_communication
from api.fhir.flag import render_flag
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here
from api.fhir.search import PATIENT_PARAMS, SearchError, patient_of
from api.routes.compartment import hidden_outcome

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
    access: Annotated[Access, require("Flag", "search")],
    conn: Connection,
    patient: str | None = None,
    subject: str | None = None,
    status: Literal["active", "inactive"] | None = None,
) -> FhirJSON:
    whose = _patient(patient, subject)
    if not access.sees(whose):
        return _bundle(request, [], hidden_outcome(access, whose))
    access.touch([whose])
    alerts = list_alerts(conn, _STATUS[status], [whose], limit=LIMIT)
    return _bundle(request, [render_flag(a) for a in alerts])


@router.get("/Communication", response_class=FhirJSON, openapi_extra=COMMUNICATIONS.declared())
def search_communications(
    request: Request,
    access: Annotated[Access, require("Communication", "search")],
    conn: Connection,
    patient: str | None = None,
    subject: str | None = None,
) -> FhirJSON:
    whose = _patient(patient, subject)
    if not access.sees(whose):
        return _bundle(request, [], hidden_outcome(access, whose))
    access.touch([whose])
    notifications = notifications_of_patient(conn, whose, LIMIT)
    return _bundle(request, [render_communication(n) for n in notifications])


def _patient(patient: str | None, subject: str | None) -> str:
    try:
        return patient_of(patient, subject)
    except SearchError as exc:
        raise FhirError(400, "required", str(exc)) from None


def _bundle(
    request: Request, resources: list[dict[str, object]], outcome: dict[str, object] | None = None
) -> FhirJSON:
    return FhirJSON(
        searchset(resources, fhir_base(request), here(request), len(resources), outcome=outcome)
    )
