"""``/fhir/metadata``: the CapabilityStatement, public as FHIR expects."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.fhir.capability import capability_statement
from api.fhir.response import FhirJSON

router = APIRouter(prefix="/fhir")


@router.get("/metadata", response_class=FhirJSON)
def metadata(request: Request) -> FhirJSON:
    base = str(request.base_url).rstrip("/") + "/fhir"
    return FhirJSON(capability_statement(request.app.openapi(), base, request.app.state.started))
