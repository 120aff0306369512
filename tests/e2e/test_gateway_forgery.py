"""Gateways speak only for their own patients (issue 14).

Against a real Mosquitto run with the shipped config (password file, ACL, no anonymous
clients, usernames as client ids) and the credentials `vigil enroll` issued: gw-a serves
patient pa's strap and oximeter (the real gateway service, simulated wearables), gw-b
patient pb. gw-b, with its own valid credentials, tries every way of speaking for pa; then
the numbers: no forged reading stored, no genuine one lost, every refusal visible; and
analytics, beside ingest on the broker, scores none of them and keeps gw-a as pa's inbox.

Without the broker's ACL (an open broker), ingest's own accounting still holds: batches
squatting a gateway's next seqs cannot make its real batches be taken for redeliveries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from ingest.admission import EMPTY
from ingest.stats import gateway_stats
from simulators.ble.ward import oximeter_address, patient_id, strap_address
from tests.builders import T0, batch
from tests.cli.test_main import vigil
from tests.e2e.harness import (
    AnalyticsThread,
    EventCollector,
    GatewayThread,
    IngestProcess,
    stored_rows,
    wait_for,
)
from tests.e2e.test_pipeline import assert_stored_exactly_once
from tests.mosquitto import ShippedBroker, accepted, shipped_broker
from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]

A, B = "gw-a", "gw-b"
INGEST, MONITOR = "vigil-ingest", "vigil-monitor"
ANALYTICS, ALERTS, WATCH = "vigil-analytics", "vigil-alerts", "vigil-monitor-analytics"
"""Analytics, its events read with the alerts service's account, and a monitor watching it
(one connection per account: the broker takes usernames as client ids)."""
PA, PB = patient_id(0), "pb"
A_STRAP, A_OXIMETER, B_OXIMETER = strap_address(0), oximeter_address(0), "B2:00:00:00:00:01"
FORGED = 50.5
"""A plausible SpO2 the simulated wearables never send."""
WINDOW_MS = 15_000
"""Pre-filled every millisecond: the time in which gw-a's genuine readings are measured."""


def enroll(env: dict[str, str], name: str, *args: str) -> str:
    """`vigil enroll ...`; the password it prints, once, for ``name``."""
    result = vigil("enroll", *args, env=env)
    assert result.returncode == 0, result.stderr
    found = re.search(rf"broker password of (gateway )?{name} \(.*\):\n  (\S+)\n", result.stdout)
    assert found, result.stdout
    return found[2]


def readings_of_pa(gateway: str, seq: int, device: str, times: Sequence[int]) -> bytes:
    """A batch naming pa: forged oximeter readings under ``device``, at each of ``times``."""
    rows = [(PA, metric, t, FORGED) for t in times for metric in ("spo2", "pulse_rate")]
    forged = batch(gateway, seq, rows)
    return replace(forged, device=(device,) * len(rows)).encode()


def empty(gateway: str, seq: int) -> bytes:
    return batch(gateway, seq, []).encode()


