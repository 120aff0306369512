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
import sys
from pathlib import Path
from typing import Any

import psycopg

from alerts.teams import add_team, assign
from api.access.tokens import create_client
from bench.served import api_process, embedded_database, timed
from vigil.db.migrate import migrate

PER_PRINCIPAL = 5


class ApiBench:
    def __init__(self, streams: int, requests: int, folder: Path) -> None:
        self.streams = streams
        self.requests = requests
        self.folder = folder

    def run(self) -> dict[str, Any]:
        with embedded_database(self.folder) as url:
            return self._run(url)

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
        held: list[socket.socket] = []
        with api_process(database_url, self.folder) as port:
            try:
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
        headers = {"Authorization": f"Bearer {token}"}

        def search() -> None:
            client.request("GET", "/fhir/Observation?patient=p0001&_count=10", headers=headers)
            answer = client.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"the search answered {answer.status}: {body[:200]!r}")

        return timed(search, self.requests)


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
