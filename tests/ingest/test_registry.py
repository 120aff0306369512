"""Ingest keeps the device and patient registry current: from the readings it commits, and
from the gateways' retained reports, as far as enrollment lets each gateway speak."""

from __future__ import annotations

import logging
from dataclasses import replace

import psycopg
import pytest

from ingest import enrollment, registry, writer
from ingest.registry import Registry
from tests.builders import T0, batch
from vigil.db.enrollment import EnrollmentView, Mode
from vigil.wire.batch import Batch
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics

pytestmark = pytest.mark.services
DEVICE = "C1:00:00:00:00:01"  # the builders' device

STRAP = DeviceReport(
    address=DEVICE,
    patient="p0001",
    state="connected",
    kind="heart-rate-strap",
    battery=90,
    manufacturer="Polar Electro Oy",
    model="H10",
    serial="A1B2C3",
    firmware="3.1.1",
    location="chest",
)

STRAP_IS = (DEVICE, "p0001", "gw-1", "heart-rate-strap", "Polar Electro Oy", "H10", "A1B2C3",
            "3.1.1", "chest")  # fmt: skip
"""The strap's row in `device` as its report makes it, up to its state, battery and version."""


def devices(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT id, patient, gateway, kind, manufacturer, model, serial, firmware, location,"
        " state, battery, version FROM device ORDER BY id"
    ).fetchall()


def patients(conn: psycopg.Connection) -> set[str]:
    return {p for (p,) in conn.execute("SELECT id FROM patient")}


def commit_readings(
    conn: psycopg.Connection, reg: Registry, *batches: Batch, trusted: bool = True
) -> None:
    """What ingest does with a flush: the rows, then the registry, in one transaction."""
    with conn.transaction():
        writer.store(conn, list(batches))
        recorded = reg.record_readings(conn, list(batches), trusted)
    reg.remember(recorded)


def report(
    conn: psycopg.Connection,
    reg: Registry,
    view: EnrollmentView,
    gateway: str,
    *what: GatewayStatus | list[DeviceReport] | bytes,
) -> None:
    """The gateway's reports (a status, its devices, or a payload as it is) as they come."""
    topics = Topics(gateway)
    messages = [
        (topics.status, w.encode())
        if isinstance(w, GatewayStatus)
        else (topics.devices, w if isinstance(w, bytes) else GatewayDevices(tuple(w)).encode())
        for w in what
    ]
    reg.record_reports(conn, messages, view)


def view_of(conn: psycopg.Connection, mode: Mode) -> EnrollmentView:
    view = EnrollmentView(mode)
    view.read(conn)
    return view


def test_readings_register_their_devices_and_patients(database_url: str) -> None:
    reg = Registry()
    two = batch("gw-1", 0, [("p0001", "heart_rate", T0, 70.0), ("p0002", "spo2", T0, 97.0)])
    two = replace(two, device=("C1:00:00:00:00:01", "c2:00:00:00:00:02"))
    with psycopg.connect(database_url) as conn:
        commit_readings(conn, reg, two)
        found = conn.execute("SELECT id, patient, gateway, kind, version FROM device ORDER BY id")
        assert found.fetchall() == [
            ("C1:00:00:00:00:01", "p0001", "gw-1", "unknown", 1),
            ("c2:00:00:00:00:02", "p0002", "gw-1", "unknown", 1),  # the case it came in
        ]
        assert patients(conn) == {"p0001", "p0002"}
        # The strap moves to another patient and is read through another gateway.
        moved = batch("gw-2", 0, [("p0003", "heart_rate", T0 + 1000, 71.0)])
        commit_readings(conn, reg, moved)
        assert conn.execute(
            "SELECT patient, gateway, version FROM device WHERE id = %s", (DEVICE,)
        ).fetchone() == ("p0003", "gw-2", 2)
        assert patients(conn) == {"p0001", "p0002", "p0003"}


