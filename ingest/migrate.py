"""Schema migrations: numbered plain SQL files applied in order, each in its own
transaction, recorded in ``schema_migration``. An advisory lock lets several services
start at once against a fresh database without racing."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)
_LOCK_KEY = 0x56494749  # 'VIGI'


def available() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file shipped with the package."""
    found = []
    for entry in (Path(__file__).parent / "migrations").glob("*.sql"):
        version = int(entry.name.split("_", 1)[0])
        found.append((version, entry.name, entry.read_text()))
    return sorted(found)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply what is missing; returns the names applied."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied timestamptz NOT NULL DEFAULT now())"
        )
        done = {v for (v,) in conn.execute("SELECT version FROM schema_migration")}
        for version, name, sql in available():
            if version in done:
                continue
            conn.execute(sql.encode())
            conn.execute(
                "INSERT INTO schema_migration (version, name) VALUES (%s, %s)", (version, name)
            )
            applied_now.append(name)
            log.info("applied migration %s", name)
    return applied_now
