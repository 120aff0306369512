"""Delivering rest-hook subscriptions: the handshake, then every event in order, signed,
retried until the endpoint takes it.

The events are the outbox: recorded with their number before anyone is told, delivered
after commit, ``delivered`` moved forward only past what the endpoint accepted (a 2xx), so
a restart resumes where it stood and a client sees each number once in order (twice at
most, with the same ``Idempotency-Key``, when its answer was lost). A failed attempt is
tried again after 2, 4, 8 ... seconds, at most 5 minutes apart; a failed handshake, or
:data:`MAX_ATTEMPTS` failures in a row, set the subscription to ``error`` (events are still
recorded and tried, so nothing is lost, and ``$events`` has them all).

Before each delivery the owner's reach is asked again: an owner whose token was revoked,
or whose scopes no longer reach the topic, has the subscription turned ``off``; an event
of a patient the owner may no longer see (a Consent deny, a care relation ended) goes out
with its number and time only.

Bodies are signed as the alerts' webhooks are (``X-Vigil-Signature: sha256=<HMAC-SHA256
of the body>``, :func:`alerts.channels.sign`), with the subscription's own secret; the
headers the client set in ``channel.header`` go with every POST. Redirects are not
followed: the endpoint named is the one posted to.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg

from alerts.channels import SIGNATURE_HEADER, DeliveryError, sign
from api.access import audit
from api.access.audit import AuditRecord
from api.subscriptions import store
from api.subscriptions.endpoints import EndpointRefused, check_endpoint
from api.subscriptions.owners import may_see, reach
from api.subscriptions.resources import FHIR_JSON, Subscription, notification

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 300.0
MAX_PARALLEL = 8
_DUE = (
    f"SELECT id FROM subscription WHERE channel = 'rest-hook' AND {store.LIVE}"
    " AND next_attempt <= now() AND (NOT handshaken OR delivered <"
    " (SELECT coalesce(max(e.number), 0) FROM subscription_event e"
    "  WHERE e.subscription = subscription.id))"
    " ORDER BY next_attempt LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class Post:
    """One POST to make: to whom, what, and what it moves forward when it goes through."""

    sub: Subscription
    body: bytes
    key: str
    through: int
    """The last event number it carries (0: the handshake)."""


Sender = Callable[[Subscription, bytes, str, bool], None]


def post_notification(sub: Subscription, body: bytes, key: str, local_allowed: bool) -> None:
    """POST a notification to the subscription's endpoint, if its host is still one Vigil
    may call (:mod:`api.subscriptions.endpoints`); raises DeliveryError."""
    assert sub.endpoint is not None
    try:
        check_endpoint(sub.endpoint, local_allowed)
    except EndpointRefused as exc:
        raise DeliveryError(str(exc)) from None
    headers = {
        "Content-Type": FHIR_JSON,
        "Idempotency-Key": key,
        SIGNATURE_HEADER: sign(sub.secret, body),
        "User-Agent": "vigil-subscriptions",
    }
    for header in sub.headers:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    request = urllib.request.Request(sub.endpoint, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=sub.timeout_s) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(str(getattr(exc, "reason", exc))) from None


_DELIVERING = 0x56534244  # 'VSBD'; the finder's is 'VSBS'
"""The advisory lock the delivering process holds."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class RestHooks:
    def __init__(
        self,
        conn: psycopg.Connection,
        base: str,
        send: Sender = post_notification,
        max_attempts: int = MAX_ATTEMPTS,
        local_hooks: bool = False,
    ) -> None:
        """``conn``: a connection in autocommit mode; ``base``: the FHIR base URL;
        ``local_hooks``: endpoints on this machine and private networks may be called."""
        self.conn = conn
        self.base = base
        self.send = send
        self.local_hooks = local_hooks
        self.max_attempts = max_attempts

    def run_once(self, limit: int = 50) -> int:
        """Make the POSTs that are due, side by side; how many went through. One API
        process delivers at a time (a session lock): two would post the same events."""
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (_DELIVERING,)).fetchone()
        if not (row and row[0]):
            return 0
        try:
            return self._deliver(limit)
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (_DELIVERING,))

    def _deliver(self, limit: int) -> int:
        posts = [p for p in (self._prepare(i) for (i,) in self._due(limit)) if p is not None]
        if not posts:
            return 0
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(posts))) as pool:
            outcomes = list(pool.map(self._attempt, posts))
        for post, error in zip(posts, outcomes, strict=True):
            if error is None:
                self._accepted(post)
            else:
                self._refused(post, error)
        return sum(error is None for error in outcomes)

    def _due(self, limit: int) -> list[tuple[str]]:
        return self.conn.execute(_DUE, (limit,)).fetchall()

    def _prepare(self, subscription_id: str) -> Post | None:
        sub = store.read(self.conn, subscription_id)
        if sub is None:
            return None
        if not sub.handshaken:
            body = notification(sub, self.base, "handshake")
            return Post(sub, _encode(body), f"vigil-subscription-{sub.id}-handshake", 0)
        compartment = reach(self.conn, sub)
        if compartment is None:
            store.set_status(self.conn, sub.id, "off", "the subscriber's access has ended")
            log.info("subscription %s turned off: its owner's access has ended", sub.id)
            return None
        events = store.events(self.conn, sub.id, sub.delivered, sub.events, sub.max_count)
        hidden = frozenset(e.number for e in events if not may_see(compartment, sub, e.patient))
        body = notification(sub, self.base, "event-notification", events, hidden)
        first, last = events[0].number, events[-1].number
        record = AuditRecord(
            resource=f"/fhir/Subscription/{sub.id}",
            query=None,
            action="deliver",
            actor=sub.owner,
            kind=sub.owner_kind,
        )
        record.touch(e.patient for e in events if e.number not in hidden)
        audit.write(self.conn, record, 200)  # before anything of the patients leaves
        return Post(sub, _encode(body), f"vigil-subscription-{sub.id}-{first}-{last}", last)

    def _attempt(self, post: Post) -> str | None:
        """None when it went through, else why not; an unforeseen failure is a failed
        attempt too, retried and visible, never the end of the worker."""
        try:
            self.send(post.sub, post.body, post.key, self.local_hooks)
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:
            log.exception("subscription %s: delivery failed unexpectedly", post.sub.id)
            return f"unexpected {type(exc).__name__}"
        return None

    def _accepted(self, post: Post) -> None:
        self.conn.execute(
            "UPDATE subscription SET handshaken = true, delivered = greatest(delivered, %s),"
            " attempts = 0, next_attempt = now(), error = '',"
            " status = CASE WHEN status = 'off' THEN status ELSE 'active' END WHERE id = %s",
            (post.through, post.sub.id),
        )

    def _refused(self, post: Post, error: str) -> None:
        attempts = post.sub.attempts + 1
        failing = not post.sub.handshaken or attempts >= self.max_attempts
        backoff = min(2.0**attempts, MAX_BACKOFF_S)
        self.conn.execute(
            "UPDATE subscription SET attempts = %s, error = %s,"
            " next_attempt = now() + make_interval(secs => %s),"
            " status = CASE WHEN status = 'off' THEN status WHEN %s THEN 'error' ELSE status END"
            " WHERE id = %s",
            (attempts, f"delivery failed: {error}"[:500], backoff, failing, post.sub.id),
        )
        # The endpoint is not logged (it can name a patient); the id and the error do not.
        log.warning(
            "subscription %s: attempt %d failed (%s); again in %.0f s",
            post.sub.id,
            attempts,
            error,
            backoff,
        )


def _encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
