"""MQTT for every process: connecting paho clients the same way (:mod:`vigil.mqtt.client`),
the bounded queue between paho's thread and a service's loop (:mod:`vigil.mqtt.inbox`), and
following retained status topics (:mod:`vigil.mqtt.watcher`)."""

from vigil.mqtt.client import (
    Endpoint,
    MqttUnavailable,
    Will,
    announce,
    connect,
    connect_retrying,
    end_session,
    service_session,
)
from vigil.mqtt.inbox import Inbox
from vigil.mqtt.watcher import Watcher

__all__ = [
    "Endpoint",
    "Inbox",
    "MqttUnavailable",
    "Watcher",
    "Will",
    "announce",
    "connect",
    "connect_retrying",
    "end_session",
    "service_session",
]
