"""What ingest may store: enrollment enforced once anything is enrolled (or always, or, in
the demo's open mode, never), and batches that cannot be their gateway's own refused whole,
so that their seq is never recorded."""

from __future__ import annotations

import logging
from dataclasses import replace

import psycopg
import pytest

from ingest import enrollment
from ingest.admission import EMPTY, Admission
from tests.builders import T0, batch
from vigil.wire.batch import Batch

pytestmark = pytest.mark.services
NOW = T0 + 60_000
DEVICE = "C1:00:00:00:00:01"  # the builders' device


def admit(conn: psycopg.Connection, admission: Admission, *batches: Batch) -> tuple[list, list]:
    good, bad = admission.admit(conn, [(i, b) for i, b in enumerate(batches)], NOW)
    return [(i, len(b)) for i, b in good], bad


def test_auto_enforces_from_the_first_enrollment_on(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    admission = Admission("auto", 0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        with caplog.at_level(logging.WARNING):
            admission.start(conn)
        assert "no gateway is enrolled" in caplog.text
        assert admit(conn, admission, batch("gw-1")) == ([(0, 2)], [])  # anyone, for now
        enrollment.enroll(conn, "gw-2")
        enrollment.assign(conn, "gw-2", [(DEVICE, "p0001")])
        good, bad = admit(conn, admission, batch("gw-1"), batch("gw-2"))
    assert good == [(1, 2)]
    assert bad == [(0, "gateway: 'gw-1' is not enrolled (`vigil enroll gw-1`)")]


def test_off_stores_what_anyone_says_and_says_so_loudly(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    admission = Admission("off", 0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        enrollment.enroll(conn, "gw-2")
        with caplog.at_level(logging.WARNING):
            admission.start(conn)
        assert admit(conn, admission, batch("gw-1")) == ([(0, 2)], [])
    assert "readings from ANY gateway are stored" in caplog.text


def test_on_refuses_everything_while_nothing_is_enrolled(database_url: str) -> None:
    admission = Admission("on", 0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        admission.start(conn)
        good, bad = admit(conn, admission, batch("gw-1"))
    assert good == [] and bad == [(0, "gateway: 'gw-1' is not enrolled (`vigil enroll gw-1`)")]


def test_batches_that_cannot_be_their_gateways_own_are_refused_whole(database_url: str) -> None:
    admission = Admission("auto", 0)
    rows = [("p0001", "spo2", T0, 95.0), ("p0001", "spo2", T0 + 1000, 96.0)]
    implausible = [("p0001", "spo2", T0, 140.0)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for gateway, device in (("gw-a", DEVICE), ("gw-b", "C1:00:00:00:00:02")):
            enrollment.enroll(conn, gateway)
            enrollment.assign(conn, gateway, [(device, "p0001" if gateway == "gw-a" else "pb")])
        admission.start(conn)
        good, bad = admit(
            conn,
            admission,
            batch("gw-a", 0, []),  # empty
            batch("gw-b", 0, rows),  # gw-a's patient and device, from gw-b
            replace(batch("gw-b", 1, rows[:1]), device=("C1:00:00:00:00:02",)),  # gw-b's device
            batch("gw-a", 1, [*rows[:1], ("p0002", "spo2", T0, 90.0)]),  # one of two is gw-a's
            batch("gw-a", 2, implausible),  # gw-a's own, though refused: keeps its seq
        )
    assert good == [(3, 1), (4, 0)]
    assert [i for i, _ in bad] == [0, 1, 2, 3, 4]
    assert bad[0][1] == EMPTY
    assert bad[1][1].startswith("2 of 2 readings refused: reading 0 (device C1:00:00:00:00:01")
    assert bad[2][1].endswith("(device C1:00:00:00:00:02 is not assigned to p0001 on gw-b)")
