"""The command line as a user meets it: clear errors, and a demo that starts and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from vigil.embedded.processes import free_port, vigil_command


def test_pair_list_when_nothing_is_paired(tmp_path: Path) -> None:
    result = vigil("pair", "--list", env={"VIGIL_GATEWAY_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "no paired devices; pair one with `vigil pair`" in result.stdout


def vigil(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run(
        [*vigil_command(), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["demo", "--duration", "3x"], "is not a duration; use a number with a unit"),
        (["demo", "--patients", "0"], "is not a whole number of at least 1"),
        (["demo", "--api-port", "70000"], "is not a TCP port"),
        (["gateway", "--simulate", "2", "--pair", "C1:00:00:00:00:01=p1"], "not allowed with"),
        (["gateway", "--pair", "nonsense"], "is not ADDRESS=PATIENT"),
        (["ingest"], "no database: set VIGIL_DATABASE_URL"),
        (["migrate"], "no database: set VIGIL_DATABASE_URL"),
        (["gateway", "--simulate", "1"], "no broker: set VIGIL_MQTT_URL"),
        (["pair", "--device", "C1:00:00:00:00:01"], "--device needs --patient"),
        (["pair", "--patient", "p1"], "--patient goes with --device ADDRESS"),
        (["pair", "--remove", "C1:00:00:00:00:09"], "is not paired (see `vigil pair --list`)"),
        (["pair", "--list", "--remove", "x"], "not allowed with argument"),
        (["bench", "gateway", "--devices", "3"], "--devices 3: use an even number"),
        (["simulate"], "one of the arguments --trace --patients is required"),
        (["simulate", "--patients", "1", "--hci", "carrier-pigeon:x"], "cannot serve on"),
    ],
)
def test_bad_arguments_say_what_is_wrong(args: list[str], words: str) -> None:
    result = vigil(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_api_port_is_reported_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = vigil("demo", "--ephemeral", "--api-port", str(port))
    assert result.returncode == 2
    assert f"port {port} is already in use; choose another with --api-port" in result.stderr


def test_a_gateway_without_its_hci_controller_is_one_line() -> None:
    hci = f"tcp-client:127.0.0.1:{free_port()}"
    result = vigil("gateway", "--hci", hci, env={"VIGIL_MQTT_URL": "mqtt://127.0.0.1:1"})
    assert result.returncode == 2
    assert f"no Bluetooth controller on {hci}" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line() -> None:
    result = vigil("migrate", env={"VIGIL_DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/x"})
    assert result.returncode == 2
    assert "cannot connect to the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_reported() -> None:
    result = vigil("migrate", env={"VIGIL_API_PORT": "many"})
    assert result.returncode == 2
    assert "vigil: VIGIL_API_PORT: Input should be a valid integer" in result.stderr
    assert "(got 'many')" in result.stderr


def leftovers(marker: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if marker in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(cmdline)
    return found


@pytest.mark.slow
def test_demo_runs_for_a_duration_and_reports(tmp_path: Path) -> None:
    port = free_port()
    result = vigil(
        "demo",
        "--patients",
        "2",
        "--duration",
        "40s",
        "--api-port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["readings_published"] > 20
    assert summary["readings_stored"] == summary["readings_published"]
    assert summary["duplicates"] == 0 and summary["dead_letters"] == 0
    assert f"http://127.0.0.1:{port}/fhir/metadata" in result.stdout
    assert "| readings/s" in result.stdout
    assert leftovers(str(tmp_path)) == []
    assert (tmp_path / "data" / "postgres").is_dir()  # not --ephemeral: data stays
    # analytics scored the readings and saved its state at shutdown; the first patient's
    # scripted desaturation became an alert the care team (the demo's receiver) and the
    # patient (the gateway inbox) were told of
    assert summary["analytics_events"] >= summary["alert_candidates"] >= 1
    assert (tmp_path / "data" / "analytics" / "engine-0-of-1.npz").is_file()
    assert summary["alerts_raised"] >= 1 and summary["notifications_failed"] == 0
    assert summary["notifications_delivered"] >= 2
    assert "care team told: HIGH spo2_desaturation for p0001" in result.stdout
    assert (tmp_path / "data" / "gateway" / "inbox.jsonl").is_file()


@pytest.mark.slow
def test_ctrl_c_stops_everything_cleanly(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    demo = subprocess.Popen(
        [
            *vigil_command(),
            "demo",
            "--patients",
            "1",
            "--ephemeral",
            "--api-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean,
    )
    assert demo.stdout is not None
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if "| readings/s" in line:
            break
    children = [p.pid for p in psutil.Process(demo.pid).children(recursive=True)]
    assert len(children) >= 4  # broker, ingest, api, gateway (and postgres)
    demo.send_signal(signal.SIGINT)
    out, err = demo.communicate(timeout=90)
    assert demo.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["readings_stored"] == summary["readings_published"] > 0
    assert "Traceback" not in err
    alive = [
        pid
        for pid in children
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []


@pytest.mark.slow
@pytest.mark.services
def test_demo_uses_the_configured_database_and_broker(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    result = vigil(
        "demo",
        "--patients",
        "1",
        "--duration",
        "5s",
        "--api-port",
        str(free_port()),
        "--data-dir",
        str(tmp_path),
        env={"VIGIL_DATABASE_URL": database_url, "VIGIL_MQTT_URL": mqtt_url},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "starting embedded PostgreSQL" not in result.stdout
    assert "broker at" not in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    with psycopg.connect(database_url) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM observation").fetchone()  # type: ignore[misc]
    assert stored == summary["readings_stored"] == summary["readings_published"] > 0
    assert not (tmp_path / "postgres").exists()
