"""What analytics scores: only what a gateway may send, by the enrollment it reads over a
connection of its own, which it keeps through a database outage (with the last view) and
opens again when the database is back."""

from __future__ import annotations

import logging
from dataclasses import replace

import psycopg
import pytest

from analytics import admission as module
from analytics.admission import Admission
from tests.builders import T0, batch
from vigil.embedded.processes import free_port
from vigil.wire.batch import Batch

A_DEVICE, B_DEVICE = "C1:00:00:00:00:01", "B2:00:00:00:00:01"  # A_DEVICE: the builders'
ROWS = [("pa", "spo2", T0, 95.0), ("pa", "spo2", T0 + 1000, 96.0)]


def enroll(url: str, gateway: str, device: str, patient: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO gateway (id) VALUES (%s)", (gateway,))
        conn.execute(
            "INSERT INTO device_assignment (device, gateway, patient) VALUES (%s, %s, %s)",
            (device, gateway, patient),
        )


def of(gateway: str, device: str, rows: list[tuple[str, str, int, float]] = ROWS) -> Batch:
    return replace(batch(gateway, rows=rows), device=(device,) * len(rows))


def refuse(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the database was asked again before RETRY_S")


def unreachable() -> str:
    return f"postgresql://127.0.0.1:{free_port()}/vigil"


@pytest.mark.services
def test_only_what_a_gateway_may_send_is_scored(database_url: str) -> None:
    enroll(database_url, "gw-a", A_DEVICE, "pa")
    enroll(database_url, "gw-b", B_DEVICE, "pb")
    admission = Admission("auto", database_url)
    admission.start()
    try:
        genuine = of("gw-a", A_DEVICE, [*ROWS, ("pb", "spo2", T0, 90.0)])  # the last: not gw-a's
        admitted = admission.admit(
            [of("gw-b", B_DEVICE), of("gw-b", A_DEVICE), of("gw-x", A_DEVICE), genuine]
        )
    finally:
        admission.close()
    assert [(b.gateway, b.patient) for b in admitted.batches] == [("gw-a", ("pa", "pa"))]
    assert (admitted.not_enrolled, admitted.unassigned) == (1, 5)


@pytest.mark.services
def test_an_outage_keeps_the_last_view_and_the_connection_comes_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    enroll(database_url, "gw-a", A_DEVICE, "pa")
    admission = Admission("auto", database_url)
    admission.start()
    forged, genuine = of("gw-b", A_DEVICE), of("gw-a", A_DEVICE)
    try:
        assert admission._conn is not None
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (admission._conn.info.backend_pid,))
        assert admission.enrollment.read_at is not None
        admission.enrollment.read_at -= 3600  # due: the next batches make it read whole
        with caplog.at_level(logging.WARNING):
            admitted = admission.admit([forged, genuine])
        assert "cannot read the enrollment" in caplog.text and "keeping the view" in caplog.text
        assert admitted.batches == [genuine] and admitted.not_enrolled == 1, "the last view"
        assert admission._conn is None

        admission.database_url = unreachable()  # the database still away: not asked again
        monkeypatch.setattr(module.psycopg, "connect", refuse)  # until RETRY_S has passed
        assert admission.admit([genuine]).batches == [genuine]
        monkeypatch.undo()

        admission.database_url = database_url
        admission._retry_at = 0.0  # RETRY_S later
        enroll(database_url, "gw-b", B_DEVICE, "pb")
        own = of("gw-b", B_DEVICE, [("pb", "spo2", T0, 95.0)])
        with caplog.at_level(logging.INFO):
            assert admission.admit([own]).batches == [own], "read whole: enrolled meanwhile"
        assert "the enrollment is read again" in caplog.text
        assert admission._conn is not None and not admission._conn.closed
    finally:
        admission.close()


@pytest.mark.parametrize(("mode", "scored"), [("auto", 1), ("on", 0)])
def test_a_database_unreachable_at_start_is_no_crash(
    mode: str, scored: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Until the view is read once, ``auto`` scores what comes (as with nothing enrolled)
    and ``on`` nothing."""
    admission = Admission(mode, unreachable())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        admission.start()
    assert "cannot read the enrollment" in caplog.text
    admitted = admission.admit([of("gw-a", A_DEVICE)])
    assert len(admitted.batches) == scored and admitted.not_enrolled == 1 - scored


def test_on_needs_a_database_and_off_asks_none(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="VIGIL_DATABASE_URL is not set"):
        Admission("on", None)
    admission = Admission("off", unreachable())
    with caplog.at_level(logging.WARNING):
        admission.start()
    assert "readings from ANY gateway are scored" in caplog.text
    anyone = of("gw-x", A_DEVICE)
    assert admission.admit([anyone]).batches == [anyone] and admission._conn is None


@pytest.mark.services
def test_a_patients_inbox_is_where_the_enrollment_puts_them(database_url: str) -> None:
    enroll(database_url, "gw-a", A_DEVICE, "pa")
    enroll(database_url, "gw-b", B_DEVICE, "pb")
    admission = Admission("auto", database_url)
    admission.start()
    try:
        assert admission.gateways_of("pa") == {"gw-a"}
        with psycopg.connect(database_url, autocommit=True) as conn:  # pa moves to gw-b's home
            conn.execute(
                "UPDATE device_assignment SET gateway = 'gw-b' WHERE device = %s", (A_DEVICE,)
            )
        admission.admit([of("gw-b", A_DEVICE)])  # the move is seen with the first batch
        assert admission.gateways_of("pa") == {"gw-b"}
        assert admission.gateways_of("nobody") == set()
    finally:
        admission.close()
    assert Admission("off", database_url).gateways_of("pa") is None
