"""`vigil bench api`: what open dashboards cost everyone else.

A real `vigil api` process on an embedded PostgreSQL; the latency of an ordinary request (a
clinician's Observation search, authorized, audited and answered) is measured with no alert
stream open, then again with ``streams`` streams held open by clinicians (five each, the
default per-principal limit). Both are sequential requests from one client, so they time
the server's path and not the client's queueing. The goal: the same latency either way.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from alerts.teams import add_team, assign
from api.access.tokens import create_client
from vigil.db.migrate import migrate
from vigil.embedded.postgres import start_postgres
from vigil.embedded.processes import free_port, spawn, stop, vigil_command, wait_for_port

PER_PRINCIPAL = 5
WARM_UP = 20


class ApiBench:
    def __init__(self, streams: int, requests: int, folder: Path) -> None:
        self.streams = streams
        self.requests = requests
        self.folder = folder

    def run(self) -> dict[str, Any]:
        postgres = start_postgres(self.folder / "pg")
        try:
            return self._run(postgres.url)
        finally:
            postgres.stop()

    def _run(self, database_url: str) -> dict[str, Any]:
        holders = -(-self.streams // PER_PRINCIPAL)
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
            add_team(conn, "bench-ward")
            assign(conn, "p0001", "bench-ward")
            reader = create_client(conn, "bench-reader", teams=["bench-ward"])
            desks = [
                create_client(conn, f"bench-desk-{i}", teams=["bench-ward"]) for i in range(holders)
            ]
        port = free_port()
        api = spawn(
            vigil_command("api", "--port", str(port)),
            {"VIGIL_DATABASE_URL": database_url, "VIGIL_LOG_LEVEL": "WARNING"},
            self.folder / "api.log",
        )
        held: list[socket.socket] = []
        try:
            if not wait_for_port(port, 30, api):
                raise RuntimeError(f"the API did not start; see {self.folder / 'api.log'}")
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            idle = self._latencies(client, reader)
            for i in range(self.streams):
                held.append(_open_stream(port, desks[i // PER_PRINCIPAL]))
            print(f"{len(held)} streams open", file=sys.stderr, flush=True)
            busy = self._latencies(client, reader)
            client.close()
        finally:
            for stream in held:
                stream.close()
            stop(api)
        return {
            "streams": self.streams,
            "requests": self.requests,
            "no_streams_ms": idle,
            "with_streams_ms": busy,
            "p50_ratio": round(busy["p50"] / idle["p50"], 3),
            "goal": "p50_ratio about 1: open streams cost other requests nothing",
        }

    def _latencies(self, client: http.client.HTTPConnection, token: str) -> dict[str, float]:
        """Milliseconds per search, over one kept-alive connection."""
        took = []
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(WARM_UP + self.requests):
            started = time.perf_counter()
            client.request("GET", "/fhir/Observation?patient=p0001&_count=10", headers=headers)
            answer = client.getresponse()
            body = answer.read()
            elapsed = time.perf_counter() - started
            if answer.status != 200:
                raise RuntimeError(f"the search answered {answer.status}: {body[:200]!r}")
            if i >= WARM_UP:
                took.append(elapsed * 1000)
        cuts = statistics.quantiles(took, n=100)
        return {"p50": round(statistics.median(took), 2), "p99": round(cuts[98], 2)}


def _open_stream(port: int, token: str) -> socket.socket:
    stream = socket.create_connection(("127.0.0.1", port), timeout=30)
    stream.sendall(
        b"GET /alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    head = stream.recv(64)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"a stream was refused: {head!r}")
    return stream
