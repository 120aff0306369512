"""The ingest service records the gateways' retained reports off a real broker, beside the
readings: the enrolled gateway's devices, never a stranger's, never an assigned device moved."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from ingest import enrollment
from ingest.service import IngestService
from tests.builders import batch
from tests.e2e.harness import wait_for
from vigil import mqtt as vigil_mqtt
from vigil.mqtt import Watcher
from vigil.settings import Settings
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics, service_status

pytestmark = [pytest.mark.slow, pytest.mark.services]
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
)


@pytest.fixture
def publisher(settings: Settings) -> Iterator[list[str]]:
    """Topics published on are cleared of their retained message afterwards, so that no
    other test's ingest is handed them."""
    topics: list[str] = []
    yield topics
    client = vigil_mqtt.connect(settings, f"test-clear-{time.time_ns()}")
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def publish(
    settings: Settings, retained: list[str], messages: list[tuple[str, bytes]], retain: bool = True
) -> None:
    """Publish as a gateway does (its reports retained), noting the topics to clear."""
    client = vigil_mqtt.connect(settings, f"test-gateway-{time.time_ns()}")
    try:
        for topic, payload in messages:
            if retain:
                retained.append(topic)
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_retained_reports_are_recorded_as_far_as_enrollment_lets_each_gateway_speak(
    settings: Settings, publisher: list[str]
) -> None:
    url = settings.database_url or ""
    gateway, stranger = Topics(settings.gateway_id), Topics(f"{settings.gateway_id}-x")
    with psycopg.connect(url) as conn:
        enrollment.enroll(conn, gateway.gateway)
        enrollment.assign(conn, gateway.gateway, [(DEVICE, "p0001")])
        conn.commit()
    # Retained before ingest subscribes: handed to it as it does.
    strangers_oximeter = replace(STRAP, address="C9:00:00:00:00:09", patient="p0009")
    publish(
        settings,
        publisher,
        [
            (gateway.status, GatewayStatus(gateway.gateway, Presence.ONLINE, "1.2").encode()),
            (gateway.devices, GatewayDevices((STRAP,)).encode()),
            (stranger.status, GatewayStatus(stranger.gateway, Presence.ONLINE).encode()),
            (stranger.devices, GatewayDevices((strangers_oximeter,)).encode()),
        ],
    )
    stop = threading.Event()
    service = IngestService(settings)
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    watcher = Watcher.services(settings, [settings.ingest_client_id], f"watch-{time.time_ns()}")
    try:
        topic = service_status(settings.ingest_client_id)
        assert watcher.wait_for_state(topic, Presence.ONLINE, timeout=15)
        publish(settings, publisher, [(gateway.readings, batch(gateway.gateway).encode())], False)
        with psycopg.connect(url, autocommit=True) as conn:

            def device() -> tuple | None:
                return conn.execute(
                    "SELECT patient, gateway, kind, serial, battery, version FROM device"
                ).fetchone()

            # The assignment made version 1; what the strap says it is, version 2.
            says = ("p0001", gateway.gateway, "heart-rate-strap", "A1B2C3", 90, 2)
            assert wait_for(lambda: device() == says, 15)
            # The gateway now names another patient for the assigned strap, then goes.
            moved = replace(STRAP, patient="p0002", battery=70)
            offline = GatewayStatus(gateway.gateway, Presence.OFFLINE)
            publish(
                settings,
                publisher,
                [
                    (gateway.devices, GatewayDevices((moved,)).encode()),
                    (gateway.status, offline.encode()),
                ],
            )
            states = "SELECT gateway, state, software FROM gateway_state"
            assert wait_for(
                lambda: conn.execute(states).fetchall() == [(gateway.gateway, "offline", "1.2")], 15
            )
            assert device() == ("p0001", gateway.gateway, "heart-rate-strap", "A1B2C3", 70, 2)
            assert conn.execute("SELECT count(*) FROM device").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM observation").fetchone() == (2,)
    finally:
        watcher.close()
        stop.set()
        thread.join(15)
