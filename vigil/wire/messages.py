"""Messages for the patient: what the alerts service sends on a gateway's
``vigil/v1/gw/{gateway}/inbox`` for the patient's display::

    {"patient": "p0001", "alerts": [12, 13], "text": "Your oxygen level ...",
     "idempotency_key": "vigil-group-..."}

The alerts of one patient raised together come as one message; a message delivered twice
(after a lost acknowledgement) has the same idempotency key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vigil.wire import document
from vigil.wire.batch import PATIENT_ID
from vigil.wire.errors import WireError

KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True, slots=True)
class PatientMessage:
    patient: str
    alerts: tuple[int, ...]
    text: str
    idempotency_key: str

    def __post_init__(self) -> None:
        """What the decoder would refuse is refused here, so no sender makes it."""
        if not self.text.strip() or len(self.text) > document.MAX_TEXT:
            raise ValueError(f"a patient message has 1-{document.MAX_TEXT} characters of text")

    def encode(self) -> bytes:
        return document.dump(self.document())

    def document(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "alerts": list(self.alerts),
            "text": self.text,
            "idempotency_key": self.idempotency_key,
        }

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> PatientMessage:
        doc = document.parse_object(payload)
        alerts = doc.get("alerts")
        if not isinstance(alerts, list) or not all(type(a) is int and a >= 0 for a in alerts):
            raise WireError("alerts", f"expected an array of alert ids, got {alerts!r}")
        text = document.text(doc, "text")
        if not text.strip():
            raise WireError("text", "expected the message's text, got none")
        return cls(
            patient=document.text(doc, "patient", PATIENT_ID, "a patient id"),
            alerts=tuple(alerts),
            text=text,
            idempotency_key=document.text(doc, "idempotency_key", KEY, "an idempotency key"),
        )
