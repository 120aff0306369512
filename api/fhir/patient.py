"""A monitored patient as a FHIR R4 Patient.

Vigil knows a patient by the id their gateway sends, a name only when someone recorded one,
and the care team that watches them. R4's Patient has no element for a care team (its
``generalPractitioner`` is a person or an organisation), so the team is named in the
extension :data:`CARE_TEAM_EXTENSION` by identifier: Vigil serves no CareTeam resource, and
a reference that leads nowhere is what FHIR clients trip over. Patient records keep no
history, so they carry no ``versionId``; their ETag is a digest of what is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vigil.wire.times import iso

PATIENT_SYSTEM = "https://vigil-rpm.org/fhir/sid/patient"
CARE_TEAM_SYSTEM = "https://vigil-rpm.org/fhir/sid/care-team"
CARE_TEAM_EXTENSION = "https://vigil-rpm.org/fhir/StructureDefinition/care-team"


@dataclass(frozen=True, slots=True)
class PatientRow:
    id: str
    name: str | None
    active: bool
    updated: datetime
    team: str | None
    team_name: str | None


def render_patient(patient: PatientRow) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient.id,
        "meta": {"lastUpdated": iso(patient.updated)},
        "identifier": [{"system": PATIENT_SYSTEM, "value": patient.id}],
        "active": patient.active,
    }
    if patient.team:
        team: dict[str, Any] = {"identifier": {"system": CARE_TEAM_SYSTEM, "value": patient.team}}
        if patient.team_name:
            team["display"] = patient.team_name
        resource["extension"] = [{"url": CARE_TEAM_EXTENSION, "valueReference": team}]
    if patient.name:
        resource["name"] = [{"text": patient.name}]
    return resource
