"""API clients and their bearer tokens. Only a SHA-256 of each token is stored, so a
database dump does not hand out access; the token itself is shown once, at creation.

A token names its principal (kind, the patient of a patient token, scopes) and may expire;
revoking it takes effect on the next request, since every request looks the token up.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from api.access.principal import CONTEXT, Kind, Principal, principal_scopes
from api.access.scopes import parse_scopes

PREFIX = "vgl_"


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    kind: Kind
    patient: str | None
    scopes: str
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    grants: tuple[str, ...]
    """Teams (``CareTeam/T``) and patients (``Patient/P``) granted to it."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_client(
    conn: psycopg.Connection,
    name: str,
    kind: Kind | str = Kind.CLINICIAN,
    *,
    patient: str | None = None,
    scopes: str | None = None,
    expires: datetime | None = None,
    teams: Iterable[str] = (),
    patients: Iterable[str] = (),
) -> str:
    """Create (or re-key, replacing its grants) an API client; returns the new token.
    Raises ValueError, with what to change, for a combination that makes no sense."""
    kind = Kind(kind)
    if (kind is Kind.PATIENT) != (patient is not None):
        raise ValueError("a patient token needs --patient ID, and only a patient token has one")
    teams, patients = list(teams), list(patients)
    if kind in (Kind.PATIENT, Kind.ADMIN) and (teams or patients):
        raise ValueError(f"a {kind} token takes no --team or --patient grants")
    if kind is Kind.CLINICIAN and patients:
        raise ValueError("a clinician sees the patients of their care teams: give --team")
    if scopes is not None:
        wrong = [str(s) for s in parse_scopes(scopes, strict=True) if s.context != CONTEXT[kind]]
        if wrong:
            raise ValueError(
                f"a {kind} token's scopes are {CONTEXT[kind]}/... scopes, not {' '.join(wrong)}"
            )
    token = PREFIX + secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(
            "INSERT INTO api_client (name, role, patient, scopes, expires, token_sha256)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
            " role = EXCLUDED.role, patient = EXCLUDED.patient, scopes = EXCLUDED.scopes,"
            " expires = EXCLUDED.expires, token_sha256 = EXCLUDED.token_sha256, revoked = NULL,"
            " created = now()",
            (name, str(kind), patient, scopes, expires, digest(token)),
        )
        conn.execute("DELETE FROM access_grant WHERE client = %s", (name,))
        try:
            for team in teams:
                conn.execute(
                    "INSERT INTO access_grant (client, team) VALUES (%s, %s)", (name, team)
                )
        except psycopg.errors.ForeignKeyViolation:
            raise ValueError(f"no team {team!r}: add it first (`vigil team add {team}`)") from None
        for granted in patients:
            conn.execute(
                "INSERT INTO access_grant (client, patient) VALUES (%s, %s)", (name, granted)
            )
    return token


def revoke(conn: psycopg.Connection, name: str) -> bool:
    """Revoke a client's token at once; False when there is no such live client."""
    return (
        conn.execute(
            "UPDATE api_client SET revoked = now() WHERE name = %s AND revoked IS NULL", (name,)
        ).rowcount
        > 0
    )


def clients(conn: psycopg.Connection) -> list[Client]:
    rows = conn.execute(
        "SELECT c.name, c.role, c.patient, c.scopes, c.created, c.expires, c.revoked,"
        " array_remove(array_agg(CASE WHEN g.team IS NOT NULL THEN 'CareTeam/' || g.team"
        " ELSE 'Patient/' || g.patient END ORDER BY g.id), NULL)"
        " FROM api_client c LEFT JOIN access_grant g ON g.client = c.name"
        " GROUP BY c.id ORDER BY c.name"
    ).fetchall()
    return [
        Client(r[0], Kind(r[1]), r[2], r[3] or "", r[4], r[5], r[6], tuple(r[7] or ()))
        for r in rows
    ]


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    """The principal of a live token (not revoked, not expired), else None."""
    if not token.startswith(PREFIX):
        return None
    row = conn.execute(
        "SELECT name, role, patient, scopes FROM api_client WHERE token_sha256 = %s"
        " AND revoked IS NULL AND (expires IS NULL OR expires > now())",
        (digest(token),),
    ).fetchone()
    if row is None:
        return None
    kind = Kind(row[1])
    return Principal(row[0], kind, principal_scopes(kind, row[3]), row[2])
