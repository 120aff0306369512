"""FHIR's JSON media type, and the response that carries it."""

from fastapi import Request
from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"


class FhirJSON(JSONResponse):
    media_type = FHIR_JSON


def fhir_base(request: Request) -> str:
    """The FHIR base URL of this server, from the configured public address (a client's
    ``Host`` header must not choose where the links in an answer point)."""
    return f"{request.app.state.base_url}/fhir"


def here(request: Request) -> str:
    """This request's URL under the public address, with its query."""
    query = request.url.query
    return f"{request.app.state.base_url}{request.url.path}" + (f"?{query}" if query else "")
