"""Errors answered as FHIR OperationOutcome resources."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """``code`` is from FHIR's issue-type codes (invalid, required, login, not-found ...)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


class FhirError(HTTPException):
    """An error answered as an OperationOutcome."""

    def __init__(
        self, status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, diagnostics, headers)
        self.code = code
        self.diagnostics = diagnostics

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.code, self.diagnostics)
