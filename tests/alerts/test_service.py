"""`vigil alerts` as a process against a real broker, database and HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.teams import add_member, add_team, assign
from tests.alerts.receiver import SECRET, Receiver
from tests.alerts.test_admins import closed_port
from tests.alerts.test_store import event
from tests.e2e.harness import ServiceProcess, publish, wait_for
from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings
from vigil.wire.topics import Topics, patient_events

pytestmark = [pytest.mark.slow, pytest.mark.services]


def alerts_process(settings: Settings, receiver: Receiver, log: Path) -> ServiceProcess:
    client_id = f"alerts-{settings.gateway_id}"
    env = {
        "VIGIL_DATABASE_URL": settings.database_url or "",
        "VIGIL_MQTT_URL": settings.mqtt_url or "",
        "VIGIL_ALERTS_CLIENT_ID": client_id,
        "VIGIL_ALERTS_WEBHOOK_URLS": receiver.url,
        "VIGIL_ALERTS_WEBHOOK_SECRET": SECRET,
    }
    return ServiceProcess("alerts", client_id, env, log)


class Inbox:
    """What a gateway's inbox receives."""

    def __init__(self, settings: Settings, gateway: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.client = vigil_mqtt.connect(
            settings,
            f"inbox-{time.time_ns()}",
            on_message=lambda _c, _u, m: self.messages.append(json.loads(m.payload)),
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe(Topics(gateway).inbox, qos=1)
        assert subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_an_event_becomes_a_signed_webhook_and_a_message_to_the_patient(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    inbox = Inbox(settings, settings.gateway_id)
    service = alerts_process(settings, receiver, tmp_path / "alerts.log")
    service.start()
    try:
        e = event("persisted", gateway=settings.gateway_id, patient="p-svc")
        publish(settings, patient_events("p-svc"), [b"not json", e.encode()])
        assert wait_for(lambda: receiver.delivered() and inbox.messages, 15)
    finally:
        service.stop()
        inbox.close()
    (request,) = receiver.delivered().values()
    assert request["signature_ok"] and request["body"]["patient"] == "p-svc"
    assert inbox.messages[0]["patient"] == "p-svc" and "oxygen" in inbox.messages[0]["text"]
    started = (tmp_path / "alerts.log").read_text()
    assert "no administrators' channel (VIGIL_ALERTS_ADMIN_URLS)" in started


def test_killed_between_commit_and_delivery_it_delivers_once_after_restart(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    service = alerts_process(settings, receiver, tmp_path / "alerts.log")
    service.start(VIGIL_ALERTS_CRASH_AFTER_COMMITS="1")
    e = event("persisted", "hr_extreme_high", "heart_rate", patient="p-kill")
    publish(settings, patient_events("p-kill"), [e.encode()])
    service.wait_for_death(15)  # committed, then SIGKILL: nothing delivered, nothing acked
    assert receiver.requests == []
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        owed = conn.execute("SELECT state FROM notification").fetchall()
    assert owed == [("pending",)]
    service.start()  # the event comes again (not acknowledged) and changes nothing
    try:
        assert wait_for(lambda: receiver.delivered(), 15)
        time.sleep(1.0)  # a second delivery would arrive about now
    finally:
        service.stop()
    assert len(receiver.requests) == 1 and receiver.requests[0]["answered"] == 200
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alert").fetchone() == (1,)


def test_a_receiver_that_hangs_does_not_hold_up_the_recording_of_new_alerts(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.release.clear()  # the care team's integration takes its time to answer
    service = alerts_process(settings, receiver, tmp_path / "alerts.log")
    service.start()
    assert settings.database_url
    url = settings.database_url
    try:
        first = event("persisted", patient="p-slow", gateway=settings.gateway_id)
        publish(settings, patient_events("p-slow"), [first.encode()])
        assert receiver.arrived.wait(15)  # its webhook is being delivered, and waits
        later = event("persisted", "hr_extreme_high", "heart_rate", patient="p-next")
        publish(settings, patient_events("p-next"), [later.encode()])
        assert wait_for(lambda: "p-next" in alerted(url), 15)
        # recorded while the first webhook's one attempt is still under way
        assert webhook_attempts(url, "p-slow") == [("pending", 0)]
    finally:
        receiver.release.set()
    try:
        assert wait_for(lambda: len(receiver.delivered()) == 2, 15)
    finally:
        service.stop()


def alerted(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {p for (p,) in conn.execute("SELECT patient FROM alert")}


def webhook_attempts(url: str, patient: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT n.state, n.attempts FROM notification n JOIN alert a ON a.id = n.alert"
            " WHERE a.patient = %s AND n.channel = 'webhook'",
            (patient,),
        ).fetchall()


def test_a_team_nobody_can_reach_is_reported_once_across_a_crash(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.fail_first = 10_000  # the care team's webhook refuses, and so do its phones
    admins = Receiver(SECRET)
    assert settings.database_url
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        add_team(conn, "ward-7")
        add_member(conn, "ward-7", "nurse-a", 1, f"json://127.0.0.1:{receiver.port}/nurse-a")
        add_member(conn, "ward-7", "doctor-b", 2, f"json://127.0.0.1:{closed_port()}/doctor-b")
        for patient in ("p-first", "p-later"):
            assign(conn, patient, "ward-7")
    service = alerts_process(settings, receiver, tmp_path / "alerts.log")
    env = {
        "VIGIL_ALERTS_ADMIN_URLS": f"json://127.0.0.1:{admins.port}/admins",
        "VIGIL_ALERTS_MAX_ATTEMPTS": "1",  # each delivery fails for good at once
    }

    def reports(patient: str) -> int:
        return sum(f"of patient {patient}:" in r["body"]["message"] for r in admins.requests)

    try:
        service.start(**env)
        first = event("persisted", "hr_extreme_high", "heart_rate", patient="p-first")
        publish(settings, patient_events("p-first"), [first.encode()])
        assert wait_for(lambda: reported(settings, "p-first"), 30)
        service.kill()  # whatever it was doing next: it must not report p-first again
        service.start(**env)
        later = event("persisted", "hr_extreme_high", "heart_rate", patient="p-later")
        publish(settings, patient_events("p-later"), [later.encode()])
        # By the time the later alert has been through both tiers and reported, the
        # restarted service has been over the first one's many times.
        assert wait_for(lambda: reports("p-later"), 30)
    finally:
        service.stop()
        admins.close()
    assert (reports("p-first"), reports("p-later")) == (1, 1)
    assert "no administrators' channel" not in (tmp_path / "alerts.log").read_text()


def reported(settings: Settings, patient: str) -> bool:
    """Whether the report of the patient's alert is marked delivered (a kill before that
    would have it delivered again after the restart, as any notification)."""
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notification n JOIN alert a ON a.id = n.alert"
            " WHERE a.patient = %s AND n.audience = 'admin' AND n.state = 'sent'",
            (patient,),
        ).fetchone()
    return row == (1,)
