"""What an alert owes: the notifications written in the same transaction as the change that
causes them, for the dispatcher to deliver after commit.

When an alert is first told, and again each time its episode worsens, the care team's
webhooks and the first tier of its members are owed a message (low priority waits out the
team's quiet hours), and the patient their plain-language message on their gateway's inbox
and their own channels. A high-priority alert nobody acknowledges in time is owed to the
next tier (:func:`escalate`); when every tier was tried and nobody of the team could be told,
the administrators are owed a report (:mod:`alerts.admins`). Each notification has an
idempotency key that is the same for every attempt and names no address.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from alerts import admins
from alerts.history import SYSTEM, record
from alerts.model import ADMIN, CARE_TEAM, PATIENT, Priority, kind_of
from vigil.wire.events import AnalyticsEvent
from vigil.wire.times import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Channels:
    """Where notifications go besides the patient's care team (its members' contacts, by
    tier): webhooks for every alert, and the patient's gateway inbox."""

    care_team_webhooks: tuple[str, ...] = ()
    patient_inbox: bool = True
    escalate_after_s: float = 120.0
    """A high-priority alert nobody acknowledges in this time goes to the next tier."""
    clear_for_s: float = 3600.0
    """An episode clear this long resolves (a high one once acknowledged); one left open by
    its latch whose condition comes back after as long is told again."""
    patient_messages: Mapping[str, str] = field(default_factory=dict)
    """What patients are told, per rule, where it differs from alerts.model's wording."""
    admin_urls: tuple[str, ...] = ()
    """The administrators' apprise URLs, told of a care team nobody of which could be told;
    none: that is only logged."""


def notify(
    conn: psycopg.Connection,
    alert_id: int,
    event: AnalyticsEvent,
    channels: Channels,
    revision: int = 0,
) -> None:
    """Everything an alert owes when it is told, first (``revision`` 0) or again because it
    worsened: the webhooks, the first tier of the care team (and, for a high priority, the
    time the next tier is due), the patient."""
    kind = kind_of(event.rule)
    body = _body(alert_id, event, revision)
    if CARE_TEAM in kind.audience:
        for url in channels.care_team_webhooks:
            _owe(conn, alert_id, revision, "webhook", url, CARE_TEAM, body)
        told = _tell_tier(conn, alert_id, revision, event.patient, 1, body, kind.priority)
        if told and kind.priority == Priority.HIGH:
            conn.execute(
                "UPDATE alert SET tier = 1,"
                " escalate_at = now() + make_interval(secs => %s) WHERE id = %s",
                (channels.escalate_after_s, alert_id),
            )
        elif told:
            conn.execute("UPDATE alert SET tier = 1 WHERE id = %s", (alert_id,))
    text = channels.patient_messages.get(event.rule, kind.patient_message)
    if PATIENT not in kind.audience or not text:
        return
    message = {"alert": alert_id, "revision": revision, "patient": event.patient, "text": text}
    if event.gateway and channels.patient_inbox:
        _owe(conn, alert_id, revision, "mqtt", event.gateway, PATIENT, message)
    contacts = conn.execute(
        "SELECT contact FROM patient_contact WHERE patient = %s ORDER BY contact",
        (event.patient,),
    )
    for (contact,) in contacts.fetchall():
        _owe(conn, alert_id, revision, "apprise", contact, PATIENT, message)


def escalate(conn: psycopg.Connection, channels: Channels) -> list[int]:
    """High-priority alerts nobody acknowledged in time: the next tier is told (and the one
    after it is due in ``escalate_after_s``); with no tier left, escalation stops, recorded."""
    due = conn.execute(
        "SELECT id, patient, tier, evidence, revision FROM alert WHERE escalate_at <= now()"
        " AND state = 'triggered' AND inhibited_by IS NULL"
        " AND (snoozed_until IS NULL OR snoozed_until <= now()) FOR UPDATE SKIP LOCKED"
    ).fetchall()
    escalated = []
    for alert_id, patient, tier, evidence, revision in due:
        body = _body(alert_id, AnalyticsEvent.from_document(evidence), revision)
        if _tell_tier(conn, alert_id, revision, patient, tier + 1, body, Priority.HIGH):
            conn.execute(
                "UPDATE alert SET tier = %s, escalate_at = now() + make_interval(secs => %s),"
                " updated = now() WHERE id = %s",
                (tier + 1, channels.escalate_after_s, alert_id),
            )
            record(conn, alert_id, "escalated", SYSTEM, f"to tier {tier + 1}")
            escalated.append(int(alert_id))
        else:
            conn.execute("UPDATE alert SET escalate_at = NULL WHERE id = %s", (alert_id,))
            record(conn, alert_id, "escalation_exhausted", SYSTEM, f"no tier after {tier}")
            _if_nobody_was_told(conn, alert_id, revision, channels)
    return escalated


