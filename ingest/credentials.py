"""Broker credentials: who may log in to Mosquitto, as what, kept in ``broker_account``.

`vigil enroll` issues each gateway and each platform service a random password, prints it
once and keeps only the hash Mosquitto checks it against: PBKDF2-HMAC-SHA512 with 101
iterations and a 12-byte salt, written ``$7$101$salt$hash`` (both base64), which is what
Mosquitto 2's ``mosquitto_passwd`` writes by default. Keeping the hash in the database
(and not only in the broker's file) lets the broker's files be written again from here,
on a new broker host or after a hand edit (:mod:`ingest.broker_files`).

A service's username is its MQTT client id: the shipped broker config replaces client ids
with usernames (``use_username_as_clientid``), so two processes sharing one account would
also share one session and throw each other off.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # `vigil enroll` lists the roles without the platform's libraries loaded
    import psycopg

Role = Literal["gateway", "ingest", "analytics", "alerts", "monitor"]
SERVICE_ROLES: tuple[Role, ...] = ("ingest", "analytics", "alerts", "monitor")

PBKDF2_ITERATIONS = 101
"""Mosquitto's own choice (mosquitto_passwd's default for ``-H sha512-pbkdf2``)."""
SALT_BYTES = 12


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    password_hash: str
    issued: datetime


def new_password() -> str:
    """192 random bits, URL-safe: it goes into VIGIL_MQTT_URL as it is."""
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """The password as a Mosquitto password file holds it (``$7$101$salt$hash``)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return f"$7${PBKDF2_ITERATIONS}${'$'.join(encoded)}"


def issue(conn: psycopg.Connection, username: str, role: Role) -> str:
    """A new password for ``username`` (the old one, if any, stops working once the broker
    reloads its files); returns it: the only time it is seen in clear."""
    password = new_password()
    conn.execute(
        "INSERT INTO broker_account (username, role, password_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT (username) DO UPDATE"
        " SET password_hash = excluded.password_hash, issued = now()",
        (username, role, mosquitto_hash(password)),
    )
    return password


def role_of(conn: psycopg.Connection, username: str) -> Role | None:
    row = conn.execute("SELECT role FROM broker_account WHERE username = %s", (username,))
    found = row.fetchone()
    return found[0] if found else None


def accounts(conn: psycopg.Connection) -> list[Account]:
    rows = conn.execute(
        "SELECT username, role, password_hash, issued FROM broker_account ORDER BY role, username"
    )
    return [Account(*row) for row in rows]


def revoke(conn: psycopg.Connection, username: str) -> int:
    """Delete the account; how many went (0 or 1)."""
    return conn.execute("DELETE FROM broker_account WHERE username = %s", (username,)).rowcount
