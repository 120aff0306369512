"""`vigil bench gateway`: one gateway process serving simulated wearables, measured alone.

The wearables run in their own process (`vigil simulate --patients`), which serves the
gateway's Bluetooth controller over a bumble HCI transport; the gateway (`vigil gateway
--hci`) runs its own Bluetooth host stack, parsers, outbox and MQTT client, so its CPU and
memory are the gateway's and nobody else's. A private broker sits between the gateway and a
counting subscriber in this process, which confirms what it got as ingest would (the
gateway keeps a batch until then). With ``--outage`` the broker is stopped for that long
once the devices are streaming, then restarted: the backlog must drain in order and whole.

Figures: CPU per reading over the steady window (from the gateway's own status topic:
``cpu_s`` and ``readings`` published together), the gateway's peak RSS from the kernel
(see :mod:`vigil.process`), and readings lost (what the wearables sent, by device,
metric and value, minus what reached the subscriber).
"""

from __future__ import annotations

import collections
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from gateway.outbox import Outbox
from vigil import metrics
from vigil.embedded.broker import PrivateBroker, start_broker
from vigil.embedded.processes import (
    free_port,
    spawn,
    stop,
    stop_and_measure,
    vigil_command,
    wait_for_port,
)
from vigil.mqtt import connect
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.commitment import Commitment
from vigil.wire.errors import WireError
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics

log = logging.getLogger(__name__)

GATEWAY_ID = "bench-gw"
GOALS = {"cpu_ms_per_reading": 0.5, "peak_rss_mb": 200, "lost": 0}

Key = tuple[str, str, float]
"""(device, metric name, value): what identifies a sent reading at the far end."""


def _key(device: str, metric: str, value: float) -> Key:
    return (device.upper(), metric, round(value, 6))


@dataclass
class Received:
    """What reached the broker's far side, by batch; thread-safe (paho calls from its loop)."""

    readings: collections.Counter[Key] = field(default_factory=collections.Counter)
    seqs: set[int] = field(default_factory=set)
    duplicate_batches: int = 0
    out_of_order: int = 0
    undecodable: int = 0
    status: GatewayStatus | None = None
    devices: tuple[DeviceReport, ...] = ()
    changed: threading.Condition = field(default_factory=threading.Condition)
    confirm: Callable[[Commitment], object] = lambda _c: None
    """Stands in for ingest's commitments, so the gateway releases what arrived."""
    _last_seq: int = -1
    _through: int = -1

    def on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.changed:
            if message.topic.endswith("/readings"):
                self._on_batch(message.payload)
            elif message.topic.endswith("/status"):
                self.status = GatewayStatus.decode(message.payload)
            elif message.topic.endswith("/devices"):
                self.devices = GatewayDevices.decode(message.payload).devices
            self.changed.notify_all()

    def _on_batch(self, payload: bytes | bytearray) -> None:
        try:
            batch = Batch.decode(payload)
        except WireError:
            self.undecodable += 1
            return
        if batch.seq in self.seqs:
            self.duplicate_batches += 1  # re-sent after a lost PUBACK: allowed, not counted
            return
        if batch.seq < self._last_seq:
            self.out_of_order += 1
        self._last_seq = max(self._last_seq, batch.seq)
        self.seqs.add(batch.seq)
        while self._through + 1 in self.seqs:
            self._through += 1
        if self.status is not None and self.status.life is not None:
            self.confirm(Commitment(batch.gateway, self.status.life, self._through, self._last_seq))
        for device, metric, value in zip(
            batch.device, batch.metric.tolist(), batch.value.tolist(), strict=True
        ):
            self.readings[_key(device, metrics.BY_ID[metric].name, value)] += 1

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def total(self) -> int:
        with self.changed:
            return sum(self.readings.values())


def _sent(path: Path) -> collections.Counter[Key]:
    sent: collections.Counter[Key] = collections.Counter()
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            r = json.loads(line)
            sent[_key(r["address"], r["metric"], r["value"])] += 1
    return sent


