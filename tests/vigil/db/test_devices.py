"""The device registry's history is the table's own (migration 013): whoever writes a device,
a change of what it is or whose it is makes a version, and its condition does not."""

from __future__ import annotations

import psycopg
import pytest

from alerts.teams import add_team, assign
from ingest import enrollment

pytestmark = pytest.mark.services


def versions(conn: psycopg.Connection, device: str) -> list[tuple]:
    return conn.execute(
        "SELECT version, patient, gateway, valid_from, valid_until FROM device_version"
        " WHERE device = %s ORDER BY version",
        (device,),
    ).fetchall()


def test_a_device_moving_to_another_patient_has_two_versions_that_meet(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO device (id, patient, gateway) VALUES ('D1', 'pa', 'gw-1')")
        conn.execute("UPDATE device SET patient = 'pb' WHERE id = 'D1'")
        first, second = versions(conn, "D1")
        current = conn.execute("SELECT version, updated FROM device WHERE id = 'D1'").fetchone()
    assert first[:3] == (1, "pa", "gw-1") and second[:3] == (2, "pb", "gw-1")
    assert first[4] == second[3]  # one period ends where the next begins
    assert second[4] is None  # the current one is open
    assert first[3] < second[3]
    assert current == (2, second[3])


def test_battery_state_and_seen_change_in_place(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO device (id, patient) VALUES ('D1', 'pa')")
        (updated,) = conn.execute("SELECT updated FROM device").fetchone()  # type: ignore[misc]
        conn.execute("UPDATE device SET battery = 80, state = 'connected', seen = now()")
        conn.execute("UPDATE device SET battery = 79")
        row = conn.execute("SELECT version, updated, battery FROM device").fetchone()
        assert len(versions(conn, "D1")) == 1
    assert row == (1, updated, 79)


def test_every_identity_field_makes_a_version_and_writers_cannot_choose_it(
    database_url: str,
) -> None:
    fields = ["kind", "manufacturer", "model", "serial", "firmware", "location", "gateway"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO device (id, version) VALUES ('D1', 7)")
        for field in fields:
            conn.execute(f"UPDATE device SET {field} = 'x-' || '{field}', version = 99")
        conn.execute("UPDATE device SET firmware = NULL")  # a field that is no longer said
        found = versions(conn, "D1")
        (version,) = conn.execute("SELECT version FROM device").fetchone()  # type: ignore[misc]
        (kind, serial) = conn.execute(
            "SELECT kind, serial FROM device_version WHERE device = 'D1' AND version = 9"
        ).fetchone()  # type: ignore[misc]
    assert [v[0] for v in found] == list(range(1, 10)) and version == 9
    assert (kind, serial) == ("x-kind", "x-serial")
    assert all(v[4] is not None for v in found[:-1])


def test_assigning_moves_the_device_and_registers_the_patient(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        # What the gateway first reported, in its own case.
        conn.execute("INSERT INTO device (id, patient, gateway) VALUES ('c1:aa', 'pa', 'gw-1')")
        enrollment.enroll(conn, "gw-2")
        enrollment.assign(conn, "gw-2", [("C1:AA", "pb")])
        moved = conn.execute("SELECT id, patient, gateway, version FROM device").fetchall()
        patients = {p for (p,) in conn.execute("SELECT id FROM patient")}
        enrollment.withdraw(conn, "C1:AA")
        withdrawn = conn.execute("SELECT patient, version FROM device").fetchone()
    assert moved == [("c1:aa", "pb", "gw-2", 2)]  # one device, whatever the case
    assert patients == {"pb"}
    assert withdrawn == (None, 3)


def test_withdrawing_a_gateway_leaves_its_devices_nobodys(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        enrollment.enroll(conn, "gw-1")
        enrollment.assign(conn, "gw-1", [("D1", "pa"), ("D2", "pb")])
        enrollment.withdraw(conn, "gw-1")
        rows = conn.execute("SELECT id, patient FROM device ORDER BY id").fetchall()
    assert rows == [("D1", None), ("D2", None)]


def test_a_patient_on_a_care_team_is_a_patient(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_team(conn, "ward-a")
        assign(conn, "p0001", "ward-a")
        rows = conn.execute("SELECT id, name, active FROM patient").fetchall()
    assert rows == [("p0001", None, True)]


def test_device_ids_are_one_whatever_the_case(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO device (id) VALUES ('c1:aa')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO device (id) VALUES ('C1:AA')")
