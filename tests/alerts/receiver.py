"""A local webhook receiver for the alerts tests: a real HTTP server that records what it
got, checks signatures, and can be told to fail the first N requests or to hold its answers
until released."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.channels import SIGNATURE_HEADER, verify

SECRET = "s3cret"
"""What the tests' webhooks are signed with."""


@dataclass
class Receiver:
    secret: str
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request: key, signature_ok, body (parsed), answered (status)."""
    release: threading.Event = field(default_factory=threading.Event)
    """Answers wait for this (set from the start; clear it to hold them, up to a minute)."""
    arrived: threading.Event = field(default_factory=threading.Event)
    """Set when a request has come in."""

    def __post_init__(self) -> None:
        receiver = self
        self.release.set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.set()
                receiver.release.wait(60)
                failing = len(receiver.requests) < receiver.fail_first
                receiver.requests.append(
                    {
                        "path": self.path,
                        "key": self.headers.get("Idempotency-Key"),
                        "signature_ok": verify(
                            receiver.secret, body, self.headers.get(SIGNATURE_HEADER)
                        ),
                        "body": json.loads(body),
                        "answered": 503 if failing else 200,
                    }
                )
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/vigil"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> dict[str, dict[str, Any]]:
        """What a receiver that honours idempotency keys keeps: the first success per key."""
        kept: dict[str, dict[str, Any]] = {}
        for r in self.requests:
            if r["answered"] == 200 and r["key"] not in kept:
                kept[r["key"]] = r
        return kept

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
