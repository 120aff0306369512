"""Replaying a notification log captured from real wearables through simulated ones.

A trace is JSON lines, one raw GATT notification each::

    {"t": 0.0, "device": "AA:BB:CC:DD:EE:01", "char": "2a37", "hex": "16480304"}

``t`` is seconds from the start of the trace. Each device in the trace becomes a simulated
wearable on the virtual link (a chest strap if it ever sends 0x2A37, else an oximeter), the
real gateway connects and subscribes to it as usual, and the recorded bytes are notified at
their times: the same path as live data, so a capture from a real device can be checked all
the way to the database. Lines that cannot be replayed are reported with their number and
skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bumble import gatt

from gateway.bumble_host import BumbleCentral
from simulators.ble.radio import VirtualRadio
from simulators.ble.wearables import HeartRateStrap, PulseOximeter, Wearable
from simulators.physiology import Physiology

_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
CHARACTERISTICS = {"2a37", "2a5f", "2a5e", "2a19"}


@dataclass(frozen=True, slots=True)
class TraceEvent:
    line: int
    t: float
    device: str
    char: str
    payload: bytes


def parse_trace(lines: Iterable[str]) -> tuple[list[TraceEvent], list[str]]:
    """Events in time order, and one message per line that was skipped."""
    events: list[TraceEvent] = []
    problems: list[str] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            events.append(_event(number, json.loads(text)))
        except (ValueError, TypeError, KeyError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            problems.append(f"line {number}: {reason}")
    events.sort(key=lambda e: (e.t, e.line))
    return events, problems


def _event(number: int, doc: Any) -> TraceEvent:
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    t = doc["t"]
    if not isinstance(t, int | float) or isinstance(t, bool) or t < 0:
        raise ValueError(f"t must be seconds >= 0, got {t!r}")
    device = doc["device"]
    if not isinstance(device, str) or not _ADDRESS.fullmatch(device):
        raise ValueError(f"device must be a Bluetooth address, got {device!r}")
    char = str(doc["char"]).lower().removeprefix("0x")
    if char not in CHARACTERISTICS:
        raise ValueError(f"char {char!r} is not one of {', '.join(sorted(CHARACTERISTICS))}")
    payload = bytes.fromhex(str(doc["hex"]))  # ValueError names the bad digit
    return TraceEvent(number, float(t), device.upper(), char, payload)


class TracePlayer:
    """The simulated wearables of a trace, and the clock that replays it."""

    def __init__(self, events: list[TraceEvent], patient: str) -> None:
        self.events = events
        self.patient = patient
        self.wearables: dict[str, Wearable] = {}
        self.pairings: dict[str, str] = {}
        self.sent = 0
        self.refused: list[str] = []

    async def start(self) -> BumbleCentral:
        radio = VirtualRadio()
        straps = {e.device for e in self.events if e.char == "2a37"}
        for n, device in enumerate(sorted({e.device for e in self.events})):
            kind = HeartRateStrap if device in straps else PulseOximeter
            wearable = kind(radio, device, f"trace {device[-5:]}", Physiology.seeded(n))
            await wearable.power_on()
            self.wearables[device] = wearable
            self.pairings[device] = self.patient
        central = radio.central()
        await central.power_on()
        return central

    async def wait_until_subscribed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(w.subscribed(w.measurement) for w in self.wearables.values()):
                return True
            await asyncio.sleep(0.1)
        return False

    async def play(self, speed: float = 1.0) -> None:
        start = time.monotonic()
        for event in self.events:
            await asyncio.sleep(max(0.0, start + event.t / speed - time.monotonic()))
            wearable = self.wearables[event.device]
            characteristic = self._characteristic(wearable, event.char)
            if characteristic is None:
                self.refused.append(
                    f"line {event.line}: a {wearable.kind} has no characteristic {event.char}"
                )
                continue
            if event.char == "2a5e":
                await wearable.device.indicate_subscribers(characteristic, event.payload)
            else:
                await wearable.device.notify_subscribers(characteristic, event.payload)
            self.sent += 1

    @staticmethod
    def _characteristic(wearable: Wearable, char: str) -> gatt.Characteristic[Any] | None:
        if char == "2a19":
            return wearable.battery_level
        if char == "2a5e":
            return getattr(wearable, "spot_check_measurement", None)
        if wearable.measurement_uuid.lower() == char:
            return wearable.measurement
        return None
