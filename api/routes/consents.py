"""FHIR Consent: a patient lets a care team or an integration see their data, or withdraws
it. The policy reads the newest decision in force on every request, so it holds at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.access import audit, consent
from api.access.principal import Kind
from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import PATIENT_PARAMS, Interaction
from api.fhir.consent import PostedConsent, render_consent
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here
from api.fhir.search.values import SearchError, patient_of, patient_reference
from api.routes.compartment import hidden_outcome

router = APIRouter(prefix="/fhir")
SEARCH = Interaction("Consent", "search-type", PATIENT_PARAMS)
READ = Interaction("Consent", "read")
CREATE = Interaction("Consent", "create")


@router.get("/Consent", response_class=FhirJSON, openapi_extra=SEARCH.declared())
def search_consents(
    request: Request,
    access: Annotated[Access, require("Consent", "search")],
    conn: Connection,
    patient: str | None = None,
    subject: str | None = None,
) -> FhirJSON:
    try:
        whose = patient_of(patient, subject)
    except SearchError as exc:
        raise FhirError(400, "required", str(exc)) from None
    found = []
    outcome = None
    if access.sees(whose):
        access.touch([whose])
        found = [render_consent(d) for d in consent.decisions(conn, whose) if _shown(access, d)]
    else:
        outcome = hidden_outcome(access, whose)
    bundle = searchset(found, fhir_base(request), here(request), len(found), outcome=outcome)
    return FhirJSON(bundle)


@router.get("/Consent/{consent_id}", response_class=FhirJSON, openapi_extra=READ.declared())
def read_consent(
    consent_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    access: Annotated[Access, require("Consent", "read")],
    conn: Connection,
) -> FhirJSON:
    found = consent.decision(conn, consent_id)
    if found is None or not access.sees(found.patient) or not _shown(access, found):
        raise FhirError(404, "not-found", "no such Consent")
    access.touch([found.patient])
    return FhirJSON(render_consent(found))


def _shown(access: Access, decision: consent.Decision) -> bool:
    """The patient and administrators see every decision; a team or an integration only
    those about itself (which other teams a patient let in or shut out is not theirs)."""
    return (
        access.compartment.everyone
        or access.who.kind is Kind.PATIENT
        or (decision.actor in access.compartment.actors)
    )


@router.post("/Consent", response_class=FhirJSON, status_code=201, openapi_extra=CREATE.declared())
def create_consent(
    request: Request,
    posted: PostedConsent,
    access: Annotated[Access, require("Consent", "create")],
    conn: Connection,
) -> FhirJSON:
    try:
        whose = patient_reference("patient", posted.patient.reference)
    except SearchError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    access.touch([whose])
    if access.who.kind is not Kind.PATIENT or not access.sees(whose):
        raise FhirError(403, "forbidden", "only the patient records their own consent")
    start, end = posted.period
    try:
        with conn.transaction():
            made = consent.record(
                conn, whose, posted.actor, posted.provision.type, access.who.name, start, end
            )
            audit.add(conn, access.record, 201)
    except consent.ConsentError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    resource = render_consent(made)
    location = f"{fhir_base(request)}/Consent/{made.id}"
    return FhirJSON(resource, status_code=201, headers={"Location": location})
