"""The alert lifecycle in the database: every change and the notifications it owes, in the
caller's transaction.

An analytics event that *persisted* opens an alert for (patient, rule), or joins the one
open (deduplication: a second stream of the same rule adds its metric, a repeat changes
nothing). *Cleared* removes the metric; when none is left the condition has cleared, and
:func:`auto_resolve` resolves alerts whose condition stayed clear long enough. A person
acknowledges, resolves or snoozes with their name recorded. Notifications are rows in
``notification`` written with the change that causes them (an outbox): the dispatcher
delivers them after commit, so a crash between the two delays a notification and never
loses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.model import CARE_TEAM, PATIENT, SPO2_CLINICAL, Priority, State, kind_of

SYSTEM = "vigil-alerts"
"""The actor of what the service does by itself."""


@dataclass(frozen=True, slots=True)
class Channels:
    """Where notifications go besides the patient's care team (its members' contacts, by
    tier): webhooks for every alert, and the patient's gateway inbox."""

    care_team_webhooks: tuple[str, ...] = ()
    patient_inbox: bool = True
    escalate_after_s: float = 120.0
    """A high-priority alert nobody acknowledges in this time goes to the next tier."""
    patient_messages: Mapping[str, str] = field(default_factory=dict)
    """What patients are told, per rule, where it differs from alerts.model's wording."""


class AlertError(ValueError):
    """A change that cannot be made (unknown alert, already resolved ...)."""


def take_event(conn: psycopg.Connection, event: dict[str, Any], channels: Channels) -> int | None:
    """Apply one analytics event; returns the alert it opened or changed, if any."""
    fresh = conn.execute(
        "INSERT INTO alert_event_seen (event_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (event["id"],),
    ).rowcount
    if not fresh:
        return None
    if event["kind"] == "persisted":
        return _persisted(conn, event, channels)
    if event["kind"] == "cleared":
        return _cleared(conn, event, channels)
    return None  # 'started' is not yet an alert candidate


def _persisted(conn: psycopg.Connection, event: dict[str, Any], channels: Channels) -> int:
    patient, rule, metric = event["patient"], event["rule"], event["metric"]
    row = conn.execute(
        "SELECT id, active FROM alert WHERE patient = %s AND rule = %s AND state <> 'resolved'"
        " FOR UPDATE",
        (patient, rule),
    ).fetchone()
    if row is not None:
        alert_id, active = row
        if metric not in active:
            conn.execute(
                "UPDATE alert SET active = array_append(active, %s), cleared_at = NULL,"
                " updated = now() WHERE id = %s",
                (metric, alert_id),
            )
            _change(conn, alert_id, "condition_holds", SYSTEM, f"{metric} also")
        return int(alert_id)
    kind = kind_of(rule)
    inhibitor = _inhibitor(conn, patient, rule)
    inserted = conn.execute(
        "INSERT INTO alert (patient, rule, active, priority, state, inhibited_by,"
        " triggered_at, onset, gateway, evidence, event_id)"
        " VALUES (%s, %s, %s, %s, 'triggered', %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            patient,
            rule,
            [metric],
            kind.priority.value,
            inhibitor,
            _time(event["time"]),
            _time(event["evidence"]["onset"]) if "onset" in event.get("evidence", {}) else None,
            event.get("gateway"),
            json.dumps(event),
            event["id"],
        ),
    ).fetchone()
    assert inserted is not None
    alert_id = int(inserted[0])
    if inhibitor is not None:
        _change(conn, alert_id, "inhibited", SYSTEM, f"by alert {inhibitor} (check the sensor)")
        return int(alert_id)
    _change(conn, alert_id, State.TRIGGERED, SYSTEM)
    if rule == "check_sensor" and metric == "spo2":
        _inhibit_open_spo2_alerts(conn, patient, alert_id)
    _notify(conn, alert_id, event, channels)
    return int(alert_id)


def _notify(
    conn: psycopg.Connection, alert_id: int, event: dict[str, Any], channels: Channels
) -> None:
    """Everything an alert owes when it is first told: the webhooks, the first tier of the
    care team (and, for a high priority, the time the next tier is due), the patient."""
    kind = kind_of(event["rule"])
    body = _body(alert_id, event)
    if CARE_TEAM in kind.audience:
        for url in channels.care_team_webhooks:
            _owe(conn, alert_id, "webhook", url, CARE_TEAM, body)
        told = _tell_tier(conn, alert_id, event["patient"], 1, body, kind.priority)
        if told and kind.priority == Priority.HIGH:
            conn.execute(
                "UPDATE alert SET tier = 1,"
                " escalate_at = now() + make_interval(secs => %s) WHERE id = %s",
                (channels.escalate_after_s, alert_id),
            )
        elif told:
            conn.execute("UPDATE alert SET tier = 1 WHERE id = %s", (alert_id,))
    text = channels.patient_messages.get(event["rule"], kind.patient_message)
    if PATIENT not in kind.audience or not text:
        return
    message = {"alert": alert_id, "patient": event["patient"], "text": text}
    gateway = event.get("gateway")
    if gateway and channels.patient_inbox:
        _owe(conn, alert_id, "mqtt", gateway, PATIENT, message)
    contacts = conn.execute(
        "SELECT contact FROM patient_contact WHERE patient = %s ORDER BY contact",
        (event["patient"],),
    )
    for (contact,) in contacts.fetchall():
        _owe(conn, alert_id, "apprise", contact, PATIENT, message)


