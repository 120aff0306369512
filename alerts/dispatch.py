"""Delivering the outbox: each pending notification once it is due, with retries.

A delivery that fails is tried again after 2, 4, 8 ... seconds (at most 5 minutes apart);
after ``max_attempts`` it is marked failed, with its last error, for a person to see, never
silently dropped. Every attempt of one notification carries the same idempotency key, so a
receiver that got it before a crash (or before a lost answer) can tell a repeat.

Care-team members are told through apprise (their contact is an apprise URL). Webhooks
are POSTs of the JSON body with ``Idempotency-Key`` and
``X-Vigil-Signature: sha256=<HMAC-SHA256 of the body with the shared secret>``; the
receiver recomputes the HMAC to know the sender. MQTT notifications go to the gateway's
inbox at QoS 1 and count as delivered when the broker has them. (The POST is the
standard library's: signing a body needs no HTTP client beyond it.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import apprise
import psycopg

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


class DeliveryError(Exception):
    pass


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(url: str, body: bytes, key: str, secret: str, timeout: float = 5.0) -> None:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Vigil-Signature": sign(secret, body),
            "User-Agent": "vigil-alerts",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(str(getattr(exc, "reason", exc))) from None


def send_apprise(url: str, patient: str, bodies: list[dict[str, Any]]) -> None:
    """One care-team member's contact (any apprise URL: mailto://, ntfy://, slack://,
    json:// ...), told in lines a phone's lock screen can show."""
    priority = _highest(bodies)
    what = bodies[0]["rule"] if len(bodies) == 1 else f"{len(bodies)} alerts"
    title = f"Vigil {priority.upper()}: {what} ({patient})"
    text = "\n".join(
        f"{b['rule']}: {b['metric']} {b['value']} at {b['time']} (alert {b['alert']}: "
        f"`vigil alerts ack {b['alert']} --by NAME`)"
        for b in bodies
    )
    kind = apprise.NotifyType.FAILURE if priority == "high" else apprise.NotifyType.WARNING
    send_apprise_text(url, title, text, kind)


def send_apprise_text(
    url: str, title: str, text: str, kind: apprise.NotifyType = apprise.NotifyType.INFO
) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("not a contact apprise can use")
    if not notifier.notify(title=title, body=text, notify_type=kind):
        raise DeliveryError("apprise could not deliver it")


def _highest(bodies: list[dict[str, Any]]) -> str:
    order = ("low", "medium", "high")
    return max((b.get("priority", "medium") for b in bodies), key=order.index)


def _group_key(keys: list[str]) -> str:
    """The idempotency key of a grouped message: the same for every attempt."""
    digest = hashlib.blake2s(" ".join(sorted(keys)).encode(), digest_size=8).hexdigest()
    return f"vigil-group-{digest}"


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
        """Deliver what is due; returns how many notifications were delivered.

        Notifications owed to one recipient about one patient by one change (the same
        transaction: a patient's alerts raised by one micro-batch of events) go as one
        message: a nurse gets 'SpO2 low, pulse high' once, not two pings a second apart."""
        with self.conn.transaction():
            due = self.conn.execute(
                "SELECT n.id, n.channel, n.target, n.audience, a.patient, n.created, n.body,"
                " n.idempotency_key, n.attempts FROM notification n JOIN alert a ON a.id = n.alert"
                " WHERE n.state = 'pending' AND n.next_attempt <= now()"
                " ORDER BY n.created, n.id LIMIT %s",
                (limit,),
            ).fetchall()
        groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for row in due:
            groups.setdefault(row[1:6], []).append(row)
        delivered = 0
        for (channel, target, _audience, patient, _created), rows in groups.items():
            ids = [r[0] for r in rows]
            key = rows[0][7] if len(rows) == 1 else _group_key([r[7] for r in rows])
            try:
                self._deliver(channel, target, patient, [r[6] for r in rows], key)
            except DeliveryError as exc:
                self._failed_attempt(ids, max(r[8] for r in rows) + 1, str(exc))
                continue
            with self.conn.transaction():
                self.conn.execute(
                    "UPDATE notification SET state = 'sent', sent = now(),"
                    " attempts = attempts + 1 WHERE id = ANY(%s)",
                    (ids,),
                )
            delivered += len(ids)
        return delivered

    def _deliver(
        self, channel: str, target: str, patient: str, bodies: list[dict[str, Any]], key: str
    ) -> None:
        if "text" in bodies[0]:  # to the patient: their messages, each said once
            text = " ".join(dict.fromkeys(b["text"] for b in bodies))
            if channel == "apprise":
                send_apprise_text(target, "A message from your care team", text)
                return
            message = {"patient": patient, "alerts": [b["alert"] for b in bodies], "text": text}
            payload = {**message, "idempotency_key": key}
            self.publish_inbox(target, json.dumps(payload, sort_keys=True).encode())
            return
        if channel == "apprise":
            send_apprise(target, patient, bodies)
            return
        if channel != "webhook":
            raise DeliveryError(f"unknown channel {channel!r}")
        document = {
            "patient": patient,
            "priority": _highest(bodies),
            "alerts": bodies,
            "idempotency_key": key,
        }
        post_webhook(target, json.dumps(document, sort_keys=True).encode(), key, self.secret)

    def _failed_attempt(self, ids: list[int], attempts: int, error: str) -> None:
        final = attempts >= self.max_attempts
        backoff = min(2.0**attempts, MAX_BACKOFF_S)
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE notification SET attempts = %s, last_error = %s,"
                " state = CASE WHEN %s THEN 'failed' ELSE 'pending' END,"
                " next_attempt = now() + make_interval(secs => %s) WHERE id = ANY(%s)",
                (attempts, error[:500], final, backoff, ids),
            )
        # Targets and errors name no patient; the body stays in the table.
        log.warning(
            "notification %s: attempt %d failed (%s)%s",
            ",".join(map(str, ids)),
            attempts,
            error,
            "; marked failed" if final else f"; again in {backoff:.0f} s",
        )
