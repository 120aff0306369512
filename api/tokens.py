"""API clients and their bearer tokens. Only a SHA-256 of each token is stored, so a
database dump does not hand out access; the token itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import psycopg

ROLES = ("clinician", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_client(conn: psycopg.Connection, name: str, role: str = "clinician") -> str:
    """Create (or re-key) an API client; returns the new token."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = "vgl_" + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_client (name, role, token_sha256) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role,"
        " token_sha256 = EXCLUDED.token_sha256, revoked = NULL",
        (name, role, digest(token)),
    )
    return token


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    row = conn.execute(
        "SELECT name, role FROM api_client WHERE token_sha256 = %s AND revoked IS NULL",
        (digest(token),),
    ).fetchone()
    return Principal(row[0], row[1]) if row else None