def _tell_tier(
    conn: psycopg.Connection,
    alert_id: int,
    patient: str,
    tier: int,
    body: dict[str, Any],
    priority: Priority,
) -> int:
    """Notifications to the members of a tier of the patient's team; how many. Low priority
    waits out the team's quiet hours."""
    members = conn.execute(
        "SELECT m.member, m.contact,"
        " CASE WHEN %s AND t.quiet_from IS NOT NULL THEN"
        "  vigil_quiet_until(now(), t.timezone, t.quiet_from, t.quiet_until) END"
        " FROM patient_team p JOIN care_team t ON t.id = p.team"
        " JOIN care_team_member m ON m.team = t.id WHERE p.patient = %s AND m.tier = %s"
        " ORDER BY m.member",
        (priority == Priority.LOW, patient, tier),
    ).fetchall()
    for member, contact, wait_until in members:
        _owe(
            conn,
            alert_id,
            "apprise",
            contact,
            CARE_TEAM,
            {**body, "to": member, "tier": tier},
            not_before=wait_until,
        )
    return len(members)


def escalate(conn: psycopg.Connection, channels: Channels) -> list[int]:
    """High-priority alerts nobody acknowledged in time: the next tier is told (and the one
    after it is due in ``escalate_after_s``); with no tier left, escalation stops, recorded."""
    due = conn.execute(
        "SELECT id, patient, tier, evidence FROM alert WHERE escalate_at <= now()"
        " AND state = 'triggered' AND inhibited_by IS NULL"
        " AND (snoozed_until IS NULL OR snoozed_until <= now()) FOR UPDATE SKIP LOCKED"
    ).fetchall()
    escalated = []
    for alert_id, patient, tier, event in due:
        told = _tell_tier(conn, alert_id, patient, tier + 1, _body(alert_id, event), Priority.HIGH)
        if told:
            conn.execute(
                "UPDATE alert SET tier = %s, escalate_at = now() + make_interval(secs => %s),"
                " updated = now() WHERE id = %s",
                (tier + 1, channels.escalate_after_s, alert_id),
            )
            _change(conn, alert_id, "escalated", SYSTEM, f"to tier {tier + 1}")
            escalated.append(int(alert_id))
        else:
            conn.execute("UPDATE alert SET escalate_at = NULL WHERE id = %s", (alert_id,))
            _change(conn, alert_id, "escalation_exhausted", SYSTEM, f"no tier after {tier}")
    return escalated


def _inhibitor(conn: psycopg.Connection, patient: str, rule: str) -> int | None:
    """The open 'check the sensor' alert of the patient's oximeter, for an SpO2 rule."""
    if rule not in SPO2_CLINICAL:
        return None
    row = conn.execute(
        "SELECT id FROM alert WHERE patient = %s AND rule = 'check_sensor'"
        " AND state <> 'resolved' AND 'spo2' = ANY(active)",
        (patient,),
    ).fetchone()
    return None if row is None else int(row[0])


def _inhibit_open_spo2_alerts(conn: psycopg.Connection, patient: str, inhibitor: int) -> None:
    rows = conn.execute(
        "UPDATE alert SET inhibited_by = %s, updated = now() WHERE patient = %s"
        " AND rule = ANY(%s) AND state = 'triggered' AND inhibited_by IS NULL RETURNING id",
        (inhibitor, patient, sorted(SPO2_CLINICAL)),
    ).fetchall()
    for (alert_id,) in rows:
        _change(conn, alert_id, "inhibited", SYSTEM, f"by alert {inhibitor} (check the sensor)")


def _cleared(conn: psycopg.Connection, event: dict[str, Any], channels: Channels) -> int | None:
    row = conn.execute(
        "UPDATE alert SET active = array_remove(active, %s), updated = now(),"
        " cleared_at = CASE WHEN array_remove(active, %s) = '{}' THEN %s END"
        " WHERE patient = %s AND rule = %s AND state <> 'resolved' RETURNING id, cleared_at",
        (
            event["metric"],
            event["metric"],
            _time(event["time"]),
            event["patient"],
            event["rule"],
        ),
    ).fetchone()
    if row is None:
        return None
    alert_id, cleared_at = row
    if cleared_at is not None:
        _change(conn, alert_id, "condition_cleared", SYSTEM)
        if event["rule"] == "check_sensor":
            _lift_inhibition(conn, alert_id, channels)
    return int(alert_id)


