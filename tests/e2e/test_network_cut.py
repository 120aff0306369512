"""The gateway's network cut mid-stream for longer than its MQTT keep-alive, as when a
home router loses its uplink: the gateway and its wearables in a network namespace whose
link to the broker's host goes down (TCP stalls, half-open on both sides: see
:mod:`vigil.embedded.netns`), then comes back. Every reading sent reaches the platform.

The wearables (`vigil simulate`) and `vigil gateway` both run inside the namespace, so
their Bluetooth link (HCI over the namespace's own loopback) is not cut; only MQTT is."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.gateway import Received, _sent
from vigil import mqtt as vigil_mqtt
from vigil.embedded.broker import LOOPBACK, find_mosquitto, start_broker
from vigil.embedded.netns import Link, unavailable
from vigil.embedded.processes import spawn, stop, vigil_command
from vigil.settings import Settings
from vigil.wire.status import Presence
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]

GATEWAY = "gw-net-cut"
PATIENTS = 2  # a strap and an oximeter each
CUT_S = 55.0
"""Past the point where Mosquitto drops the gateway's silent session (1.5 x the 30 s
keep-alive of vigil/mqtt/client.py, checked every few seconds: 50 s measured here) and
before the gateway's own paho gives up (its PINGREQ unanswered 30 s after the last packet
in, it closes at 60 s): the link comes back to a gateway still holding its half-open
connection, whose next retransmission the broker's host answers with a RST."""
HCI_PORT = 9100
"""Inside the namespace, where nothing else listens."""


@pytest.fixture
def link() -> Iterator[Link]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    if find_mosquitto() is None:
        pytest.skip("needs Mosquitto, which keeps the gateway's session; `.ci/run` installs it")
    with Link.create() as link:
        yield link


def logs(folder: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(folder.rglob("*.log"))
    )


def test_a_gateway_cut_off_past_its_keep_alive_delivers_every_reading(
    link: Link, tmp_path: Path
) -> None:
    broker = start_broker(tmp_path / "broker", listen=(LOOPBACK, link.host_address))
    received = Received()
    counter = vigil_mqtt.connect(
        Settings(mqtt_url=broker.url),
        "net-cut-counter",
        persistent=True,
        on_message=received.on_message,
    )
    topics = Topics(GATEWAY)
    for topic in (topics.readings, topics.status, topics.devices):
        counter.subscribe(topic, qos=1)
    env = {
        "VIGIL_MQTT_URL": broker.url_on(link.host_address),
        "VIGIL_GATEWAY_ID": GATEWAY,
        "VIGIL_GATEWAY_DATA_DIR": str(tmp_path / "gateway"),
        "VIGIL_PUBLISH_INTERVAL_S": "0.5",
    }
    sent_log = tmp_path / "sent.jsonl"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        wearables = vigil_command("simulate", "--patients", str(PATIENTS), "--pair-all")
        wearables += ["--hci", f"tcp-server:127.0.0.1:{HCI_PORT}", "--sent-log", str(sent_log)]
        simulator = spawn(link.wrap(wearables), env, tmp_path / "simulator.log")
        processes.append(simulator)
        # The simulator's port is on the namespace's loopback: wait for it from inside.
        wait = (
            f"from vigil.embedded.processes import wait_for_port as w; exit(not w({HCI_PORT}, 60))"
        )
        listening = subprocess.run(link.wrap([sys.executable, "-c", wait]), check=False)
        assert listening.returncode == 0, logs(tmp_path)
        gateway_argv = vigil_command("gateway", "--hci", f"tcp-client:127.0.0.1:{HCI_PORT}")
        gateway = spawn(link.wrap(gateway_argv), env, tmp_path / "gateway.log")
        processes.append(gateway)
        devices = 2 * PATIENTS
        assert received.wait(
            lambda: sum(d.state == "connected" for d in received.devices) == devices, 60
        ), logs(tmp_path)
        assert received.wait(lambda: received.total() >= 20, 30), logs(tmp_path)

        link.cut()
        cut = time.monotonic()
        # The broker hears nothing for 1.5 x the keep-alive, drops the gateway's session
        # and publishes its will; the gateway's end of the connection stays open.
        assert received.wait(
            lambda: received.status is not None and received.status.state == Presence.OFFLINE,
            CUT_S,
        ), logs(tmp_path)
        dropped_after_s = time.monotonic() - cut
        during_cut = received.total()
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut)))
        assert received.total() == during_cut, "readings got through a cut link"
        link.restore()
        back = time.monotonic()

        assert received.wait(
            lambda: received.status is not None and received.status.state == Presence.ONLINE,
            90,
        ), logs(tmp_path)
        reconnected_after_s = time.monotonic() - back
        assert received.wait(lambda: received.total() >= during_cut + 20, 60), logs(tmp_path)

        stop(simulator, timeout=15)  # the sent log is complete once the wearables stopped
        sent = _sent(sent_log)

        def lost() -> int:
            with received.changed:
                return sum(max(0, n - received.readings[key]) for key, n in sent.items())

        received.wait(lambda: lost() == 0, 120)
        assert stop(gateway, timeout=30) == 0, logs(tmp_path)
    finally:
        for process in reversed(processes):
            if process.returncode is None:
                stop(process, timeout=15)
        counter.disconnect()
        counter.loop_stop()
        broker.stop()

    print(
        json.dumps(
            {
                "sent": sum(sent.values()),
                "lost": lost(),
                "cut_s": CUT_S,
                "broker_dropped_session_after_s": round(dropped_after_s, 1),
                "reconnected_after_restore_s": round(reconnected_after_s, 1),
                "batches_resent": received.duplicate_batches,
                "batches_out_of_order": received.out_of_order,
            }
        )
    )
    assert sum(sent.values()) > 100
    assert lost() == 0, logs(tmp_path)
