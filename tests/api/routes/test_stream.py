"""Alert changes as they happen: `vigil alerts tail` in a terminal, and the server-sent
events stream for dashboards from a real `vigil api` process."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from alerts.outbox import Channels
from alerts.store import act, take_event
from api.app import POOL_SIZE
from tests.alerts.test_store import event
from tests.api.access.ward import ward
from tests.api.conftest import clinician_token
from vigil.embedded.processes import free_port, spawn, stop, vigil_command, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.services]


def raise_alert(url: str, **extra: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        alert_id = take_event(conn, event("persisted", **extra), Channels())
    assert alert_id is not None
    return alert_id


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = clinician_token(conn, "dashboard", ["p1", "p2"])
    port = free_port()
    process = spawn(
        vigil_command("api", "--port", str(port)),
        {"VIGIL_DATABASE_URL": database_url},
        tmp_path / "api.log",
    )
    try:
        assert wait_for_port(port, 30, process), (tmp_path / "api.log").read_text()
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        stop(process)


def test_a_dashboard_receives_alert_changes_as_server_sent_events(
    api: tuple[str, dict[str, str]], database_url: str
) -> None:
    base, auth = api
    first = raise_alert(database_url)
    received = []
    with httpx.stream(
        "GET", f"{base}/alerts/stream", headers={**auth, "Last-Event-ID": "0"}, timeout=15
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                received.append(json.loads(line[6:]))
                if len(received) == 1:  # the backlog since 0; now a change made live
                    with (
                        psycopg.connect(database_url, autocommit=True) as conn,
                        conn.transaction(),
                    ):
                        act(conn, first, "acknowledged", "nurse-a")
                if len(received) == 2:
                    break
    assert [(c["alert"], c["change"], c["actor"]) for c in received] == [
        (first, "triggered", "vigil-alerts"),
        (first, "acknowledged", "nurse-a"),
    ]
    denied = httpx.get(f"{base}/alerts/stream", timeout=5)
    assert denied.status_code == 401


def open_stream(base: str, token: str) -> tuple[socket.socket, bytes]:
    host, port = base.removeprefix("http://").split(":")
    dashboard = socket.create_connection((host, int(port)), timeout=10)
    dashboard.sendall(
        f"GET /alerts/stream HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return dashboard, dashboard.recv(64)


def test_200_open_streams_leave_the_rest_of_the_api_answering(
    api: tuple[str, dict[str, str]], database_url: str
) -> None:
    base, auth = api
    with psycopg.connect(database_url, autocommit=True) as conn:
        tokens = [clinician_token(conn, f"desk-{i}", ["p1"]) for i in range(40)]
    dashboards = []
    try:
        for token in tokens:
            for _ in range(5):  # VIGIL_API_STREAMS_PER_PRINCIPAL
                dashboard, head = open_stream(base, token)
                dashboards.append(dashboard)
                assert head.startswith(b"HTTP/1.1 200")
        assert len(dashboards) == 200 > 3 * POOL_SIZE
        extra, head = open_stream(base, tokens[0])
        extra.close()
        assert head.startswith(b"HTTP/1.1 429")
        answer = httpx.get(f"{base}/alerts", headers=auth, timeout=5)
        assert answer.status_code == 200
        refused = httpx.get(f"{base}/alerts", timeout=5)
        assert refused.status_code == 401
    finally:
        for dashboard in dashboards:
            dashboard.close()


def test_a_stream_shows_only_the_callers_patients_and_audits_each_delivery(
    api: tuple[str, dict[str, str]], database_url: str
) -> None:
    base, auth = api
    raise_alert(database_url, patient="p-elsewhere")
    mine = raise_alert(database_url, patient="p2")
    with httpx.stream(
        "GET", f"{base}/alerts/stream", headers={**auth, "Last-Event-ID": "0"}, timeout=15
    ) as response:
        line = next(x for x in response.iter_lines() if x.startswith("data: "))
    assert json.loads(line[6:])["alert"] == mine
    with psycopg.connect(database_url) as conn:
        deliveries = conn.execute(
            "SELECT actor, patients FROM audit_event WHERE action = 'deliver'"
        ).fetchall()
    assert deliveries == [("dashboard", ["p2"])]


def test_vigil_alerts_tail_prints_changes_as_they_happen(database_url: str) -> None:
    earlier = raise_alert(database_url, patient="p-old")
    tail = subprocess.Popen(
        [*vigil_command(), "alerts", "tail"],
        env={"VIGIL_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        first = tail.stdout.readline()
        assert f"alert {earlier} high" in first and "triggered by vigil-alerts" in first
        later = raise_alert(database_url, patient="p-new")
        second = tail.stdout.readline()
        assert f"alert {later}" in second and "p-new" in second
    finally:
        tail.terminate()
        assert tail.wait(10) == 0


def test_streams_dropped_before_their_first_event_give_their_place_back(
    database_url: str,
) -> None:
    with ward(database_url) as w:
        host, port = w.base.removeprefix("http://").split(":")
        for _ in range(3 * 5):  # three times the per-principal limit, each gone at once
            with socket.create_connection((host, int(port))) as dropped:
                dropped.sendall(
                    b"GET /alerts/stream HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: Bearer {w.tokens['dr-north']}\r\n\r\n".encode()
                )
        time.sleep(0.5)
        held = [open_stream(w.base, w.tokens["dr-north"]) for _ in range(5)]
        try:
            assert all(head.startswith(b"HTTP/1.1 200") for _, head in held)
        finally:
            for dashboard, _ in held:
                dashboard.close()


def test_a_resumed_stream_catches_up_on_everything_it_missed(database_url: str) -> None:
    with ward(database_url) as w:
        with psycopg.connect(w.url, autocommit=True) as conn:
            first = conn.execute("SELECT max(id) FROM alert_change").fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO alert_change (alert, change, actor)"
                " SELECT %s, 'noted', 'nurse-' || i FROM generate_series(1, 1200) i",
                (w.alerts["pn1"],),
            )
        seen = []
        headers = {**w.auth("dr-north"), "Last-Event-ID": str(first)}
        with httpx.stream("GET", f"{w.base}/alerts/stream", headers=headers, timeout=20) as r:
            for line in r.iter_lines():
                if line.startswith("id: "):
                    seen.append(int(line[4:]))
                    if len(seen) == 1200:
                        break
        assert seen == list(range(first + 1, first + 1201))
        for odd in ("9" * 5000, "-1", "0x10"):
            head = httpx.stream(
                "GET",
                f"{w.base}/alerts/stream",
                headers={**w.auth("pn1"), "Last-Event-ID": odd},
                timeout=5,
            )
            with head as r:
                assert r.status_code == 200
