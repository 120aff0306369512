"""What the bench hears of a run besides the database: the care team's webhook (every
delivery, so a repeat is seen) and the analytics events (every one, so a republished event
after a restart is seen)."""

from __future__ import annotations

import collections
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt

from alerts.channels import SIGNATURE_HEADER, verify
from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings
from vigil.wire.errors import WireError
from vigil.wire.events import AnalyticsEvent
from vigil.wire.topics import EVENTS


class CareTeamDesk:
    """The care team's webhook: counts each signed delivery per alert and telling (the
    alert's revision), whatever its idempotency key says, since a receiver that deduplicates
    would hide the repeats the bench is looking for."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        self.deliveries: collections.Counter[tuple[int, int]] = collections.Counter()
        """(alert id, revision) -> deliveries received."""
        self.patients: dict[int, str] = {}
        self.forged = 0
        self._lock = threading.Lock()
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                genuine = verify(desk.secret, body, self.headers.get(SIGNATURE_HEADER))
                self.send_response(200 if genuine else 401)
                self.end_headers()
                desk._record(json.loads(body) if genuine else None)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/care-team"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _record(self, message: dict[str, Any] | None) -> None:
        with self._lock:
            if message is None:
                self.forged += 1
                return
            for alert in message.get("alerts", []):
                self.deliveries[(int(alert["alert"]), int(alert["revision"]))] += 1
                self.patients[int(alert["alert"])] = str(alert["patient"])

    def snapshot(self) -> tuple[dict[tuple[int, int], int], dict[int, str]]:
        with self._lock:
            return dict(self.deliveries), dict(self.patients)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EventLog:
    """Every analytics event the broker hands a non-persistent subscriber, with when it
    arrived on the bench's monotonic clock (events published while the broker is down, or
    before it hands them on, arrive when they do)."""

    def __init__(self, settings: Settings) -> None:
        self.events: list[tuple[float, AnalyticsEvent]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = vigil_mqtt.connect(
            settings, f"bench-faults-events-{time.time_ns()}", on_message=self._on_message
        )
        self._client.on_subscribe = lambda *_: subscribed.set()
        # Again on every reconnection: a broker killed before it saved its sessions comes
        # back without this one's subscription.
        self._client.on_connect = lambda c, *_: c.subscribe(EVENTS, qos=1)
        self._client.subscribe(EVENTS, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the broker did not take the bench's subscription to events")

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            event = AnalyticsEvent.decode(message.payload)
        except WireError:
            return
        with self._lock:
            self.events.append((time.monotonic(), event))

    def summary(self, since: float | None = None) -> dict[str, int]:
        """Events by kind (from ``since`` on the monotonic clock, when given), and how many
        repeated an id already seen."""
        with self._lock:
            chosen = [e for t, e in self.events if since is None or t >= since]
        kinds = collections.Counter(str(e.kind) for e in chosen)
        ids = collections.Counter(e.id for e in chosen)
        return {**dict(sorted(kinds.items())), "repeated_ids": sum(n - 1 for n in ids.values())}

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
