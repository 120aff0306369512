"""`vigil alerts`: analytics events in, alerts and their notifications out.

Events arrive on the service's own persistent subscription to ``vigil/v1/events/+``. Each
micro-batch of them is applied in one transaction (alerts opened, joined or cleared, and
the notifications they owe written to the outbox), committed, and only then acknowledged:
a crash before the commit makes the broker deliver the events again, and a repeat changes
nothing (events are recorded by id). The dispatcher then delivers what the outbox holds;
a crash after the commit leaves the notifications pending, delivered after the restart
with the same idempotency keys. Every second, alerts whose condition has stayed clear are
resolved and high-priority alerts nobody acknowledged in time go to the next tier of the
patient's care team.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from alerts.dispatch import DeliveryError, Dispatcher
from alerts.model import load_patient_messages
from alerts.store import Channels, auto_resolve, escalate, take_event
from ingest.migrate import migrate
from vigil import mqtt as vigil_mqtt
from vigil.inbox import Inbox
from vigil.settings import Settings
from vigil.wire.topics import EVENTS, Topics, service_status

log = logging.getLogger(__name__)

RESOLVE_EVERY_S = 1.0
"""How often alerts are auto-resolved and escalated."""
_EVENT_FIELDS = {"id", "kind", "patient", "rule", "metric", "time", "value"}


@dataclass
class AlertsCounters:
    events: int = 0
    undecodable: int = 0
    delivered: int = 0


class AlertsService:
    def __init__(self, settings: Settings) -> None:
        if not settings.database_url:
            raise ValueError("no database configured: set VIGIL_DATABASE_URL")
        self.settings = settings
        self.counters = AlertsCounters()
        urls = tuple(u.strip() for u in settings.alerts_webhook_urls.split(",") if u.strip())
        path = settings.alerts_messages_file
        self.channels = Channels(
            care_team_webhooks=urls,
            escalate_after_s=settings.alerts_escalate_after_s,
            patient_messages=load_patient_messages(path) if path else {},
        )
        self._inbox = Inbox(1000)
        self._status_topic = service_status(settings.alerts_client_id)
        self._client: mqtt.Client | None = None
        self._commits = 0

    def run(self, stop: threading.Event) -> AlertsCounters:
        assert self.settings.database_url
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            with conn.transaction():
                migrate(conn)
            self._client = vigil_mqtt.service_session(
                stop,
                self.settings,
                self.settings.alerts_client_id,
                self._inbox,
                self._status_topic,
                self._subscribe,
            )
            if self._client is None:
                return self.counters
            dispatcher = Dispatcher(
                conn,
                self.settings.alerts_webhook_secret,
                self._publish_inbox,
                self.settings.alerts_max_attempts,
            )
            resolved_at = 0.0
            try:
                while not stop.is_set():
                    messages = self._inbox.take(0.2, 50, 4 * 2**20)
                    if messages:
                        self._handle(conn, messages)
                    self.counters.delivered += dispatcher.run_once()
                    if time.monotonic() >= resolved_at + RESOLVE_EVERY_S:
                        with conn.transaction():
                            auto_resolve(conn, self.settings.alerts_auto_resolve_s)
                            escalate(conn, self.channels)
                        resolved_at = time.monotonic()
            finally:
                self._client.publish(
                    self._status_topic, b'{"state": "offline"}', qos=1, retain=True
                )
                self._client.disconnect()
                self._client.loop_stop()
        return self.counters

    def _subscribe(self, client: mqtt.Client) -> None:
        client.subscribe(EVENTS, qos=1)
        client.publish(self._status_topic, b'{"state": "online"}', qos=1, retain=True)

    def _handle(self, conn: psycopg.Connection, messages: list[mqtt.MQTTMessage]) -> None:
        with conn.transaction():
            for message in messages:
                event = _event(message.payload)
                if event is None:
                    self.counters.undecodable += 1
                    log.warning("ignoring an event on %s that is not one", message.topic)
                    continue
                take_event(conn, event, self.channels)
                self.counters.events += 1
        self._commits += 1
        if self._commits == self.settings.alerts_crash_after_commits:
            # The worst moment to die, on purpose, for the fault tests: committed, with
            # notifications owed and nothing delivered or acknowledged.
            os.kill(os.getpid(), signal.SIGKILL)
        assert self._client is not None
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)

    def _publish_inbox(self, gateway: str, payload: bytes) -> None:
        assert self._client is not None
        info = self._client.publish(Topics(gateway).inbox, payload, qos=1)
        try:
            info.wait_for_publish(5)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"broker: {exc}") from None
        if not info.is_published():
            raise DeliveryError("broker did not take it within 5 s")


def _event(payload: bytes | bytearray) -> dict[str, Any] | None:
    """An analytics event (see analytics.service), or None for anything else."""
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(event, dict) or not event.keys() >= _EVENT_FIELDS:
        return None
    return event