def _if_nobody_was_told(
    conn: psycopg.Connection, alert_id: int, revision: int, channels: Channels
) -> None:
    """Every tier tried and every care-team notification of this telling failed (none went
    through, none is still being tried): the team cannot be reached, which the deployment's
    administrators must hear of, once per telling: the alert's history, an ERROR for their
    log alerting, and a report on their channel, all in the caller's transaction (a crash
    before its commit leaves the alert due, to be found again). The escalation pass also
    finds an exhausted alert again whenever a delivery of it fails for good, one of an
    earlier telling too; the mark on the alert keeps the report to one."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE state <> 'failed'), count(*) FILTER (WHERE state = 'failed')"
        " FROM notification WHERE alert = %s AND revision = %s AND audience = 'care_team'",
        (alert_id, revision),
    ).fetchone()
    if row is None or row[0] > 0 or row[1] == 0:
        return
    first = conn.execute(
        "UPDATE alert SET unreachable_revision = revision, updated = now() WHERE id = %s"
        " AND unreachable_revision IS DISTINCT FROM revision RETURNING id",
        (alert_id,),
    ).fetchone()
    if first is None:
        return
    record(conn, alert_id, "team_unreachable", SYSTEM, f"{row[1]} notifications failed")
    body = admins.report(conn, alert_id, revision)
    for url in channels.admin_urls:
        _owe(conn, alert_id, revision, "apprise", url, ADMIN, body)
    log.error(
        "alert %s: no one of the care team could be told (team %s, %d notifications failed); %s",
        alert_id,
        body["team"] or "(none: webhooks only)",
        row[1],
        "reported to the administrators"
        if channels.admin_urls
        else "no administrators' channel to report it to (VIGIL_ALERTS_ADMIN_URLS)",
    )


def _tell_tier(
    conn: psycopg.Connection,
    alert_id: int,
    revision: int,
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
        " AND (m.period_start IS NULL OR m.period_start <= now())"
        " AND (m.period_end IS NULL OR m.period_end > now())"
        " ORDER BY m.member",
        (priority == Priority.LOW, patient, tier),
    ).fetchall()
    for member, contact, wait_until in members:
        _owe(
            conn,
            alert_id,
            revision,
            "apprise",
            contact,
            CARE_TEAM,
            {**body, "to": member, "tier": tier},
            not_before=wait_until,
        )
    return len(members)


def _body(alert_id: int, event: AnalyticsEvent, revision: int) -> dict[str, Any]:
    """What the care team is told of one alert (a webhook's ``alerts`` lists these): the
    condition that opened it or, from revision 1, the one that made it worse."""
    return {
        "alert": alert_id,
        "revision": revision,
        "patient": event.patient,
        "rule": event.rule,
        "priority": kind_of(event.rule).priority.value,
        "metric": event.metric,
        "time": iso(event.time),
        "value": event.value,
        "evidence": event.evidence,
    }


def _owe(
    conn: psycopg.Connection,
    alert_id: int,
    revision: int,
    channel: str,
    target: str,
    audience: str,
    body: dict[str, Any],
    not_before: datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO notification (alert, revision, channel, target, audience, body,"
        " idempotency_key, next_attempt) VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
        (
            alert_id,
            revision,
            channel,
            target,
            audience,
            json.dumps(body),
            _key(alert_id, revision, channel, target, audience),
            not_before,
        ),
    )


def _key(alert_id: int, revision: int, channel: str, target: str, audience: str) -> str:
    """The idempotency key a receiver sees: the same for every attempt of a delivery, new
    for each telling of the alert, and naming no address."""
    digest = hashlib.blake2s(f"{channel} {target} {audience}".encode(), digest_size=6)
    told = f"{alert_id}" if revision == 0 else f"{alert_id}.{revision}"
    return f"vigil-alert-{told}-{digest.hexdigest()}"
