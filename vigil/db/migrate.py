"""Schema migrations: numbered plain SQL files applied in order, recorded in
``schema_migration``. An advisory lock lets several services start at once against a fresh
database without racing.

Where the schema differs with TimescaleDB, a migration ships a variant,
``NNN_name.timescaledb.sql``, applied instead of ``NNN_name.sql`` when the database can
``CREATE EXTENSION timescaledb`` (installed and preloaded). The choice is made once, when
that migration is applied, and recorded by the file name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)
_LOCK_KEY = 0x56494749  # 'VIGI'


_VARIANT = ".timescaledb.sql"


def available(timescaledb: bool = False) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped with the package, with the
    TimescaleDB variants where there are some and ``timescaledb`` is asked for."""
    found: dict[int, tuple[int, str, str]] = {}
    for entry in sorted((Path(__file__).parent / "migrations").glob("*.sql")):
        version = int(entry.name.split("_", 1)[0])
        variant = entry.name.endswith(_VARIANT)
        if variant == timescaledb or (not variant and version not in found):
            found[version] = (version, entry.name, entry.read_text())
    return sorted(found.values())


def _timescaledb(conn: psycopg.Connection) -> bool:
    """Whether TimescaleDB can be used here: installed and preloaded. Installed but not in
    ``shared_preload_libraries``, ``CREATE EXTENSION`` would make the server close the
    connection (a traceback at every service's start); so that is asked first, and the
    answer is native partitions, with a warning that says how to have TimescaleDB instead."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " 'timescaledb' = ANY(string_to_array(replace("
        "current_setting('shared_preload_libraries'), ' ', ''), ','))"
    ).fetchone()
    installed, preloaded = row if row else (False, False)
    if installed and not preloaded:
        log.warning(
            "TimescaleDB is installed in this PostgreSQL but not preloaded: storing in native "
            "partitions. For TimescaleDB, add shared_preload_libraries = 'timescaledb' to "
            "postgresql.conf, restart PostgreSQL and migrate a new database (the choice is "
            "made once, at the first migration)"
        )
        return False
    if not installed:
        return False
    try:
        with conn.transaction():  # a savepoint: a refusal leaves the migration going
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return True
    except psycopg.Error:
        return False


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
        with_variants = {v for v, name, _ in available(True) if name.endswith(_VARIANT)}
        choose = bool(with_variants - done) and _timescaledb(conn)
        pending = [m for m in available(choose) if m[0] not in done]
        for version, name, sql in pending:
            conn.execute(sql.encode())
            conn.execute(
                "INSERT INTO schema_migration (version, name) VALUES (%s, %s)", (version, name)
            )
            applied_now.append(name)
            log.info("applied migration %s", name)
    return applied_now
