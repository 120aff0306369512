"""Consent (R4) for a patient's decision about one care team or integration, and the part
of a posted Consent that Vigil reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.access.consent import Decision
from vigil.wire.times import iso

_ACTOR_ROLE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}


class _Reference(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reference: str = Field(max_length=100, pattern=r"^[^\x00]*$")
    """No NUL: PostgreSQL's text holds none."""


class _Actor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reference: _Reference


class _Period(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @field_validator("start", "end")
    @classmethod
    def _in_utc(cls, at: datetime | None) -> datetime | None:
        """In UTC, as stored: one whose UTC is outside the years 0001 to 9999
        (0001-01-01T00:00+14:00) would be stored, but could not be read back."""
        try:
            return at.astimezone(UTC) if at is not None else None
        except OverflowError:
            raise ValueError("a time from year 0001 to 9999 in UTC") from None


class _Provision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["permit", "deny"]
    actor: list[_Actor] = Field(min_length=1, max_length=1)
    period: _Period | None = None


class PostedConsent(BaseModel):
    """What Vigil takes from a posted Consent: whose, whom it is about, permit or deny, and
    when; one actor per Consent, so each decision can be superseded on its own."""

    model_config = ConfigDict(extra="ignore")
    resourceType: Literal["Consent"]
    status: Literal["active"]
    patient: _Reference
    provision: _Provision

    @property
    def actor(self) -> str:
        return self.provision.actor[0].reference.reference

    @property
    def period(self) -> tuple[datetime | None, datetime | None]:
        period = self.provision.period or _Period()
        return period.start, period.end


def render_consent(decision: Decision) -> dict[str, Any]:
    period = {"start": iso(decision.start)}
    if decision.end is not None:
        period["end"] = iso(decision.end)
    patient = {"reference": f"Patient/{decision.patient}"}
    return {
        "resourceType": "Consent",
        "id": str(decision.id),
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Consent"}]}
        ],
        "patient": patient,
        "dateTime": iso(decision.recorded),
        "performer": [patient],
        "policyRule": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "OPTIN" if decision.decision == "permit" else "OPTOUT",
                }
            ]
        },
        "provision": {
            "type": decision.decision,
            "period": period,
            "actor": [{"role": _ACTOR_ROLE, "reference": {"reference": decision.actor}}],
        },
    }
