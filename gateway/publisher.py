"""Publishing to the broker: a small protocol, and its paho-mqtt implementation.

The gateway service only sees :class:`Publisher`; tests and other transports can stand in
for paho. Acknowledgements (PUBACK for QoS 1) arrive on paho's network thread and are
handed to the asyncio loop, where the outbox lives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings
from vigil.wire.status import GatewayStatus, Presence
from vigil.wire.topics import Topics

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Queue a QoS 1 message and return its message id; it is sent once connected."""

    def close(self) -> None: ...


class MqttPublisher:
    """paho client with the gateway's last will ('offline' on the retained status topic)."""

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client

    @classmethod
    def connect(
        cls,
        settings: Settings,
        gateway: str,
        loop: asyncio.AbstractEventLoop,
        on_ack: Callable[[int], None],
        on_inbox: Callable[[bytes], None],
        on_commitment: Callable[[bytes], None],
    ) -> MqttPublisher:
        """Blocking: open the connection (raises vigil.mqtt.MqttUnavailable). The session
        is persistent and subscribed to the gateway's inbox, so messages for the patient
        sent while the gateway is away wait at the broker; ``on_inbox`` gets each one, and
        ``on_commitment`` each of ingest's commitments (the retained one at every
        subscription), both on paho's thread and handed to ``loop``."""
        topics = Topics(gateway)
        will = vigil_mqtt.Will(topics.status, GatewayStatus(gateway, Presence.OFFLINE).encode())

        def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            handler = on_commitment if message.topic == topics.committed else on_inbox
            loop.call_soon_threadsafe(handler, bytes(message.payload))

        client = vigil_mqtt.connect(
            settings, gateway, will=will, persistent=True, on_message=on_message
        )

        def on_publish(_c: mqtt.Client, _u: Any, mid: int, rc: Any, _p: Any) -> None:
            if getattr(rc, "is_failure", False):  # MQTT 5: e.g. not authorized by the ACL
                log.error("the broker refused a batch (%s): it stays in the outbox", rc)
                return
            loop.call_soon_threadsafe(on_ack, mid)

        wanted = [(topics.inbox, 1), (topics.committed, 1)]
        client.on_publish = on_publish
        client.on_connect = lambda c, *_: c.subscribe(wanted)
        client.subscribe(wanted)
        return cls(client)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        return int(self._client.publish(topic, payload, qos=1, retain=retain).mid)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
