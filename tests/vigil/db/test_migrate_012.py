"""An upgrade to gateway-bound assignments keeps storing what was stored before: each device
assigned earlier is put on the enrolled gateway that last brought its patient's readings."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from ingest.partitions import ensure_days
from tests.builders import schema_before
from vigil.db.migrate import migrate

pytestmark = pytest.mark.services


def test_devices_assigned_before_get_the_gateway_that_last_brought_them(
    empty_database_url: str,
) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        schema_before(conn, 12)
        ensure_days(conn, date(2026, 1, 1), date(2026, 1, 2))
        conn.execute("INSERT INTO gateway (id) VALUES ('gw-old'), ('gw-new')")
        conn.execute(
            "INSERT INTO device_assignment (device, patient) VALUES"
            " ('D1', 'pa'), ('D2', 'pb'), ('D3', 'pc'), ('D4', 'pd')"
        )
        conn.execute(
            "INSERT INTO observation (patient, metric, effective, value, device, gateway, seq)"
            " VALUES ('pa', 1, '2026-01-01T10:00Z', 70, 'D1', 'gw-old', 1),"
            " ('pa', 1, '2026-01-02T10:00Z', 71, 'D1', 'gw-new', 1),"  # moved: the latest wins
            " ('pb', 1, '2026-01-01T10:00Z', 72, 'D2', 'gw-gone', 1),"  # not enrolled
            " ('pz', 1, '2026-01-01T10:00Z', 73, 'D3', 'gw-old', 2)"  # another patient's
        )
        assert migrate(conn)[0] == "012_gateway_credentials.sql"
        rows = conn.execute(
            "SELECT device, gateway FROM device_assignment ORDER BY device"
        ).fetchall()
    assert rows == [("D1", "gw-new"), ("D2", None), ("D3", None), ("D4", None)]
