"""A real Mosquitto run with the shipped deploy/mosquitto.conf, for the tests of what it lets
through: its password file and ACL, no anonymous clients, usernames as client ids."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from vigil.embedded.broker import find_mosquitto
from vigil.embedded.processes import free_port, spawn, stop, wait_for_port

CONF = Path(__file__).parent.parent / "deploy" / "mosquitto.conf"


@dataclass(frozen=True, slots=True)
class ShippedBroker:
    port: int
    pid: int
    log: Path
    """The broker's own log (connections are in it: ``connection_messages true``)."""

    def url(self, username: str | None = None, password: str | None = None) -> str:
        login = f"{username}:{password}@" if username else ""
        return f"mqtt://{login}127.0.0.1:{self.port}"


def local_copy(folder: Path, port: int) -> Path:
    """The shipped file with this machine's paths (``folder/passwd``, ``folder/acl``); the TLS
    listener is left out (it needs certificates), every other line is kept as shipped."""
    text = CONF.read_text()
    text = re.sub(r"^(listener 8883|certfile|keyfile|cafile|tls_version).*\n", "", text, flags=re.M)
    text = text.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    text = text.replace("/etc/mosquitto/passwd", str(folder / "passwd"))
    text = text.replace("/etc/mosquitto/acl", str(folder / "acl"))
    text = text.replace("/var/lib/mosquitto/", f"{folder}/")
    text = text.replace("log_dest syslog", f"log_dest file {folder / 'mosquitto.log'}")
    path = folder / "mosquitto.conf"
    path.write_text(text + "user root\n")
    return path


@contextlib.contextmanager
def shipped_broker(folder: Path) -> Iterator[ShippedBroker]:
    """Mosquitto on a free port with the shipped config, reading ``folder/passwd`` and
    ``folder/acl`` (written before); skips the test where Mosquitto is not installed."""
    mosquitto = find_mosquitto()
    if mosquitto is None:
        pytest.skip("Mosquitto is not installed; `.ci/run` installs it")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    broker = spawn([mosquitto, "-c", str(local_copy(folder, port))], log=folder / "out")
    try:
        assert wait_for_port(port, 10, broker), (folder / "out").read_text()
        yield ShippedBroker(port, broker.pid, folder / "mosquitto.log")
    finally:
        stop(broker)


def accepted(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> bool:
    """Publish at QoS 1 and tell whether the broker took it: an MQTT 5 PUBACK's reason code
    says 'not authorized' where the ACL refuses (an MQTT 3.1.1 broker drops it silently)."""
    codes: dict[int, Any] = {}
    answered = threading.Condition()

    def on_publish(_c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with answered:
            codes[mid] = reason
            answered.notify_all()

    client.on_publish = on_publish
    info = client.publish(topic, payload, qos=1, retain=retain)
    with answered:
        assert answered.wait_for(lambda: info.mid in codes, 10), f"no PUBACK for {topic}"
    return not codes[info.mid].is_failure