def test_a_device_known_is_written_again_only_when_its_minute_is_up(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = Registry()
    with psycopg.connect(database_url) as conn:
        commit_readings(conn, reg, batch("gw-1", 0))
        conn.execute("DELETE FROM device")
        conn.execute("DELETE FROM patient")
        conn.commit()
        commit_readings(conn, reg, batch("gw-1", 1, [("p0001", "spo2", T0 + 1000, 96.0)]))
        assert devices(conn) == [] and patients(conn) == set()  # remembered: not a statement
        monkeypatch.setattr(registry, "SEEN_EVERY_S", 0.0)
        commit_readings(conn, reg, batch("gw-1", 2, [("p0001", "spo2", T0 + 2000, 96.0)]))
        assert [d[:3] for d in devices(conn)] == [(DEVICE, "p0001", "gw-1")]


def test_nothing_is_remembered_of_a_transaction_rolled_back(database_url: str) -> None:
    reg = Registry()
    with psycopg.connect(database_url) as conn:
        with pytest.raises(ZeroDivisionError), conn.transaction():
            reg.record_readings(conn, [batch("gw-1", 0)], True)
            raise ZeroDivisionError  # the flush failed after the registry's statement
        commit_readings(conn, reg, batch("gw-1", 0))
        assert [d[:3] for d in devices(conn)] == [(DEVICE, "p0001", "gw-1")]


def test_an_assignment_says_whose_a_device_is_whatever_the_readings_say(
    database_url: str,
) -> None:
    reg = Registry()
    with psycopg.connect(database_url) as conn:
        enrollment.enroll(conn, "gw-1")
        enrollment.assign(conn, "gw-1", [(DEVICE, "p0001")])
        conn.commit()
        # Open mode: stored under the patient the gateway named, but the device stays p0001's.
        commit_readings(conn, reg, batch("gw-1", 0, [("p0009", "spo2", T0, 96.0)]))
        assert conn.execute("SELECT patient FROM device").fetchone() == ("p0001",)
        assert "p0009" in patients(conn)  # the Observation's subject resolves


def test_reports_say_what_each_device_is(database_url: str) -> None:
    reg = Registry()
    with psycopg.connect(database_url) as conn:
        view = view_of(conn, "auto")  # nothing enrolled: every gateway is heard
        status = GatewayStatus("gw-1", Presence.ONLINE, version="0.9.0")
        report(conn, reg, view, "gw-1", status, [STRAP])
        assert devices(conn) == [(*STRAP_IS, "connected", 90, 1)]
        # The battery runs down: no version. Then the will, and a report from before the
        # device was connected again, which says nothing of what it is.
        report(conn, reg, view, "gw-1", [replace(STRAP, battery=80)])
        report(conn, reg, view, "gw-1", GatewayStatus("gw-1", Presence.OFFLINE))
        searching = DeviceReport(address=DEVICE, patient="p0001", state="searching")
        report(conn, reg, view, "gw-1", [searching])
        assert devices(conn) == [(*STRAP_IS, "searching", 80, 1)]
        assert conn.execute("SELECT gateway, state, software FROM gateway_state").fetchall() == [
            ("gw-1", "offline", "0.9.0")
        ]
        # New firmware is a new version of the device.
        report(conn, reg, view, "gw-1", [replace(STRAP, firmware="3.2.0")])
        assert devices(conn)[0][7:] == ("3.2.0", "chest", "connected", 90, 2)


def test_enforced_enrollment_hears_only_enrolled_gateways_about_their_own_devices(
    database_url: str,
) -> None:
    reg = Registry()
    oximeter = replace(STRAP, address="C2:00:00:00:00:02", kind="pulse-oximeter", patient="p2")
    with psycopg.connect(database_url) as conn:
        enrollment.enroll(conn, "gw-1")
        enrollment.assign(conn, "gw-1", [(DEVICE, "p0001")])
        conn.commit()
        view = view_of(conn, "auto")
        enrollment.enroll(conn, "gw-2")  # enrolled after the view was read: heard at once
        conn.commit()
        # A stranger, and an enrolled gateway naming gw-1's device under another patient.
        report(conn, reg, view, "gw-x", GatewayStatus("gw-x", Presence.ONLINE), [oximeter])
        report(conn, reg, view, "gw-2", GatewayStatus("gw-2", Presence.ONLINE))
        report(conn, reg, view, "gw-2", [replace(STRAP, patient="p0002", serial="FAKE")])
        # An unassigned device of an enrolled gateway is nobody's on the platform.
        report(conn, reg, view, "gw-2", [oximeter])
        found = conn.execute("SELECT id, patient, gateway, serial, version FROM device ORDER BY id")
        assert found.fetchall() == [
            (DEVICE, "p0001", "gw-1", None, 1),
            ("C2:00:00:00:00:02", None, "gw-2", "A1B2C3", 1),
        ]
        assert patients(conn) == {"p0001"}
        states = conn.execute("SELECT gateway FROM gateway_state ORDER BY gateway").fetchall()
        assert states == [("gw-2",)]
        # Its own gateway is heard about it.
        report(conn, reg, view, "gw-1", [STRAP])
        assert conn.execute(
            "SELECT patient, gateway, serial FROM device WHERE id = %s", (DEVICE,)
        ).fetchone() == ("p0001", "gw-1", "A1B2C3")


def test_a_malformed_report_is_dropped_with_a_warning_that_quotes_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reg = Registry()
    bad = b'[{"address": "C1:00:00:00:00:01", "patient": "Jane Doe", "state": "connected"}]'
    with psycopg.connect(database_url) as conn:
        view = view_of(conn, "off")
        with caplog.at_level(logging.INFO):
            report(conn, reg, view, "gw-1", bad, GatewayStatus("gw-2", Presence.ONLINE))
            report(conn, reg, view, "gw-1", [STRAP])  # and the next one is taken
        assert [d[:2] for d in devices(conn)] == [(DEVICE, "p0001")]
        assert conn.execute("SELECT count(*) FROM gateway_state").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM dead_letter").fetchone() == (0,)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert warnings == [
        "dropping a malformed report on vigil/v1/gw/gw-1/devices (devices[0].patient)",
        "dropping a malformed report on vigil/v1/gw/gw-1/status (gateway)",
    ]


def test_only_a_gateways_status_and_devices_are_reports() -> None:
    assert registry.is_report("vigil/v1/gw/gw-1/status")
    assert registry.is_report("vigil/v1/gw/gw-1/devices")
    assert not registry.is_report("vigil/v1/gw/gw-1/readings")
    assert not registry.is_report("vigil/v1/svc/vigil-ingest/status")
