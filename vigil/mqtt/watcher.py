"""Following retained topics: the latest message on each, decoded as its topic's type.

Status topics are retained, so the current state arrives right after subscribing; the
demo, the benchmarks and the tests wait here for a service to come online (its
subscription then exists) or a gateway to go offline (its final counts are then in).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self, TypeVar

import paho.mqtt.client as mqtt

from vigil.mqtt.client import connect
from vigil.settings import Settings
from vigil.wire.errors import WireError
from vigil.wire.status import Presence, ServiceStatus
from vigil.wire.topics import service_status

M = TypeVar("M")


class Watcher:
    def __init__(
        self,
        settings: Settings,
        topics: Mapping[str, Callable[[bytes], object]],
        client_id: str,
    ) -> None:
        """``topics``: each topic with the decoder of its messages (``ServiceStatus.decode``)."""
        self._decoders = dict(topics)
        self._latest: dict[str, object] = {}
        self._changed = threading.Condition()
        self._client = connect(settings, client_id, on_message=self._on_message)
        wanted = [(topic, 1) for topic in self._decoders]
        # Again on every reconnection: a broker that restarted without its sessions (killed
        # before it saved them) would otherwise send nothing more.
        self._client.on_connect = lambda c, *_: c.subscribe(wanted)
        self._client.subscribe(wanted)

    @classmethod
    def services(cls, settings: Settings, client_ids: Iterable[str], client_id: str) -> Self:
        """A watcher of the status of the services with these MQTT client ids."""
        return cls(
            settings, {service_status(c): ServiceStatus.decode for c in client_ids}, client_id
        )

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        decode = self._decoders.get(message.topic)
        if decode is None:
            return
        try:
            value = decode(bytes(message.payload))
        except WireError:
            return  # the last good message stands
        with self._changed:
            self._latest[message.topic] = value
            self._changed.notify_all()

    def get(self, topic: str, kind: type[M]) -> M | None:
        with self._changed:
            value = self._latest.get(topic)
        return value if isinstance(value, kind) else None

    def wait_for(
        self, topic: str, kind: type[M], predicate: Callable[[M], bool], timeout: float
    ) -> bool:
        def holds() -> bool:
            value = self._latest.get(topic)
            return isinstance(value, kind) and predicate(value)

        with self._changed:
            return self._changed.wait_for(holds, timeout)

    def wait_for_state(self, topic: str, state: Presence, timeout: float) -> bool:
        """For a status topic (a service's or a gateway's): its state is ``state``."""
        return self.wait_for(topic, object, lambda s: getattr(s, "state", None) == state, timeout)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
