"""FHIR's JSON media type, and the response that carries it."""

from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"


class FhirJSON(JSONResponse):
    media_type = FHIR_JSON
