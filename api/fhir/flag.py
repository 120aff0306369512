"""An alert as a FHIR R4 Flag: a warning about the patient, active until resolved, with
its priority in the flag-priority extension (PL, PM, PH) and every rule of its episode
among the codes, the worst first."""

from __future__ import annotations

from typing import Any

from alerts.queries import Alert
from analytics.rules import (
    BASELINE,
    OPTIONAL,
    PULSE,
    SCALE_1,
    SCALE_2,
    STALE_DESCRIPTION,
    STALE_RULE,
    TECHNICAL,
)
from vigil.wire.times import iso

RULES_SYSTEM = "https://vigil.invalid/fhir/CodeSystem/rules"
"""The code system of Vigil's rule names (a placeholder domain until one is registered)."""
PRIORITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/flag-priority"
PRIORITY_SYSTEM = "http://hl7.org/fhir/flag-priority-code"


def _one_wording() -> dict[str, str]:
    """For alerts raised before events carried their description: the rules worded the same
    on every scale (the SpO2 rules, worded per scale, then show their name)."""
    wordings: dict[str, set[str]] = {STALE_RULE: {STALE_DESCRIPTION}}
    for rule in SCALE_1 + SCALE_2 + PULSE + OPTIONAL + BASELINE + TECHNICAL:
        wordings.setdefault(rule.name, set()).add(rule.description)
    return {name: texts.pop() for name, texts in wordings.items() if len(texts) == 1}


ONE_WORDING = _one_wording()
_PRIORITIES = {
    "low": ("PL", "Low priority"),
    "medium": ("PM", "Medium priority"),
    "high": ("PH", "High priority"),
}


def _text(alert: Alert) -> str:
    """What the episode's worst rule says, how often it came back, and whether it has
    ended (a high priority alert stays active until acknowledged, so the team sees why)."""
    text = alert.description or ONE_WORDING.get(alert.rule, alert.rule.replace("_", " "))
    if alert.repetitions:
        text += f"; {alert.repetitions + 1} times"
    if alert.cleared_at is not None and alert.state != "resolved":
        text += f"; ended {alert.cleared_at.isoformat()}"
    return text


def render_flag(alert: Alert) -> dict[str, Any]:
    code, display = _PRIORITIES[alert.priority]
    period = {"start": alert.triggered_at.isoformat()}
    if alert.state == "resolved":
        period["end"] = alert.updated.isoformat()
    return {
        "resourceType": "Flag",
        "id": str(alert.id),
        "meta": {"lastUpdated": iso(alert.updated)},
        "extension": [
            {
                "url": PRIORITY_EXTENSION,
                "valueCodeableConcept": {
                    "coding": [{"system": PRIORITY_SYSTEM, "code": code, "display": display}]
                },
            }
        ],
        "status": "inactive" if alert.state == "resolved" else "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical",
                        "display": "Clinical",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": RULES_SYSTEM, "code": rule}
                for rule in dict.fromkeys([alert.rule, *alert.rules])
            ],
            "text": _text(alert),
        },
        "subject": {"reference": f"Patient/{alert.patient}"},
        "period": period,
    }
