"""`vigil bench latency`: from a reading's publication to the care team's webhook.

5,000 patients (50 gateways of 100) at 1 Hz: every second each gateway publishes one batch
of its patients' SpO2 and pulse to a private broker, where `vigil ingest`, `vigil
analytics` and `vigil alerts` run as their own processes against a private PostgreSQL,
and a webhook receiver in the bench process stands in for the care team. Once a second
from the tenth, one more patient desaturates: SpO2 96 -> 92 -> 88 -> 84, 4 points a second
(as fast as a real desaturation; a faster step would be an artefact). These patients'
desaturation rule has next to no persistence (1 %·s, a patients file as a care team would
write it), so the batch carrying the first reading below 88 % is the moment the alert is due.
Latency is the webhook's arrival minus that batch's publication, both on this machine's
clock. The gateways are stood in for by one client publishing their batches (the
gateway's own costs are `vigil bench gateway`'s).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from vigil import metrics
from vigil.db.migrate import migrate
from vigil.embedded.processes import start_service, stop
from vigil.embedded.stack import private_stack
from vigil.mqtt import Watcher, connect
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.topics import Topics

GOALS = {"p99_ms": 1000}
FALL = (92.0, 88.0, 84.0)
"""An injected patient's SpO2 in the three seconds after the start of the event."""
FIRST_EVENT_S = 10
SECRET = "bench-latency"


class _Arrivals:
    """The bench's webhook receiver: when each patient's desaturation alert arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.messages = 0
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()
                arrivals.messages += 1
                for alert in body["alerts"]:
                    if alert["rule"] == "spo2_desaturation":
                        arrivals.at.setdefault(alert["patient"], received)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/care-team"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LatencyBench:
    def __init__(
        self,
        patients: int = 5000,
        gateways: int = 50,
        seconds: int = 60,
        progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        if patients % gateways:
            raise ValueError(f"{patients} patients do not split evenly over {gateways} gateways")
        self.patients = patients
        self.gateways = gateways
        self.seconds = seconds
        self.progress = progress
        events = max(0, min(seconds - FIRST_EVENT_S - len(FALL), patients))
        self.injected = [f"p{(i * 7919) % patients:05d}" for i in range(events)]
        """One patient a second, spread over the gateways (7919 is prime)."""

    def run(self) -> dict[str, Any]:
        with private_stack("vigil-latency-") as (folder, database_url, mqtt_url):
            return self._run(folder, database_url, mqtt_url)

    def _run(self, folder: Path, database_url: str, mqtt_url: str) -> dict[str, Any]:
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
        patients_file = folder / "patients.json"
        # the first reading below 88 % (84 %, 4 %·s in its second) is past 1 %·s
        no_delay = {"thresholds": {"spo2_desaturation": {"sat_seconds": 1}}}
        patients_file.write_text(json.dumps({p: no_delay for p in self.injected}))
        receiver = _Arrivals()
        env = {"VIGIL_DATABASE_URL": database_url, "VIGIL_MQTT_URL": mqtt_url}
        env["VIGIL_LOG_LEVEL"] = "WARNING"
        services = {
            "ingest": ({"VIGIL_INGEST_CLIENT_ID": "bench-ingest"}, "bench-ingest"),
            "analytics": (
                {
                    "VIGIL_ANALYTICS_CLIENT_ID": "bench-analytics",
                    "VIGIL_ANALYTICS_STATE_DIR": str(folder / "analytics"),
                    "VIGIL_ANALYTICS_PATIENTS_FILE": str(patients_file),
                },
                "bench-analytics",
            ),
            "alerts": (
                {
                    "VIGIL_ALERTS_CLIENT_ID": "bench-alerts",
                    "VIGIL_ALERTS_WEBHOOK_URLS": receiver.url,
                    "VIGIL_ALERTS_WEBHOOK_SECRET": SECRET,
                },
                "bench-alerts",
            ),
        }
        settings = Settings(mqtt_url=mqtt_url)
        status = Watcher.services(settings, [i for _, i in services.values()], "bench-latency")
        processes = {}
        try:
            for name, (extra, client_id) in services.items():
                log = folder / f"{name}.log"
                processes[name] = start_service([name], client_id, {**env, **extra}, log, status)
            self.progress(f"{self.patients} patients on {self.gateways} gateways, streaming")
            published = self._stream(settings)
            deadline = time.time() + 30
            while len(receiver.at) < len(self.injected) and time.time() < deadline:
                time.sleep(0.1)
        finally:
            status.close()
            for process in processes.values():
                stop(process, timeout=30)
            receiver.close()
        latencies = sorted(
            (receiver.at[p] - published[p]) * 1000 for p in self.injected if p in receiver.at
        )
        return {
            "patients": self.patients,
            "gateways": self.gateways,
            "seconds": self.seconds,
            "readings_per_s": 2 * self.patients,
            "events": len(self.injected),
            "delivered": len(latencies),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
            "max_ms": round(latencies[-1], 1) if latencies else None,
            "webhook_messages": receiver.messages,
            "goals": GOALS,
        }

    def _stream(self, settings: Settings) -> dict[str, float]:
        """Publish a batch per gateway per second in real time; returns, per injected
        patient, when the batch with their first reading below 88 % was published."""
        rng = np.random.default_rng(5)
        per_gateway = self.patients // self.gateways
        starts = {p: FIRST_EVENT_S + i for i, p in enumerate(self.injected)}
        published: dict[str, float] = {}
        client = connect(settings, "bench-latency-gateways", max_inflight=1000)
        try:
            began = time.time()
            for second in range(self.seconds):
                time.sleep(max(0.0, began + second - time.time()))
                now_ms = int(time.time() * 1000)
                for g in range(self.gateways):
                    names = [f"p{g * per_gateway + i:05d}" for i in range(per_gateway)]
                    spo2 = rng.integers(95, 98, per_gateway).astype(np.float64)
                    for i, name in enumerate(names):
                        step = second - starts.get(name, 10**9)
                        if step >= 0:
                            spo2[i] = FALL[min(step, len(FALL) - 1)]
                    pulse = rng.normal(72, 3, per_gateway).round()
                    batch = Batch(
                        gateway=f"bench-gw-{g:03d}",
                        seq=second,
                        sent=now_ms,
                        device=tuple(f"PLX-{n}" for n in names) * 2,
                        patient=tuple(names) * 2,
                        metric=np.r_[
                            np.full(per_gateway, metrics.SPO2.id),
                            np.full(per_gateway, metrics.PULSE_RATE.id),
                        ].astype(np.int16),
                        time=np.full(2 * per_gateway, now_ms, np.int64),
                        value=np.r_[spo2, pulse],
                        flags=np.zeros(2 * per_gateway, np.int32),
                    )
                    sent_at = time.time()
                    client.publish(Topics(batch.gateway).readings, batch.encode(), qos=1)
                    for name in names:
                        if second - starts.get(name, 10**9) == len(FALL) - 1:
                            published[name] = sent_at
        finally:
            client.disconnect()
            client.loop_stop()
        return published
