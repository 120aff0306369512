"""The alerts API: list and read alerts, acknowledge, resolve and snooze them as the caller,
within the caller's compartment (another patient's alert is not found).

Every change records the caller's name as its actor, and the audit row the patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.queries import STATES, history, list_alerts, notifications_of_alert, read_alert
from alerts.store import AlertError, act
from api.access import audit
from api.deps import Access, Connection, require
from api.fhir.outcome import FhirError
from api.fhir.search.values import SearchError, patient_reference

router = APIRouter()
_DONE = {"acknowledge": "acknowledged", "resolve": "resolved", "snooze": "snoozed"}
MAX_SNOOZE = timedelta(days=7)
"""A snooze longer than this is a silenced patient, not a snooze."""


@router.get("/alerts")
def get_alerts(
    access: Annotated[Access, require("Flag", "search")],
    conn: Connection,
    patient: Annotated[str | None, Query(max_length=80)] = None,
    state: Literal["open", "triggered", "acknowledged", "resolved", "all"] = "open",
    priority: Literal["low", "medium", "high"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    if patient is None:
        patients = access.compartment.limit()
    else:
        try:
            whose = patient_reference("patient", patient)
        except SearchError as exc:
            raise FhirError(400, "invalid", str(exc)) from None
        patients = [whose] if access.sees(whose) else []
    alerts = list_alerts(conn, STATES[state], patients, priority, limit) if patients != [] else []
    access.touch(a.patient for a in alerts)
    return [a.as_dict() for a in alerts]


@router.get("/alerts/{alert_id}")
def get_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    access: Annotated[Access, require("Flag", "read")],
    conn: Connection,
) -> dict[str, Any]:
    alert = read_alert(conn, alert_id)
    if alert is None or not access.sees(alert.patient):
        raise FhirError(404, "not-found", f"no alert {alert_id}")
    access.touch([alert.patient])
    doc = alert.as_dict()
    doc["changes"] = history(conn, alert_id)
    doc["notifications"] = [
        {
            "channel": n.channel,
            "audience": n.audience,
            "state": n.state,
            "attempts": n.attempts,
            "last_error": n.last_error,
        }
        for n in notifications_of_alert(conn, alert_id)
    ]
    return doc


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")
    """No NUL: PostgreSQL's text holds none."""
    until: datetime | None = None


@router.post("/alerts/{alert_id}/{action}")
def change_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    action: Literal["acknowledge", "resolve", "snooze"],
    access: Annotated[Access, require("Flag", "update")],
    conn: Connection,
    change: Change | None = None,
) -> dict[str, Any]:
    change = change or Change()
    done = _DONE[action]
    access.record.action = action
    alert = read_alert(conn, alert_id)
    if alert is None or not access.sees(alert.patient):
        raise FhirError(404, "not-found", f"no alert {alert_id}")
    access.touch([alert.patient])
    if action == "snooze":
        _check_snooze(change.until)
    try:
        with conn.transaction():
            act(conn, alert_id, done, access.who.name, change.note, change.until)
            audit.add(conn, access.record, 200)
    except AlertError as exc:
        raise FhirError(409 if exc.found else 404, "conflict", str(exc)) from None
    return {"alert": alert_id, "change": done, "actor": access.who.name}


def _check_snooze(until: datetime | None) -> None:
    if until is None or until.tzinfo is None:
        raise FhirError(400, "required", "a snooze needs 'until', an ISO 8601 time with its offset")
    now = datetime.now(UTC)
    if not now < until <= now + MAX_SNOOZE:
        raise FhirError(400, "invalid", "a snooze ends in the future, within 7 days")
