"""The enrollment view ingest and analytics share: the triple test, when it is enforced, and
how the view follows `vigil enroll` (at once for what it has not seen, within a minute for
a withdrawal) without ever being left half read."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from tests.builders import T0, batch
from vigil.db import enrollment
from vigil.db.enrollment import EnrollmentView

A_DEVICE, B_DEVICE = "C1:00:00:00:00:01", "B2:00:00:00:00:01"  # A_DEVICE: the builders'
ROWS = [("pa", "spo2", T0, 95.0), ("pa", "spo2", T0 + 1000, 96.0)]
ASSIGNED = {A_DEVICE: ("gw-a", "pa"), B_DEVICE: ("gw-b", "pb")}


def test_only_the_assigned_triple_passes() -> None:
    assert enrollment.unassigned(batch("gw-a", rows=ROWS), ASSIGNED).tolist() == [False, False]
    # gw-a's patient from gw-b, under gw-a's device and under gw-b's own:
    assert enrollment.unassigned(batch("gw-b", rows=ROWS), ASSIGNED).tolist() == [True, True]
    own_device = replace(batch("gw-b", rows=ROWS), device=(B_DEVICE, B_DEVICE))
    assert enrollment.unassigned(own_device, ASSIGNED).tolist() == [True, True]
    mixed = batch("gw-a", rows=[ROWS[0], ("pb", "spo2", T0, 90.0)])  # one of two is gw-a's
    assert enrollment.unassigned(mixed, ASSIGNED).tolist() == [False, True]
    assert enrollment.unassigned(batch("gw-a", rows=ROWS), {}).tolist() == [True, True]
    legacy = {A_DEVICE: (None, "pa")}  # assigned before gateways were part of it
    assert enrollment.unassigned(batch("gw-a", rows=ROWS), legacy).tolist() == [True, True]
    assert enrollment.unassigned(batch("gw-a", rows=[]), ASSIGNED).tolist() == []
    lower = replace(batch("gw-a", rows=ROWS), device=(A_DEVICE.lower(),) * 2)
    assert enrollment.unassigned(lower, ASSIGNED).tolist() == [False, False]  # the same device


@pytest.mark.parametrize(
    ("mode", "gateways", "enforcing"),
    [
        ("auto", set(), False),  # nothing enrolled yet: anyone
        ("auto", {"gw-a"}, True),
        ("on", set(), True),  # nothing enrolled: no one
        ("off", {"gw-a"}, False),  # the demo's open mode, whatever is enrolled
    ],
)
def test_enforcing_follows_the_mode(
    mode: enrollment.Mode, gateways: set[str], enforcing: bool
) -> None:
    view = EnrollmentView(mode)
    view.gateways, view.assignments = gateways, dict(ASSIGNED)
    assert view.enforcing is enforcing
    assert view.enrolled("gw-x") is not enforcing
    forged = view.unassigned(batch("gw-b", rows=ROWS))
    if enforcing:
        assert forged is not None and forged.tolist() == [True, True]
    else:
        assert forged is None


def enroll(conn: psycopg.Connection, gateway: str, *devices: tuple[str, str]) -> None:
    conn.execute("INSERT INTO gateway (id) VALUES (%s) ON CONFLICT DO NOTHING", (gateway,))
    for device, patient in devices:
        conn.execute(
            "INSERT INTO device_assignment (device, gateway, patient) VALUES (%s, %s, %s)"
            " ON CONFLICT (device) DO UPDATE SET gateway = excluded.gateway,"
            " patient = excluded.patient",
            (device, gateway, patient),
        )


@pytest.mark.services
def test_the_reads(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        enroll(conn, "gw-a", (A_DEVICE, "pa"))
        enroll(conn, "gw-b", (B_DEVICE, "pb"))
        assert enrollment.gateways(conn) == {"gw-a", "gw-b"}
        assert enrollment.gateways(conn, ["gw-b", "gw-x"]) == {"gw-b"}
        assert enrollment.assignments(conn) == ASSIGNED
        assert enrollment.assignments(conn, [B_DEVICE, "X"]) == {B_DEVICE: ("gw-b", "pb")}


@pytest.mark.services
def test_the_first_enrollment_is_enforced_from_the_next_refresh(database_url: str) -> None:
    view = EnrollmentView("auto")
    with psycopg.connect(database_url, autocommit=True) as conn:
        view.read(conn)
        assert not view.enforcing and view.read_at is not None
        assert view.refresh(conn, [batch("gw-a", rows=ROWS)]) is False  # nothing enrolled yet
        enroll(conn, "gw-a", (A_DEVICE, "pa"))
        assert view.refresh(conn, [batch("gw-a", rows=ROWS)]) is True  # read whole again
        assert view.refresh(conn, [batch("gw-a", rows=ROWS)]) is False  # began only once
        assert view.enforcing and view.assignments == {A_DEVICE: ("gw-a", "pa")}


@pytest.mark.services
def test_what_the_view_has_not_seen_is_asked_about_at_once_a_withdrawal_within_a_minute(
    database_url: str,
) -> None:
    view = EnrollmentView("on")
    with psycopg.connect(database_url, autocommit=True) as conn:
        enroll(conn, "gw-a", (A_DEVICE, "pa"))
        view.read(conn)
        read_at = view.read_at
        enroll(conn, "gw-b", (B_DEVICE, "pb"))
        enroll(conn, "gw-a", ("C1:00:00:00:00:02", "pa2"))
        on_b = replace(batch("gw-b", rows=[("pb", "spo2", T0, 95.0)]), device=(B_DEVICE,))
        new_device = replace(
            batch("gw-a", rows=[("pa2", "spo2", T0, 95.0)]), device=("C1:00:00:00:00:02",)
        )
        view.refresh(conn, [on_b, new_device])
        assert view.read_at == read_at, "asked about, not read whole"
        assert view.gateways == {"gw-a", "gw-b"}
        assert enrollment.unassigned(on_b, view.assignments).tolist() == [False]
        assert enrollment.unassigned(new_device, view.assignments).tolist() == [False]

        conn.execute("DELETE FROM gateway WHERE id = 'gw-b'")  # withdrawn, devices with it
        view.refresh(conn, [on_b])
        assert view.enrolled("gw-b"), "a withdrawal waits for the minute's read"
        assert view.read_at is not None
        view.read_at -= enrollment.EVERY_S
        view.refresh(conn, [on_b])
        assert not view.enrolled("gw-b") and B_DEVICE not in view.assignments


@pytest.mark.services
def test_a_failed_read_leaves_the_view_as_it_was(database_url: str) -> None:
    view = EnrollmentView("auto")
    with psycopg.connect(database_url, autocommit=True) as conn:
        enroll(conn, "gw-a", (A_DEVICE, "pa"))
        view.read(conn)
    assert view.read_at is not None
    view.read_at -= enrollment.EVERY_S  # due: the next refresh reads whole
    before = (set(view.gateways), dict(view.assignments), view.read_at)
    with pytest.raises(psycopg.OperationalError):
        view.refresh(conn, [batch("gw-a", rows=ROWS)])  # the connection is closed
    assert (view.gateways, view.assignments, view.read_at) == before
    assert view.enforcing


def test_off_never_asks() -> None:
    view = EnrollmentView("off")
    assert view.refresh(None, [batch("gw-x")]) is False  # type: ignore[arg-type]
    assert view.read_at is None and view.enrolled("gw-x") and view.unassigned(batch()) is None
