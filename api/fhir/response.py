"""FHIR's JSON media type, the responses that carry it, and the links they give."""

import hashlib
import json
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi import Request, Response
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


def etag(resource: dict[str, Any]) -> str:
    """``W/"versionId"`` for a resource with versions, else a weak digest of what is
    served (a record without history still gets an ETag that changes when it does)."""
    version = resource.get("meta", {}).get("versionId")
    if version is None:
        body = json.dumps(resource, sort_keys=True, separators=(",", ":")).encode()
        version = hashlib.blake2s(body, digest_size=8).hexdigest()
    return f'W/"{version}"'


def read_response(request: Request, resource: dict[str, Any]) -> Response:
    """A read's answer: the resource with its ETag and Last-Modified, or 304 when the
    client's ``If-None-Match`` names the version it already has."""
    tag = etag(resource)
    headers = {"ETag": tag}
    updated = resource.get("meta", {}).get("lastUpdated")
    if updated:
        headers["Last-Modified"] = format_datetime(datetime.fromisoformat(updated), usegmt=True)
    asked = request.headers.get("if-none-match")
    if asked and (asked.strip() == "*" or tag in {t.strip() for t in asked.split(",")}):
        return Response(status_code=304, headers=headers)
    return FhirJSON(resource, headers=headers)
