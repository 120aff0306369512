"""The patients' decisions about who may see them, kept as the rows behind FHIR Consent.

Only the patient records their own decisions (the policy lets only a patient principal
create a Consent, and the route only for themselves). A decision is never edited: a new
one supersedes it, so the trail of who was let in or shut out, and when, stays whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


class ConsentError(ValueError):
    """A decision that names no actor Vigil knows; the message says which."""


@dataclass(frozen=True, slots=True)
class Decision:
    id: int
    patient: str
    actor: str
    """``CareTeam/ID`` or ``Device/CLIENT`` (an integration)."""
    decision: str
    start: datetime
    end: datetime | None
    recorded: datetime
    recorded_by: str


_COLUMNS = "id, patient, actor, decision, period_start, period_end, recorded, recorded_by"


def record(
    conn: psycopg.Connection,
    patient: str,
    actor: str,
    decision: str,
    by: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Decision:
    kind, _, ident = actor.partition("/")
    known = {
        "CareTeam": "SELECT 1 FROM care_team WHERE id = %s",
        "Device": "SELECT 1 FROM api_client WHERE name = %s AND role = 'system'",
    }
    if kind not in known or conn.execute(known[kind], (ident,)).fetchone() is None:
        raise ConsentError(
            f"{actor[:80]!r} is neither a care team (CareTeam/ID) nor an integration (Device/NAME)"
        )
    row = conn.execute(
        "INSERT INTO consent (patient, actor, decision, period_start, period_end, recorded_by)"
        f" VALUES (%s, %s, %s, coalesce(%s, now()), %s, %s) RETURNING {_COLUMNS}",
        (patient, actor, decision, start, end, by),
    ).fetchone()
    assert row is not None
    return Decision(*row)


def decision(conn: psycopg.Connection, consent_id: int) -> Decision | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM consent WHERE id = %s", (consent_id,)).fetchone()
    return Decision(*row) if row else None


def decisions(conn: psycopg.Connection, patient: str) -> list[Decision]:
    """Newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM consent WHERE patient = %s ORDER BY recorded DESC, id DESC",
        (patient,),
    ).fetchall()
    return [Decision(*r) for r in rows]