def test_a_gateway_speaks_only_for_its_own_patients(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    folder.mkdir()
    env = {
        "VIGIL_DATABASE_URL": database_url,
        "VIGIL_BROKER_PASSWORD_FILE": str(folder / "passwd"),
        "VIGIL_BROKER_ACL_FILE": str(folder / "acl"),
    }
    passwords = {
        A: enroll(env, A, A, "--device", f"{A_STRAP}={PA}", "--device", f"{A_OXIMETER}={PA}"),
        B: enroll(env, B, B, "--device", f"{B_OXIMETER}={PB}"),
        INGEST: enroll(env, INGEST, "--service", "ingest"),
        MONITOR: enroll(env, MONITOR, "--service", "monitor"),
        ANALYTICS: enroll(env, ANALYTICS, "--service", "analytics"),
        ALERTS: enroll(env, ALERTS, "--service", "alerts"),
        WATCH: enroll(env, WATCH, "--service", "monitor", "--username", WATCH),
    }
    with shipped_broker(folder) as broker:
        settings = Settings(
            database_url=database_url,
            mqtt_url=broker.url(INGEST, passwords[INGEST]),
            ingest_client_id=INGEST,
        )
        ingest = IngestProcess(
            settings, tmp_path / "ingest.log", watch_url=broker.url(MONITOR, passwords[MONITOR])
        )
        ingest.start()
        analytics = AnalyticsThread(
            Settings(
                database_url=database_url,
                mqtt_url=broker.url(ANALYTICS, passwords[ANALYTICS]),
                analytics_client_id=ANALYTICS,
                analytics_state_dir=tmp_path / "analytics",
                analytics_batch_ms=20,
            ),
            watch_url=broker.url(WATCH, passwords[WATCH]),
        )
        events = EventCollector(Settings(mqtt_url=broker.url(ALERTS, passwords[ALERTS])))
        try:
            now_ms = time.time_ns() // 1_000_000
            on_a_topic = attack(broker, passwords[B], range(now_ms, now_ms + WINDOW_MS))
            gateway = GatewayThread(
                Settings(
                    mqtt_url=broker.url(A, passwords[A]),
                    gateway_id=A,
                    gateway_data_dir=tmp_path / "gw-a",
                    publish_interval_s=0.5,
                ),
                patients=1,
            )
            gateway.start()
            try:
                assert wait_for(lambda: len(stored_rows(database_url)) > 10, 30)
                logins = take_over(broker, passwords[B])
                time.sleep(4)
            finally:
                counters = gateway.finish()
            assert counters.published == counters.readings > 20
            assert_stored_exactly_once(gateway, settings, counters.published, minimum=15)
            with psycopg.connect(database_url, autocommit=True) as conn:
                assert wait_for(lambda: dead_letters(conn) == 9, 20)
                reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letter")]
                prefill = conn.execute(
                    "SELECT length(payload), payload_size FROM dead_letter WHERE reason LIKE %s",
                    (f"{2 * WINDOW_MS} of {2 * WINDOW_MS} readings refused%",),
                ).fetchone()
                forged_rows = conn.execute(
                    "SELECT count(*) FROM observation WHERE gateway <> %s OR value = %s",
                    (A, FORGED),
                ).fetchone()
                stats = {g.gateway: g for g in gateway_stats(conn)}
            scored = analytics.service.counters
            assert wait_for(lambda: scored.readings == counters.published, 10)
        finally:
            scoring = analytics.stop()
            events.close()
            ingest.stop()

    assert on_a_topic == [False] * 10, "the ACL refuses every publish on gw-a's topic"
    assert logins == (1, {B}), "gw-a connected once, never knocked off; gw-b only as itself"
    assert forged_rows == (0,)
    a, b = stats[A], stats[B]
    assert (a.gaps, a.conflicts, a.dead_letters, a.duplicates) == ([], 0, 0, 0)
    assert a.batches == counters.batches_published and a.highest_seq == a.batches - 1
    assert (b.batches, b.dead_letters) == (0, 9), "refused whole: no seq of gw-b recorded"
    assert sum(f"is not assigned to {PA} on {B})" in r for r in reasons) == 3
    assert reasons.count(f"gateway: batch says {A!r}, topic says {B!r}") == 5
    assert reasons.count(EMPTY) == 1
    assert prefill is not None and prefill[0] == prefill[1] > 65536, "kept whole: gw-b is enrolled"
    assert scoring.readings == counters.published, "analytics scored every genuine reading"
    assert (scoring.unassigned, scoring.not_enrolled) == (2 * (100 + 100 + WINDOW_MS), 0)
    assert not [e for e in events.received if e["value"] == FORGED or e["gateway"] != A]
    assert analytics.service._gateway_of_patient == {PA: A}, "pa's messages go to gw-a"


def attack(broker: ShippedBroker, password: str, window: range) -> list[bool]:
    """Everything gw-b tries with its own credentials; returns whether the broker took each
    publish on gw-a's topic."""
    with pytest.raises(vigil_mqtt.MqttUnavailable, match="refused"):  # no account, no entry
        vigil_mqtt.connect(Settings(mqtt_url=broker.url()), A)
    forger = vigil_mqtt.connect(Settings(mqtt_url=broker.url(B, password)), B)
    try:
        squats = [readings_of_pa(A, seq, A_OXIMETER, window[:10]) for seq in range(5)]
        squats += [empty(A, seq) for seq in range(5, 10)]
        on_a_topic = [accepted(forger, Topics(A).readings, p) for p in squats]
        own_topic = [
            readings_of_pa(B, 0, B_OXIMETER, window[:100]),  # pa, under gw-b's own device
            readings_of_pa(B, 1, A_OXIMETER, window[:100]),  # pa, under gw-a's device
            readings_of_pa(B, 2, A_OXIMETER, window),  # every millisecond of the window
            *(empty(A, seq) for seq in range(5)),  # gw-a's next seqs, on gw-b's topic
            empty(B, 3),
        ]
        assert all(accepted(forger, Topics(B).readings, p) for p in own_topic)
    finally:
        forger.disconnect()
        forger.loop_stop()
    return on_a_topic


def take_over(broker: ShippedBroker, password: str) -> tuple[int, set[str]]:
    """gw-b connects five times asking for client id gw-a while the real gw-a is connected;
    returns how many connections the broker logged as gw-a, and the client ids it gave
    gw-b's logins."""
    for _ in range(5):
        client = vigil_mqtt.connect(Settings(mqtt_url=broker.url(B, password)), A)
        client.disconnect()
        client.loop_stop()
    log = broker.log.read_text()
    as_a = len(re.findall(r"New client connected from \S+ as gw-a ", log))
    return as_a, set(re.findall(r"New client connected from \S+ as (\S+) .*u'gw-b'", log))


def dead_letters(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM dead_letter").fetchone()
    return int(row[0]) if row else 0


def test_squatting_seqs_on_an_open_broker_loses_no_genuine_batch(
    settings: Settings, tmp_path: Path
) -> None:
    """An anonymous client on a broker without ACL publishes as gw-x: empty batches under
    its next seqs, and batches under two more seqs that even pass the triple check (the
    worst case: it knows gw-x's device and patient). Then gw-x's real batches 0-4: every
    one of their readings is stored; the squatted seqs are conflicts, not redeliveries."""
    url = settings.database_url or ""
    device = "C1:00:00:00:00:01"  # the builders' device
    enrolled = vigil("enroll", "gw-x", "--device", f"{device}=px", env={"VIGIL_DATABASE_URL": url})
    assert enrolled.returncode == 0, enrolled.stderr
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()

    def of_px(seq: int, first_ms: int, value: float) -> bytes:
        rows = [("px", "spo2", first_ms + i * 1000, value) for i in range(100)]
        return batch("gw-x", seq, rows).encode()

    squatter = vigil_mqtt.connect(settings, f"squatter-{time.time_ns()}")
    genuine = [of_px(seq, T0 + seq * 100_000, 96.0) for seq in range(5)]
    try:
        for payload in [empty("gw-x", seq) for seq in range(3)] + [
            of_px(seq, T0 + 10_000_000 + seq * 100_000, 91.0) for seq in (3, 4)
        ]:
            assert accepted(squatter, Topics("gw-x").readings, payload)
        for payload in genuine:
            assert accepted(squatter, Topics("gw-x").readings, payload)
        with psycopg.connect(url, autocommit=True) as conn:
            assert wait_for(lambda: len(stored_rows(url)) == 700, 20)
            assert wait_for(lambda: dead_letters(conn) == 3, 10)
            (x,) = gateway_stats(conn)
            (genuine_stored,) = conn.execute(
                "SELECT count(*) FROM observation WHERE value = 96"
            ).fetchone() or (0,)
    finally:
        squatter.disconnect()
        squatter.loop_stop()
        ingest.stop()
    assert genuine_stored == 500, "0 genuine readings lost"
    assert (x.gateway, x.conflicts, x.gaps, x.duplicates, x.dead_letters) == ("gw-x", 2, [], 0, 3)
