"""What the API tests share: a clinician whose care team looks after given patients."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from alerts.teams import add_team, assign
from api.access.tokens import create_client


def clinician_token(
    conn: psycopg.Connection, name: str, patients: Iterable[str], team: str = "t-test"
) -> str:
    """A token for clinician ``name`` on ``team``, which looks after ``patients``."""
    add_team(conn, team)
    for patient in patients:
        assign(conn, patient, team)
    return create_client(conn, name, teams=[team])
