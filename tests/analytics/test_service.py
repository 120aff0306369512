"""`vigil analytics` against a real broker: events published, checkpoints resumed, shards
splitting the gateways, bad payloads skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.service import shard_of
from ingest import writer
from tests.builders import T0, batch
from tests.e2e.harness import AnalyticsThread as Running
from tests.e2e.harness import EventCollector as Events
from tests.e2e.harness import publish, wait_for
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def make_settings(mqtt_url: str, tmp_path: Path) -> Iterator[Any]:
    run = f"{time.time_ns()}"

    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "mqtt_url": mqtt_url,
            "analytics_client_id": f"analytics-test-{run}",
            "analytics_state_dir": tmp_path / "analytics",
            "analytics_batch_ms": 20,
        }
        return Settings(**(fields | overrides))

    yield make


FALLING = [97, 95, 93, 91, 89, 87, 85, 84]
"""Down 2 points a second (a faster step would be an artefact): < 92 at 3 s, < 88 at 5 s."""
DESATURATION = FALLING + [84] * 20 + [86, 88, 90, 92, 94]


def spo2_seconds(
    gateway: str, patient: str, first_s: int, values: Sequence[float], seq: int, t0: int = T0
) -> bytes:
    rows = [(patient, "spo2", t0 + (first_s + i) * 1000, v) for i, v in enumerate(values)]
    return (batch(gateway, seq, rows)).encode()


def test_a_desaturation_becomes_events_with_gateway_and_id(make_settings: Any) -> None:
    settings = make_settings()
    events = Events(settings)
    running = Running(settings)
    try:
        payloads = [spo2_seconds("gw-a", "p-desat", 0, DESATURATION, 0)]
        publish(settings, Topics("gw-a").readings, payloads)
        assert wait_for(lambda: len(events.kinds("p-desat")) >= 3, 15)
    finally:
        counters = running.stop()
        events.close()
    assert events.kinds("p-desat") == ["started", "persisted", "cleared"]
    event = next(
        e for e in events.received if e["kind"] == "persisted" and e["rule"] == "spo2_desaturation"
    )
    assert event["gateway"] == "gw-a"
    assert event["id"].startswith("p-desat/spo2/spo2_desaturation/persisted/")
    assert event["evidence"]["limit"] == 88
    assert counters.readings == len(DESATURATION) and counters.checkpoints >= 1
    assert running.service.checkpoint.exists()


def test_a_restart_resumes_an_open_condition_from_the_checkpoint(make_settings: Any) -> None:
    settings = make_settings()
    events = Events(settings)
    try:
        first = Running(settings)
        publish(settings, Topics("gw-b").readings, [spo2_seconds("gw-b", "p-r", 0, [87] * 20, 0)])
        assert wait_for(lambda: events.kinds("p-r") == ["started"], 15)
        first.stop()

        second = Running(settings)
        assert len(second.service.engine.keys) == 1  # the stream came back with its state
        publish(settings, Topics("gw-b").readings, [spo2_seconds("gw-b", "p-r", 20, [87] * 20, 1)])
        assert wait_for(lambda: len(events.kinds("p-r")) >= 2, 15)
        second.stop()
    finally:
        events.close()
    # The time below carried over (87 %; each reading stands for the second before it):
    # below on average for 30 s at 30 s, and no second 'started'.
    assert events.kinds("p-r") == ["started", "persisted"]
    persisted = next(
        e for e in events.received if e["kind"] == "persisted" and e["rule"] == "spo2_desaturation"
    )
    assert persisted["time"].endswith(":30.000Z")


def test_two_shards_split_the_gateways_and_score_each_once(make_settings: Any) -> None:
    gateways = [f"gw-s{i}" for i in range(8)]
    assert {shard_of(g, 2) for g in gateways} == {0, 1}
    shards = [make_settings(analytics_shards=2, analytics_shard=k) for k in (0, 1)]
    events = Events(shards[0])
    workers = [Running(s) for s in shards]
    try:
        for i, gateway in enumerate(gateways):
            payload = spo2_seconds(gateway, f"p-s{i}", 0, FALLING, 0)
            publish(shards[0], Topics(gateway).readings, [payload])
        assert wait_for(lambda: len(events.received) >= 2 * len(gateways), 15)
        time.sleep(0.5)  # a doubled event would arrive about now
    finally:
        counters = [w.stop() for w in workers]
        events.close()
    started = sorted(
        e["patient"]
        for e in events.received
        if e["kind"] == "started" and e["rule"] == "spo2_desaturation"
    )
    assert started == sorted(f"p-s{i}" for i in range(8))
    assert [c.readings for c in counters] == [
        len(FALLING) * sum(shard_of(g, 2) == k for g in gateways) for k in (0, 1)
    ]
    assert [c.other_shards for c in counters] == [8 - c.readings // len(FALLING) for c in counters]


def test_an_undecodable_payload_is_skipped_and_the_rest_scored(make_settings: Any) -> None:
    settings = make_settings()
    events = Events(settings)
    running = Running(settings)
    try:
        good = spo2_seconds("gw-c", "p-c", 0, [84] * 3, 0)
        publish(settings, Topics("gw-c").readings, [b"{not json", b'{"v": 99}', good])
        assert wait_for(lambda: events.kinds("p-c"), 15)
    finally:
        counters = running.stop()
        events.close()
    assert counters.undecodable == 2 and counters.readings == 3


@pytest.mark.services
def test_readings_stored_after_the_checkpoint_are_scored_at_restart(
    make_settings: Any, database_url: str
) -> None:
    """What a crashed worker acknowledged after its last checkpoint will not come again from
    the broker; ingest stored it, and the restarted worker scores it from the database."""
    settings = make_settings(database_url=database_url)
    events = Events(settings)
    now = time.time_ns() // 1_000_000 - 60_000  # catching up reads the last hour's readings
    try:
        first = Running(settings)
        payload = spo2_seconds("gw-d", "p-d", 0, [87] * 10, 0, t0=now)
        publish(settings, Topics("gw-d").readings, [payload])
        assert wait_for(lambda: events.kinds("p-d") == ["started"], 15)
        first.stop()  # checkpoint: the deficit so far, pending
        # Acknowledged by the lost worker, stored by ingest, never to be redelivered:
        rows = [("p-d", "spo2", now + s * 1000, 87.0) for s in range(10, 40)]
        with psycopg.connect(database_url) as conn:
            writer.store(conn, [batch("gw-d", 1, rows)])
            conn.commit()
        second = Running(settings)
        assert wait_for(lambda: "persisted" in events.kinds("p-d"), 15)
        counters = second.stop()
    finally:
        events.close()
    assert events.kinds("p-d") == ["started", "persisted"]
    assert counters.readings == 30


@pytest.mark.services
def test_a_gateway_naming_another_gateways_patient_is_not_scored(
    make_settings: Any, database_url: str
) -> None:
    """gw-b, enrolled with its own device and patient, names gw-a's patient p-a, under its
    own device and under gw-a's, in the middle of p-a's genuine desaturation; gw-x, not
    enrolled, names p-x. Neither is scored: p-a's genuine condition is told as it would be
    (the forged readings, later in time, would otherwise have it ignored as late data),
    every event names gw-a as p-a's inbox, and p-x has none."""
    a_device, b_device = "C1:00:00:00:00:01", "B2:00:00:00:00:01"  # a_device: the builders'
    with psycopg.connect(database_url, autocommit=True) as conn:
        for gateway, device, patient in (("gw-a", a_device, "p-a"), ("gw-b", b_device, "p-b")):
            conn.execute("INSERT INTO gateway (id) VALUES (%s)", (gateway,))
            conn.execute(
                "INSERT INTO device_assignment (device, gateway, patient) VALUES (%s, %s, %s)",
                (device, gateway, patient),
            )
    settings = make_settings(database_url=database_url)
    events = Events(settings)
    running = Running(settings)
    first = len(FALLING)
    later = 1_000  # s: past every genuine reading
    forged = []
    for seq, device in enumerate((b_device, a_device)):
        naming_pa = Batch.decode(spo2_seconds("gw-b", "p-a", later, DESATURATION, seq))
        forged.append(replace(naming_pa, device=(device,) * len(naming_pa)).encode())
    try:
        publish(settings, Topics("gw-a").readings, [spo2_seconds("gw-a", "p-a", 0, FALLING, 0)])
        assert wait_for(lambda: events.kinds("p-a") == ["started"], 15)
        publish(settings, Topics("gw-b").readings, forged)
        publish(settings, Topics("gw-x").readings, [spo2_seconds("gw-x", "p-x", 0, FALLING, 0)])
        rest = spo2_seconds("gw-a", "p-a", first, DESATURATION[first:], 1)
        publish(settings, Topics("gw-a").readings, [rest])
        assert wait_for(lambda: len(events.kinds("p-a")) >= 3, 15)
        time.sleep(0.5)  # a forged event would arrive about now
    finally:
        counters = running.stop()
        events.close()
    assert events.kinds("p-a") == ["started", "persisted", "cleared"]
    assert {e["gateway"] for e in events.received if e["patient"] == "p-a"} == {"gw-a"}
    assert not [e for e in events.received if e["patient"] in ("p-x", "p-b")]
    assert running.service._gateway_of_patient == {"p-a": "gw-a"}
    assert counters.readings == len(DESATURATION)
    assert (counters.not_enrolled, counters.unassigned) == (1, 2 * len(DESATURATION))


def test_a_reading_stamped_far_ahead_neither_blinds_a_stream_nor_stops_the_service(
    make_settings: Any,
) -> None:
    """A reading from a gateway whose clock is a year ahead would make every genuine one
    after it look old to its stream; it is dropped as ingest drops it."""
    settings = make_settings()
    events = Events(settings)
    running = Running(settings)
    year_ahead = int(time.time() * 1000) + 365 * 86_400_000
    try:
        ahead = spo2_seconds("gw-f", "p-f", 0, [97.0], 0, t0=year_ahead)
        implausible = spo2_seconds("gw-f", "p-f", 0, [250.0], 1)
        genuine = spo2_seconds("gw-f", "p-f", 0, DESATURATION, 2)
        publish(settings, Topics("gw-f").readings, [ahead, implausible, genuine])
        assert wait_for(lambda: len(events.kinds("p-f")) >= 3, 15)
    finally:
        counters = running.stop()
        events.close()
    assert events.kinds("p-f") == ["started", "persisted", "cleared"]
    assert counters.implausible == 2 and counters.readings == len(DESATURATION)
