"""Running the pipeline's pieces for end-to-end tests: ingest as a real `vigil ingest`
process (so it can be killed), the gateway and the simulated ward in a thread of the test
process (so the test can read what the wearables sent)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from analytics.service import AnalyticsCounters, AnalyticsService
from gateway.counters import Counters
from gateway.service import Backends, GatewayService
from simulators.ble import Ward
from simulators.physiology import Scripted
from vigil import mqtt as vigil_mqtt
from vigil.embedded.processes import start_service, stop
from vigil.mqtt import Endpoint, Watcher
from vigil.settings import Settings
from vigil.wire.events import AnalyticsEvent
from vigil.wire.status import Presence
from vigil.wire.topics import EVENTS, service_status


class ServiceProcess:
    """A `vigil SERVICE` process, started with the test's settings, that can be killed.

    Its status is watched through ``watch_url`` (default: the service's own broker URL).
    A broker that takes usernames as client ids needs an account of the watcher's own: with
    the service's, the watcher would be the service's client and knock it off."""

    def __init__(
        self,
        command: str,
        client_id: str,
        env: dict[str, str],
        log_path: Any,
        watch_url: str | None = None,
    ) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.status_topic = service_status(client_id)
        self.client_id = client_id
        settings = Settings(mqtt_url=watch_url or env["VIGIL_MQTT_URL"])
        username = Endpoint.parse(settings.mqtt_url or "").username if watch_url else None
        self.watcher = Watcher.services(
            settings, [client_id], username or f"watch-{time.time_ns()}"
        )

    def start(self, **extra_env: str) -> None:
        env = {**self.env, **extra_env}
        try:
            self.process = start_service(
                [self.command], self.client_id, env, self.log_path, self.watcher, 30
            )
        except RuntimeError as exc:
            raise AssertionError(f"{exc}: {self.log_path.read_text()}") from None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.wait_for_death(10)

    def wait_for_death(self, timeout: float) -> None:
        assert self.process is not None
        self.process.wait(timeout)

    def stop(self) -> int | None:
        code = stop(self.process) if self.process is not None else None
        self.watcher.close()
        return code


class IngestProcess(ServiceProcess):
    def __init__(self, settings: Settings, log_path: Any, watch_url: str | None = None) -> None:
        self.settings = settings
        env = {
            "VIGIL_DATABASE_URL": settings.database_url or "",
            "VIGIL_MQTT_URL": settings.mqtt_url or "",
            "VIGIL_INGEST_CLIENT_ID": settings.ingest_client_id,
            "VIGIL_INGEST_SHARE_GROUP": settings.ingest_share_group,
        }
        super().__init__("ingest", settings.ingest_client_id, env, log_path, watch_url)


class GatewayThread:
    """A simulated ward and the real gateway service on an event loop in a thread."""

    def __init__(
        self,
        settings: Settings,
        patients: int,
        scripts: dict[int, tuple[Scripted, ...]] | None = None,
    ) -> None:
        self.ward = Ward(patients, seed=3, scripts=scripts)
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._result: Future[Counters] | None = None
        self.service: GatewayService | None = None

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a coroutine function on the gateway's loop and return its result."""

        async def wrapper() -> Any:
            return await fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(30)

    def start(self) -> None:
        self._thread.start()

        async def begin() -> None:
            central = await self.ward.start()
            scanner, client = central.backends()
            self.service = GatewayService(
                self.settings, self.ward.pairings, Backends(scanner, client)
            )
            self._stop = asyncio.Event()

        self.call(begin)
        assert self.service is not None and self._stop is not None
        self._result = asyncio.run_coroutine_threadsafe(self.service.run(self._stop), self.loop)

    def outbox_depth(self) -> int:
        async def depth() -> int:
            assert self.service is not None
            return self.service.outbox.depth()

        return int(self.call(depth))

    def stop_wearables(self) -> None:
        self.call(self.ward.stop)

    def finish(self) -> Counters:
        """Stop the wearables, let their last notifications land, then stop the gateway."""
        self.stop_wearables()
        time.sleep(1.5)
        return self.stop()

    def stop(self) -> Counters:
        assert self._stop is not None and self._result is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        counters = self._result.result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        return counters


def publish(settings: Settings, topic: str, payloads: list[bytes], gap_s: float = 0.0) -> None:
    """Publish at QoS 1, each message acknowledged by the broker before the next."""
    client = vigil_mqtt.connect(settings, f"test-publisher-{time.time_ns()}")
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
            time.sleep(gap_s)
    finally:
        client.disconnect()
        client.loop_stop()


def stored_rows(url: str) -> list[tuple[str, int, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT patient, metric, value FROM observation ORDER BY patient, metric, effective"
        ).fetchall()


def wait_for(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


class AnalyticsThread:
    """The service on a thread, as `vigil analytics` runs it. Its status is watched through
    ``watch_url`` (default: the service's own broker URL; see :class:`ServiceProcess`)."""

    def __init__(self, settings: Settings, watch_url: str | None = None) -> None:
        self.service = AnalyticsService(settings)
        self.stop_event = threading.Event()
        self.counters: AnalyticsCounters | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        watching = Settings(mqtt_url=watch_url) if watch_url else settings
        username = Endpoint.parse(watch_url).username if watch_url else None
        watcher = Watcher.services(
            watching, [self.service.client_id], username or f"watch-{time.time_ns()}"
        )
        try:
            topic = service_status(self.service.client_id)
            assert watcher.wait_for_state(topic, Presence.ONLINE, timeout=15)
        finally:
            watcher.close()

    def _run(self) -> None:
        self.counters = self.service.run(self.stop_event)

    def stop(self) -> AnalyticsCounters:
        self.stop_event.set()
        self.thread.join(15)
        assert self.counters is not None
        return self.counters


class EventCollector:
    def __init__(self, settings: Settings) -> None:
        self.received: list[dict[str, Any]] = []
        self.client = vigil_mqtt.connect(
            settings, f"events-{time.time_ns()}", on_message=self._on_message
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe(EVENTS, qos=1)
        assert subscribed.wait(5)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.received.append(AnalyticsEvent.decode(message.payload).document())

    def kinds(self, patient: str, rule: str = "spo2_desaturation") -> list[str]:
        return [e["kind"] for e in self.received if e["patient"] == patient and e["rule"] == rule]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
