"""`vigil alerts`: analytics events in, alerts and their notifications out.

Two threads, each with its own database connection, so that taking events in never waits
on a receiver:

- *Intake*: events arrive on the service's own persistent subscription to
  ``vigil/v1/events/+``. Each micro-batch of them is applied in one transaction (alerts
  opened, joined or cleared, and the notifications they owe written to the outbox),
  committed, and only then acknowledged: a crash before the commit makes the broker deliver
  the events again, and a repeat changes nothing (events are recorded by id). Every
  second, alerts whose condition has stayed clear are resolved and high-priority alerts
  nobody acknowledged in time go to the next tier of the patient's care team.
- *Dispatch*: delivers what the outbox holds, woken at once by each commit (and every
  second for retries that come due). A crash after the commit leaves the notifications
  pending, delivered after the restart with the same idempotency keys.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg

from alerts.admins import admin_urls
from alerts.channels import DeliveryError
from alerts.dispatch import Dispatcher
from alerts.model import load_patient_messages
from alerts.outbox import Channels, escalate
from alerts.store import auto_resolve, release_inhibitions, take_event
from vigil import mqtt as vigil_mqtt
from vigil.db.connection import connect_retrying, first_line
from vigil.db.migrate import migrate
from vigil.mqtt.inbox import Inbox
from vigil.settings import Settings
from vigil.wire.errors import WireError
from vigil.wire.events import AnalyticsEvent
from vigil.wire.status import Presence, ServiceStatus
from vigil.wire.topics import EVENTS, Topics, service_status

log = logging.getLogger(__name__)

RESOLVE_EVERY_S = 1.0
"""How often alerts are auto-resolved and escalated."""
RETRY_EVERY_S = 1.0
"""How often the dispatcher looks for retries that have come due, when nothing wakes it."""


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
        self.database_url = settings.database_url
        self.counters = AlertsCounters()
        urls = tuple(u.strip() for u in settings.alerts_webhook_urls.split(",") if u.strip())
        path = settings.alerts_messages_file
        self.channels = Channels(
            care_team_webhooks=urls,
            admin_urls=admin_urls(settings.alerts_admin_urls),
            escalate_after_s=settings.alerts_escalate_after_s,
            clear_for_s=settings.alerts_auto_resolve_s,
            patient_messages=load_patient_messages(path) if path else {},
        )
        self._inbox = Inbox(1000)
        self._status_topic = service_status(settings.alerts_client_id)
        self._client: mqtt.Client | None = None
        self._commits = 0
        self._owed = threading.Event()
        """Set after each commit: the dispatcher has notifications to look at."""
        self._halt = threading.Event()
        self._dispatch_error: BaseException | None = None

    def run(self, stop: threading.Event) -> AlertsCounters:
        if not self.channels.admin_urls:
            log.warning(
                "no administrators' channel (VIGIL_ALERTS_ADMIN_URLS): a care team nobody of "
                "which can be told of an alert will only be logged (team_unreachable, an ERROR)"
            )
        conn = connect_retrying(self.database_url, stop, autocommit=True)
        if conn is None:
            return self.counters
        try:
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
            dispatch = threading.Thread(target=self._dispatch, args=(stop,), name="dispatch")
            dispatch.start()
            try:
                conn = self._intake(conn, stop)
            finally:
                self._halt.set()
                self._owed.set()
                dispatch.join()
                vigil_mqtt.end_session(self._client, self._status_topic)
        finally:
            if conn is not None:
                conn.close()
        if self._dispatch_error is not None:
            raise RuntimeError("the dispatcher failed") from self._dispatch_error
        return self.counters

    def _intake(self, conn: psycopg.Connection, stop: threading.Event) -> psycopg.Connection | None:
        """Events in, until the service stops. The database going away (a restart, a
        crashed backend) is waited out: the events taken and not committed are kept and
        stored once it is back, and acknowledged only then. Returns the connection in use."""
        resolved_at = 0.0
        messages: list[mqtt.MQTTMessage] = []
        while not stop.is_set():
            try:
                messages = messages or self._inbox.take(0.2, 50, 4 * 2**20)
                if messages:
                    self._handle(conn, messages)
                    messages = []
                if time.monotonic() >= resolved_at + RESOLVE_EVERY_S:
                    with conn.transaction():
                        auto_resolve(conn, self.settings.alerts_auto_resolve_s)
                        escalated = escalate(conn, self.channels)
                        released = release_inhibitions(conn, self.channels)
                    if escalated or released:
                        self._owed.set()
                    resolved_at = time.monotonic()
            except psycopg.OperationalError as exc:
                log.warning("database error (%s); reconnecting", first_line(exc))
                conn.close()
                reconnected = connect_retrying(self.database_url, stop, autocommit=True)
                if reconnected is None:
                    return None
                conn = reconnected
        return conn

    def _dispatch(self, stop: threading.Event) -> None:
        """Until the service stops, on a connection of its own, which it opens again when
        the database went away; any other failure stops the service too, rather than leave
        it taking events in that nobody will be told of."""
        try:
            while not self._halt.is_set():
                conn = connect_retrying(self.database_url, self._halt, autocommit=True)
                if conn is None:
                    return
                try:
                    with conn:
                        self._deliver_until_halted(conn)
                except psycopg.OperationalError as exc:
                    log.warning(
                        "the dispatcher lost the database (%s); reconnecting", first_line(exc)
                    )
        except BaseException as exc:
            log.exception("the dispatcher failed; stopping")
            self._dispatch_error = exc
            stop.set()

    def _deliver_until_halted(self, conn: psycopg.Connection) -> None:
        dispatcher = Dispatcher(
            conn,
            self.settings.alerts_webhook_secret,
            self._publish_inbox,
            self.settings.alerts_max_attempts,
        )
        while not self._halt.is_set():
            self._owed.clear()
            delivered = dispatcher.run_once()
            self.counters.delivered += delivered
            if not delivered:
                self._owed.wait(RETRY_EVERY_S)

    def _subscribe(self, client: mqtt.Client) -> None:
        client.subscribe(EVENTS, qos=1)
        vigil_mqtt.announce(client, self._status_topic, ServiceStatus(Presence.ONLINE))

    def _handle(self, conn: psycopg.Connection, messages: list[mqtt.MQTTMessage]) -> None:
        with conn.transaction():
            for message in messages:
                try:
                    event = AnalyticsEvent.decode(message.payload)
                except WireError as exc:
                    self.counters.undecodable += 1
                    log.warning(
                        "ignoring an event on %s that is not one (%s)", message.topic, exc.field
                    )
                    continue
                take_event(conn, event, self.channels)
                self.counters.events += 1
        self._commits += 1
        if self._commits == self.settings.alerts_crash_after_commits:
            # The worst moment to die, on purpose, for the fault tests: committed, with
            # notifications owed and nothing delivered or acknowledged.
            os.kill(os.getpid(), signal.SIGKILL)
        self._owed.set()
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
