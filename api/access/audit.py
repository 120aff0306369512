"""The audit trail: one row per request to the API, allowed or not, written before any data
of the answer leaves (:mod:`api.edge` does it, from the :class:`AuditRecord` the request
carries and its status).

Outcomes come from one vocabulary (:class:`Outcome`, also a CHECK on the table), so a
report of refusals is one query, not a guess at spellings. What a request asked is kept
but bounded, an anonymous one's more tightly: refusals must not become a way to fill the
disk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg

MAX_QUERY = 2048
MAX_ANONYMOUS_QUERY = 256
MAX_RESOURCE = 512
ANONYMOUS = "anonymous"


class Outcome(StrEnum):
    SUCCESS = "success"
    INVALID = "invalid"
    """The request could not be run as asked (a bad parameter)."""
    DENIED = "denied"
    """No valid credentials."""
    FORBIDDEN = "forbidden"
    """Valid credentials whose scopes do not reach this kind of data."""
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    """A change the resource's state does not allow (an alert already resolved)."""
    TOO_LARGE = "too-large"
    TOO_MANY = "too-many"
    """Over a limit per principal (open streams)."""
    ERROR = "error"
    """The server failed."""


_BY_STATUS = {
    400: Outcome.INVALID,
    401: Outcome.DENIED,
    403: Outcome.FORBIDDEN,
    404: Outcome.NOT_FOUND,
    405: Outcome.INVALID,
    409: Outcome.CONFLICT,
    413: Outcome.TOO_LARGE,
    422: Outcome.INVALID,
    429: Outcome.TOO_MANY,
}


def outcome_of(status: int) -> Outcome:
    if status < 400:
        return Outcome.SUCCESS
    return _BY_STATUS.get(status, Outcome.ERROR if status >= 500 else Outcome.INVALID)


@dataclass
class AuditRecord:
    """What one request did, filled in as it goes: the edge starts it, authentication names
    the actor, the policy the action, the route the patients it touched."""

    resource: str
    query: str | None
    action: str
    actor: str = ANONYMOUS
    kind: str | None = None
    patients: set[str] = field(default_factory=set)
    written: bool = False
    """Already in the trail, in the transaction of the change it records."""

    def touch(self, patients: Iterable[str | None]) -> None:
        self.patients.update(p for p in patients if p)


def _bounded(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def write(conn: psycopg.Connection, record: AuditRecord, status: int) -> None:
    """Record one request; committed at once so the answer that follows has its trace."""
    add(conn, record, status)
    conn.commit()


def add(conn: psycopg.Connection, record: AuditRecord, status: int) -> None:
    """Record a change in its own transaction: both are committed, or neither."""
    limit = MAX_ANONYMOUS_QUERY if record.actor == ANONYMOUS else MAX_QUERY
    conn.execute(
        "INSERT INTO audit_event"
        " (actor, principal_kind, action, resource, query, outcome, status, patients)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            record.actor,
            record.kind,
            record.action,
            _bounded(record.resource, MAX_RESOURCE),
            _bounded(record.query, limit),
            str(outcome_of(status)),
            status,
            sorted(record.patients),
        ),
    )
    record.written = True
