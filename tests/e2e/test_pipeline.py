"""Simulated wearables -> bumble GATT -> bleak -> gateway -> MQTT -> ingest -> PostgreSQL."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from simulators.ble import PulseOximeter
from tests.builders import T0, batch
from tests.e2e.harness import GatewayThread, IngestProcess, publish, stored_rows, wait_for
from vigil import mqtt as vigil_mqtt
from vigil.embedded.broker import PrivateBroker, find_mosquitto, start_broker
from vigil.metrics import BY_ID
from vigil.settings import Settings
from vigil.wire.status import GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_every_reading_is_stored_exactly_once_across_an_ingest_crash(
    settings: Settings, tmp_path: Path, durable_broker: None
) -> None:
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    gateway = GatewayThread(settings, patients=3)
    gateway.start()
    try:
        time.sleep(6)
        ingest.kill()  # SIGKILL mid-stream: whatever it had not acknowledged comes again
        time.sleep(3)
        ingest.start()
        time.sleep(4)
    finally:
        counters = gateway.finish()

    assert counters.published == counters.readings, "the gateway outbox drained"
    assert_stored_exactly_once(gateway, settings, counters.published, minimum=60)
    ingest.stop()


def assert_stored_exactly_once(
    gateway: GatewayThread, settings: Settings, published: int, minimum: int
) -> None:
    """Every reading the wearables notified is in the database once, in order."""
    sent: dict[tuple[str, str], list[float]] = defaultdict(list)
    for reading in gateway.ward.sent:
        sent[(reading.patient, reading.metric)].append(reading.value)
    clinical = {k: v for k, v in sent.items() if k[1] != "battery"}
    assert sum(len(v) for v in clinical.values()) > minimum

    def stored() -> dict[tuple[str, str], list[float]]:
        out: dict[tuple[str, str], list[float]] = defaultdict(list)
        for patient, metric, value in stored_rows(settings.database_url or ""):
            out[(patient, BY_ID[metric].name)].append(value)
        return out

    assert wait_for(lambda: sum(len(v) for v in stored().values()) >= published, 30)
    result = stored()
    for key, values in clinical.items():
        assert result[key] == pytest.approx(values), key  # same values, same order, once each
    battery = {k: v for k, v in result.items() if k[1] == "battery"}
    # each patient's strap and oximeter report their battery when connected
    patients = {patient for patient, _ in clinical}
    assert {k: len(v) for k, v in battery.items()} == {(p, "battery"): 2 for p in patients}
    assert sum(len(v) for v in result.values()) == published


@dataclass
class OwnBroker:
    """A private Mosquitto with persistence, and an ingest whose session it keeps."""

    settings: Settings
    broker: PrivateBroker


@pytest.fixture
def own_broker(settings: Settings, tmp_path: Path) -> Iterator[OwnBroker]:
    if find_mosquitto() is None:
        pytest.skip(
            "needs Mosquitto, whose persistence keeps ingest's session through an outage "
            "(amqtt keeps nothing); `.ci/run` installs it"
        )
    broker = start_broker(tmp_path / "broker")
    own = OwnBroker(
        # the default plain subscription: Mosquitto 2.0 does not restore shared ones
        settings.model_copy(update={"mqtt_url": broker.url, "ingest_share_group": ""}),
        broker,
    )
    # Ingest's persistent session exists before any outage, as in production; otherwise
    # whatever the gateway publishes before ingest subscribes has nobody to go to.
    ingest = IngestProcess(own.settings, tmp_path / "ingest.log")
    ingest.start()
    yield own
    ingest.stop()
    own.broker.stop()


def test_readings_wait_in_the_outbox_until_the_broker_first_appears(own_broker: OwnBroker) -> None:
    own_broker.broker.stop()  # Mosquitto saves its sessions on the way down
    gateway = GatewayThread(own_broker.settings, patients=2)
    gateway.start()  # no broker: the gateway keeps measuring into its outbox
    try:
        time.sleep(5)
        waiting = gateway.outbox_depth()
        assert waiting > 20
        own_broker.broker.restart()
        assert wait_for(lambda: gateway.outbox_depth() < waiting, 40)  # reconnected, draining
        time.sleep(2)
    finally:
        counters = gateway.finish()
    assert counters.published == counters.readings
    assert_stored_exactly_once(gateway, own_broker.settings, counters.published, minimum=40)


def test_duplicate_and_malformed_batches(settings: Settings, tmp_path: Path) -> None:
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    topic = Topics("gw-x").readings
    first = (batch("gw-x", seq=0)).encode()
    second = (batch("gw-x", seq=1, rows=[("p0009", "spo2", T0 + 1000, 93.0)])).encode()
    wrong_gateway = (batch("gw-y", seq=2, rows=[("p0009", "spo2", T0 + 2000, 94.0)])).encode()
    try:
        publish(
            settings, topic, [first, first, b'{"v": 1, "gateway": "gw-x"', wrong_gateway, second]
        )
        url = settings.database_url or ""
        assert wait_for(lambda: len(stored_rows(url)) == 3, 20)
        with psycopg.connect(url) as conn:
            letters = conn.execute(
                "SELECT topic, payload, reason FROM dead_letter ORDER BY id"
            ).fetchall()
            (deliveries,) = conn.execute(
                "SELECT deliveries FROM ingest_batch WHERE gateway = 'gw-x' AND seq = 0"
            ).fetchone()  # type: ignore[misc]
    finally:
        assert ingest.stop() == 0
    assert stored_rows(url) == [("p0001", 1, 72.0), ("p0001", 2, 97.0), ("p0009", 2, 93.0)]
    assert deliveries == 2
    assert [(t, p) for t, p, _ in letters] == [
        (topic, b'{"v": 1, "gateway": "gw-x"'),
        (topic, wrong_gateway),
    ]
    assert letters[0][2].startswith("payload: not JSON")
    assert "gateway" in letters[1][2]


def test_a_batch_the_database_refuses_is_dead_lettered_alone(
    settings: Settings, tmp_path: Path
) -> None:
    url = settings.database_url or ""
    with psycopg.connect(url) as conn:  # stands in for e.g. a row outside every partition
        conn.execute("ALTER TABLE observation ADD CONSTRAINT refuse CHECK (patient <> 'p0666')")
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    topic = Topics("gw-z").readings
    payloads = [
        (batch("gw-z", seq=0, rows=[("p0001", "spo2", T0, 95.0)])).encode(),
        (batch("gw-z", seq=1, rows=[("p0666", "spo2", T0, 96.0)])).encode(),
        (batch("gw-z", seq=2, rows=[("p0002", "spo2", T0, 97.0)])).encode(),
    ]
    try:
        publish(settings, topic, payloads)
        assert wait_for(lambda: len(stored_rows(url)) == 2, 20)
        with psycopg.connect(url) as conn:
            assert wait_for(
                lambda: conn.execute("SELECT count(*) FROM dead_letter").fetchone() == (1,), 10
            )
            reason, payload = conn.execute("SELECT reason, payload FROM dead_letter").fetchone()  # type: ignore[misc]
    finally:
        assert ingest.stop() == 0
    assert stored_rows(url) == [("p0001", 2, 95.0), ("p0002", 2, 97.0)]
    assert reason.startswith("database refused the batch:") and "refuse" in reason
    assert payload == payloads[1]


def test_gateway_status_is_retained_with_counts(settings: Settings) -> None:
    gateway = GatewayThread(settings, patients=1)
    topics = Topics(settings.gateway_id)
    watcher = vigil_mqtt.Watcher(
        settings,
        {topics.status: GatewayStatus.decode, topics.devices: GatewayDevices.decode},
        "watch-status",
    )
    gateway.start()
    try:
        assert watcher.wait_for_state(topics.status, Presence.ONLINE, 15)
        time.sleep(2)
    finally:
        gateway.stop_wearables()
        counters = gateway.stop()
    assert watcher.wait_for_state(topics.status, Presence.OFFLINE, 5)
    status = watcher.get(topics.status, GatewayStatus)
    reports = watcher.get(topics.devices, GatewayDevices)
    watcher.close()
    assert status is not None and reports is not None
    devices = reports.devices
    assert {d.kind for d in devices} == {"heart-rate-strap", "pulse-oximeter"}
    strap = next(d for d in devices if d.kind == "heart-rate-strap")
    assert strap.manufacturer == "Vigil Simulators" and strap.firmware == "1.0.0"
    assert strap.location == "chest" and strap.battery == 100
    assert all(d.patient == "p0001" and d.parse_errors == 0 for d in devices)
    assert status.published == counters.published > 0
    # No ingest here: whatever the broker took stays on disk, unconfirmed.
    assert status.outbox_depth == status.unconfirmed == counters.published
    assert status.dropped == 0 and counters.confirmed == 0
    assert status.version and (status.next_seq or 0) >= 1


def test_a_stored_spot_check_keeps_its_device_time(settings: Settings, tmp_path: Path) -> None:
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    gateway = GatewayThread(settings, patients=1)
    gateway.start()
    taken = datetime(2026, 11, 24, 22, 15, 0)  # device local time, last night
    oximeter = next(w for w in gateway.ward.wearables if isinstance(w, PulseOximeter))
    try:
        assert wait_for(lambda: oximeter.subscribed(oximeter.spot_check_measurement), 15)
        gateway.call(lambda: oximeter.spot_check(89, 97, taken))
        time.sleep(2)
    finally:
        gateway.stop_wearables()
        counters = gateway.stop()
    url = settings.database_url or ""
    assert wait_for(lambda: len(stored_rows(url)) >= counters.published, 20)
    ingest.stop()
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT metric, value FROM observation WHERE effective = %s ORDER BY metric",
            (taken.astimezone(UTC),),
        ).fetchall()
    assert rows == [(2, 89.0), (3, 97.0)]


def test_a_device_that_drops_out_is_resumed_and_its_gap_reported(settings: Settings) -> None:
    gateway = GatewayThread(settings, patients=1)
    devices_topic = Topics(settings.gateway_id).devices
    watcher = vigil_mqtt.Watcher(settings, {devices_topic: GatewayDevices.decode}, "watch-devs")
    gateway.start()
    strap = next(w for w in gateway.ward.wearables if w.kind == "heart-rate-strap")

    def strap_readings() -> int:
        return sum(1 for r in gateway.ward.sent if r.address == strap.address)

    try:
        assert wait_for(lambda: strap.subscribed(strap.measurement), 15)
        time.sleep(2)
        gateway.call(strap.disconnect_all)  # the patient walks out of range
        before = strap_readings()
        assert wait_for(lambda: strap.subscribed(strap.measurement), 15)  # and comes back
        assert wait_for(lambda: strap_readings() > before + 2, 10)
        assert gateway.service is not None
        state = gateway.service.sessions[strap.address].state
        assert (state.connects, state.drops, state.state) == (2, 1, "connected")
    finally:
        gateway.stop_wearables()
        gateway.stop()
    time.sleep(0.5)  # the final devices message, published on shutdown
    reports = watcher.get(devices_topic, GatewayDevices)
    watcher.close()
    assert reports is not None
    reported = next(d for d in reports.devices if d.address == strap.address)
    assert reported.drops == 1 and (reported.last_drop_ms or 0) > 0


def test_a_60_s_broker_outage_mid_stream_loses_nothing(own_broker: OwnBroker) -> None:
    gateway = GatewayThread(own_broker.settings, patients=2)
    gateway.start()
    try:
        time.sleep(4)
        own_broker.broker.stop()
        time.sleep(60)
        waiting = gateway.outbox_depth()
        assert waiting > 200  # the gateway kept measuring into its outbox
        own_broker.broker.restart()
        assert wait_for(lambda: gateway.outbox_depth() < waiting / 2, 60)
        time.sleep(2)
    finally:
        counters = gateway.finish()
    assert counters.published == counters.readings
    assert_stored_exactly_once(gateway, own_broker.settings, counters.published, minimum=400)
