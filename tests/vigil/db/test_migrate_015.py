"""An upgrade to absent values keeps the readings stored before it, each with its value."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from ingest.partitions import ensure_days
from tests.builders import schema_before
from vigil.db.migrate import migrate

pytestmark = pytest.mark.services
INSERT = (
    "INSERT INTO observation (patient, metric, effective, value, flags, device, gateway, seq)"
    " VALUES ('p1', 2, %s, %s, %s, 'd', 'g', 0)"
)


def test_readings_stored_before_keep_their_values(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        schema_before(conn, 15)
        ensure_days(conn, date(2026, 1, 1), date(2026, 1, 2))
        conn.execute(INSERT, ("2026-01-01T10:00:00Z", 97.0, 0xFFFF))  # any flags went before
        assert "015_absent_values.sql" in migrate(conn)
        conn.execute(INSERT, ("2026-01-01T10:00:01Z", None, 128 | 16))
        stored = conn.execute("SELECT value, flags FROM observation ORDER BY effective").fetchall()
    assert stored == [(97.0, 0xFFFF), (None, 144)]
