"""Heart Rate Measurement (0x2A37), Heart Rate Service 1.0, section 3.1.

Layout: flags (1 byte), heart rate (uint8 or uint16 by flag bit 0), energy expended in kJ
(uint16, when bit 3), then RR intervals (uint16 each, 1/1024 s, when bit 4) to the end.
Bits 1-2 say whether the strap can detect skin contact and whether it does: a strap off the
chest keeps sending numbers, and only this flag tells us they mean nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.gatt.errors import GattParseError

NAME = "Heart Rate Measurement"
_UINT16_VALUE = 0x01
_CONTACT_DETECTED = 0x02
_CONTACT_SUPPORTED = 0x04
_ENERGY_EXPENDED = 0x08
_RR_INTERVALS = 0x10


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    bpm: int
    contact: bool | None
    """True or False when the sensor supports contact detection, None when it does not."""
    energy_expended_kj: int | None
    rr_intervals_ms: tuple[float, ...]


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    if not data:
        raise GattParseError(NAME, "empty payload", data)
    flags = data[0]
    offset = 1
    if flags & _UINT16_VALUE:
        offset = _need(data, offset, 2, "16-bit heart rate")
        (bpm,) = struct.unpack_from("<H", data, 1)
    else:
        offset = _need(data, offset, 1, "8-bit heart rate")
        bpm = data[1]

    contact: bool | None = None
    if flags & _CONTACT_SUPPORTED:
        contact = bool(flags & _CONTACT_DETECTED)

    energy: int | None = None
    if flags & _ENERGY_EXPENDED:
        start = offset
        offset = _need(data, offset, 2, "energy expended")
        (energy,) = struct.unpack_from("<H", data, start)

    rr: tuple[float, ...] = ()
    rest = len(data) - offset
    if flags & _RR_INTERVALS:
        if rest == 0 or rest % 2:
            raise GattParseError(NAME, f"RR interval field has {rest} bytes, not pairs", data)
        raw = struct.unpack_from(f"<{rest // 2}H", data, offset)
        rr = tuple(r * 1000.0 / 1024.0 for r in raw)
    elif rest:
        raise GattParseError(NAME, f"{rest} unexpected bytes after the last field", data)
    return HeartRateMeasurement(bpm, contact, energy, rr)


def _need(data: bytes, offset: int, size: int, field: str) -> int:
    if len(data) < offset + size:
        raise GattParseError(NAME, f"truncated in {field}", data)
    return offset + size
