"""The audit trail: one row per access to patient data or attempt at it, allowed or not.

Outcomes come from one vocabulary (:class:`Outcome`, also a CHECK on the table), so a
report of refusals is one query, not a guess at spellings.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import psycopg


class Outcome(StrEnum):
    SUCCESS = "success"
    INVALID = "invalid"
    """The request could not be run as asked (a bad parameter)."""
    DENIED = "denied"
    """No valid credentials."""
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    """A change the resource's state does not allow (an alert already resolved)."""


def audit(
    conn: psycopg.Connection,
    actor: str,
    action: str,
    resource: str,
    query: str | None,
    outcome: Outcome,
    patients: Iterable[str] = (),
) -> None:
    """Record one access; committed at once so a failing request still leaves its trace."""
    conn.execute(
        "INSERT INTO audit_event (actor, action, resource, query, outcome, patients)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (actor, action, resource, query, str(outcome), sorted(set(patients))),
    )
    conn.commit()
