"""The alert lifecycle in the database: every change and the notifications it owes, in the
caller's transaction.

An alert is a patient *episode* (:mod:`alerts.episodes`): an analytics event that
*persisted* opens the one alert of its patient and family (every SpO2 rule, every pulse
rule), or joins it, comes back in it, renews or worsens it, and *cleared* ends its
condition; the row is read into an :class:`~alerts.episodes.Episode`, stepped by the same
functions the benchmark of alert quality runs, and written back. People are told when an
episode opens and again when it worsens or renews; a repetition is counted, not told.
:func:`auto_resolve` resolves episodes clear long enough, high priority only once
acknowledged. A person acknowledges, resolves or snoozes with their name recorded
(:func:`act`). An SpO2 episode while the oximeter's 'check the sensor' condition holds is
recorded and not told; when the sensor is back (or its alert is resolved by hand,
:func:`release_inhibitions`) it is told if its condition still holds. What an alert owes
is written to the outbox (:mod:`alerts.outbox`) in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts import episodes
from alerts.episodes import FAMILIES, Episode, Step, condition, family_of
from alerts.history import SYSTEM, record
from alerts.model import Priority, State, kind_of
from alerts.outbox import Channels, notify
from vigil.wire.events import AnalyticsEvent, EventKind

SENSOR_OFF_SPO2 = condition("check_sensor", "spo2")
"""The oximeter's 'check the sensor' condition, which inhibits SpO2 episodes: an oximeter
without skin contact supports none of the SpO2 family's rules."""


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


_EPISODE = (
    "SELECT id, family, priority, rules, active, cleared_at, state = 'acknowledged',"
    " repetitions, inhibited_by FROM alert WHERE patient = %s AND state <> 'resolved'"
)


def _episode(row: tuple[Any, ...]) -> tuple[int, Episode, int | None]:
    """An alert row (selected by :data:`_EPISODE`) as the episode it is, with its id and
    the alert inhibiting it."""
    alert_id, family, priority, rules, active, cleared_at, acknowledged, again, by = row
    episode = Episode(
        family, Priority(priority), tuple(rules), tuple(active), cleared_at, acknowledged, again
    )
    return int(alert_id), episode, by


def _persisted(conn: psycopg.Connection, event: AnalyticsEvent, channels: Channels) -> int:
    row = conn.execute(
        f"{_EPISODE} AND family = %s FOR UPDATE", (event.patient, family_of(event.rule))
    ).fetchone()
    if row is None:
        return _open(conn, event, channels)
    alert_id, before, inhibited_by = _episode(row)
    priority = kind_of(event.rule).priority
    after, step = episodes.persisted(
        before, event.rule, event.metric, priority, event.time, channels.clear_for_s
    )
    conn.execute(
        "UPDATE alert SET priority = %s, rules = %s, active = %s, cleared_at = NULL,"
        " repetitions = %s, updated = now() WHERE id = %s",
        (after.priority.value, list(after.rules), list(after.active), after.repetitions, alert_id),
    )
    held = condition(event.rule, event.metric)
    if step == Step.REPEATED:
        record(conn, alert_id, "recurred", SYSTEM, f"{held}, repetition {after.repetitions}")
    elif step == Step.JOINED and held not in before.active:
        record(conn, alert_id, "condition_holds", SYSTEM, f"{held} also")
    if step == Step.WORSENED:
        note = f"{before.priority.value} to {priority.value}: {event.rule}"
        _tell_again(conn, alert_id, event, inhibited_by, channels, "worsened", note)
    elif step == Step.RENEWED:
        note = f"{held} again, after the episode had been clear {channels.clear_for_s:g} s"
        _tell_again(conn, alert_id, event, inhibited_by, channels, "renewed", note)
    if held == SENSOR_OFF_SPO2 and held not in before.active:
        _inhibit_open_spo2_alerts(conn, event.patient, alert_id)
    return alert_id


