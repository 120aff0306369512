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
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.metrics import BY_NAME
from vigil.wire import document
from vigil.wire.batch import PATIENT_ID
from vigil.wire.errors import WireError
from vigil.wire.times import iso, parse_iso
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

    @property
    def onset(self) -> datetime | None:
        """When the condition began, from the evidence (the decoder checked it is a time)."""
        onset = self.evidence.get("onset")
        return parse_iso(self.evidence, "onset") if isinstance(onset, str) else None

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
            evidence=_evidence(doc.get("evidence", {})),
            gateway=(
                None
                if doc.get("gateway") is None
                else document.text(doc, "gateway", GATEWAY_ID, "a gateway id")
            ),
            description=document.optional_text(doc, "description") or "",
        )


def _evidence(value: Any) -> dict[str, Any]:
    """Free-form per rule, but for its ``onset``, which the alert keeps as a time."""
    evidence = document.as_object(value, "evidence")
    if "onset" in evidence:
        try:
            parse_iso(evidence, "onset")
        except WireError as exc:
            raise WireError("evidence.onset", exc.problem) from None
    return evidence