def _lift_inhibition(conn: psycopg.Connection, inhibitor: int, channels: Channels) -> None:
    """The sensor is back: alerts it held back are told now if their condition still
    holds and nobody has seen them (a read sensor showing the same thing is news)."""
    rows = conn.execute(
        "UPDATE alert SET inhibited_by = NULL, updated = now() WHERE inhibited_by = %s"
        " RETURNING id, state, cleared_at IS NULL, evidence",
        (inhibitor,),
    ).fetchall()
    for alert_id, state, holds, event in rows:
        _change(conn, alert_id, "inhibition_lifted", SYSTEM, f"alert {inhibitor} cleared")
        told = conn.execute("SELECT 1 FROM notification WHERE alert = %s LIMIT 1", (alert_id,))
        if state == State.TRIGGERED and holds and told.fetchone() is None:
            _notify(conn, alert_id, event, channels)


def auto_resolve(conn: psycopg.Connection, clear_for_s: float) -> list[int]:
    """Resolve the alerts whose condition has stayed clear for ``clear_for_s``."""
    rows = conn.execute(
        "UPDATE alert SET state = 'resolved', escalate_at = NULL, updated = now()"
        " WHERE state <> 'resolved' AND cleared_at IS NOT NULL"
        " AND cleared_at <= now() - make_interval(secs => %s) RETURNING id",
        (clear_for_s,),
    ).fetchall()
    for (alert_id,) in rows:
        _change(conn, alert_id, State.RESOLVED, SYSTEM, f"condition clear for {clear_for_s:g} s")
    return [int(r[0]) for r in rows]


def act(
    conn: psycopg.Connection,
    alert_id: int,
    change: str,
    actor: str,
    note: str = "",
    until: datetime | None = None,
) -> None:
    """A person's change: 'acknowledged', 'resolved' or 'snoozed' (with ``until``)."""
    row = conn.execute("SELECT state FROM alert WHERE id = %s FOR UPDATE", (alert_id,)).fetchone()
    if row is None:
        raise AlertError(f"no alert {alert_id}")
    if row[0] == State.RESOLVED:
        raise AlertError(f"alert {alert_id} is already resolved")
    if change in ("acknowledged", "resolved"):  # someone has it: escalation stops
        conn.execute(
            "UPDATE alert SET state = %s, escalate_at = NULL, updated = now() WHERE id = %s",
            (change, alert_id),
        )
    elif change == "snoozed":  # escalation waits for the snooze to end
        if until is None or until <= datetime.now(UTC):
            raise AlertError("a snooze needs a time in the future")
        conn.execute(
            "UPDATE alert SET snoozed_until = %s, updated = now(),"
            " escalate_at = CASE WHEN escalate_at IS NULL THEN NULL ELSE %s END WHERE id = %s",
            (until, until, alert_id),
        )
        note = note or f"until {until.isoformat()}"
    else:
        raise AlertError(f"{change!r}: acknowledged, resolved or snoozed")
    _change(conn, alert_id, change, actor, note)


def changes_since(
    conn: psycopg.Connection, after: int, patient: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Alert changes after change id ``after`` (oldest first), with their alert's patient,
    rule, priority and state: what `vigil alerts tail` and the dashboard stream follow."""
    rows = conn.execute(
        "SELECT c.id, c.at, c.change, c.actor, c.note, a.id, a.patient, a.rule, a.priority,"
        " a.state FROM alert_change c JOIN alert a ON a.id = c.alert WHERE c.id > %s"
        " AND (%s::text IS NULL OR a.patient = %s) ORDER BY c.id LIMIT %s",
        (after, patient, patient, limit),
    ).fetchall()
    keys = ("id", "at", "change", "actor", "note", "alert", "patient", "rule", "priority", "state")
    changes = [dict(zip(keys, row, strict=True)) for row in rows]
    for change in changes:
        change["at"] = change["at"].isoformat()
    return changes


def _body(alert_id: int, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert": alert_id,
        "patient": event["patient"],
        "rule": event["rule"],
        "priority": kind_of(event["rule"]).priority.value,
        "metric": event["metric"],
        "time": event["time"],
        "value": event["value"],
        "evidence": event.get("evidence", {}),
    }


def _owe(
    conn: psycopg.Connection,
    alert_id: int,
    channel: str,
    target: str,
    audience: str,
    body: dict[str, Any],
    not_before: datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO notification (alert, channel, target, audience, body, idempotency_key,"
        " next_attempt) VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
        (
            alert_id,
            channel,
            target,
            audience,
            json.dumps(body),
            _key(alert_id, channel, target, audience),
            not_before,
        ),
    )


def _key(alert_id: int, channel: str, target: str, audience: str) -> str:
    """The idempotency key a receiver sees: the same for every attempt of a delivery, and
    naming no address."""
    digest = hashlib.blake2s(f"{channel} {target} {audience}".encode(), digest_size=6)
    return f"vigil-alert-{alert_id}-{digest.hexdigest()}"


def _change(
    conn: psycopg.Connection, alert_id: int, change: str, actor: str, note: str = ""
) -> None:
    conn.execute(
        "INSERT INTO alert_change (alert, change, actor, note) VALUES (%s, %s, %s, %s)",
        (alert_id, str(change), actor, note),
    )


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
