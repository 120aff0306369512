"""`vigil demo` as a new user meets it: it starts, reports, stops cleanly on Ctrl-C, and uses
the database and broker it is given."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from demo.cli import _demo
from tests.cli.test_main import vigil
from vigil.commands import UserError
from vigil.embedded import postgres
from vigil.embedded.processes import free_port, vigil_command
from vigil.settings import Settings


def test_busy_api_port_is_reported_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = vigil("demo", "--ephemeral", "--api-port", str(port))
    assert result.returncode == 2
    assert f"port {port} is already in use; choose another with --api-port" in result.stderr


def leftovers(marker: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if marker in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(cmdline)
    return found


@pytest.mark.slow
@pytest.mark.services
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


def link(lines: list[str], label: str) -> tuple[str, str]:
    """The page and the token of the link printed after ``label``."""
    (printed,) = [line.split(label, 1)[1].strip() for line in lines if line.startswith(label)]
    page, token = printed.split("#token=")
    return page, token


def signed_in_links_work(lines: list[str], app: str) -> None:
    """The printed links open the station as the demo's clinician and one patient's own
    view as that patient: their tokens are who the pages will be signed in as."""
    station, clinician = link(lines, "Dashboard:")
    mine, patient = link(lines, "Patient view:")
    assert (station, mine) == (app, f"{app}mine")
    assert httpx.get(station).status_code == httpx.get(mine).status_code == 200
    base = app.removesuffix("/app/")
    doctor = httpx.get(f"{base}/access", headers={"Authorization": f"Bearer {clinician}"})
    person = httpx.get(f"{base}/access", headers={"Authorization": f"Bearer {patient}"})
    assert doctor.json()["kind"] == "clinician" and doctor.json()["patients"] == ["p0001"]
    assert person.json()["kind"] == "patient" and person.json()["patients"] == ["p0001"]


@pytest.mark.slow
@pytest.mark.services
def test_ctrl_c_stops_everything_cleanly(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    port = free_port()
    demo = subprocess.Popen(
        [
            *vigil_command(),
            "demo",
            "--patients",
            "1",
            "--ephemeral",
            "--api-port",
            str(port),
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
    signed_in_links_work(lines, f"http://127.0.0.1:{port}/app/")
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


def test_timescaledb_not_installed_is_said_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "has_extension", lambda name: False)
    args = argparse.Namespace(api_port=free_port(), timescaledb=True)
    with pytest.raises(UserError, match=r"TimescaleDB is not installed .* `make timescaledb`"):
        _demo(args, Settings(database_url=None))


def test_timescaledb_with_a_database_of_ones_own_is_refused() -> None:
    result = vigil(
        "demo",
        "--timescaledb",
        "--ephemeral",
        "--api-port",
        str(free_port()),
        env={"VIGIL_DATABASE_URL": "postgresql://somewhere/vigil"},
    )
    assert result.returncode == 2
    assert "--timescaledb is for the embedded PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.services
def test_demo_stores_in_timescaledb_when_asked() -> None:
    if not postgres.has_extension("timescaledb"):
        pytest.skip("TimescaleDB is not installed in the embedded PostgreSQL (make timescaledb)")
    result = vigil(
        "demo",
        "--timescaledb",
        "--patients",
        "1",
        "--duration",
        "10s",
        "--ephemeral",
        "--api-port",
        str(free_port()),
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "starting embedded PostgreSQL with TimescaleDB" in result.stdout
    assert "storage: timescaledb" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["storage"] == "timescaledb"
    assert summary["readings_stored"] == summary["readings_published"] > 0
