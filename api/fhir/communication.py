"""A notification as a FHIR R4 Communication: who was told of which alert (the Flag), by
which channel, and whether it got through."""

from __future__ import annotations

from typing import Any

from alerts.queries import Notification

_STATUS = {"pending": "in-progress", "sent": "completed", "failed": "not-done"}


def render_communication(notification: Notification) -> dict[str, Any]:
    n = notification
    recipient = "the patient" if n.audience == "patient" else "the care team"
    doc: dict[str, Any] = {
        "resourceType": "Communication",
        "id": str(n.id),
        "status": _STATUS[n.state],
        "priority": "urgent",
        "subject": {"reference": f"Patient/{n.patient}"},
        "about": [{"reference": f"Flag/{n.alert}"}],
        "medium": [{"text": n.channel}],
        "recipient": [{"display": recipient}],
        "payload": [{"contentString": f"alert {n.alert} to {recipient} by {n.channel}"}],
    }
    if n.sent is not None:
        doc["sent"] = n.sent.isoformat()
    return doc
