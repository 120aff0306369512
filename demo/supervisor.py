"""`vigil demo`: the whole platform on one machine, with simulated patients.

The demo is a supervisor. It starts (or uses, when VIGIL_DATABASE_URL / VIGIL_MQTT_URL are
set) PostgreSQL and a broker, then runs each service as its own `vigil` process, exactly as
in production: ingest, analytics, alerts, the API, and a gateway serving simulated
wearables, two of whose patients go through scripted episodes (a desaturation, a
tachycardia). A small receiver in the demo stands in for the care team's webhook and
prints what a clinician is told. It prints a
status line every few seconds; on Ctrl-C or after --duration it stops the gateway first
(so its outbox drains), waits for ingest to store what was published, stops the rest, and
prints a summary whose last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from alerts.queries import tally
from alerts.teams import add_team, assign
from api.access.tokens import create_client
from demo.desk import ClinicianDesk, EventCounter
from ingest import partitions
from ingest.stats import ingest_stats
from simulators.ble.ward import patient_id
from vigil.commands import stop_event
from vigil.db.migrate import migrate
from vigil.embedded.broker import PrivateBroker, start_broker
from vigil.embedded.postgres import EmbeddedPostgres, preloading_timescaledb, start_postgres
from vigil.embedded.processes import spawn, start_service, stop, vigil_command, wait_for_port
from vigil.mqtt import Watcher
from vigil.settings import Settings
from vigil.wire.status import GatewayStatus, Presence, ServiceStatus
from vigil.wire.topics import Topics, service_status

GATEWAY_ID = "demo-gw"
INGEST_ID = "demo-ingest"
ANALYTICS_ID = "demo-analytics"
ALERTS_ID = "demo-alerts"
STATUS_EVERY_S = 5.0
DEMO_TEAM = "demo-ward"


class Demo:
    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.stop_requested = stop_event()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.gateway_topic = Topics(GATEWAY_ID).status
        self.status: Watcher | None = None
        self.events: EventCounter | None = None
        self.desk: ClinicianDesk | None = None
        self._postgres: EmbeddedPostgres | None = None
        self._broker: PrivateBroker | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None

    def run(self) -> int:
        data = self._data_dir()
        started = datetime.now(UTC)
        try:
            database_url, mqtt_url = self._infrastructure(data)
            with psycopg.connect(database_url, autocommit=True) as conn:
                migrate(conn)
                storage = self._storage(conn, data)
                token = self._clinician(conn)
                patient_token = create_client(
                    conn, "demo-patient", "patient", patient=patient_id(0)
                )
            env = {
                "VIGIL_DATABASE_URL": database_url,
                "VIGIL_MQTT_URL": mqtt_url,
                "VIGIL_GATEWAY_ID": GATEWAY_ID,
                "VIGIL_GATEWAY_DATA_DIR": str(data / "gateway"),
                "VIGIL_INGEST_CLIENT_ID": INGEST_ID,
                "VIGIL_ANALYTICS_CLIENT_ID": ANALYTICS_ID,
                "VIGIL_ANALYTICS_STATE_DIR": str(data / "analytics"),
                "VIGIL_ALERTS_CLIENT_ID": ALERTS_ID,
                # Open mode: the demo's gateway and patients are not enrolled, and a database
                # given in VIGIL_DATABASE_URL may have enrollments; ingest and analytics warn
                # loudly.
                "VIGIL_INGEST_ENROLLED_ONLY": "off",
                "VIGIL_LOG_LEVEL": "WARNING",
            }
            logs = data / "logs"
            self._watch_status(mqtt_url)
            # Readings published before ingest's session exists would have no subscriber.
            self._start_service("ingest", INGEST_ID, env, logs)
            self.events = EventCounter(self.settings.model_copy(update={"mqtt_url": mqtt_url}))
            self._start_service("analytics", ANALYTICS_ID, env, logs)
            self.desk = ClinicianDesk()
            alerts_env = {
                **env,
                "VIGIL_ALERTS_WEBHOOK_URLS": self.desk.url,
                "VIGIL_ALERTS_WEBHOOK_SECRET": self.desk.secret,
            }
            self._start_service("alerts", ALERTS_ID, alerts_env, logs)
            self.processes["api"] = spawn(
                vigil_command("api", "--port", str(self.args.api_port)), env, logs / "api.log"
            )
            self.processes["gateway"] = spawn(
                vigil_command("gateway", "--simulate", str(self.args.patients), "--scripted"),
                env,
                logs / "gateway.log",
            )
            if not wait_for_port(self.args.api_port, 30, self.processes["api"]):
                raise RuntimeError(f"the API did not start; see {logs / 'api.log'}")
            self._announce(token, patient_token, data)
            self._monitor(database_url, started)
            summary = {**self._shutdown(database_url, started), "storage": storage}
        except RuntimeError as exc:
            print(f"vigil demo: {exc}", file=sys.stderr)
            self._stop_everything()
            return 1
        finally:
            self._stop_everything()
        self._print_summary(summary)
        return 0

    # -- setup ----------------------------------------------------------------------------

    def _data_dir(self) -> Path:
        if self.args.ephemeral:
            self._temp = tempfile.TemporaryDirectory(prefix="vigil-demo-")
            return Path(self._temp.name)
        path = Path(self.args.data_dir).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _infrastructure(self, data: Path) -> tuple[str, str]:
        database_url = self.settings.database_url
        if not database_url:
            timescaledb = preloading_timescaledb() if self.args.timescaledb else None
            print(
                f"starting embedded PostgreSQL{' with TimescaleDB' if timescaledb else ''} ...",
                flush=True,
            )
            folder = None if self.args.ephemeral else data / "postgres"
            self._postgres = start_postgres(folder, timescaledb)
            database_url = self._postgres.url
        mqtt_url = self.settings.mqtt_url
        if not mqtt_url:
            self._broker = start_broker(data / "broker")
            mqtt_url = self._broker.url
            print(f"started {self._broker.kind} broker at {mqtt_url}", flush=True)
            if self._broker.kind == "amqtt":
                print(
                    "note: Mosquitto is not installed; the embedded amqtt broker does not keep "
                    "messages for a disconnected ingest, so a crash can lose in-flight batches "
                    "(apt install mosquitto / brew install mosquitto)",
                    flush=True,
                )
        return database_url, mqtt_url

    def _storage(self, conn: psycopg.Connection, data: Path) -> str:
        """Which storage the database has, said; a data folder made before without
        TimescaleDB keeps its native partitions, the choice being made at the first migration."""
        storage = partitions.storage(conn)
        print(f"storage: {storage}", flush=True)
        if self.args.timescaledb and storage != "timescaledb":
            print(
                f"note: the database in {data / 'postgres'} was made with native partitions "
                "and keeps them; for TimescaleDB use --ephemeral or a new --data-dir",
                flush=True,
            )
        return storage

    def _watch_status(self, mqtt_url: str) -> None:
        """Follow the gateway's and the services' retained status topics."""
        settings = self.settings.model_copy(update={"mqtt_url": mqtt_url})
        topics: dict[str, Callable[[bytes], object]] = {self.gateway_topic: GatewayStatus.decode}
        for client_id in (INGEST_ID, ANALYTICS_ID, ALERTS_ID):
            topics[service_status(client_id)] = ServiceStatus.decode
        self.status = Watcher(settings, topics, f"demo-monitor-{time.time_ns()}")

    def _clinician(self, conn: psycopg.Connection) -> str:
        """The demo ward's team, its patients, and a token for a clinician on it."""
        add_team(conn, DEMO_TEAM, "Demo ward")
        for index in range(self.args.patients):
            assign(conn, patient_id(index), DEMO_TEAM)
        return create_client(conn, "demo-clinician", teams=[DEMO_TEAM])

    def _start_service(self, name: str, client_id: str, env: dict[str, str], logs: Path) -> None:
        assert self.status is not None
        log = logs / f"{name}.log"
        self.processes[name] = start_service([name], client_id, env, log, self.status, 30)

    def _announce(self, token: str, patient_token: str, data: Path) -> None:
        base = f"http://127.0.0.1:{self.args.api_port}"
        print(f"Vigil demo: {self.args.patients} simulated patients, data in {data}")
        print(
            "Open mode: ingest stores whatever any gateway sends; a deployment enrolls its "
            "gateways and their patients' devices (`vigil enroll`)"
        )
        print(f"API:   {base}/fhir/metadata")
        print(f"Dashboard:    {base}/app/#token={token}")
        print(f"Patient view: {base}/app/mine#token={patient_token}")
        print(f"Token: {token}")
        print(
            f"Try:   curl -H 'Authorization: Bearer {token}' "
            f"'{base}/fhir/Observation?subject=Patient/p0001&_count=5'"
        )
        print(
            "Ctrl-C stops everything."
            if self.args.duration is None
            else f"Running for {self.args.duration:.0f} s.",
            flush=True,
        )

    # -- running --------------------------------------------------------------------------

    def _monitor(self, database_url: str, started: datetime) -> None:
        deadline = None if self.args.duration is None else time.monotonic() + self.args.duration
        last_stored, last_time = 0, time.monotonic()
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not self.stop_requested.is_set():
                wait = STATUS_EVERY_S
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait > 0 and self.stop_requested.wait(wait):
                    break
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"the {name} service exited with {process.returncode}")
                stats = ingest_stats(conn, started)
                now = time.monotonic()
                rate = (stats.readings_stored - last_stored) / max(now - last_time, 1e-6)
                last_stored, last_time = stats.readings_stored, now
                lag = _lag_s(stats.newest_measurement)
                print(
                    f"patients {self.args.patients} | readings/s {rate:7.1f} | "
                    f"stored {stats.readings_stored} | lag {lag} | "
                    f"outbox {_or(self._gateway_status().outbox_depth, '?')} | "
                    f"events {self._events('all')} (alert candidates {self._events('persisted')})",
                    flush=True,
                )
                if deadline is not None and time.monotonic() >= deadline:
                    break

    def _shutdown(self, database_url: str, started: datetime) -> dict[str, Any]:
        print("stopping: draining the gateway outbox ...", flush=True)
        stop(self.processes["gateway"], timeout=30)
        if self.status is not None:  # the gateway's last status carries its final counts
            self.status.wait_for_state(self.gateway_topic, Presence.OFFLINE, 5)
        published = self._gateway_status().published or 0
        with psycopg.connect(database_url, autocommit=True) as conn:
            deadline = time.monotonic() + 20
            stats = ingest_stats(conn, started)
            while (
                stats.readings_stored + stats.duplicates < published and time.monotonic() < deadline
            ):
                time.sleep(0.2)
                stats = ingest_stats(conn, started)
        return {
            "patients": self.args.patients,
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "readings_published": published,
            "readings_stored": stats.readings_stored,
            "duplicates": stats.duplicates,
            "dead_letters": stats.dead_letters,
            "outbox_left": self._gateway_status().outbox_depth,
            "lag_s": _lag_s(stats.newest_measurement, raw=True),
            "analytics_events": self._events("all"),
            "alert_candidates": self._events("persisted"),
            **_tally(database_url),
        }

    def _stop_everything(self) -> None:
        for name in ("gateway", "analytics", "alerts", "ingest", "api"):
            process = self.processes.pop(name, None)
            if process is not None:
                stop(process)
        if self.status is not None:
            self.status.close()
            self.status = None
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.desk is not None:
            self.desk.close()
            self.desk = None
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def _events(self, kind: str) -> int:
        return self.events.count(kind) if self.events else 0

    def _gateway_status(self) -> GatewayStatus:
        latest = self.status.get(self.gateway_topic, GatewayStatus) if self.status else None
        return latest or GatewayStatus(GATEWAY_ID, Presence.OFFLINE)

    @staticmethod
    def _print_summary(summary: dict[str, Any]) -> None:
        print(
            f"storage {summary['storage']}: published {summary['readings_published']} readings, "
            f"stored {summary['readings_stored']}, duplicates {summary['duplicates']}, "
            f"dead letters {summary['dead_letters']}; analytics events "
            f"{summary['analytics_events']}, alert candidates {summary['alert_candidates']}; "
            f"alerts raised {summary['alerts_raised']}, notifications delivered "
            f"{summary['notifications_delivered']} (failed {summary['notifications_failed']})"
        )
        print(json.dumps(summary), flush=True)


def _tally(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return tally(conn)


def _lag_s(newest: datetime | None, raw: bool = False) -> Any:
    if newest is None:
        return None if raw else "-"
    lag = round((datetime.now(UTC) - newest).total_seconds(), 1)
    return lag if raw else f"{lag:.1f} s"


def _or(value: object, missing: str) -> str:
    return missing if value is None else str(value)
