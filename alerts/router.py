"""The alerts API: list and read alerts, acknowledge, resolve and snooze them as the caller,
and the FHIR views (alerts as Flag, notifications as Communication).

Every read returns only what was asked for by patient or id, and is audited with the
patients it showed; every change records the caller's name as its actor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from alerts.store import AlertError, act, changes_since
from analytics.rules import BASELINE, OPTIONAL, PULSE, SCALE_1, SCALE_2, TECHNICAL
from vigil.api.deps import Caller, Connection, FhirError, audit

router = APIRouter()
FHIR_JSON = "application/fhir+json"
_ALERT_COLUMNS = (
    "id, patient, rule, active, priority, state, inhibited_by, triggered_at, onset,"
    " cleared_at, snoozed_until, tier, gateway, evidence, updated"
)
_STATES = {
    "open": ("triggered", "acknowledged"),
    "triggered": ("triggered",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "all": ("triggered", "acknowledged", "resolved"),
}
_DESCRIPTIONS = {
    r.name: r.description for r in SCALE_1 + SCALE_2 + PULSE + OPTIONAL + BASELINE + TECHNICAL
}
RULES_SYSTEM = "https://vigil.invalid/fhir/CodeSystem/rules"
"""The code system of Vigil's rule names (a placeholder domain until one is registered)."""


def _alert(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = [c.strip() for c in _ALERT_COLUMNS.split(",")]
    doc = dict(zip(keys, row, strict=True))
    doc["evidence"] = doc["evidence"].get("evidence", {})
    for key, value in doc.items():
        if isinstance(value, datetime):
            doc[key] = value.isoformat()
    return doc


@router.get("/alerts")
def list_alerts(
    request: Request,
    conn: Connection,
    who: Caller,
    patient: str | None = None,
    state: Literal["open", "triggered", "acknowledged", "resolved", "all"] = "open",
    priority: Literal["low", "medium", "high"] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    if not 1 <= limit <= 500:
        raise HTTPException(422, "limit is 1 to 500")
    rows = conn.execute(
        f"SELECT {_ALERT_COLUMNS} FROM alert WHERE state = ANY(%s)"
        " AND (%s::text IS NULL OR patient = %s) AND (%s::text IS NULL OR priority = %s)"
        " ORDER BY triggered_at DESC, id DESC LIMIT %s",
        (list(_STATES[state]), patient, patient, priority, priority, limit),
    ).fetchall()
    alerts = [_alert(r) for r in rows]
    audit(
        conn,
        who.name,
        "search",
        "/alerts",
        str(request.url.query),
        "ok",
        sorted({a["patient"] for a in alerts}),
    )
    return alerts


@router.get("/alerts/stream")
def stream_alerts(
    request: Request, conn: Connection, who: Caller, patient: str | None = None
) -> StreamingResponse:
    """Server-sent events for dashboards: each alert change as it happens (``event:
    alert``, the change id as the event id, so a reconnecting browser resumes from
    ``Last-Event-ID``). The subscription is audited once, with its filter."""
    resume = request.headers.get("last-event-id", "")
    if resume.isdigit():
        after = int(resume)
    else:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_change").fetchone()
        after = int(row[0]) if row else 0
    audit(
        conn,
        who.name,
        "subscribe",
        "/alerts/stream",
        str(request.url.query),
        "ok",
        [patient] if patient else [],
    )
    pool = request.app.state.pool

    def events() -> Iterator[str]:
        position, quiet = after, 0
        while True:
            with pool.connection() as polling:
                changes = changes_since(polling, position, patient)
            for change in changes:
                position = change["id"]
                yield f"id: {position}\nevent: alert\ndata: {json.dumps(change)}\n\n"
            quiet = 0 if changes else quiet + 1
            if quiet and quiet % 15 == 0:
                yield ": still here\n\n"  # keeps proxies from closing an idle stream
            time.sleep(1.0)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/alerts/{alert_id}")
def read_alert(alert_id: int, conn: Connection, who: Caller) -> dict[str, Any]:
    row = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alert WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        audit(conn, who.name, "read", f"/alerts/{alert_id}", None, "not found")
        raise HTTPException(404, f"no alert {alert_id}")
    alert = _alert(row)
    alert["changes"] = [
        {"at": at.isoformat(), "change": change, "actor": actor, "note": note}
        for at, change, actor, note in conn.execute(
            "SELECT at, change, actor, note FROM alert_change WHERE alert = %s ORDER BY id",
            (alert_id,),
        )
    ]
    alert["notifications"] = [
        {"channel": c, "audience": a, "state": s, "attempts": n, "last_error": e}
        for c, a, s, n, e in conn.execute(
            "SELECT channel, audience, state, attempts, last_error FROM notification"
            " WHERE alert = %s ORDER BY id",
            (alert_id,),
        )
    ]
    audit(conn, who.name, "read", f"/alerts/{alert_id}", None, "ok", [alert["patient"]])
    return alert


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
    done = {"acknowledge": "acknowledged", "resolve": "resolved", "snooze": "snoozed"}[action]
    if action == "snooze" and (change.until is None or change.until.tzinfo is None):
        raise HTTPException(422, "a snooze needs 'until', an ISO 8601 time with its offset")
    try:
        with conn.transaction():
            act(conn, alert_id, done, who.name, change.note, change.until)
    except AlertError as exc:
        audit(conn, who.name, action, f"/alerts/{alert_id}", None, "refused")
        raise HTTPException(409 if "already" in str(exc) else 404, str(exc)) from None
    audit(conn, who.name, action, f"/alerts/{alert_id}", None, "ok")
    return {"alert": alert_id, "change": done, "actor": who.name}


# -- FHIR views ---------------------------------------------------------------------------


def _subject(patient: str | None, subject: str | None) -> str:
    reference = patient or subject
    if not reference:
        raise FhirError(400, "required", "give the patient: ?patient=Patient/ID")
    return reference.removeprefix("Patient/")


def _bundle(request: Request, resources: list[dict[str, Any]]) -> JSONResponse:
    base = str(request.base_url).rstrip("/") + "/fhir"
    return JSONResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [
                {
                    "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in resources
            ],
        },
        media_type=FHIR_JSON,
    )


def render_flag(row: tuple[Any, ...]) -> dict[str, Any]:
    alert_id, patient, rule, priority, state, triggered_at, updated = row
    code = {"PL": "Low priority", "PM": "Medium priority", "PH": "High priority"}
    priority_code = {"low": "PL", "medium": "PM", "high": "PH"}[priority]
    period: dict[str, str] = {"start": triggered_at.isoformat()}
    if state == "resolved":
        period["end"] = updated.isoformat()
    return {
        "resourceType": "Flag",
        "id": str(alert_id),
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/flag-priority",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/flag-priority-code",
                            "code": priority_code,
                            "display": code[priority_code],
                        }
                    ]
                },
            }
        ],
        "status": "inactive" if state == "resolved" else "active",
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
            "coding": [{"system": RULES_SYSTEM, "code": rule}],
            "text": _DESCRIPTIONS.get(rule, rule.replace("_", " ")),
        },
        "subject": {"reference": f"Patient/{patient}"},
        "period": period,
    }