class GatewayBench:
    def __init__(
        self,
        devices: int,
        duration_s: float,
        outage_s: float = 0.0,
        settle_s: float = 5.0,
        folder: Path | None = None,
        progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        if devices < 2 or devices % 2:
            raise ValueError("an even number of devices: a strap and an oximeter per patient")
        self.patients = devices // 2
        self.devices = devices
        self.duration_s = duration_s
        self.outage_s = outage_s
        self.settle_s = settle_s
        self.folder = folder
        self.progress = progress
        self.topics = Topics(GATEWAY_ID)
        self.received = Received()

    def run(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="vigil-bench-") as temp:
            return self._run(self.folder or Path(temp))

    def _run(self, folder: Path) -> dict[str, Any]:
        broker = start_broker(folder / "broker")
        hci_port = free_port()
        env = {
            "VIGIL_MQTT_URL": broker.url,
            "VIGIL_GATEWAY_ID": GATEWAY_ID,
            "VIGIL_GATEWAY_DATA_DIR": str(folder / "gateway"),
            "VIGIL_LOG_LEVEL": "WARNING",
        }
        sent_log = folder / "sent.jsonl"
        settings = Settings(mqtt_url=broker.url)
        processes: list[subprocess.Popen[bytes]] = []
        subscriber = connect(
            settings, "bench-counter", persistent=True, on_message=self.received.on_message
        )
        self.received.confirm = lambda c: subscriber.publish(
            self.topics.committed, c.encode(), qos=1, retain=True
        )
        try:
            for topic in (self.topics.readings, self.topics.status, self.topics.devices):
                subscriber.subscribe(topic, qos=1)
            simulator = spawn(
                vigil_command(
                    "simulate",
                    "--patients",
                    str(self.patients),
                    "--pair-all",
                    "--hci",
                    f"tcp-server:127.0.0.1:{hci_port}",
                    "--sent-log",
                    str(sent_log),
                ),
                env,
                folder / "simulator.log",
            )
            processes.append(simulator)
            if not wait_for_port(hci_port, 60, simulator):
                raise RuntimeError(f"the simulated wearables did not start; see {folder}")
            gateway = spawn(
                vigil_command("gateway", "--hci", f"tcp-client:127.0.0.1:{hci_port}"),
                env,
                folder / "gateway.log",
            )
            processes.append(gateway)
            return self._measure(broker, simulator, gateway, sent_log, folder)
        finally:
            for process in reversed(processes):
                if process.returncode is None:
                    stop(process, timeout=15)
            subscriber.disconnect()
            subscriber.loop_stop()
            broker.stop()

    def _measure(
        self,
        broker: PrivateBroker,
        simulator: subprocess.Popen[bytes],
        gateway: subprocess.Popen[bytes],
        sent_log: Path,
        folder: Path,
    ) -> dict[str, Any]:
        r = self.received
        started = time.monotonic()
        connected = r.wait(
            lambda: sum(d.state == "connected" for d in r.devices) == self.devices,
            timeout=30 + self.devices,
        )
        if not connected:
            raise RuntimeError(f"not every device connected; see {folder}/gateway.log")
        self.progress(f"{self.devices} devices connected in {time.monotonic() - started:.0f} s")
        time.sleep(self.settle_s)
        first = self._next_status()
        window_start = time.monotonic()
        outage: dict[str, Any] = {}
        if self.outage_s:
            outage = self._outage(broker, folder, sent_log)
        remaining = self.duration_s - (time.monotonic() - window_start)
        time.sleep(max(0.0, remaining))
        last = self._next_status()
        window_s = time.monotonic() - window_start

        stop(simulator, timeout=15)  # the sent log is complete once the ward has stopped
        sent = _sent(sent_log)
        expected = sum(sent.values())
        drained = r.wait(lambda: sum(r.readings.values()) >= expected, timeout=120)
        if not drained:
            self.progress("the gateway did not deliver everything within 120 s")
        peak_rss_mb = stop_and_measure(gateway, timeout=30)
        with r.changed:
            lost = sum(max(0, n - r.readings[key]) for key, n in sent.items())
            # Battery levels are also read on connecting, which the wearables do not log.
            extra = sum(
                max(0, n - sent[key]) for key, n in r.readings.items() if key[1] != "battery"
            )
        readings = (last.readings or 0) - (first.readings or 0)
        cpu_s = (last.cpu_s or 0.0) - (first.cpu_s or 0.0)
        return {
            "devices": self.devices,
            "window_s": round(window_s, 1),
            "readings": readings,
            "readings_per_s": round(readings / window_s, 1),
            "cpu_ms_per_reading": round(cpu_s * 1000 / readings, 4) if readings else None,
            "cpu_share_of_one_core": round(cpu_s / window_s, 3),
            "peak_rss_mb": peak_rss_mb,
            "sent": expected,
            "lost": lost,
            "unexpected": extra,
            "batches_out_of_order": r.out_of_order,
            "batches_resent": r.duplicate_batches,
            **outage,
            "broker": broker.kind,
            "goals": GOALS,
        }

    def _next_status(self, timeout: float = 30) -> GatewayStatus:
        """The gateway's next 'online' status after now (published every few seconds; a
        restarted broker may first hand out the gateway's last will)."""
        r = self.received

        def fresh() -> bool:
            return (
                r.status is not previous
                and r.status is not None
                and r.status.state == Presence.ONLINE
            )

        with r.changed:
            previous = r.status
            if not r.changed.wait_for(fresh, timeout):
                raise RuntimeError("the gateway stopped publishing its status")
            assert r.status is not None
            return r.status

    def _outage(self, broker: PrivateBroker, folder: Path, sent_log: Path) -> dict[str, Any]:
        """Stop the broker for ``outage_s``, restart it on the same port and persistence;
        the backlog is read from the gateway's outbox file at the moment it comes back, and
        it has drained when the subscriber holds as many readings as were sent by then."""
        self.progress(f"broker down for {self.outage_s:.0f} s")
        broker.stop()
        time.sleep(self.outage_s)
        outbox = Outbox(folder / "gateway" / f"{GATEWAY_ID}.sqlite", GATEWAY_ID)
        backlog = outbox.depth()
        outbox.close()
        sent_by_then = sum(_sent(sent_log).values())
        broker.restart()
        back = time.monotonic()
        self.progress(f"broker back; backlog {backlog} readings")
        r = self.received
        if not r.wait(lambda: sum(r.readings.values()) >= sent_by_then, timeout=3600):
            raise RuntimeError("the backlog did not drain within an hour")
        return {
            "outage_s": self.outage_s,
            "backlog_readings": backlog,
            "drain_s": round(time.monotonic() - back, 1),
        }
