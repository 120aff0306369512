"""What the demo shows of the alerts: a stand-in for the care team's webhook, and a count of
the analytics events its patients cause."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.channels import SIGNATURE_HEADER, verify
from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings
from vigil.wire.errors import WireError
from vigil.wire.events import AnalyticsEvent
from vigil.wire.topics import EVENTS


class ClinicianDesk:
    """Stands in for the care team's webhook: checks each delivery's signature and prints
    what the clinician is told."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                genuine = verify(desk.secret, body, self.headers.get(SIGNATURE_HEADER))
                self.send_response(200 if genuine else 401)
                self.end_headers()
                if genuine:
                    desk.show(json.loads(body))

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/care-team"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def show(message: dict[str, Any]) -> None:
        for alert in message.get("alerts", []):
            print(
                f"  >> care team told: {alert['priority'].upper()} {alert['rule']} for "
                f"{alert['patient']} ({alert['metric']} {alert['value']}; alert {alert['alert']},"
                f" `vigil alerts ack {alert['alert']} --by NAME`)",
                flush=True,
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EventCounter:
    """Counts the analytics events the demo's patients cause, by kind."""

    def __init__(self, settings: Settings) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._client = vigil_mqtt.connect(
            settings, f"demo-events-{time.time_ns()}", on_message=self._on_message
        )
        self._client.subscribe(EVENTS, qos=1)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        try:
            kind = str(AnalyticsEvent.decode(message.payload).kind)
        except WireError:
            return
        with self._lock:
            self._counts[kind] += 1
            self._counts["all"] += 1

    def count(self, kind: str) -> int:
        with self._lock:
            return self._counts[kind]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
