"""``/patients/{patient_id}/messages``: what the alerts service told a patient, in its words.

The patient's own view shows it as their inbox, and a clinician can read exactly what the
patient was asked to do. A FHIR Communication says who was told by which channel but not
the text; the text lives in the notification's body (:func:`alerts.outbox.notify`), once
per channel (the gateway's inbox and each of the patient's own contacts), so one telling
of an alert is one message here, however many channels carried it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from alerts.model import PATIENT
from api.deps import Access, Connection, require
from api.fhir.outcome import FhirError

router = APIRouter()
PATIENT_ID = r"^[A-Za-z0-9\-.]{1,64}$"
"""FHIR id syntax: anything else names no patient (and could not be sent to PostgreSQL)."""
_MESSAGES = (
    "SELECT n.alert, n.revision, min(n.created), min(n.sent), n.body->>'text', a.rule, a.state"
    " FROM alert a JOIN notification n ON n.alert = a.id"
    " WHERE a.patient = %s AND n.audience = %s"
    " GROUP BY n.alert, n.revision, n.body->>'text', a.rule, a.state"
    " ORDER BY min(n.created) DESC, n.alert DESC, n.revision DESC LIMIT %s"
)


@router.get("/patients/{patient_id}/messages")
def patient_messages(
    patient_id: Annotated[str, Path(pattern=PATIENT_ID)],
    access: Annotated[Access, require("Communication", "search")],
    conn: Connection,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Newest first. ``delivered`` is when the first channel got it through (None while
    every channel is still trying, or all failed); ``alert_state`` lets the page say
    whether what the message is about is over."""
    if not access.sees(patient_id):
        raise FhirError(404, "not-found", "no such patient")
    access.touch([patient_id])
    rows = conn.execute(_MESSAGES, (patient_id, PATIENT, limit)).fetchall()
    return {
        "patient": patient_id,
        "messages": [
            {
                "alert": alert,
                "revision": revision,
                "told": told.isoformat(),
                "delivered": sent.isoformat() if sent else None,
                "text": text,
                "rule": rule,
                "alert_state": state,
            }
            for alert, revision, told, sent, text, rule, state in rows
        ],
    }
