"""Subscriptions, their events and binding tokens in the database; each function runs in
the caller's transaction.

An event gets its number when it is recorded, in the transaction that also moves the
finder's cursor past its source row, so a crash records it once or not at all, and the
numbers of a subscription have no gaps. Delivery over rest-hook only moves ``delivered``
forward once the endpoint has accepted every event up to it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from api.access.principal import Principal
from api.subscriptions.resources import Event, Subscription

_COLUMNS = (
    "id, owner, owner_kind, owner_scopes, owner_patient, topic, patient, channel, endpoint,"
    " headers, content, secret, reason, status, error, timeout_s, max_count, ends, created,"
    " deleted, (SELECT coalesce(max(e.number), 0) FROM subscription_event e"
    " WHERE e.subscription = subscription.id), handshaken, delivered, attempts"
)
"""``events`` is the highest number given: the finder alone inserts events, one process at a
time, so it needs no counter that deliveries' updates of the row would conflict with."""
LIVE = "deleted IS NULL AND status <> 'off' AND (ends IS NULL OR ends > now())"
"""A subscription that still gets events."""


def create(
    conn: psycopg.Connection,
    owner: Principal,
    *,
    topic: str,
    patient: str | None,
    channel: str,
    endpoint: str | None,
    headers: list[str],
    content: str,
    reason: str,
    timeout_s: int,
    max_count: int,
    ends: datetime | None,
) -> Subscription:
    """A new subscription; a rest-hook one is ``requested`` until its handshake goes
    through, a websocket one ``active`` at once (the client comes to the server)."""
    row = conn.execute(
        "INSERT INTO subscription (id, owner, owner_kind, owner_scopes, owner_patient, topic,"
        " patient, channel, endpoint, headers, content, secret, reason, status, timeout_s,"
        " max_count, ends) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_COLUMNS}",
        (
            str(uuid.uuid4()),
            owner.name,
            str(owner.kind),
            " ".join(str(s) for s in owner.scopes),
            owner.patient,
            topic,
            patient,
            channel,
            endpoint,
            headers,
            content,
            secrets.token_urlsafe(32),
            reason,
            "requested" if channel == "rest-hook" else "active",
            timeout_s,
            max_count,
            ends,
        ),
    ).fetchone()
    assert row is not None
    return Subscription(*row)


def read(conn: psycopg.Connection, subscription_id: str) -> Subscription | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM subscription WHERE id = %s", (subscription_id,)
    ).fetchone()
    return Subscription(*row) if row else None


def owned(
    conn: psycopg.Connection, owner: str | None, statuses: Sequence[str] | None, limit: int
) -> list[Subscription]:
    """Subscriptions not deleted, of ``owner`` (None: everyone's), newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM subscription WHERE deleted IS NULL"
        " AND (%s::text IS NULL OR owner = %s) AND (%s::text[] IS NULL OR status = ANY(%s))"
        " ORDER BY created DESC, id LIMIT %s",
        (owner, owner, statuses, statuses, limit),
    ).fetchall()
    return [Subscription(*r) for r in rows]


def count_live(conn: psycopg.Connection, owner: Principal) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM subscription WHERE {LIVE} AND owner = %s AND owner_kind = %s",
        (owner.name, str(owner.kind)),
    ).fetchone()
    return int(row[0]) if row else 0


def delete(conn: psycopg.Connection, subscription_id: str) -> None:
    """Off for good; its events stay until it is purged, as the audit of what was sent."""
    conn.execute(
        "UPDATE subscription SET status = 'off', deleted = coalesce(deleted, now()) WHERE id = %s",
        (subscription_id,),
    )


def live(conn: psycopg.Connection, source: str, topics: Sequence[str]) -> list[Subscription]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM subscription WHERE {LIVE} AND topic = ANY(%s)"
        " ORDER BY created, id",
        (list(topics),),
    ).fetchall()
    return [Subscription(*r) for r in rows]


def record_events(
    conn: psycopg.Connection, sub: Subscription, events: list[tuple[datetime, str, str, Any, bool]]
) -> int:
    """Number and store events (at, patient, focus, resource, new) in order; returns the
    subscription's count after them."""
    first = sub.events + 1
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO subscription_event (subscription, number, at, patient, focus, resource,"
            " new) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (sub.id, first + i, at, patient, focus, json.dumps(resource), new)
                for i, (at, patient, focus, resource, new) in enumerate(events)
            ],
        )
    return first + len(events) - 1


def events(
    conn: psycopg.Connection, subscription_id: str, after: int, through: int, limit: int
) -> list[Event]:
    """Events numbered after ``after`` up to ``through``, oldest first."""
    rows = conn.execute(
        "SELECT number, at, patient, focus, resource, new FROM subscription_event"
        " WHERE subscription = %s AND number > %s AND number <= %s ORDER BY number LIMIT %s",
        (subscription_id, after, through, limit),
    ).fetchall()
    return [Event(*r) for r in rows]


def cursor(conn: psycopg.Connection, source: str) -> datetime:
    row = conn.execute(
        "SELECT position FROM subscription_cursor WHERE source = %s", (source,)
    ).fetchone()
    assert row is not None, "migration 014 makes both cursors"
    return row[0]


def move_cursor(conn: psycopg.Connection, source: str, position: datetime) -> None:
    conn.execute(
        "UPDATE subscription_cursor SET position = %s WHERE source = %s", (position, source)
    )


def set_status(
    conn: psycopg.Connection, subscription_id: str, status: str, error: str = ""
) -> None:
    conn.execute(
        "UPDATE subscription SET status = %s, error = %s WHERE id = %s AND deleted IS NULL",
        (status, error[:500], subscription_id),
    )


def prune_events(conn: psycopg.Connection, retention_days: int) -> int:
    """Forget events older than the retention period, as the readings they carry are: a
    new-Observation subscription records one per reading. ``$events`` replays what is
    left. Each subscription's newest event stays, whatever its age: the count of events
    (``eventsSinceSubscriptionStart``, and the next number) is read off it."""
    if retention_days <= 0:  # 0: readings are kept for ever, and so are their events
        return 0
    return conn.execute(
        "DELETE FROM subscription_event e WHERE at < now() - make_interval(days => %s)"
        "   AND number < (SELECT max(number) FROM subscription_event l"
        "                 WHERE l.subscription = e.subscription)",
        (retention_days,),
    ).rowcount


def issue_binding_token(conn: psycopg.Connection, subscription_id: str, expires: datetime) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute("DELETE FROM subscription_ws_token WHERE expires < now()")
    conn.execute(
        "INSERT INTO subscription_ws_token (digest, subscription, expires) VALUES (%s, %s, %s)",
        (_digest(token), subscription_id, expires),
    )
    return token


def bound_by(conn: psycopg.Connection, token: str) -> str | None:
    """The subscription a live binding token is for."""
    row = conn.execute(
        "SELECT subscription FROM subscription_ws_token WHERE digest = %s AND expires > now()",
        (_digest(token),),
    ).fetchone()
    return str(row[0]) if row else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
