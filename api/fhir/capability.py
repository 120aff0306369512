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
_ORDER = ("read", "vread", "history-instance", "search-type")


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    type: str
    """FHIR's search parameter types: reference, token, date, string, number ..."""
    documentation: str
    definition: str = ""
    """The SearchParameter's canonical URL (FHIR's own, for the standard ones)."""

    def declared(self) -> dict[str, str]:
        entry = {"name": self.name, "type": self.type, "documentation": self.documentation}
        return entry | ({"definition": self.definition} if self.definition else {})


_SP = "http://hl7.org/fhir/SearchParameter/"
RESULT_PARAMS = (
    SearchParam("_count", "number", "entries per page, 0 to 1000", _SP + "Resource-count"),
    SearchParam("_total", "token", "none, estimate or accurate", _SP + "Resource-total"),
    SearchParam("_summary", "token", "true, data, count or false", _SP + "Resource-summary"),
    SearchParam("_elements", "string", "top-level elements to keep", _SP + "Resource-elements"),
    SearchParam("_format", "token", "json (the only format served)", _SP + "Resource-format"),
)
"""The result parameters every search takes (stated once, for the whole server)."""
PATIENT_PARAMS = (
    SearchParam(
        "patient",
        "reference",
        "the patient, Patient/ID; required",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    SearchParam("subject", "reference", "the same as patient"),
)


@dataclass(frozen=True, slots=True)
class Interaction:
    resource: str
    code: str
    """FHIR's interaction codes: read, search-type ..."""
    search: tuple[SearchParam, ...] = ()
    profiles: tuple[str, ...] = ()
    """Profiles some of the resources served claim (``supportedProfile``)."""
    operation: tuple[str, str] | None = None
    """(name, definition URL) of an operation (code ``operation``)."""
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()

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
                "searchParam": [p.declared() for p in self.search],
                "supportedProfile": list(self.profiles),
                "operation": None
                if self.operation is None
                else {"name": self.operation[0], "definition": self.operation[1]},
                "searchInclude": list(self.includes),
                "searchRevInclude": list(self.revincludes),
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
        if declared.get("operation"):
            entry.setdefault("operation", []).append(declared["operation"])
            continue
        if declared["code"] not in [i["code"] for i in entry["interaction"]]:
            entry["interaction"].append({"code": declared["code"]})
        known = {p["name"] for p in entry["searchParam"]}
        entry["searchParam"] += [p for p in declared["searchParam"] if p["name"] not in known]
        profiles = entry.setdefault("supportedProfile", [])
        profiles += [p for p in declared["supportedProfile"] if p not in profiles]
        for extension in declared.get("extension", []):  # e.g. the subscription topics
            if extension not in entry.setdefault("extension", []):
                entry["extension"].append(extension)
        for element in ("searchInclude", "searchRevInclude"):
            given = entry.setdefault(element, [])
            given += [i for i in declared.get(element, []) if i not in given]
    for entry in resources.values():
        entry["interaction"].sort(key=lambda i: _order(i["code"]))
        for empty in ("searchParam", "supportedProfile", "searchInclude", "searchRevInclude"):
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
                "searchParam": [p.declared() for p in RESULT_PARAMS],
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
