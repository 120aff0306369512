"""An upgrade to the device registry knows what the platform knew before: the patients of
readings, assignments and care teams, each device whose assignment or latest readings say,
and the gateways."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from ingest.partitions import ensure_days
from tests.builders import schema_before
from vigil.db.migrate import migrate

pytestmark = pytest.mark.services


def at(hour: int, day: int = 1) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def test_the_registry_is_filled_from_what_was_stored(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        schema_before(conn, 13)
        ensure_days(conn, date(2026, 1, 1), date(2026, 1, 2))
        conn.execute("INSERT INTO gateway (id, enrolled) VALUES ('gw-1', %s)", (at(8),))
        conn.execute("INSERT INTO care_team (id) VALUES ('ward')")
        conn.execute("INSERT INTO patient_team VALUES ('p-team', 'ward')")
        conn.execute(
            "INSERT INTO device_assignment (device, patient, gateway, assigned) VALUES"
            " ('D1', 'pa', 'gw-1', %s), ('D9', 'p-new', 'gw-1', %s)",
            (at(9), at(9)),
        )
        rows = [
            ("pa", at(10), "d1", "gw-1"),  # the gateway reports the case it likes
            ("pz", at(11), "d1", "gw-1"),  # read under another patient in the open mode
            ("pb", at(10), "D2", "gw-x"),
            ("pb", at(12, day=2), "D2", "gw-y"),  # moved to another gateway: the latest counts
        ]
        for patient, effective, device, gateway in rows:
            conn.execute(
                "INSERT INTO observation (patient, metric, effective, value, device, gateway, seq)"
                " VALUES (%s, 1, %s, 70, %s, %s, 1)",
                (patient, effective, device, gateway),
            )
        assert migrate(conn)[0] == "013_devices.sql"
        devices = conn.execute(
            "SELECT id, patient, gateway, version, updated, seen FROM device ORDER BY upper(id)"
        ).fetchall()
        patients = conn.execute("SELECT id, first_seen FROM patient ORDER BY id").fetchall()
        gateways = conn.execute(
            "SELECT gateway, state, seen FROM gateway_state ORDER BY gateway"
        ).fetchall()
        versions = conn.execute(
            "SELECT device, version, patient, valid_from, valid_until FROM device_version"
            " ORDER BY upper(device)"
        ).fetchall()
    assert devices == [
        # the assignment is the truth of whose it is; its gateway the one that last read it
        ("d1", "pa", "gw-1", 1, at(11), at(11)),
        ("D2", "pb", "gw-y", 1, at(12, day=2), at(12, day=2)),
        ("D9", "p-new", "gw-1", 1, at(9), at(9)),  # assigned, never read
    ]
    assert versions == [(d, 1, p, updated, None) for d, p, _, _, updated, _ in devices]
    known = {p for p, _ in patients}
    assert known == {"pa", "pb", "pz", "p-new", "p-team"}
    assert ("pa", at(9)) in patients  # assigned before its first reading
    assert gateways == [
        ("gw-1", "unknown", at(11)),
        ("gw-x", "unknown", at(10)),
        ("gw-y", "unknown", at(12, day=2)),
    ]
