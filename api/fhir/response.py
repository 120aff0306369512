"""FHIR's JSON media type, and the response that carries it."""

from fastapi import Request
from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"


class FhirJSON(JSONResponse):
    media_type = FHIR_JSON


def fhir_base(request: Request) -> str:
    """The FHIR base URL of this server, as the client reached it (``.../fhir``)."""
    return str(request.base_url).rstrip("/") + "/fhir"
