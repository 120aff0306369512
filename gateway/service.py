"""The gateway service: discovery, one session per paired device, outbox, publishing.

Readings flow notification -> parser -> outbox (disk) -> sealed batch -> broker -> ingest;
a batch leaves the outbox only once ingest has committed it (:mod:`gateway.delivery`). The
broker may be unreachable for hours: sessions keep filling the outbox meanwhile, and the
backlog drains in ``seq`` order when it comes back. A full disk does not stop the readings
either (:mod:`gateway.disk`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

import vigil
from gateway.counters import Counters
from gateway.delivery import Delivery
from gateway.disk import Disk
from gateway.files import append_private
from gateway.gatt import uuids
from gateway.outbox import BATCH_LIMIT, Outbox
from gateway.publisher import MqttPublisher, Publisher
from gateway.readings import Converted
from gateway.session import DeviceSession
from vigil.mqtt import MqttUnavailable
from vigil.process import peak_rss_mb
from vigil.settings import Settings
from vigil.wire.errors import WireError
from vigil.wire.messages import PatientMessage
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics

log = logging.getLogger(__name__)

SCAN_SECONDS = 3.0
RESCAN_EVERY_S = 10.0
STATUS_EVERY_S = 5.0
CONFIRM_AT_STOP_S = 2.0


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Backends:
    """bleak backend classes; None for each means the platform's own (BlueZ on Linux)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None