@router.get("/fhir/Flag")
def search_flags(
    request: Request,
    conn: Connection,
    who: Caller,
    patient: str | None = None,
    subject: str | None = None,
    status: Literal["active", "inactive"] | None = None,
) -> JSONResponse:
    who_for = _subject(patient, subject)
    states = {"active": ["triggered", "acknowledged"], "inactive": ["resolved"]}
    rows = conn.execute(
        "SELECT id, patient, rule, priority, state, triggered_at, updated FROM alert"
        " WHERE patient = %s AND state = ANY(%s) ORDER BY triggered_at DESC LIMIT 500",
        (who_for, states.get(status or "", ["triggered", "acknowledged", "resolved"])),
    ).fetchall()
    audit(conn, who.name, "search", "/fhir/Flag", str(request.url.query), "ok", [who_for])
    return _bundle(request, [render_flag(r) for r in rows])


def render_communication(row: tuple[Any, ...]) -> dict[str, Any]:
    notification_id, alert_id, patient, channel, audience, state, sent = row
    status = {"pending": "in-progress", "sent": "completed", "failed": "not-done"}[state]
    recipient = "the patient" if audience == "patient" else "the care team"
    doc: dict[str, Any] = {
        "resourceType": "Communication",
        "id": str(notification_id),
        "status": status,
        "priority": "urgent",
        "subject": {"reference": f"Patient/{patient}"},
        "about": [{"reference": f"Flag/{alert_id}"}],
        "medium": [{"text": channel}],
        "recipient": [{"display": recipient}],
        "payload": [{"contentString": f"alert {alert_id} to {recipient} by {channel}"}],
    }
    if sent is not None:
        doc["sent"] = sent.isoformat()
    return doc


@router.get("/fhir/Communication")
def search_communications(
    request: Request,
    conn: Connection,
    who: Caller,
    patient: str | None = None,
    subject: str | None = None,
) -> JSONResponse:
    who_for = _subject(patient, subject)
    rows = conn.execute(
        "SELECT n.id, n.alert, a.patient, n.channel, n.audience, n.state, n.sent"
        " FROM notification n JOIN alert a ON a.id = n.alert WHERE a.patient = %s"
        " ORDER BY n.id DESC LIMIT 500",
        (who_for,),
    ).fetchall()
    audit(conn, who.name, "search", "/fhir/Communication", str(request.url.query), "ok", [who_for])
    return _bundle(request, [render_communication(r) for r in rows])
