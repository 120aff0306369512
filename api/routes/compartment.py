"""What a search for a patient outside the caller's compartment answers: nothing, and, to
the members of a team the patient has withdrawn, why (they were caring for them, so they
know the patient exists; anyone else learns nothing, not even that)."""

from __future__ import annotations

from typing import Any

from api.deps import Access
from api.fhir.outcome import operation_outcome


def hidden_outcome(access: Access, patient: str) -> dict[str, Any] | None:
    why = access.compartment.hidden.get(patient)
    if why is None:
        return None
    access.touch([patient])
    return operation_outcome("suppressed", f"Patient/{patient} is hidden: {why}", "information")