def _open(conn: psycopg.Connection, event: AnalyticsEvent, channels: Channels) -> int:
    patient, rule = event.patient, event.rule
    inhibitor = _inhibitor(conn, patient, rule)
    inserted = conn.execute(
        "INSERT INTO alert (patient, family, rule, rules, active, priority, state,"
        " inhibited_by, triggered_at, onset, gateway, evidence, event_id, description)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'triggered', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            patient,
            family_of(rule),
            rule,
            [rule],
            [condition(rule, event.metric)],
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
        _record_inhibited(conn, alert_id, inhibitor)
        return alert_id
    record(conn, alert_id, State.TRIGGERED, SYSTEM)
    if condition(rule, event.metric) == SENSOR_OFF_SPO2:
        _inhibit_open_spo2_alerts(conn, patient, alert_id)
    notify(conn, alert_id, event, channels)
    return alert_id


def _tell_again(
    conn: psycopg.Connection,
    alert_id: int,
    event: AnalyticsEvent,
    inhibited_by: int | None,
    channels: Channels,
    change: str,
    note: str,
) -> None:
    """The episode is news again (worse, or back after it had long been clear): a new
    revision, unacknowledged, and everyone told again, unless the oximeter is off the finger
    (then when it is back). Each telling keeps its event as the evidence; a worse condition
    also heads the episode, with its rule and words."""
    if change == "worsened":
        conn.execute(
            "UPDATE alert SET rule = %s, description = %s WHERE id = %s",
            (event.rule, event.description, alert_id),
        )
    row = conn.execute(
        "UPDATE alert SET evidence = %s, event_id = %s, revision = revision + 1,"
        " state = 'triggered', updated = now() WHERE id = %s RETURNING revision",
        (event.encode().decode(), event.id, alert_id),
    ).fetchone()
    assert row is not None
    record(conn, alert_id, change, SYSTEM, note)
    if inhibited_by is None:
        inhibited_by = _inhibitor(conn, event.patient, event.rule)
        if inhibited_by is not None:
            conn.execute(
                "UPDATE alert SET inhibited_by = %s WHERE id = %s", (inhibited_by, alert_id)
            )
            _record_inhibited(conn, alert_id, inhibited_by)
    if inhibited_by is None:
        notify(conn, alert_id, event, channels, revision=int(row[0]))


def _record_inhibited(conn: psycopg.Connection, alert_id: int, inhibitor: int) -> None:
    record(conn, alert_id, "inhibited", SYSTEM, f"by alert {inhibitor} (check the sensor)")


def _inhibitor(conn: psycopg.Connection, patient: str, rule: str) -> int | None:
    """The open 'check the sensor' episode of the patient's oximeter, for an SpO2 rule."""
    if family_of(rule) != "spo2":
        return None
    row = conn.execute(
        "SELECT id FROM alert WHERE patient = %s AND rule = 'check_sensor'"
        " AND state <> 'resolved' AND %s = ANY(active)",
        (patient, SENSOR_OFF_SPO2),
    ).fetchone()
    return None if row is None else int(row[0])


def _inhibit_open_spo2_alerts(conn: psycopg.Connection, patient: str, inhibitor: int) -> None:
    rows = conn.execute(
        "UPDATE alert SET inhibited_by = %s, updated = now() WHERE patient = %s"
        " AND rule = ANY(%s) AND state = 'triggered' AND inhibited_by IS NULL RETURNING id",
        (inhibitor, patient, list(FAMILIES["spo2"])),
    ).fetchall()
    for (alert_id,) in rows:
        _record_inhibited(conn, alert_id, inhibitor)


def _cleared(conn: psycopg.Connection, event: AnalyticsEvent, channels: Channels) -> int | None:
    ended = condition(event.rule, event.metric)
    row = conn.execute(f"{_EPISODE} AND %s = ANY(active) FOR UPDATE", (event.patient, ended))
    found = row.fetchone()
    if found is None:
        return None
    alert_id, before, _ = _episode(found)
    after = episodes.cleared(before, event.rule, event.metric, event.time)
    conn.execute(
        "UPDATE alert SET active = %s, cleared_at = %s, updated = now() WHERE id = %s",
        (list(after.active), after.cleared_at, alert_id),
    )
    if after.cleared_at is not None and before.cleared_at is None:
        latched = after.priority == Priority.HIGH and not after.acknowledged
        note = "open until acknowledged (high priority latches)" if latched else ""
        record(conn, alert_id, "condition_cleared", SYSTEM, note)
    if ended == SENSOR_OFF_SPO2:
        _lift_inhibition(conn, alert_id, channels)
    return alert_id


def _lift_inhibition(conn: psycopg.Connection, inhibitor: int, channels: Channels) -> int:
    """The oximeter is back: episodes it held back are told now if their condition still
    holds and nobody was told of them as they are (a read sensor showing the same thing is
    news). How many were told."""
    rows = conn.execute(
        "UPDATE alert SET inhibited_by = NULL, updated = now() WHERE inhibited_by = %s"
        " RETURNING id, state, cleared_at IS NULL, evidence, revision",
        (inhibitor,),
    ).fetchall()
    telling = 0
    for alert_id, state, holds, evidence, revision in rows:
        record(conn, alert_id, "inhibition_lifted", SYSTEM, f"alert {inhibitor} cleared")
        told = conn.execute(
            "SELECT 1 FROM notification WHERE alert = %s AND revision = %s LIMIT 1",
            (alert_id, revision),
        )
        if state == State.TRIGGERED and holds and told.fetchone() is None:
            event = AnalyticsEvent.from_document(evidence)
            notify(conn, alert_id, event, channels, revision=revision)
            telling += 1
    return telling


def release_inhibitions(conn: psycopg.Connection, channels: Channels) -> int:
    """Episodes held back by a 'check the sensor' alert somebody resolved by hand (its
    clearing will find no open alert to lift them from): lifted as if it had cleared. How
    many were told."""
    rows = conn.execute(
        "SELECT DISTINCT a.inhibited_by FROM alert a JOIN alert i ON i.id = a.inhibited_by"
        " WHERE i.state = 'resolved'"
    ).fetchall()
    return sum(_lift_inhibition(conn, int(inhibitor), channels) for (inhibitor,) in rows)


def auto_resolve(conn: psycopg.Connection, clear_for_s: float) -> list[int]:
    """Resolve the episodes whose conditions have stayed clear for ``clear_for_s``; a high
    priority one only once somebody has acknowledged it (it latches), or if it was never
    told (held back while the sensor was off, it signalled nothing to latch).
    :func:`alerts.episodes.resolves` is the same rule for one episode in memory."""
    rows = conn.execute(
        "UPDATE alert SET state = 'resolved', escalate_at = NULL, updated = now()"
        " WHERE state <> 'resolved' AND cleared_at IS NOT NULL"
        " AND cleared_at <= now() - make_interval(secs => %s)"
        " AND (priority <> 'high' OR state = 'acknowledged'"
        "  OR NOT EXISTS (SELECT 1 FROM notification n WHERE n.alert = alert.id)) RETURNING id",
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
