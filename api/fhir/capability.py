"""The CapabilityStatement, made from what the app actually serves.

Every FHIR route declares what it is (:class:`Interaction`: resource type, interaction,
search parameters, profiles its resources may claim) in its OpenAPI extras, and
``/fhir/metadata`` reads those declarations off the app's OpenAPI document, which FastAPI
makes from the routes registered. A resource served is therefore a resource stated: a
hand-written statement once left out two of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import vigil

_KEY = "x-fhir-interaction"
_ORDER = ("read", "vread", "search-type")


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    type: str
    """FHIR's search parameter types: reference, token, date, string, number ..."""
    documentation: str


@dataclass(frozen=True, slots=True)
class Interaction:
    resource: str
    code: str
    """FHIR's interaction codes: read, search-type ..."""
    search: tuple[SearchParam, ...] = ()
    profiles: tuple[str, ...] = ()
    """Profiles some of the resources served claim (``supportedProfile``)."""

    def declared(self, query: tuple[str, ...] | None = None) -> dict[str, Any]:
        """What the route passes as ``openapi_extra``; it shows in the OpenAPI document too.
        A route that reads its query itself names the parameters it takes (``query``), so
        the OpenAPI document lists them for clients and fuzzers alike."""
        extra: dict[str, Any] = {}
        if query is not None:
            extra["parameters"] = [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in query
            ]
        return extra | {
            _KEY: {
                "resource": self.resource,
                "code": self.code,
                "searchParam": [
                    {"name": p.name, "type": p.type, "documentation": p.documentation}
                    for p in self.search
                ],
                "supportedProfile": list(self.profiles),
            }
        }


def _order(code: str) -> int:
    """FHIR's order of interactions; one this list does not know comes after them."""
    return _ORDER.index(code) if code in _ORDER else len(_ORDER)


def declarations(openapi: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactions the operations of an OpenAPI document declare."""
    return [
        operation[_KEY]
        for methods in openapi.get("paths", {}).values()
        for operation in methods.values()
        if isinstance(operation, dict) and _KEY in operation
    ]


def capability_statement(
    openapi: dict[str, Any], base_url: str, since: datetime, smart: bool = False
) -> dict[str, Any]:
    """``since``: when this server started, the last time what it serves could change;
    ``smart``: bearer JWTs of an OpenID Connect provider are accepted too."""
    resources: dict[str, dict[str, Any]] = {}
    for declared in declarations(openapi):
        entry = resources.setdefault(
            declared["resource"],
            {"type": declared["resource"], "interaction": [], "searchParam": []},
        )
        if declared["code"] not in [i["code"] for i in entry["interaction"]]:
            entry["interaction"].append({"code": declared["code"]})
        known = {p["name"] for p in entry["searchParam"]}
        entry["searchParam"] += [p for p in declared["searchParam"] if p["name"] not in known]
        profiles = entry.setdefault("supportedProfile", [])
        profiles += [p for p in declared["supportedProfile"] if p not in profiles]
    for entry in resources.values():
        entry["interaction"].sort(key=lambda i: _order(i["code"]))
        for empty in ("searchParam", "supportedProfile"):
            if not entry[empty]:
                del entry[empty]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": since.isoformat(timespec="seconds"),
        "kind": "instance",
        "software": {"name": "Vigil", "version": vigil.__version__},
        "implementation": {"description": "Vigil remote patient monitoring", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(smart),
                "resource": [resources[name] for name in sorted(resources)],
            }
        ],
    }


def _security(smart: bool) -> dict[str, Any]:
    described = (
        "Bearer tokens (Authorization: Bearer ...): Vigil tokens, or JWTs of the configured "
        "OpenID Connect provider, with SMART v2 scopes"
        if smart
        else "Bearer tokens (Authorization: Bearer ...) with SMART v2 scopes"
    )
    security: dict[str, Any] = {"cors": False, "description": described}
    if smart:
        security["service"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ]
    return security
