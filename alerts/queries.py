"""Reading alerts back: lists, one alert with its history, the changes since a point (what
`vigil alerts tail` and the dashboard stream follow) and the notifications of a patient.

The command line and the API read through these, so a list means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg

from alerts.model import State

STATES: dict[str, tuple[State, ...]] = {
    "open": (State.TRIGGERED, State.ACKNOWLEDGED),
    "triggered": (State.TRIGGERED,),
    "acknowledged": (State.ACKNOWLEDGED,),
    "resolved": (State.RESOLVED,),
    "all": (State.TRIGGERED, State.ACKNOWLEDGED, State.RESOLVED),
}
"""The states a filter of lists names."""


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    patient: str
    family: str
    """The vital sign of the episode ('spo2', 'pulse'), or its one rule's name."""
    rule: str
    """The rule that set the episode's priority."""
    rules: list[str]
    """Every rule that has held in the episode, the first first."""
    active: list[str]
    """The conditions holding now, as ``rule:metric``; empty once all have cleared."""
    repetitions: int
    """How often its conditions came back after all had ended."""
    revision: int
    """How often people were told anew because it worsened."""
    priority: str
    state: str
    inhibited_by: int | None
    triggered_at: datetime
    onset: datetime | None
    cleared_at: datetime | None
    snoozed_until: datetime | None
    tier: int
    gateway: str | None
    evidence: dict[str, Any]
    """The analytics event that raised the alert, as published."""
    updated: datetime
    description: str
    """What the rule says, in the words of the scale the patient was judged on."""
    failed_notifications: int
    team_unreachable: bool
    """Nobody of the care team could be told of it as it is now (reported to the
    administrators, when they have a channel)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601, the event's own evidence as ``evidence``."""
        doc: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            doc[f.name] = value.isoformat() if isinstance(value, datetime) else value
        doc["evidence"] = self.evidence.get("evidence", {})
        return doc


_COLUMNS = (
    "id, patient, family, rule, rules, active, repetitions, revision, priority, state,"
    " inhibited_by, triggered_at, onset, cleared_at, snoozed_until, tier, gateway, evidence,"
    " updated, description,"
    " (SELECT count(*) FROM notification n WHERE n.alert = alert.id AND n.state = 'failed'),"
    " coalesce(unreachable_revision = revision, false)"
)


def list_alerts(
    conn: psycopg.Connection,
    states: tuple[State, ...],
    patients: Sequence[str] | None = None,
    priority: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Newest first; of ``patients`` only, unless None."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert WHERE state = ANY(%s)"
        " AND (%s::text[] IS NULL OR patient = ANY(%s)) AND (%s::text IS NULL OR priority = %s)"
        " ORDER BY triggered_at DESC, id DESC LIMIT %s",
        ([str(s) for s in states], patients, patients, priority, priority, limit),
    ).fetchall()
    return [Alert(*row) for row in rows]


def page_of_patient(
    conn: psycopg.Connection,
    patient: str,
    states: tuple[State, ...],
    where: tuple[str, list[Any]],
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Alert]:
    """A page of the patient's alerts, newest first, after the (triggered_at, id) of the
    last one shown; ``where``: a further condition on the alert's columns, with its
    arguments (the API's search parameters)."""
    condition, args = where
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert WHERE patient = %s AND state = ANY(%s) AND {condition}"
        " AND (%s::timestamptz IS NULL OR (triggered_at, id) < (%s, %s))"
        " ORDER BY triggered_at DESC, id DESC LIMIT %s",
        (
            patient,
            [str(s) for s in states],
            *args,
            *((None, None, None) if after is None else (after[0], after[0], after[1])),
            limit,
        ),
    ).fetchall()
    return [Alert(*row) for row in rows]


def read_alert(conn: psycopg.Connection, alert_id: int) -> Alert | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM alert WHERE id = %s", (alert_id,)).fetchone()
    return None if row is None else Alert(*row)


def history(conn: psycopg.Connection, alert_id: int) -> list[dict[str, Any]]:
    """Every change of an alert, oldest first, with its actor."""
    return [
        {"at": at.isoformat(), "change": change, "actor": actor, "note": note}
        for at, change, actor, note in conn.execute(
            "SELECT at, change, actor, note FROM alert_change WHERE alert = %s ORDER BY id",
            (alert_id,),
        )
    ]


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    alert: int
    patient: str
    channel: str
    audience: str
    state: str
    attempts: int
    last_error: str
    sent: datetime | None


_NOTIFICATION_COLUMNS = (
    "n.id, n.alert, a.patient, n.channel, n.audience, n.state, n.attempts, n.last_error, n.sent"
)


def notifications_of_alert(conn: psycopg.Connection, alert_id: int) -> list[Notification]:
    rows = conn.execute(
        f"SELECT {_NOTIFICATION_COLUMNS} FROM notification n JOIN alert a ON a.id = n.alert"
        " WHERE n.alert = %s ORDER BY n.id",
        (alert_id,),
    ).fetchall()
    return [Notification(*row) for row in rows]


def notifications_of_patient(
    conn: psycopg.Connection,
    patient: str,
    limit: int = 500,
    where: tuple[str, list[Any]] = ("TRUE", []),
    before: int | None = None,
) -> list[Notification]:
    """Newest first, older than notification ``before`` when given; ``where``: a further
    condition on the notification's columns (``n.``), with its arguments. Reports to the
    administrators are not among them: they are about the service, not the patient's care
    (an alert's own notifications list them)."""
    condition, args = where
    rows = conn.execute(
        f"SELECT {_NOTIFICATION_COLUMNS} FROM notification n JOIN alert a ON a.id = n.alert"
        f" WHERE a.patient = %s AND n.audience <> 'admin' AND {condition}"
        " AND (%s::bigint IS NULL OR n.id < %s)"
        " ORDER BY n.id DESC LIMIT %s",
        (patient, *args, before, before, limit),
    ).fetchall()
    return [Notification(*row) for row in rows]


def tally(conn: psycopg.Connection) -> dict[str, int]:
    """Alerts raised, and notifications delivered and failed, ever."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM alert),"
        " (SELECT count(*) FROM notification WHERE state = 'sent'),"
        " (SELECT count(*) FROM notification WHERE state = 'failed')"
    ).fetchone()
    raised, delivered, failed = row if row else (0, 0, 0)
    return {
        "alerts_raised": int(raised),
        "notifications_delivered": int(delivered),
        "notifications_failed": int(failed),
    }


def latest_change(conn: psycopg.Connection) -> int:
    """The id of the newest alert change (0 when there is none)."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_change").fetchone()
    return int(row[0]) if row else 0


def changes_since(
    conn: psycopg.Connection,
    after: int,
    patients: Sequence[str] | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Alert changes after change id ``after`` (oldest first), with their alert's patient,
    rule, priority and state; of ``patients`` only, unless None."""
    rows = conn.execute(
        "SELECT c.id, c.at, c.change, c.actor, c.note, a.id, a.patient, a.rule, a.priority,"
        " a.state FROM alert_change c JOIN alert a ON a.id = c.alert WHERE c.id > %s"
        " AND (%s::text[] IS NULL OR a.patient = ANY(%s)) ORDER BY c.id LIMIT %s",
        (after, patients, patients, limit),
    ).fetchall()
    keys = ("id", "at", "change", "actor", "note", "alert", "patient", "rule", "priority", "state")
    changes = [dict(zip(keys, row, strict=True)) for row in rows]
    for change in changes:
        change["at"] = change["at"].isoformat()
    return changes
