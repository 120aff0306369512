"""The private broker: the addresses it listens on, and what a SIGKILL costs it."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from vigil import mqtt as vigil_mqtt
from vigil.embedded.broker import PrivateBroker, find_mosquitto, start_broker
from vigil.settings import Settings

pytestmark = pytest.mark.services

TOPIC = "vigil/test/queued"


class Inbox:
    """Payloads received, in order, on paho's thread."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.changed = threading.Condition()

    def on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.payloads.append(bytes(message.payload))
            self.changed.notify_all()

    def wait_for(self, payload: bytes, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: payload in self.payloads, timeout)


def subscriber(url: str, client_id: str, inbox: Inbox) -> mqtt.Client:
    """A persistent QoS 1 subscription to TOPIC, as ingest's is."""
    client = vigil_mqtt.connect(
        Settings(mqtt_url=url), client_id, persistent=True, on_message=inbox.on_message
    )
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(TOPIC, qos=1)
    assert subscribed.wait(10)
    return client


def publish(url: str, payloads: list[bytes]) -> None:
    """Each acknowledged (PUBACK) by the broker before the next is sent."""
    client = vigil_mqtt.connect(Settings(mqtt_url=url), f"publisher-{time.time_ns()}")
    try:
        for payload in payloads:
            client.publish(TOPIC, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def kinds() -> list[Any]:
    no_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="Mosquitto not installed")
    return [pytest.param("mosquitto", marks=no_mosquitto), "amqtt"]


@pytest.mark.parametrize("kind", kinds())
def test_a_broker_serves_the_same_port_on_every_address_it_listens_on(
    tmp_path: Path, kind: str
) -> None:
    broker = start_broker(tmp_path, prefer=kind, listen=("127.0.0.2", "127.0.0.1"))
    try:
        assert broker.kind == kind
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert broker.url_on("127.0.0.2") == f"mqtt://127.0.0.2:{broker.port}"
        with pytest.raises(ValueError, match=r"not on 127\.0\.0\.3"):
            broker.url_on("127.0.0.3")
        inbox = Inbox()
        client = subscriber(broker.url, "loopback-listener", inbox)
        publish(broker.url_on("127.0.0.2"), [b"across"])
        assert inbox.wait_for(b"across", 10)
        close(client)
    finally:
        broker.stop()


def test_a_broker_must_listen_on_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must include 127\.0\.0\.1"):
        start_broker(tmp_path, listen=("127.0.0.2",))


def persistence_file(broker: PrivateBroker) -> int | None:
    """The inode of Mosquitto's snapshot: each autosave writes a new file and renames it."""
    path = broker.folder / "mosquitto.db"
    return path.stat().st_ino if path.exists() else None


def wait_for_autosave(broker: PrivateBroker, before: int | None) -> int:
    deadline = time.monotonic() + broker.autosave_interval * 3 + 5
    while time.monotonic() < deadline:
        now = persistence_file(broker)
        if now is not None and now != before:
            return now
        time.sleep(0.02)
    raise AssertionError(f"no autosave within {broker.autosave_interval * 3 + 5} s")


@pytest.mark.slow
def test_a_killed_mosquitto_keeps_what_it_had_autosaved_and_loses_the_rest(
    tmp_path: Path,
) -> None:
    """Issue 17's first finding: a QoS 1 message the broker acknowledged, queued for a
    persistent subscriber that is away, dies with a SIGKILL unless an autosave came in
    between."""
    if find_mosquitto() is None:
        pytest.skip("Mosquitto is not installed (amqtt keeps nothing on disk); `.ci/run` does")
    broker = start_broker(tmp_path, autosave_interval=5)
    try:
        inbox = Inbox()
        close(subscriber(broker.url, "away-while-queued", inbox))  # its session stays
        saved = [b"saved-%d" % i for i in range(10)]
        publish(broker.url, saved)
        snapshot = wait_for_autosave(broker, persistence_file(broker))
        unsaved = [b"unsaved-%d" % i for i in range(10)]
        publish(broker.url, unsaved)  # every one acknowledged by the broker
        broker.kill()
        assert broker.process.returncode == -signal.SIGKILL
        assert persistence_file(broker) == snapshot, "an autosave came after the last publish"

        broker.restart()
        client = subscriber(broker.url, "away-while-queued", inbox)
        # Published after the reconnect, so delivered after whatever the session kept.
        publish(broker.url, [b"after-restart"])
        assert inbox.wait_for(b"after-restart", 15)
        close(client)
    finally:
        broker.stop()
    assert inbox.payloads == [*saved, b"after-restart"]
