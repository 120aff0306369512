"""`vigil analytics`: the anomaly core as a service between the broker and the alerts.

Readings batches come from the broker on the service's own persistent subscription (ingest
has its own, so scoring never waits for storage). Each worker owns the gateways whose id
hashes to its shard (``analytics_shards``, ``analytics_shard``): a gateway's patients always
land in the same worker, so each stream's state lives in one place; the topic names the
gateway, so another shard's batch is skipped before it is decoded, and only what a batch's
gateway may send is scored (:mod:`analytics.admission`). Messages are gathered
for ``analytics_batch_ms`` and scored in one engine call; events are published at QoS 1 on
``vigil/v1/events/{patient}`` before the readings are acknowledged, so a crash in between
makes the broker deliver the readings again (the detectors ignore what they have already
seen, and the event id lets the alerts service drop a repeat).

The engine's state is saved every ``analytics_checkpoint_s`` and on shutdown, and loaded at
start: a restart resumes with the patients' baselines and open conditions rather than a
four-hour warm-up. Readings acknowledged after the last checkpoint and before a crash will
not come again from the broker, but ingest has stored them: with a database configured,
the service first scores what was received since the checkpoint (:meth:`catch_up`), in
time order, and publishes what that finds (events already published before the crash come
again with the same id).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psycopg

from analytics.admission import Admission
from analytics.checkpoint import load_checkpoint, save_checkpoint
from analytics.config import load_patient_rules
from analytics.engine import Engine, PatientEvent
from analytics.hearing import Hearing
from analytics.replay import read_stored
from vigil import mqtt as vigil_mqtt
from vigil.mqtt.inbox import Inbox
from vigil.process import keep_freed_arrays
from vigil.screening import screen
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.errors import WireError
from vigil.wire.status import Presence, ServiceStatus
from vigil.wire.times import moment
from vigil.wire.topics import ALL, gateway_of, patient_events, service_status

log = logging.getLogger(__name__)

CATCH_UP_MEASURED_MS = 3_600_000
"""Catching up reads readings measured up to an hour before the checkpoint (received after
it): a gateway's backlog after a short outage arrives late."""
_MAX_BYTES = 8 * 2**20
"""At most this much payload per micro-batch (about 140,000 readings)."""


def shard_of(gateway: str, shards: int) -> int:
    """The worker a gateway belongs to: stable across processes and restarts (Python's own
    ``hash`` of a string is salted per process)."""
    return zlib.crc32(gateway.encode()) % shards


@dataclass
class AnalyticsCounters:
    messages: int = 0
    readings: int = 0
    events: int = 0
    other_shards: int = 0
    undecodable: int = 0
    not_enrolled: int = 0
    """Batches dropped unscored: their gateway is not enrolled (:mod:`analytics.admission`)."""
    unassigned: int = 0
    """Readings dropped unscored: not assigned to their patient on their gateway."""
    implausible: int = 0
    """Readings dropped unscored as ingest refuses them: implausible values, times far
    ahead or before 2020, or older than the retention period."""
    checkpoints: int = 0


