"""What an alert is: its priority, who must hear of it, and what the patient is told.

Priorities follow IEC 60601-1-8: *high* needs an immediate response (a hard limit: SpO2
below 88 %, a pulse above 150 or below 35), *medium* a prompt one (a NEWS2 red score held),
*low* awareness (a drift from the patient's own baseline, a sensor to check).
Technical conditions go to the patient first: they can fix a probe, a nurse cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class State(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


CARE_TEAM = "care_team"
PATIENT = "patient"
ADMIN = "admin"
"""The deployment's administrators: told when nobody of a care team could be (alerts.admins)."""


@dataclass(frozen=True, slots=True)
class AlertKind:
    priority: Priority
    audience: tuple[str, ...]
    patient_message: str
    """Plain language, for the patient's gateway and channels; empty: not told."""


_LOW_OXYGEN = (
    "Your oxygen level has been low for a little while. Sit down and rest, breathe slowly. "
    "Your care team has been told. If you feel short of breath or confused, call for help."
)
_CHECK_SENSOR = (
    "We are not getting good readings from your sensor. Please check that the finger clip "
    "and the chest strap are on properly."
)

KINDS = {
    "spo2_desaturation": AlertKind(Priority.HIGH, (CARE_TEAM, PATIENT), _LOW_OXYGEN),
    "spo2_news2_red": AlertKind(Priority.MEDIUM, (CARE_TEAM, PATIENT), _LOW_OXYGEN),
    "hr_extreme_high": AlertKind(Priority.HIGH, (CARE_TEAM,), ""),
    "hr_extreme_low": AlertKind(Priority.HIGH, (CARE_TEAM,), ""),
    "hr_news2_red_high": AlertKind(Priority.MEDIUM, (CARE_TEAM,), ""),
    "hr_news2_red_low": AlertKind(Priority.MEDIUM, (CARE_TEAM,), ""),
    "hr_rising": AlertKind(Priority.LOW, (CARE_TEAM,), ""),
    "spo2_below_baseline": AlertKind(Priority.LOW, (CARE_TEAM,), ""),
    "hr_off_baseline": AlertKind(Priority.LOW, (CARE_TEAM,), ""),
    "novelty": AlertKind(Priority.LOW, (CARE_TEAM,), ""),
    "check_sensor": AlertKind(Priority.LOW, (PATIENT, CARE_TEAM), _CHECK_SENSOR),
    "no_data": AlertKind(
        Priority.LOW,
        (PATIENT, CARE_TEAM),
        "We have had no readings from one of your devices for a few minutes. Please check it "
        "is switched on, charged, and near your home hub.",
    ),
}
"""Every rule of analytics.rules (a test holds the two lists together)."""


def load_patient_messages(path: Path) -> dict[str, str]:
    """What patients are told, per rule, from a JSON object ``{"rule": "text", ...}``: a
    care team's own wording (or language). An unknown rule or an empty text is an error
    naming it, not a message silently never sent."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected an object of rule names and texts")
    for rule, text in document.items():
        if rule not in KINDS:
            raise ValueError(f"{path}: {rule!r} is not a rule ({', '.join(KINDS)})")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}: the message for {rule} is empty")
    return dict(document)


def kind_of(rule: str) -> AlertKind:
    """An unknown rule (a newer analytics) is a medium care-team alert, never dropped."""
    return KINDS.get(rule, AlertKind(Priority.MEDIUM, (CARE_TEAM,), ""))
