"""Opening paho-mqtt clients the same way in every service.

MQTT v5 is preferred (session expiry, shared subscriptions); a broker that only speaks
3.1.1, such as the embedded amqtt broker, answers a v5 CONNECT with 'unsupported protocol
version', and we reconnect with 3.1.1 rather than make v5 a requirement.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vigil.mqtt.inbox import Inbox
from vigil.settings import Settings
from vigil.wire.status import Presence, ServiceStatus

log = logging.getLogger(__name__)


class MqttUnavailable(RuntimeError):
    """The broker could not be reached or refused us; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(
                f"MQTT URL {url!r} must start with mqtt:// or mqtts:// (e.g. mqtt://localhost:1883)"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


def connect(
    settings: Settings,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    will: Will | None = None,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
    timeout: float = 10.0,
    receive_maximum: int | None = None,
    max_inflight: int = 20,
) -> mqtt.Client:
    """A connected client with its network loop running in a background thread.

    ``on_message`` is installed before connecting: a resumed session delivers its queued
    messages right after CONNACK, and paho drops (and, with manual acks, never
    acknowledges) messages that arrive with no callback.

    ``persistent`` asks the broker to keep the session (subscriptions and unacknowledged
    QoS 1 messages) while we are away, which is what lets ingest acknowledge after commit.
    Later disconnects are retried by paho's loop on its own.
    """
    if not settings.mqtt_url:
        raise MqttUnavailable(
            "no broker configured: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)"
        )
    endpoint = Endpoint.parse(settings.mqtt_url)
    refusals = []
    # A 3.1.1-only broker may answer a v5 CONNECT with 'unsupported protocol version', or
    # (amqtt, when the CONNECT carries a will) drop it without any CONNACK: either way the
    # next try is 3.1.1, and only its refusal is final.
    for protocol in (mqtt.MQTTv5, mqtt.MQTTv311):
        client = _client(settings, endpoint, client_id, protocol, persistent, manual_ack, will)
        client.max_inflight_messages_set(max_inflight)  # QoS 1 messages out, unacknowledged
        client.on_message = on_message
        outcome = _handshake(
            client, endpoint, protocol, persistent, settings, timeout, receive_maximum
        )
        if outcome is None:
            log.info("connected to %s as %s (MQTT %s)", endpoint, client_id, _name(protocol))
            return client
        client.loop_stop()
        refusals.append(f"MQTT {_name(protocol)}: {outcome}")
    raise MqttUnavailable(f"broker {endpoint} refused {client_id} ({'; '.join(refusals)})")


def connect_retrying(
    stop: threading.Event, settings: Settings, client_id: str, **options: Any
) -> mqtt.Client | None:
    """:func:`connect`, retried with backoff (0.5 s doubling to 10 s) while the broker is
    unavailable, so a service started before its broker waits for it; None once ``stop``
    is set."""
    delay = 0.5
    while not stop.is_set():
        try:
            return connect(settings, client_id, **options)
        except MqttUnavailable as exc:
            log.warning("%s; retrying in %.1f s", exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
    return None


def service_session(
    stop: threading.Event,
    settings: Settings,
    client_id: str,
    inbox: Inbox,
    status_topic: str,
    subscribe: Callable[[mqtt.Client], None],
) -> mqtt.Client | None:
    """A platform service's broker session (ingest, analytics, alerts): persistent, so
    what arrives while the service is away waits for it; acknowledged by the service once
    its work is done (manual acks); at most the inbox's size in flight (Receive Maximum);
    'offline' on ``status_topic`` as its will. ``subscribe`` runs now and on every
    reconnect. None once ``stop`` is set before the broker answered."""
    client = connect_retrying(
        stop,
        settings,
        client_id,
        persistent=True,
        manual_ack=True,
        receive_maximum=inbox.max_messages,
        will=Will(status_topic, ServiceStatus(Presence.OFFLINE).encode()),
        on_message=lambda _c, _u, message: inbox.put(message),
    )
    if client is not None:
        client.on_connect = lambda c, *_: subscribe(c)
        subscribe(client)
    return client


def announce(client: mqtt.Client, status_topic: str, status: ServiceStatus) -> None:
    """A service's retained status. The broker handles one client's packets in order, so
    whoever sees 'online' after the service subscribed knows the subscription exists (the
    demo and the tests wait for it before a gateway publishes)."""
    client.publish(status_topic, status.encode(), qos=1, retain=True)


def end_session(client: mqtt.Client, status_topic: str) -> None:
    """A service's clean goodbye: 'offline' on its status topic, then disconnect."""
    announce(client, status_topic, ServiceStatus(Presence.OFFLINE))
    client.disconnect()
    client.loop_stop()


def _name(protocol: int) -> str:
    return "5" if protocol == mqtt.MQTTv5 else "3.1.1"


def _client(
    settings: Settings,
    endpoint: Endpoint,
    client_id: str,
    protocol: int,
    persistent: bool,
    manual_ack: bool,
    will: Will | None,
) -> mqtt.Client:
    kwargs: dict[str, Any] = {
        "client_id": client_id,
        "protocol": protocol,
        "manual_ack": manual_ack,
    }
    if protocol == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_queued_messages_set(0)
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        context = ssl.create_default_context(
            cafile=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None
        )
        if settings.mqtt_client_cert:
            context.load_cert_chain(
                str(settings.mqtt_client_cert),
                str(settings.mqtt_client_key) if settings.mqtt_client_key else None,
            )
        client.tls_set_context(context)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
    return client


def _handshake(
    client: mqtt.Client,
    endpoint: Endpoint,
    protocol: int,
    persistent: bool,
    settings: Settings,
    timeout: float,
    receive_maximum: int | None,
) -> str | None:
    """Connect and wait for CONNACK: None when accepted, else the broker's reason."""
    done = threading.Event()
    outcome: list[str | None] = []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not outcome:
            outcome.append(None if not reason.is_failure else str(reason))
        done.set()

    def on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not outcome:
            outcome.append(f"disconnected ({reason})")
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    connect_kwargs: dict[str, Any] = {}
    if protocol == mqtt.MQTTv5:
        connect_kwargs["clean_start"] = not persistent
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = settings.mqtt_session_expiry_s
        if receive_maximum is not None:
            # With acknowledgements sent after commit, this bounds what the broker has
            # in flight to us: the rest waits in the broker's queue for this session.
            props.ReceiveMaximum = min(receive_maximum, 65535)
        connect_kwargs["properties"] = props
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=30, **connect_kwargs)
    except OSError as exc:
        raise MqttUnavailable(
            f"cannot reach the MQTT broker at {endpoint} ({exc.strerror or exc}); "
            "is it running? Set VIGIL_MQTT_URL to point at yours."
        ) from None
    client.loop_start()
    # A broker that drops a CONNECT it cannot parse sends no CONNACK, and paho then keeps
    # reconnecting quietly: a silence as long as the timeout is the answer.
    wait = timeout if protocol == mqtt.MQTTv311 else min(timeout, 3.0)
    if not done.wait(wait):
        client.loop_stop()
        return f"no answer within {wait:.0f} s"
    client.on_connect = None
    client.on_disconnect = None
    return outcome[0]
