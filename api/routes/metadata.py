"""``/fhir/metadata``: the CapabilityStatement, public as FHIR expects (it names no one)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.fhir.capability import capability_statement
from api.fhir.response import FhirJSON, fhir_base

router = APIRouter(prefix="/fhir")


@router.get("/metadata", response_class=FhirJSON)
def metadata(request: Request) -> FhirJSON:
    statement = capability_statement(
        request.app.openapi(),
        fhir_base(request),
        request.app.state.started,
        request.app.state.oidc is not None,
    )
    return FhirJSON(statement)
