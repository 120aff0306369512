"""Errors answered as FHIR OperationOutcome resources."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException


class FhirError(HTTPException):
    """An error answered as an OperationOutcome; ``code`` is from FHIR's issue-type codes
    (invalid, required, login, not-found ...)."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(status, diagnostics)
        self.code = code
        self.diagnostics = diagnostics

    def outcome(self) -> dict[str, Any]:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": self.code, "diagnostics": self.diagnostics}],
        }
