"""The alerts API: list and read alerts, acknowledge, resolve and snooze them as the caller.

Every read returns only what was asked for by patient or id, and is audited with the
patients it showed; every change records the caller's name as its actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from alerts.queries import STATES, history, list_alerts, notifications_of_alert, read_alert
from alerts.store import AlertError, act
from api.audit import Outcome, audit
from api.deps import Caller, Connection

router = APIRouter()
_DONE = {"acknowledge": "acknowledged", "resolve": "resolved", "snooze": "snoozed"}


@router.get("/alerts")
def get_alerts(
    request: Request,
    conn: Connection,
    who: Caller,
    patient: str | None = None,
    state: Literal["open", "triggered", "acknowledged", "resolved", "all"] = "open",
    priority: Literal["low", "medium", "high"] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    if not 1 <= limit <= 500:
        audit(conn, who.name, "search", "/alerts", request.url.query, Outcome.INVALID)
        raise HTTPException(422, "limit is 1 to 500")
    alerts = list_alerts(conn, STATES[state], patient, priority, limit)
    patients = {a.patient for a in alerts}
    audit(conn, who.name, "search", "/alerts", request.url.query, Outcome.SUCCESS, patients)
    return [a.as_dict() for a in alerts]


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: int, conn: Connection, who: Caller) -> dict[str, Any]:
    alert = read_alert(conn, alert_id)
    if alert is None:
        audit(conn, who.name, "read", f"/alerts/{alert_id}", None, Outcome.NOT_FOUND)
        raise HTTPException(404, f"no alert {alert_id}")
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
    audit(conn, who.name, "read", f"/alerts/{alert_id}", None, Outcome.SUCCESS, [alert.patient])
    return doc


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = ""
    until: datetime | None = None


@router.post("/alerts/{alert_id}/{action}")
def change_alert(
    alert_id: int,
    action: Literal["acknowledge", "resolve", "snooze"],
    conn: Connection,
    who: Caller,
    change: Change | None = None,
) -> dict[str, Any]:
    change = change or Change()
    done = _DONE[action]
    resource = f"/alerts/{alert_id}"
    if action == "snooze" and (change.until is None or change.until.tzinfo is None):
        audit(conn, who.name, action, resource, None, Outcome.INVALID)
        raise HTTPException(422, "a snooze needs 'until', an ISO 8601 time with its offset")
    try:
        with conn.transaction():
            patient = act(conn, alert_id, done, who.name, change.note, change.until)
    except AlertError as exc:
        outcome = Outcome.CONFLICT if exc.found else Outcome.NOT_FOUND
        audit(conn, who.name, action, resource, None, outcome)
        raise HTTPException(409 if exc.found else 404, str(exc)) from None
    audit(conn, who.name, action, resource, None, Outcome.SUCCESS, [patient])
    return {"alert": alert_id, "change": done, "actor": who.name}
