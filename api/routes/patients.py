"""FHIR Patient: the patients of the caller's compartment, read by id or searched (a
clinician's search without parameters is their list of patients)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from alerts.queries import STATES, page_of_patient
from api import registry
from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction, SearchParam
from api.fhir.device import render_gateway, render_sensor
from api.fhir.flag import render_flag
from api.fhir.outcome import FhirError
from api.fhir.patient import PATIENT_SYSTEM, render_patient
from api.fhir.response import FhirJSON, fhir_base, here, read_response
from api.fhir.search import paging
from api.fhir.search.controls import Searchable, shape
from api.fhir.search.values import SearchError, tokens
from api.routes.searching import (
    is_lenient,
    may_read,
    next_link,
    notes,
    now,
    params_of,
    refused,
    used,
)

router = APIRouter(prefix="/fhir")
_SP = "http://hl7.org/fhir/SearchParameter/"
PATIENT = Searchable(
    params=(
        SearchParam("_id", "token", "patient ids, comma-separated", _SP + "Resource-id"),
        SearchParam(
            "identifier", "token", f"{PATIENT_SYSTEM}|ID or ID", _SP + "Patient-identifier"
        ),
        SearchParam("active", "token", "true or false", _SP + "Patient-active"),
    ),
    revincludes=("Device:patient", "Flag:patient"),
)
READ = Interaction("Patient", "read")
SEARCH = PATIENT.interaction("Patient")
_OPEN_FLAGS = 100


@router.get("/Patient/{resource_id}", response_class=FhirJSON, openapi_extra=READ.declared())
def read_patient(
    request: Request,
    resource_id: str,
    access: Annotated[Access, require("Patient", "read")],
    conn: Connection,
) -> Response:
    found = registry.patients(conn, [resource_id]) if access.sees(resource_id) else []
    if not found:
        raise FhirError(404, "not-found", "no such Patient")
    access.touch([resource_id])
    return read_response(request, render_patient(found[0]))


@router.get("/Patient", response_class=FhirJSON, openapi_extra=SEARCH.declared(PATIENT.names))
def search_patients(
    request: Request,
    access: Annotated[Access, require("Patient", "search")],
    conn: Connection,
) -> FhirJSON:
    params = params_of(request)
    try:
        filters, controls = PATIENT.parse(params, is_lenient(request))
        ids = _ids(filters)
        active = _active(filters)
        cursor = paging.decode(controls.cursor, str) if controls.cursor else None
    except SearchError as exc:
        raise refused(exc) from None
    limit = access.compartment.limit()
    asked = limit if ids is None else [i for i in ids if access.sees(i)]
    after = None if cursor is None or cursor.after is None else str(cursor.after[0])
    rows = registry.patients(conn, asked, active, after, controls.count + 1)
    shown = rows[: controls.count]
    access.touch([r.id for r in shown])
    whose = [r.id for r in shown]
    included = _revincluded(conn, access, whose, controls.revinclude)
    next_url = None
    if len(rows) > controls.count and shown:
        key = paging.Cursor(now(), (shown[-1].id,))
        next_url = next_link(request, "Patient", used(params, controls.ignored), key.encode())
    outcome = notes(access, None, controls.ignored)
    resources = [shape(render_patient(r), controls, frozenset()) for r in shown]
    total = len(shown) if len(rows) <= controls.count and after is None else None
    return FhirJSON(
        searchset(resources, fhir_base(request), here(request), total, next_url, outcome, included)
    )


def _revincluded(
    conn: Connection, access: Access, whose: list[str], wanted: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The patients' sensors (and their gateways), and their open alerts, when asked for
    and the caller may read those."""
    included: list[dict[str, Any]] = []
    if whose and "Device:patient" in wanted and may_read(access, "Device"):
        sensors, gateways = registry.sensors_and_gateways(conn, whose)
        included += [render_sensor(s) for s in sensors] + [render_gateway(g) for g in gateways]
    if whose and "Flag:patient" in wanted and may_read(access, "Flag"):
        for patient in whose:
            flags = page_of_patient(conn, patient, STATES["open"], ("TRUE", []), None, _OPEN_FLAGS)
            included += [render_flag(a) for a in flags]
    return included


def _ids(filters: list[tuple[str, str]]) -> list[str] | None:
    ids: set[str] | None = None
    for name, value in filters:
        if name == "_id":
            named = {c for _, c in tokens(name, value)}
        elif name == "identifier":
            named = {c for s, c in tokens(name, value) if s in (None, PATIENT_SYSTEM)}
        else:
            continue
        ids = named if ids is None else ids & named
    return None if ids is None else sorted(ids)


def _active(filters: list[tuple[str, str]]) -> bool | None:
    values = [v for n, v in filters if n == "active"]
    if not values:
        return None
    if values[-1] not in ("true", "false"):
        raise SearchError("active: true or false")
    return values[-1] == "true"