class AnalyticsService:
    def __init__(self, settings: Settings) -> None:
        if settings.analytics_shard >= settings.analytics_shards:
            raise ValueError(
                f"VIGIL_ANALYTICS_SHARD is {settings.analytics_shard}, but there are "
                f"{settings.analytics_shards} shards (0..{settings.analytics_shards - 1})"
            )
        self.settings = settings
        self.counters = AnalyticsCounters()
        shard = settings.analytics_shard
        suffix = f"-{shard}" if settings.analytics_shards > 1 else ""
        self.client_id = settings.analytics_client_id + suffix
        self.checkpoint = checkpoint_path(settings)
        self.engine = self._load()
        self.admission = Admission(settings.ingest_enrolled_only, settings.database_url)
        self._inbox = Inbox(1000)
        self._status_topic = service_status(self.client_id)
        self._client: mqtt.Client | None = None
        self._gateway_of_patient: dict[str, str] = {}
        self.hearing = Hearing(self.engine.silence.stale_ms / 1000)

    def _load(self) -> Engine:
        """The checkpoint's state under the rules as configured now. A configuration file
        that cannot be read stops the service (ConfigError): running on defaults a care team
        has changed would be wrong without anyone knowing."""
        scale2 = [p.strip() for p in self.settings.analytics_scale2_patients.split(",")]
        scale2 = [p for p in scale2 if p]
        path = self.settings.analytics_patients_file
        patients = load_patient_rules(path) if path else {}
        if not self.checkpoint.exists():
            return Engine(scale2, patients=patients)
        try:
            engine = load_checkpoint(self.checkpoint, scale2, patients)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("checkpoint %s unreadable (%s): starting cold", self.checkpoint, exc)
            return Engine(scale2, patients=patients)
        log.info("resumed %d streams from %s", len(engine.keys), self.checkpoint)
        return engine

    def owns(self, gateway: str) -> bool:
        return shard_of(gateway, self.settings.analytics_shards) == self.settings.analytics_shard

    def run(self, stop: threading.Event) -> AnalyticsCounters:
        keep_freed_arrays()
        self._client = vigil_mqtt.service_session(
            stop, self.settings, self.client_id, self._inbox, self._status_topic, self._subscribe
        )
        if self._client is None:
            return self.counters
        due = time.monotonic() + self.settings.analytics_checkpoint_s
        ticked = 0.0
        try:
            self.admission.start()
            if self.settings.database_url and self.engine.saved_at is not None:
                self.catch_up(self.engine.saved_at)
            while not stop.is_set():
                messages = self._inbox.take(0.2, self.settings.analytics_batch_ms, _MAX_BYTES)
                if messages:
                    self.handle(messages)
                if time.monotonic() >= ticked + 1.0:
                    ticked = time.monotonic()
                    if self.hearing.may_judge(ticked, self._client.is_connected()):
                        self.publish(self.engine.tick(time.time_ns() // 1_000_000))
                if time.monotonic() >= due:
                    self.save()
                    due = time.monotonic() + self.settings.analytics_checkpoint_s
        finally:
            self.admission.close()
            self.save()
            vigil_mqtt.end_session(self._client, self._status_topic)
        return self.counters

    def _subscribe(self, client: mqtt.Client) -> None:
        self.hearing.heard_again(time.monotonic())
        client.subscribe(ALL.readings, qos=1)
        status = ServiceStatus(Presence.ONLINE, self.settings.analytics_shard)
        vigil_mqtt.announce(client, self._status_topic, status)
        log.info("subscribed to %s as %s", ALL.readings, self.client_id)

    def handle(self, messages: list[mqtt.MQTTMessage]) -> list[PatientEvent]:
        """Score one micro-batch, publish its events, then acknowledge its messages. Only
        what the batches' gateways may send is scored (:mod:`analytics.admission`): a
        gateway naming another gateway's patient neither raises that patient's alarms nor
        becomes the patient's inbox."""
        batches: list[Batch] = []
        for message in messages:
            gateway = gateway_of(message.topic)
            if gateway is None or not self.owns(gateway):
                self.counters.other_shards += 1
                continue
            try:
                batch = Batch.decode(message.payload)
            except WireError:
                self.counters.undecodable += 1  # ingest keeps it as a dead letter
                continue
            if batch.gateway == gateway:
                batches.append(batch)
        admitted = self.admission.admit(batches)
        self.counters.not_enrolled += admitted.not_enrolled
        self.counters.unassigned += admitted.unassigned
        events = self.score(self._plausible(admitted.batches))
        self.publish(events)
        assert self._client is not None
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
        self.counters.messages += len(messages)
        return events

    def _plausible(self, batches: list[Batch]) -> list[Batch]:
        """What ingest would store of them (:mod:`vigil.screening`): a reading stamped far
        ahead would make every genuine one after it look old to its stream's detectors,
        and an implausible value is no measurement to judge."""
        now_ms = int(time.time() * 1000)
        kept = []
        for batch in batches:
            screened = screen(batch, now_ms, self.settings.retention_days)
            self.counters.implausible += len(batch) - len(screened.kept)
            if len(screened.kept):
                kept.append(screened.kept)
        return kept

    def catch_up(self, saved_at: int) -> int:
        """Score the stored readings received since ``saved_at`` (less a margin) for this
        shard's gateways; the broker's messages wait in the inbox meanwhile. Returns the
        readings scored. A database that cannot be read is logged and passed over: the
        service runs with the checkpoint's state, as it would without a database."""
        assert self.settings.database_url
        scored = 0
        since = (moment(saved_at - CATCH_UP_MEASURED_MS), moment(saved_at - 10_000))
        try:
            with psycopg.connect(self.settings.database_url) as conn:
                condition = "effective >= %s AND received >= %s"
                for chunk in read_stored(conn, condition, since, "analytics_catch_up"):
                    mine = chunk.keep([self.owns(g) for g in chunk.gateway])
                    if len(mine):
                        self.publish(mine.score(self.engine))
                        scored += len(mine)
        except psycopg.Error as exc:
            log.warning("catching up from the database failed (%s); going on", exc)
        self.counters.readings += scored
        log.info("caught up %d readings stored since the checkpoint", scored)
        return scored

    def publish(self, events: list[PatientEvent]) -> None:
        assert self._client is not None
        for event in events:
            gateway = self._inbox_of(event.patient)
            payload = self.engine.describe(event, gateway).encode()
            self._client.publish(patient_events(event.patient), payload, qos=1)
        self.counters.events += len(events)

    def _inbox_of(self, patient: str) -> str | None:
        """Where the patient's messages go: the gateway that last sent their readings, if
        the enrollment still puts them there; else one it does (their device moved to
        another home, or a former gateway was heard in the minute before the move was)."""
        last = self._gateway_of_patient.get(patient)
        assigned = self.admission.gateways_of(patient)
        if assigned is None or last in assigned:
            return last
        return min(assigned) if assigned else None

    def score(self, batches: list[Batch]) -> list[PatientEvent]:
        if not batches:
            return []
        for batch in batches:
            for patient in set(batch.patient):
                self._gateway_of_patient[patient] = batch.gateway
        patients = [p for b in batches for p in b.patient]
        events = self.engine.score(
            patients,
            np.concatenate([b.metric for b in batches]),
            np.concatenate([b.time for b in batches]),
            np.concatenate([b.value for b in batches]),
            np.concatenate([b.flags for b in batches]),
        )
        self.counters.readings += len(patients)
        return events

    def save(self) -> None:
        started = time.monotonic()
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.engine, self.checkpoint)
        self.counters.checkpoints += 1
        log.debug(
            "checkpoint of %d streams in %.2f s; %s",
            len(self.engine.keys),
            time.monotonic() - started,
            asdict(self.counters),
        )


def checkpoint_path(settings: Settings) -> Path:
    """One file per shard layout: with a different number of shards the gateways move, and
    an old file would hold other workers' streams."""
    return settings.analytics_state_dir / (
        f"engine-{settings.analytics_shard}-of-{settings.analytics_shards}.npz"
    )
