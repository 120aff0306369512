"""The ingest service: MQTT readings -> PostgreSQL, acknowledged only after commit.

paho delivers messages on its network thread into a queue; the main thread takes what is
waiting (up to ``ingest_max_messages``), decodes it, stores good batches and dead letters
in one transaction, commits, and only then sends the PUBACKs (``manual_ack``). A crash
before the acknowledgement makes the broker deliver again to the persistent session,
and the writer recognizes the redelivery, so nothing is lost and nothing doubled.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from ingest import commitments, partitions, retention, writer
from ingest.admission import Admission
from ingest.registry import Registry, is_report
from vigil import mqtt as vigil_mqtt
from vigil.db.connection import connect_retrying, first_line
from vigil.db.migrate import migrate
from vigil.mqtt.inbox import Inbox
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.commitment import Commitment
from vigil.wire.errors import WireError
from vigil.wire.status import Presence, ServiceStatus
from vigil.wire.topics import ALL, Topics, gateway_of, service_status

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY_S = 3600.0
_BYTES_PER_READING = 60
"""About what one reading takes in a JSON batch (device, patient, metric, time, value)."""


@dataclass
class IngestCounters:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    conflicts: int = 0


@dataclass(frozen=True, slots=True)
class Received:
    """A message and the digest of its payload, which tells a redelivery from another batch
    under the same seq (:mod:`ingest.writer`)."""

    message: mqtt.MQTTMessage
    digest: bytes


class IngestService:
    def __init__(self, settings: Settings) -> None:
        if not settings.database_url:
            raise ValueError("no database configured: set VIGIL_DATABASE_URL")
        self.settings = settings
        self.counters = IngestCounters()
        # Bounded: when storing falls behind, paho's thread blocks here, stops reading its
        # socket, and the broker keeps the rest (MQTT 5 also gets a Receive Maximum).
        self._inbox = Inbox(settings.ingest_max_messages)
        self._client: mqtt.Client | None = None
        self._conn: psycopg.Connection | None = None
        self._status_topic = service_status(settings.ingest_client_id)
        self._commits = 0
        self._housekeeping_due = 0.0
        self._admission = Admission(settings.ingest_enrolled_only, settings.retention_days)
        self._registry = Registry()
        self._confirmed: list[Commitment] = []
        """Commitments of this flush, published once it is committed."""

    def run(self, stop: threading.Event) -> IngestCounters:
        self._conn = self._connect_database(stop)
        if self._conn is None:
            return self.counters
        migrate(self._conn)
        self._admission.start(self._conn)
        self._run_housekeeping(stop)
        self._client = self._connect_broker(stop)
        if self._client is None:
            return self.counters
        try:
            while not stop.is_set():
                messages = self._take(timeout=0.2)
                if messages:
                    self._handle(messages, stop)
                if time.monotonic() >= self._housekeeping_due:
                    self._run_housekeeping(stop)
        finally:
            vigil_mqtt.end_session(self._client, self._status_topic)
            self._conn.close()
        return self.counters

    # -- connections ----------------------------------------------------------------------

    def _connect_database(self, stop: threading.Event) -> psycopg.Connection | None:
        assert self.settings.database_url
        return connect_retrying(self.settings.database_url, stop)

    def _connect_broker(self, stop: threading.Event) -> mqtt.Client | None:
        client = vigil_mqtt.service_session(
            stop,
            self.settings,
            self.settings.ingest_client_id,
            self._inbox,
            self._status_topic,
            self._subscribe,
        )
        if client is not None:
            client.on_publish = _on_publish
        return client

    def _subscribe(self, client: mqtt.Client) -> None:
        # A shared subscription (MQTT 5) lets several ingest processes split the load, but
        # Mosquitto 2.0.11 does not restore shared subscriptions from its persistence file:
        # after a broker restart, what is published before ingest resubscribes is dropped.
        # So the plain filter is the default, and sharing is opt-in.
        topic = ALL.readings
        group = self.settings.ingest_share_group
        if group and client.protocol == mqtt.MQTTv5:
            topic = f"$share/{group}/{topic}"
        elif group:
            log.warning("the broker speaks MQTT 3.1.1: no shared subscription, one ingest only")
        client.subscribe(topic, qos=1)
        # The gateways' retained reports, for the device registry: plainly, since a shared
        # subscription gets no retained messages, and every ingest records them alike. At
        # QoS 0, so the broker queues none of them for an ingest that is away (they would
        # fill the queue that holds the readings): the retained one is what counts.
        client.subscribe([(ALL.status, 0), (ALL.devices, 0)])
        vigil_mqtt.announce(client, self._status_topic, ServiceStatus(Presence.ONLINE))
        log.info("subscribed to %s", topic)

    # -- storing --------------------------------------------------------------------------

    def _take(self, timeout: float) -> list[mqtt.MQTTMessage]:
        """A micro-batch: what arrives until ``ingest_flush_readings`` readings are waiting
        (estimated from payload sizes) or ``ingest_flush_ms`` have passed since the first."""
        budget = self.settings.ingest_flush_readings * _BYTES_PER_READING
        return self._inbox.take(timeout, self.settings.ingest_flush_ms, budget)

    def _handle(self, messages: list[mqtt.MQTTMessage], stop: threading.Event) -> None:
        decoded: list[tuple[Received, Batch]] = []
        bad: list[tuple[Received, str]] = []
        reports: list[tuple[str, bytes | bytearray]] = []
        for message in messages:
            if is_report(message.topic):
                reports.append((message.topic, message.payload))
                continue
            if not message.topic.endswith("/readings") or gateway_of(message.topic) is None:
                # Seen with amqtt after a session resumes: a message from another topic.
                log.warning(
                    "ignoring a message on %s, which is not a readings topic", message.topic
                )
                continue
            received = Received(message, writer.digest(message.payload))
            try:
                batch = Batch.decode(message.payload)
            except WireError as exc:
                bad.append((received, str(exc)))
                continue
            topic_gateway = gateway_of(message.topic)
            if batch.gateway != topic_gateway:
                reason = f"gateway: batch says {batch.gateway!r}, topic says {topic_gateway!r}"
                bad.append((received, reason))
                continue
            decoded.append((received, batch))
        delay = 0.5
        while not stop.is_set():
            try:
                assert self._conn is not None
                good, refused = self._admission.admit(
                    self._conn, decoded, time.time_ns() // 1_000_000
                )
                self._store(good, bad + refused)
                self._record_reports(reports)
                break
            except psycopg.OperationalError as exc:
                log.warning("database error (%s); retrying in %.1f s", first_line(exc), delay)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
                self._reconnect_database(stop)
        else:
            return  # stopping: unacknowledged messages will be redelivered
        self._commits += 1
        if self._commits == self.settings.ingest_crash_after_commits:
            # The worst moment to die, on purpose, for the fault tests: stored, not acked.
            os.kill(os.getpid(), signal.SIGKILL)
        assert self._client is not None
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
        self.counters.messages += len(messages)
        self._publish_commitments()

    def _publish_commitments(self) -> None:
        assert self._client is not None
        for commitment in self._confirmed:
            self._client.publish(
                Topics(commitment.gateway).committed, commitment.encode(), qos=1, retain=True
            )
        self._confirmed = []

    def _store(self, good: list[tuple[Received, Batch]], bad: list[tuple[Received, str]]) -> None:
        """Store everything in one transaction; if the database refuses the data itself
        (not the connection), find the batch it refuses, dead-letter it, keep the rest.
        """
        try:
            self._commit(good, bad)
            return
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            pass
        refused = list(bad)
        for received, batch in good:
            try:
                self._commit([(received, batch)], [])
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                refused.append((received, f"database refused the batch: {first_line(exc)}"))
        self._commit([], refused)

    def _record_reports(self, reports: list[tuple[str, bytes | bytearray]]) -> None:
        """The gateways' reports, after the readings: reports the database does not take
        (it is away, or refuses them) are dropped, since they come again in a few seconds;
        they never hold back or repeat the storing of readings."""
        if not reports:
            return
        assert self._conn is not None
        try:
            self._registry.record_reports(self._conn, reports, self._admission.enrollment)
            self._raise_floors(reports)
        except psycopg.Error as exc:
            log.warning("device reports not recorded (%s)", first_line(exc))

    def _raise_floors(self, reports: list[tuple[str, bytes | bytearray]]) -> None:
        """What the gateways' statuses say of their outboxes, for their commitments; with
        enrollment enforced, only enrolled gateways get a row."""
        assert self._conn is not None
        statuses = []
        for topic, payload in reports:
            gateway = gateway_of(topic)
            if gateway is not None and topic == Topics(gateway).status:
                statuses.append((gateway, payload))
        enrollment = self._admission.enrollment
        found = [
            f
            for f in commitments.floors(statuses)
            if not self._admission.enforcing or enrollment.enrolled(f.gateway)
        ]
        if found:
            with self._conn.transaction():
                self._confirmed += commitments.raise_floors(self._conn, found)
            self._publish_commitments()

    def _run_housekeeping(self, stop: threading.Event) -> None:
        """Partitions ahead and retention (observations, dead letters, batch accounting); a
        failure is retried in five minutes, since the partitions made ahead leave days of
        slack."""
        assert self._conn is not None
        now = datetime.now(UTC)
        try:
            partitions.housekeeping(self._conn, self.settings.retention_days, now.date())
            pruned = retention.prune(self._conn, self.settings.retention_days, now)
            if pruned.dead_letters or pruned.batches:
                log.info(
                    "pruned %d dead letters and %d batch records past the retention period",
                    pruned.dead_letters,
                    pruned.batches,
                )
            self._housekeeping_due = time.monotonic() + HOUSEKEEPING_EVERY_S
        except psycopg.Error as exc:
            log.warning("partition housekeeping failed (%s); retrying in 5 min", first_line(exc))
            self._housekeeping_due = time.monotonic() + 300
            if isinstance(exc, psycopg.OperationalError):
                self._reconnect_database(stop)

    def _commit(self, good: list[tuple[Received, Batch]], bad: list[tuple[Received, str]]) -> None:
        assert self._conn is not None
        trusted = not self._admission.enforcing
        with self._conn.transaction():
            result = writer.store(self._conn, [b for _, b in good], [r.digest for r, _ in good])
            registered = self._registry.record_readings(self._conn, [b for _, b in good], trusted)
            confirmed = commitments.advance(self._conn, [b.gateway for _, b in good])
            for received, reason in bad:
                message = received.message
                gateway = gateway_of(message.topic)
                writer.dead_letter(
                    self._conn, message.topic, gateway, message.payload, reason, self._cap(gateway)
                )
        self._registry.remember(registered)
        self._confirmed += confirmed
        self.counters.stored += result.readings
        self.counters.duplicates += result.duplicates
        self.counters.dead_letters += len(bad)
        self.counters.conflicts += len(result.conflicts)
        for gateway, seq in result.conflicts:
            log.warning(
                "batch %d from %s is not the one first received under that seq: stored, and "
                "counted as a conflict (`vigil ingest stats`)",
                seq,
                gateway,
            )
        for received, reason in bad:
            # Reasons may quote measured values (PHI): they stay in the table and at DEBUG.
            topic = received.message.topic
            log.warning("dead letter from %s (reason in the dead_letter table)", topic)
            log.debug("dead letter from %s: %s", topic, reason)

    def _cap(self, gateway: str | None) -> int | None:
        """How much of a refused payload to keep: all of it from an enrolled gateway (it
        authenticated to publish there, and its refused readings must stay recoverable),
        a bounded prefix from anyone else (dead letters are written for whatever anyone
        publishes)."""
        enforcing = self._admission.enforcing
        if gateway is not None and enforcing and self._admission.enrollment.enrolled(gateway):
            return None
        return self.settings.ingest_dead_letter_max_bytes

    def _reconnect_database(self, stop: threading.Event) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                self._conn.rollback()
                return
            except psycopg.Error:
                self._conn.close()
        conn = self._connect_database(stop)
        if conn is not None:
            self._conn = conn


def _on_publish(_c: mqtt.Client, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
    """MQTT 5 says when the broker refuses a commitment; 3.1.1 drops it without a word."""
    if getattr(reason, "is_failure", False):
        log.error(
            "the broker refused a commitment (%s): gateways keep their batches until they get"
            " one. If its ACL predates commitments, run `vigil enroll --write-broker-files`"
            " and reload the broker",
            reason,
        )
