"""Delivering the outbox: each pending notification once it is due, with retries.

Notifications owed to one recipient about one patient by one change (the same transaction:
a patient's alerts raised by one micro-batch of events) go as one message: a nurse gets
'SpO2 low, pulse high' once, not two pings a second apart. The messages of one round go to
their recipients side by side (each recipient's in order), so a receiver that takes seconds
to answer delays nobody else; each recipient's are marked as soon as they are through. A
delivery that fails is tried again after 2, 4, 8 ... seconds (at most 5 minutes apart);
after ``max_attempts`` it is marked failed, with its last error, for a person to see, never
silently dropped. Every attempt of one notification carries the same idempotency key, so a
receiver that got it before a crash (or before a lost answer) can tell a repeat. MQTT
notifications count as delivered when the broker has them. A report to the administrators
(:mod:`alerts.admins`) that fails for good is an ERROR and stays failed: there is nobody
further to tell.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import psycopg

from alerts.admins import send_report
from alerts.channels import (
    DeliveryError,
    highest,
    post_webhook,
    send_apprise,
    send_apprise_text,
)
from alerts.history import SYSTEM, record
from alerts.model import ADMIN
from vigil.wire.messages import PatientMessage

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
MAX_PARALLEL = 8
"""Deliveries of one round in flight at once."""
_DUE = (
    "SELECT n.id, n.channel, n.target, n.audience, a.patient, n.created, n.body,"
    " n.idempotency_key, n.attempts FROM notification n JOIN alert a ON a.id = n.alert"
    " WHERE n.state = 'pending' AND n.next_attempt <= now() ORDER BY n.created, n.id LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery: the notifications it carries, to one recipient about one patient."""

    ids: list[int]
    channel: str
    target: str
    audience: str
    patient: str
    bodies: list[dict[str, Any]]
    key: str
    attempts: int
    """Attempts made so far (the most of its notifications')."""


class Dispatcher:
    def __init__(
        self,
        conn: psycopg.Connection,
        secret: str,
        publish_inbox: Callable[[str, bytes], None],
        max_attempts: int = 8,
    ) -> None:
        self.conn = conn
        self.secret = secret
        self.publish_inbox = publish_inbox
        """Publishes to a gateway's inbox (gateway id, payload); raises DeliveryError."""
        self.max_attempts = max_attempts

    def run_once(self, limit: int = 200) -> int:
        """Deliver what is due; returns how many notifications were delivered."""
        recipients: dict[tuple[str, str], list[Message]] = {}
        for message in self.due(limit):
            recipients.setdefault((message.channel, message.target), []).append(message)
        if not recipients:
            return 0
        delivered = 0
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(recipients))) as pool:
            rounds = [pool.submit(self._attempt_all, ms) for ms in recipients.values()]
            for done in as_completed(rounds):
                for message, error in done.result():
                    if error is None:
                        self._sent(message)
                        delivered += len(message.ids)
                    else:
                        self._failed(message, error)
        return delivered

    def due(self, limit: int) -> list[Message]:
        with self.conn.transaction():
            rows = self.conn.execute(_DUE, (limit,)).fetchall()
        groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            groups.setdefault(row[1:6], []).append(row)
        return [
            Message(
                ids=[r[0] for r in group],
                channel=channel,
                target=target,
                audience=audience,
                patient=patient,
                bodies=[r[6] for r in group],
                key=group[0][7] if len(group) == 1 else _group_key([r[7] for r in group]),
                attempts=max(r[8] for r in group),
            )
            for (channel, target, audience, patient, _created), group in groups.items()
        ]

    def _attempt_all(self, messages: list[Message]) -> list[tuple[Message, str | None]]:
        """One recipient's messages, in order; each with None when it got through, else why
        not. A failure nobody foresaw is a failed attempt too, retried and visible, never
        the end of the dispatcher."""
        outcomes: list[tuple[Message, str | None]] = []
        for message in messages:
            try:
                self._deliver(message)
            except DeliveryError as exc:
                outcomes.append((message, str(exc)))
            except Exception as exc:
                log.exception("notification %s: delivery failed unexpectedly", message.ids)
                outcomes.append((message, f"unexpected {type(exc).__name__}"))
            else:
                outcomes.append((message, None))
        return outcomes

    def _deliver(self, m: Message) -> None:
        if m.audience == ADMIN:
            send_report(m.target, m.bodies, m.key)
            return
        if "text" in m.bodies[0]:  # to the patient: their messages, each said once
            text = " ".join(dict.fromkeys(b["text"] for b in m.bodies))
            if m.channel == "apprise":
                send_apprise_text(m.target, "A message from your care team", text)
                return
            alerts = tuple(b["alert"] for b in m.bodies)
            self.publish_inbox(m.target, PatientMessage(m.patient, alerts, text, m.key).encode())
            return
        if m.channel == "apprise":
            send_apprise(m.target, m.patient, m.bodies)
            return
        if m.channel != "webhook":
            raise DeliveryError(f"unknown channel {m.channel!r}")
        document = {
            "patient": m.patient,
            "priority": highest(m.bodies),
            "alerts": m.bodies,
            "idempotency_key": m.key,
        }
        post_webhook(m.target, json.dumps(document, sort_keys=True).encode(), m.key, self.secret)

    def _sent(self, message: Message) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE notification SET state = 'sent', sent = now(),"
                " attempts = attempts + 1 WHERE id = ANY(%s)",
                (message.ids,),
            )

    def _failed(self, message: Message, error: str) -> None:
        attempts = message.attempts + 1
        final = attempts >= self.max_attempts
        backoff = min(2.0**attempts, MAX_BACKOFF_S)
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE notification SET attempts = %s, last_error = %s,"
                " state = CASE WHEN %s THEN 'failed' ELSE 'pending' END,"
                " next_attempt = now() + make_interval(secs => %s) WHERE id = ANY(%s)",
                (attempts, error[:500], final, backoff, message.ids),
            )
            if final:
                self._escalate_now(message, error)
        # Targets and errors name no patient; the body stays in the table.
        if final and message.audience == ADMIN:
            log.error(
                "report %s to the administrators (alert %s) failed %d times (%s); kept as"
                " failed, not retried: check VIGIL_ALERTS_ADMIN_URLS, and the alert's team",
                ",".join(map(str, message.ids)),
                ",".join(str(b["alert"]) for b in message.bodies),
                attempts,
                error,
            )
            return
        log.warning(
            "notification %s: attempt %d failed (%s)%s",
            ",".join(map(str, message.ids)),
            attempts,
            error,
            "; marked failed" if final else f"; again in {backoff:.0f} s",
        )

    def _escalate_now(self, message: Message, error: str) -> None:
        """A care team member who could not be told is a clinical event, not a log line:
        the alert goes to the next tier at once (the escalation loop's next round), whatever
        its priority, and its history says why."""
        failed = self.conn.execute(
            "UPDATE alert SET escalate_at = now(), updated = now()"
            " WHERE id IN (SELECT alert FROM notification"
            "              WHERE id = ANY(%s) AND audience = 'care_team')"
            " AND state = 'triggered' AND inhibited_by IS NULL RETURNING id",
            (message.ids,),
        ).fetchall()
        for (alert_id,) in failed:
            record(
                self.conn, alert_id, "delivery_failed", SYSTEM, f"{message.channel}: {error}"[:300]
            )


def _group_key(keys: list[str]) -> str:
    """The idempotency key of a grouped message: the same for every attempt."""
    digest = hashlib.blake2s(" ".join(sorted(keys)).encode(), digest_size=8).hexdigest()
    return f"vigil-group-{digest}"
