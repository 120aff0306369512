"""A rest-hook endpoint for the tests: a real HTTP server on loopback (the standard
library's) that keeps what it was sent and can be told to refuse the next few POSTs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def bundle(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def kind(self) -> str:
        return parameter(self.bundle, "type")["valueCode"]

    @property
    def numbers(self) -> list[int]:
        return event_numbers(self.bundle)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    refusals: int = 0
    """POSTs still to answer 503 (each is counted in ``refused``)."""
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} notifications received, {count} expected")

    def events(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.kind == "event-notification"]


def parameter(bundle: dict[str, Any], name: str) -> dict[str, Any]:
    status = bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    return next(p for p in status["parameter"] if p["name"] == name)


def event_numbers(bundle: dict[str, Any]) -> list[int]:
    status = bundle["entry"][0]["resource"]
    return [
        int(next(part["valueString"] for part in p["part"] if part["name"] == "event-number"))
        for p in status["parameter"]
        if p["name"] == "notification-event"
    ]


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    got = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    server.receiver = got  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        got: Receiver = self.server.receiver  # type: ignore[attr-defined]
        with got.lock:
            refuse = got.refusals > 0
            if refuse:
                got.refusals -= 1
                got.refused += 1
            else:
                got.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(503 if refuse else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
