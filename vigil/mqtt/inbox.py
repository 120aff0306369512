"""A bounded queue between paho's network thread and a service's main loop, taken in
micro-batches.

paho calls ``put`` on its own thread for each message; when the service falls behind the
queue is full, ``put`` blocks, paho stops reading its socket, and the broker keeps the rest
(with MQTT 5 it also stops at the session's Receive Maximum): backpressure instead of an
unbounded heap. The service takes what is waiting as one micro-batch, so per-batch costs
(a transaction, a scoring pass) are paid once for many messages.
"""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt


class Inbox:
    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue(max_messages)

    def put(self, message: mqtt.MQTTMessage) -> None:
        self._queue.put(message)

    def take(self, timeout: float, window_ms: int, max_bytes: int) -> list[mqtt.MQTTMessage]:
        """Waits up to ``timeout`` for a first message, then takes what arrives within
        ``window_ms`` of it, until ``max_bytes`` of payload or ``max_messages``."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        messages = [first]
        size = len(first.payload)
        deadline = time.monotonic() + window_ms / 1000
        while size < max_bytes and len(messages) < self.max_messages:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            try:
                message = self._queue.get(timeout=wait)
            except queue.Empty:
                break
            messages.append(message)
            size += len(message.payload)
        return messages