class GatewayService:
    def __init__(
        self,
        settings: Settings,
        pairings: dict[str, str] | Callable[[], dict[str, str]],
        backends: Backends = Backends(),
        clock: Callable[[], int] = wall_clock_ms,
        publisher_factory: Callable[..., Publisher] = MqttPublisher.connect,
    ) -> None:
        self.settings = settings
        self.gateway = settings.gateway_id
        self.topics = Topics(self.gateway)
        # A callable is re-read before each discovery pass, so `vigil pair` takes effect
        # on a running gateway.
        self._pairing_source = pairings if callable(pairings) else (lambda: dict(pairings))
        self.pairings: dict[str, str] = {}
        self.backends = backends
        self.clock = clock
        self.counters = Counters()
        self.sessions: dict[str, DeviceSession] = {}
        self.outbox = Outbox(settings.gateway_data_dir / f"{self.gateway}.sqlite", self.gateway)
        self.disk = Disk(self.outbox)
        self.delivery = Delivery(
            self.outbox, settings, self.topics.readings, self.counters, self.disk.attempt
        )
        self._publisher_factory = publisher_factory
        self._publisher: Publisher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session_tasks: dict[str, asyncio.Task[None]] = {}
        self._retired: list[asyncio.Task[None]] = []
        self._refresh_pairings()
        self._connect_slot = asyncio.Semaphore(1)

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, drain_timeout_s: float = 10.0) -> Counters:
        log.info("gateway %s starting with %d paired devices", self.gateway, len(self.pairings))
        if not self.pairings:
            log.warning("no paired devices yet: pair one with `vigil pair`")
        self._tasks = [
            asyncio.create_task(self._broker_loop(), name="broker"),
            asyncio.create_task(self._discovery_loop(), name="discovery"),
            asyncio.create_task(self._publish_loop(), name="publish"),
        ]
        try:
            await stop.wait()
        finally:
            await self._shutdown(drain_timeout_s)
        return self.counters

    async def _shutdown(self, drain_timeout_s: float) -> None:
        discovery_and_sessions = [t for t in self._tasks if t.get_name() == "discovery"]
        discovery_and_sessions += list(self._session_tasks.values()) + self._retired
        await _cancel(discovery_and_sessions)
        # Everything received is on disk; give the broker a bounded time to take it (the
        # broker task keeps trying to connect meanwhile, if it has not yet), and ingest a
        # moment to confirm it. What stays unconfirmed is sent again at the next start.
        deadline = time.monotonic() + drain_timeout_s
        while (self.outbox.loose() or self.delivery.unsent()) and time.monotonic() < deadline:
            self._seal_and_publish()
            await asyncio.sleep(0.05)
        deadline = min(deadline, time.monotonic() + CONFIRM_AT_STOP_S)
        while self.outbox.depth() and self.delivery.confirms and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await _cancel(self._tasks)
        if self._publisher is not None:
            self._publish_status(final=True)
            await asyncio.sleep(0.2)
            self._publisher.close()
        left = self.outbox.depth()
        if left:
            log.warning("gateway stopping with %d readings still in the outbox", left)
        self.outbox.close()

    # -- broker ---------------------------------------------------------------------------

    async def _broker_loop(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 1.0
        while self._publisher is None:
            try:
                self._publisher = await asyncio.to_thread(
                    self._publisher_factory,
                    self.settings,
                    self.gateway,
                    loop,
                    self._on_ack,
                    self._on_inbox,
                    self.delivery.on_commitment,
                )
                self.delivery.publisher = self._publisher
            except MqttUnavailable as exc:
                log.warning("%s; retrying in %.0f s (readings wait in the outbox)", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        while True:
            self._publish_status()
            await asyncio.sleep(STATUS_EVERY_S)

    def _on_inbox(self, payload: bytes) -> None:
        """A message for the patient (from the alerts service): appended to
        ``inbox.jsonl`` beside the outbox, where the patient's display reads it. The text is
        for the patient; the log says only that one came."""
        try:
            message = PatientMessage.decode(payload)
        except WireError as exc:
            log.warning("ignoring an inbox message that is not one (%s)", exc)
            return
        append_private(
            self.settings.gateway_data_dir / "inbox.jsonl", json.dumps(message.document()) + "\n"
        )
        self.counters.inbox_messages += 1
        log.info("a message for a patient arrived (alerts %s)", list(message.alerts))

    def _on_ack(self, mid: int) -> None:
        if self.delivery.on_ack(mid):
            # Refill the in-flight window at once: after an outage the backlog then drains
            # at the broker's pace, not one window per publish interval.
            self.disk.attempt(self._seal, True)
            self.delivery.publish_pending()

    async def _publish_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.publish_interval_s)
            self._seal_and_publish()

    def _seal_and_publish(self) -> None:
        self.disk.write_held()
        self.delivery.release_confirmed()
        # While the window is full (the broker is away, or slow) a batch a second would
        # pile up as thousands of small batches; readings wait loose until a full one.
        window_full = self.delivery.room() <= 0
        self.disk.attempt(self._seal, self._publisher is None or window_full)
        dropped = self.disk.attempt(
            self.outbox.drop_oldest, self.settings.outbox_max_readings, self.delivery.with_broker()
        )
        if dropped:
            log.warning("outbox full: dropped the %d oldest readings", sum(dropped.values()))
            self.delivery.forget(dropped)
            if self._publisher is not None:
                self._publish_status()  # ingest must know not to wait for them
        self.delivery.publish_pending()
        self.delivery.send_unconfirmed_again()

    def _seal(self, full_only: bool) -> int:
        """Returns how many batches were sealed."""
        sealed = 0
        while self.outbox.loose() >= BATCH_LIMIT:
            sealed += self.outbox.seal(self.clock()) is not None
        if not full_only:
            sealed += self.outbox.seal(self.clock()) is not None
        return sealed

    def _publish_status(self, final: bool = False) -> None:
        assert self._publisher is not None
        oldest = self.outbox.oldest_ms()
        unconfirmed, oldest_unconfirmed = self.outbox.unconfirmed(self.delivery.handed_up_to)
        confirms = self.delivery.confirms
        status = GatewayStatus(
            gateway=self.gateway,
            state=Presence.OFFLINE if final else Presence.ONLINE,
            version=vigil.__version__,
            outbox_depth=self.outbox.depth() + len(self.disk.held),
            oldest_age_s=self._age_s(oldest),
            readings=self.counters.readings,
            published=self.counters.published,
            confirmed=self.counters.confirmed,
            unconfirmed=unconfirmed if confirms else None,
            unconfirmed_age_s=self._age_s(oldest_unconfirmed) if confirms else None,
            next_seq=self.outbox.next_seq(),
            oldest_seq=self.outbox.oldest_seq() if confirms else None,
            life=self.delivery.life if confirms else None,
            dropped=self.disk.dropped(),
            parse_errors=sum(s.state.parse_errors for s in self.sessions.values()),
            cpu_s=round(time.process_time(), 3),
            peak_rss_mb=peak_rss_mb(),
        )
        self._publisher.publish(self.topics.status, status.encode(), retain=True)
        devices = GatewayDevices(
            tuple(
                self.sessions[a].state.report()
                if a in self.sessions
                else DeviceReport(address=a, patient=p, state="searching")
                for a, p in self.pairings.items()
            )
        )
        self._publisher.publish(self.topics.devices, devices.encode(), retain=True)

    def _age_s(self, oldest_ms: int | None) -> float | None:
        return None if oldest_ms is None else round((self.clock() - oldest_ms) / 1000, 1)

    # -- Bluetooth ------------------------------------------------------------------------

    def _refresh_pairings(self) -> None:
        fresh = {a.upper(): p for a, p in self._pairing_source().items()}
        for address in list(self.sessions):
            if fresh.get(address) != self.pairings.get(address):  # unpaired or re-assigned
                task = self._session_tasks.pop(address)
                task.cancel()
                self._retired.append(task)
                del self.sessions[address]
                log.info("device %s is no longer paired as before; session stopped", address)
        self.pairings = fresh

    async def _discovery_loop(self) -> None:
        while True:
            self._refresh_pairings()
            missing = set(self.pairings) - set(self.sessions)
            if missing:
                for device in await self._scan(missing):
                    self._start_session(device)
            await asyncio.sleep(RESCAN_EVERY_S)

    async def _scan(self, wanted: set[str]) -> list[BLEDevice]:
        found: dict[str, BLEDevice] = {}
        complete = asyncio.Event()

        def on_advertisement(device: BLEDevice, _adv: AdvertisementData) -> None:
            address = device.address.upper()
            if address in wanted:
                found[address] = device
                if len(found) == len(wanted):
                    complete.set()

        scanner = BleakScanner(
            on_advertisement,
            service_uuids=list(uuids.MONITORED_SERVICES),
            backend=self.backends.scanner,
        )
        await scanner.start()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(complete.wait(), SCAN_SECONDS)
        finally:
            await scanner.stop()
        log.info("scan found %d of %d missing paired devices", len(found), len(wanted))
        return list(found.values())

    def _start_session(self, device: BLEDevice) -> None:
        address = device.address.upper()
        session = DeviceSession(
            device,
            self.pairings[address],
            self._store,
            self.clock,
            self.backends.client,
            connect_slot=self._connect_slot,
        )
        self.sessions[address] = session
        self._session_tasks[address] = asyncio.create_task(session.run(), name=f"session {address}")

    def _store(self, converted: Converted) -> None:
        if converted.readings:
            self.counters.readings += len(converted.readings)
            self.disk.append(converted.readings)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
