"""Retained status messages: a platform service's, a gateway's, and a gateway's devices.

``vigil/v1/svc/{client}/status`` carries :class:`ServiceStatus` (``online`` once the
service's subscription exists, ``offline`` as its last will). ``vigil/v1/gw/{gateway}/status``
carries :class:`GatewayStatus` every few seconds (outbox, counts, the process's CPU and
memory), and only the gateway and ``offline`` as its will. ``vigil/v1/gw/{gateway}/devices``
carries :class:`GatewayDevices`, one report per paired wearable. Fields that are absent
decode as None, and None fields are left out when encoding.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from vigil.wire import document
from vigil.wire.batch import DEVICE_ID, PATIENT_ID
from vigil.wire.errors import WireError
from vigil.wire.topics import GATEWAY_ID


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, StrEnum) else v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    state: Presence
    shard: int | None = None
    """Which analytics shard the service is, for sharded services."""

    def encode(self) -> bytes:
        return document.dump(_without_none(asdict(self)))

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> ServiceStatus:
        doc = document.parse_object(payload)
        return cls(document.choice(doc, "state", Presence), document.optional_integer(doc, "shard"))


_GATEWAY_INTEGERS = (
    "outbox_depth",
    "readings",
    "published",
    "confirmed",
    "next_seq",
    "oldest_seq",
    "life",
    "unconfirmed",
    "dropped",
)
_GATEWAY_NUMBERS = ("oldest_age_s", "unconfirmed_age_s", "cpu_s", "peak_rss_mb")


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    gateway: str
    state: Presence
    version: str | None = None
    outbox_depth: int | None = None
    """Readings on disk that the platform has not yet confirmed committed."""
    oldest_age_s: float | None = None
    """Age of the oldest of them."""
    readings: int | None = None
    """Received from the wearables since the gateway started."""
    published: int | None = None
    """Acknowledged by the broker since the gateway started."""
    confirmed: int | None = None
    """Confirmed committed by the platform since the gateway started."""
    unconfirmed: int | None = None
    """Readings the broker took that the platform has not confirmed yet: still on disk."""
    unconfirmed_age_s: float | None = None
    """Age of the oldest of them: minutes here mean ingest is away or a batch went missing."""
    next_seq: int | None = None
    oldest_seq: int | None = None
    """The lowest ``seq`` still on the gateway's disk (``next_seq`` when none is): every
    lower one was confirmed or dropped, so ingest need not wait for it to count
    :class:`~vigil.wire.commitment.Commitment` as contiguous."""
    life: int | None = None
    """Drawn when the outbox was made: a gateway whose outbox was wiped starts its ``seq``
    over under a new life, and commitments of its previous life do not apply."""
    dropped: int | None = None
    """Readings the full outbox had to drop, ever."""
    parse_errors: int | None = None
    cpu_s: float | None = None
    """The gateway process's CPU time and peak memory: what sizes a gateway's hardware (and
    what `vigil bench gateway` reads to measure the gateway apart from its wearables)."""
    peak_rss_mb: float | None = None

    def encode(self) -> bytes:
        return document.dump(_without_none(asdict(self)))

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> GatewayStatus:
        doc = document.parse_object(payload)
        values: dict[str, Any] = {
            "gateway": document.text(doc, "gateway", GATEWAY_ID, "a gateway id"),
            "state": document.choice(doc, "state", Presence),
            "version": document.optional_text(doc, "version"),
            "parse_errors": document.optional_integer(doc, "parse_errors"),
        }
        values |= {name: document.optional_integer(doc, name) for name in _GATEWAY_INTEGERS}
        values |= {name: document.optional_number(doc, name) for name in _GATEWAY_NUMBERS}
        return cls(**values)


_DEVICE_LABELS = (
    "kind",
    "state",
    "manufacturer",
    "model",
    "serial",
    "firmware",
    "location",
    "last_error",
)
_DEVICE_COUNTS = ("connects", "drops", "parse_errors", "no_values")
_LABEL = re.compile(r"[^\x00-\x1f\x7f]*")
"""What a device says it is, as the registry stores it: no NUL or control characters."""


@dataclass(frozen=True, slots=True)
class DeviceReport:
    address: str
    patient: str
    state: str
    """searching, connecting, connected or disconnected."""
    kind: str = "unknown"
    """heart-rate-strap, pulse-oximeter, or unknown until connected."""
    battery: int | None = None
    connects: int = 0
    drops: int = 0
    """Connections lost after they were established."""
    last_drop_ms: int | None = None
    last_reading_ms: int | None = None
    """When the device last sent a reading (gateway clock, UTC ms)."""
    parse_errors: int = 0
    no_values: int = 0
    last_error: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    """Serial Number String (0x2A25); absent from gateways before it was read."""
    firmware: str | None = None
    location: str | None = None
    """Body sensor location, as the strap reports it."""

    def document(self) -> dict[str, Any]:
        return _without_none(asdict(self))

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> DeviceReport:
        values: dict[str, Any] = {
            "address": document.text(doc, "address", DEVICE_ID, "a device address"),
            "patient": document.text(doc, "patient", PATIENT_ID, "a patient id"),
            "battery": document.optional_integer(doc, "battery"),
            "last_drop_ms": document.optional_integer(doc, "last_drop_ms"),
            "last_reading_ms": document.optional_integer(doc, "last_reading_ms"),
        }
        for name in _DEVICE_LABELS:
            if doc.get(name) is not None:
                shape = None if name == "last_error" else _LABEL
                values[name] = document.text(doc, name, shape, "text without control characters")
        for name in _DEVICE_COUNTS:
            if doc.get(name) is not None:
                values[name] = document.integer(doc, name)
        if "state" not in values:
            raise WireError("state", "missing")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class GatewayDevices:
    devices: tuple[DeviceReport, ...]

    def encode(self) -> bytes:
        return document.dump([d.document() for d in self.devices])

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> GatewayDevices:
        items = document.parse(payload)
        if not isinstance(items, list):
            raise WireError("payload", f"expected a JSON array, got {type(items).__name__}")
        reports = []
        for i, item in enumerate(items):
            try:
                reports.append(DeviceReport.from_document(document.as_object(item, "device")))
            except WireError as exc:
                raise WireError(f"devices[{i}].{exc.field}", exc.problem) from None
        return cls(tuple(reports))
