"""AuditEvent (R4) for one row of the audit trail: who (agent), did what (subtype and
action), to whom (entity: each patient, and the request itself), with what outcome."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vigil.wire.times import iso

_INTERACTION = {
    "read": ("read", "R"),
    "search": ("search-type", "E"),
    "subscribe": ("search-type", "E"),
    "deliver": ("search-type", "E"),
    "update": ("update", "U"),
    "acknowledge": ("update", "U"),
    "resolve": ("update", "U"),
    "snooze": ("update", "U"),
    "create": ("create", "C"),
}
_MINOR_FAILURES = {"invalid", "denied", "forbidden", "not-found", "conflict", "too-large"}
_HUMAN = {"clinician", "patient", "admin"}


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    kind: str | None
    action: str
    resource: str
    query: str | None
    outcome: str
    status: int | None
    patients: list[str]


def render_audit_event(row: AuditRow) -> dict[str, Any]:
    subtype, action = _INTERACTION.get(row.action, ("search-type", "E"))
    outcome = "0" if row.outcome == "success" else "4" if row.outcome in _MINOR_FAILURES else "8"
    role = "humanuser" if row.kind in _HUMAN else "dataprocessor"
    request: dict[str, Any] = {
        "what": {"display": row.resource},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
        "description": f"{row.action} {row.resource}",
    }
    if row.query:
        request["query"] = base64.b64encode(row.query.encode()).decode()
    return {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": iso(row.at),
        "outcome": outcome,
        "outcomeDesc": f"{row.outcome} (HTTP {row.status})" if row.status else row.outcome,
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                            "code": role,
                        }
                    ]
                },
                "who": {"display": row.actor},
                "altId": row.kind or "unknown",
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": "Vigil API"}},
        "entity": [
            *(
                {
                    "what": {"reference": f"Patient/{p}"},
                    "type": {
                        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                        "code": "1",
                    },
                    "role": {
                        "system": "http://terminology.hl7.org/CodeSystem/object-role",
                        "code": "1",
                        "display": "Patient",
                    },
                }
                for p in row.patients
            ),
            request,
        ],
    }
