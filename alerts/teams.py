"""Care teams: members by tier, the patients they look after, their quiet hours; and the
patients' own channels."""

from __future__ import annotations

from datetime import datetime, time

import psycopg


def add_team(
    conn: psycopg.Connection,
    team: str,
    name: str = "",
    timezone: str = "UTC",
    quiet: tuple[time, time] | None = None,
) -> None:
    """Create or update a team. ``quiet``: (from, until) local times for low priority."""
    try:
        conn.execute("SELECT now() AT TIME ZONE %s", (timezone,))
    except psycopg.errors.InvalidParameterValue:
        raise ValueError(f"unknown time zone {timezone!r} (e.g. Europe/London)") from None
    quiet_from, quiet_until = quiet if quiet else (None, None)
    conn.execute(
        "INSERT INTO care_team (id, name, timezone, quiet_from, quiet_until)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
        " timezone = excluded.timezone, quiet_from = excluded.quiet_from,"
        " quiet_until = excluded.quiet_until",
        (team, name, timezone, quiet_from, quiet_until),
    )


def add_member(
    conn: psycopg.Connection,
    team: str,
    member: str,
    tier: int,
    contact: str,
    until: datetime | None = None,
) -> None:
    """A member is paged for the team's patients, and sees them, until ``until`` (a locum
    for a month), else for as long as they are on the team."""
    if tier < 1:
        raise ValueError("tiers start at 1 (told first)")
    try:
        conn.execute(
            "INSERT INTO care_team_member (team, member, tier, contact, period_end)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (team, member) DO UPDATE SET tier = excluded.tier,"
            " contact = excluded.contact, period_end = excluded.period_end",
            (team, member, tier, contact, until),
        )
    except psycopg.errors.ForeignKeyViolation:
        raise ValueError(f"no team {team!r}: add it first (`vigil team add {team}`)") from None


def assign(conn: psycopg.Connection, patient: str, team: str, name: str | None = None) -> None:
    """Put a patient on a team (which registers the patient, migration 013), with the
    display name the registry (FHIR Patient.name) shows, when given."""
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO patient_team (patient, team) VALUES (%s, %s)"
                " ON CONFLICT (patient) DO UPDATE SET team = excluded.team",
                (patient, team),
            )
            if name is not None:
                conn.execute(
                    "UPDATE patient SET name = %s, updated = now() WHERE id = %s", (name, patient)
                )
    except psycopg.errors.ForeignKeyViolation:
        raise ValueError(f"no team {team!r}: add it first (`vigil team add {team}`)") from None


def add_patient_contact(conn: psycopg.Connection, patient: str, contact: str) -> None:
    """A patient's own channel for their messages (an apprise URL)."""
    conn.execute(
        "INSERT INTO patient_contact (patient, contact) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (patient, contact),
    )
