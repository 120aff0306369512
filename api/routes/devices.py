"""FHIR Device: the sensors and gateways of the caller's patients, with each sensor's
versions (whose it was, when: see :mod:`api.fhir.device`).

A sensor is seen by whoever sees the patient it is now assigned to; of its history, the
versions of patients the caller sees (a team new to a second-hand sensor does not learn
whose it was before). A gateway is seen by whoever sees a patient whose sensor is on it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from api import registry
from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction, SearchParam
from api.fhir.device import (
    BLUETOOTH_ADDRESS_SYSTEM,
    GATEWAY_SYSTEM,
    SensorVersion,
    is_gateway_id,
    render_gateway,
    render_sensor,
)
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here, read_response
from api.fhir.search.controls import Searchable, shape
from api.fhir.search.values import SearchError, patient_reference, tokens
from api.routes.searching import include_patients, is_lenient, notes, params_of, refused

router = APIRouter(prefix="/fhir")
_SP = "http://hl7.org/fhir/SearchParameter/"
DEVICE = Searchable(
    params=(
        SearchParam(
            "patient", "reference", "the patient, Patient/ID; required", _SP + "Device-patient"
        ),
        SearchParam("identifier", "token", "address or gateway id", _SP + "Device-identifier"),
    ),
    includes=("Device:patient",),
    paged=False,
)
READ = Interaction("Device", "read")
VREAD = Interaction("Device", "vread")
HISTORY = Interaction("Device", "history-instance")
SEARCH = DEVICE.interaction("Device")


@router.get("/Device/{resource_id}", response_class=FhirJSON, openapi_extra=READ.declared())
def read_device(
    request: Request,
    resource_id: str,
    access: Annotated[Access, require("Device", "read")],
    conn: Connection,
) -> Response:
    if is_gateway_id(resource_id):
        return read_response(request, _gateway(conn, access, resource_id))
    versions = _visible(conn, access, resource_id)
    if not versions or versions[0].valid_until is not None:
        raise FhirError(404, "not-found", "no such Device")
    return read_response(request, render_sensor(versions[0]))


@router.get(
    "/Device/{resource_id}/_history", response_class=FhirJSON, openapi_extra=HISTORY.declared()
)
def device_history(
    request: Request,
    resource_id: str,
    access: Annotated[Access, require("Device", "read")],
    conn: Connection,
) -> FhirJSON:
    versions = [] if is_gateway_id(resource_id) else _visible(conn, access, resource_id)
    if not versions:
        raise FhirError(404, "not-found", "no such Device")
    base = fhir_base(request)
    entries = []
    for version in versions:
        resource = render_sensor(version)
        entries.append(
            {
                "fullUrl": f"{base}/Device/{resource['id']}",
                "resource": resource,
                "request": {
                    "method": "POST" if version.version == 1 else "PUT",
                    "url": f"Device/{resource['id']}/_history/{version.version}",
                },
                "response": {"status": "201" if version.version == 1 else "200"},
            }
        )
    return FhirJSON(
        {
            "resourceType": "Bundle",
            "type": "history",
            "total": len(entries),
            "link": [{"relation": "self", "url": here(request)}],
            "entry": entries,
        }
    )


@router.get(
    "/Device/{resource_id}/_history/{version_id}",
    response_class=FhirJSON,
    openapi_extra=VREAD.declared(),
)
def read_device_version(
    request: Request,
    resource_id: str,
    version_id: str,
    access: Annotated[Access, require("Device", "read")],
    conn: Connection,
) -> Response:
    versions = [] if is_gateway_id(resource_id) else _visible(conn, access, resource_id)
    found = next((v for v in versions if str(v.version) == version_id), None)
    if found is None:
        raise FhirError(404, "not-found", "no such Device version")
    return read_response(request, render_sensor(found))


@router.get("/Device", response_class=FhirJSON, openapi_extra=SEARCH.declared(DEVICE.names))
def search_devices(
    request: Request,
    access: Annotated[Access, require("Device", "search")],
    conn: Connection,
) -> FhirJSON:
    try:
        filters, controls = DEVICE.parse(params_of(request), is_lenient(request))
        patients = {patient_reference(n, v) for n, v in filters if n == "patient"}
        identifiers = [t for n, v in filters if n == "identifier" for t in tokens(n, v)]
        if len(patients) != 1:
            raise SearchError("patient: required, one per search (e.g. patient=Patient/p0001)")
    except SearchError as exc:
        raise refused(exc) from None
    patient = patients.pop()
    outcome = notes(access, patient, controls.ignored)
    base, self_url = fhir_base(request), here(request)
    if not access.sees(patient):
        return FhirJSON(searchset([], base, self_url, 0, outcome=outcome))
    access.touch([patient])
    sensors, gateways = registry.sensors_and_gateways(conn, [patient])
    found = [
        render_sensor(s)
        for s in sensors
        if _named(identifiers, BLUETOOTH_ADDRESS_SYSTEM, s.address)
    ] + [render_gateway(g) for g in gateways if _named(identifiers, GATEWAY_SYSTEM, g.id)]
    included = include_patients(conn, access, [patient]) if found and controls.include else []
    resources = [shape(r, controls, frozenset()) for r in found]
    return FhirJSON(searchset(resources, base, self_url, len(found), None, outcome, included))


def _named(identifiers: list[tuple[str | None, str]], system: str, value: str) -> bool:
    return not identifiers or any(
        s in (None, system) and c.lower() == value.lower() for s, c in identifiers
    )


def _visible(conn: Connection, access: Access, resource_id: str) -> list[SensorVersion]:
    """The sensor's versions the caller may see, newest first; [] when the current one
    is not theirs to see (a sensor is its current patient's)."""
    versions = registry.sensor_history(conn, resource_id)
    current = versions[0].patient if versions else None
    if not versions or not (access.compartment.everyone or (current and access.sees(current))):
        return []
    shown = [v for v in versions if v.patient is None or access.sees(v.patient)]
    access.touch([v.patient for v in shown])
    return shown


def _gateway(conn: Connection, access: Access, resource_id: str) -> dict[str, Any]:
    found = registry.gateways(conn, [resource_id])
    if found:
        whose = [p for p in registry.gateway_patients(conn, found[0].id) if access.sees(p)]
        if whose or access.compartment.everyone:
            access.touch(whose)
            return render_gateway(found[0])
    raise FhirError(404, "not-found", "no such Device")
