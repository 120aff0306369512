"""Analytics events: what `vigil analytics` publishes on ``vigil/v1/events/{patient}``.

A condition *started*, *persisted* (it has held long enough to be an alert candidate) or
*cleared*, for one patient's stream, with the evidence a clinician checks::

    {"id": "p0001/spo2/spo2_desaturation/persisted/1764086415000", "patient": "p0001",
     "metric": "spo2", "rule": "spo2_desaturation", "kind": "persisted",
     "time": "2026-11-25T16:00:15.000Z", "value": 86.0,
     "evidence": {"onset": "2026-11-25T16:00:00.000Z", "persist_s": 15.0, ...},
     "gateway": "gw-home-0042", "description": "SpO2 below 88 % for 15 s"}

``id`` is the same if the event is ever published again (the alerts service takes each id
once); ``gateway`` is the one that carried the reading (the patient's inbox); times are
UTC with milliseconds; ``value`` is null when the condition has no value (a silence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from vigil.metrics import BY_NAME
from vigil.wire import document
from vigil.wire.batch import PATIENT_ID
from vigil.wire.errors import WireError
from vigil.wire.topics import GATEWAY_ID

RULE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EVENT_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


class EventKind(StrEnum):
    STARTED = "started"
    PERSISTED = "persisted"
    """Held for the rule's persistence delay: an alert candidate."""
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    id: str
    patient: str
    metric: str
    """A name from the metric catalogue."""
    rule: str
    kind: EventKind
    time: datetime
    """Of the reading that caused the event (UTC, milliseconds)."""
    value: float | None
    evidence: dict[str, Any] = field(default_factory=dict)
    gateway: str | None = None
    description: str = ""
    """What the rule says, in the words of the scale the patient is judged on."""

    def encode(self) -> bytes:
        return document.dump(self.document())

    def document(self) -> dict[str, Any]:
        """The JSON object (what the alerts service keeps as the alert's evidence)."""
        return {
            "id": self.id,
            "patient": self.patient,
            "metric": self.metric,
            "rule": self.rule,
            "kind": str(self.kind),
            "time": iso(self.time),
            "value": self.value,
            "evidence": self.evidence,
            "gateway": self.gateway,
            "description": self.description,
        }

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> AnalyticsEvent:
        return cls.from_document(document.parse(payload))

    @classmethod
    def from_document(cls, doc: Any) -> AnalyticsEvent:
        doc = document.as_object(doc, "payload")
        metric = document.text(doc, "metric")
        if metric not in BY_NAME:
            raise WireError("metric", f"{metric!r} is not a metric in the catalogue")
        return cls(
            id=document.text(doc, "id", EVENT_ID, "1-256 printable characters"),
            patient=document.text(doc, "patient", PATIENT_ID, "a patient id"),
            metric=metric,
            rule=document.text(doc, "rule", RULE, "a rule name"),
            kind=document.choice(doc, "kind", EventKind),
            time=parse_iso(doc, "time"),
            value=document.optional_number(doc, "value"),
            evidence=document.as_object(doc.get("evidence", {}), "evidence"),
            gateway=(
                None
                if doc.get("gateway") is None
                else document.text(doc, "gateway", GATEWAY_ID, "a gateway id")
            ),
            description=document.optional_text(doc, "description") or "",
        )


def iso(moment: datetime) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-25T16:00:15.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_of_ms(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, UTC))


def parse_iso(doc: dict[str, Any], name: str) -> datetime:
    text = document.text(doc, name, what="an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WireError(name, f"expected an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise WireError(name, f"expected a time with its UTC offset, got {text!r}")
    return moment.astimezone(UTC)
