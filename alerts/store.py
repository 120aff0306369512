"""The alert lifecycle in the database: every change and the notifications it owes, in the
caller's transaction.

An analytics event that *persisted* opens an alert for (patient, rule), or joins the one
open (deduplication: a second stream of the same rule adds its metric, a repeat changes
nothing). *Cleared* removes the metric; when none is left the condition has cleared, and
:func:`auto_resolve` resolves alerts whose condition stayed clear long enough. A person
acknowledges, resolves or snoozes with their name recorded (:func:`act`). An SpO2 alert
while the oximeter's 'check the sensor' alert holds is recorded and not told; when the
sensor is back it is told if its condition still holds. What an alert owes is written to
the outbox (:mod:`alerts.outbox`) in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from alerts.history import SYSTEM, record
from alerts.model import SPO2_CLINICAL, State, kind_of
from alerts.outbox import Channels, notify
from vigil.wire.events import AnalyticsEvent, EventKind


class AlertError(ValueError):
    """A change that cannot be made: an unknown alert (``found`` false), or one whose state
    does not allow it (already resolved, a snooze into the past)."""

    def __init__(self, message: str, found: bool = True) -> None:
        super().__init__(message)
        self.found = found


def take_event(conn: psycopg.Connection, event: AnalyticsEvent, channels: Channels) -> int | None:
    """Apply one analytics event; returns the alert it opened or changed, if any."""
    fresh = conn.execute(
        "INSERT INTO alert_event_seen (event_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (event.id,),
    ).rowcount
    if not fresh:
        return None
    if event.kind == EventKind.PERSISTED:
        return _persisted(conn, event, channels)
    if event.kind == EventKind.CLEARED:
        return _cleared(conn, event, channels)
    return None  # 'started' is not yet an alert candidate


def _persisted(conn: psycopg.Connection, event: AnalyticsEvent, channels: Channels) -> int:
    patient, rule, metric = event.patient, event.rule, event.metric
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
            record(conn, alert_id, "condition_holds", SYSTEM, f"{metric} also")
        return int(alert_id)
    inhibitor = _inhibitor(conn, patient, rule)
    inserted = conn.execute(
        "INSERT INTO alert (patient, rule, active, priority, state, inhibited_by,"
        " triggered_at, onset, gateway, evidence, event_id, description)"
        " VALUES (%s, %s, %s, %s, 'triggered', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            patient,
            rule,
            [metric],
            kind_of(rule).priority.value,
            inhibitor,
            event.time,
            event.onset,
            event.gateway,
            event.encode().decode(),
            event.id,
            event.description,
        ),
    ).fetchone()
    assert inserted is not None
    alert_id = int(inserted[0])
    if inhibitor is not None:
        record(conn, alert_id, "inhibited", SYSTEM, f"by alert {inhibitor} (check the sensor)")
        return alert_id
    record(conn, alert_id, State.TRIGGERED, SYSTEM)
    if rule == "check_sensor" and metric == "spo2":
        _inhibit_open_spo2_alerts(conn, patient, alert_id)
    notify(conn, alert_id, event, channels)
    return alert_id


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
        record(conn, alert_id, "inhibited", SYSTEM, f"by alert {inhibitor} (check the sensor)")


def _cleared(conn: psycopg.Connection, event: AnalyticsEvent, channels: Channels) -> int | None:
    row = conn.execute(
        "UPDATE alert SET active = array_remove(active, %s), updated = now(),"
        " cleared_at = CASE WHEN array_remove(active, %s) = '{}' THEN %s END"
        " WHERE patient = %s AND rule = %s AND state <> 'resolved' RETURNING id, cleared_at",
        (event.metric, event.metric, event.time, event.patient, event.rule),
    ).fetchone()
    if row is None:
        return None
    alert_id, cleared_at = row
    if cleared_at is not None:
        record(conn, alert_id, "condition_cleared", SYSTEM)
        if event.rule == "check_sensor":
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
    for alert_id, state, holds, evidence in rows:
        record(conn, alert_id, "inhibition_lifted", SYSTEM, f"alert {inhibitor} cleared")
        told = conn.execute("SELECT 1 FROM notification WHERE alert = %s LIMIT 1", (alert_id,))
        if state == State.TRIGGERED and holds and told.fetchone() is None:
            notify(conn, alert_id, AnalyticsEvent.from_document(evidence), channels)


def auto_resolve(conn: psycopg.Connection, clear_for_s: float) -> list[int]:
    """Resolve the alerts whose condition has stayed clear for ``clear_for_s``."""
    rows = conn.execute(
        "UPDATE alert SET state = 'resolved', escalate_at = NULL, updated = now()"
        " WHERE state <> 'resolved' AND cleared_at IS NOT NULL"
        " AND cleared_at <= now() - make_interval(secs => %s) RETURNING id",
        (clear_for_s,),
    ).fetchall()
    for (alert_id,) in rows:
        record(conn, alert_id, State.RESOLVED, SYSTEM, f"condition clear for {clear_for_s:g} s")
    return [int(r[0]) for r in rows]


def act(
    conn: psycopg.Connection,
    alert_id: int,
    change: str,
    actor: str,
    note: str = "",
    until: datetime | None = None,
) -> str:
    """A person's change: 'acknowledged', 'resolved' or 'snoozed' (with ``until``); returns
    the alert's patient."""
    row = conn.execute(
        "SELECT state, patient FROM alert WHERE id = %s FOR UPDATE", (alert_id,)
    ).fetchone()
    if row is None:
        raise AlertError(f"no alert {alert_id}", found=False)
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
    record(conn, alert_id, change, actor, note)
    return str(row[1])
