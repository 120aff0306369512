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


def send_apprise(url: str, body: dict[str, Any]) -> None:
    """One care-team member's contact (any apprise URL: mailto://, ntfy://, slack://,
    json:// ...), told in a line a phone's lock screen can show."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("not a contact apprise can use")
    title = f"Vigil {body['priority'].upper()}: {body['rule']} ({body['patient']})"
    text = (
        f"{body['metric']} {body['value']} at {body['time']}. Alert {body['alert']}: "
        f"acknowledge with `vigil alerts ack {body['alert']} --by NAME`."
    )
    kind = apprise.NotifyType.FAILURE if body["priority"] == "high" else apprise.NotifyType.WARNING
    if not notifier.notify(title=title, body=text, notify_type=kind):
        raise DeliveryError("apprise could not deliver it")


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

    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due; returns how many were delivered."""
        with self.conn.transaction():
            due = self.conn.execute(
                "SELECT id, channel, target, body, idempotency_key, attempts FROM notification"
                " WHERE state = 'pending' AND next_attempt <= now()"
                " ORDER BY next_attempt LIMIT %s",
                (limit,),
            ).fetchall()
        delivered = 0
        for notification_id, channel, target, body, key, attempts in due:
            try:
                self._deliver(channel, target, body, key)
            except DeliveryError as exc:
                self._failed_attempt(notification_id, attempts + 1, str(exc))
                continue
            with self.conn.transaction():
                self.conn.execute(
                    "UPDATE notification SET state = 'sent', sent = now(),"
                    " attempts = attempts + 1 WHERE id = %s",
                    (notification_id,),
                )
            delivered += 1
        return delivered

    def _deliver(self, channel: str, target: str, body: Any, key: str) -> None:
        payload = json.dumps({**body, "idempotency_key": key}, sort_keys=True).encode()
        if channel == "webhook":
            post_webhook(target, payload, key, self.secret)
        elif channel == "mqtt":
            self.publish_inbox(target, payload)
        elif channel == "apprise":
            send_apprise(target, body)
        else:
            raise DeliveryError(f"unknown channel {channel!r}")

    def _failed_attempt(self, notification_id: int, attempts: int, error: str) -> None:
        final = attempts >= self.max_attempts
        backoff = min(2.0**attempts, MAX_BACKOFF_S)
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE notification SET attempts = %s, last_error = %s,"
                " state = CASE WHEN %s THEN 'failed' ELSE 'pending' END,"
                " next_attempt = now() + make_interval(secs => %s) WHERE id = %s",
                (attempts, error[:500], final, backoff, notification_id),
            )
        # Targets and errors name no patient; the body stays in the table.
        log.warning(
            "notification %d: attempt %d failed (%s)%s",
            notification_id,
            attempts,
            error,
            "; marked failed" if final else f"; again in {backoff:.0f} s",
        )
