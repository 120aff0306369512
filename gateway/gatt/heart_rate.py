"""Heart Rate Measurement (0x2A37), Heart Rate Service 1.0, section 3.1.

Layout: flags (1 byte), heart rate (uint8 or uint16 by flag bit 0), energy expended in kJ
(uint16, when bit 3), then RR intervals (uint16 each, 1/1024 s, when bit 4) to the end.
Bits 1-2 say whether the strap can detect skin contact and whether it does: a strap off the
chest keeps sending numbers, and only this flag tells us they mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.gatt.errors import GattParseError
from gateway.gatt.reader import ByteReader

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
    read = ByteReader(NAME, data)
    flags = read.u8("flags")
    bpm = read.u16("16-bit heart rate") if flags & _UINT16_VALUE else read.u8("8-bit heart rate")
    contact = bool(flags & _CONTACT_DETECTED) if flags & _CONTACT_SUPPORTED else None
    energy = read.u16("energy expended") if flags & _ENERGY_EXPENDED else None
    rr: tuple[float, ...] = ()
    if flags & _RR_INTERVALS:
        rest = len(data) - read.offset
        if rest == 0 or rest % 2:
            raise GattParseError(NAME, f"RR interval field has {rest} bytes, not pairs", data)
        rr = tuple(read.u16("RR interval") * 1000.0 / 1024.0 for _ in range(rest // 2))
    read.end()
    return HeartRateMeasurement(bpm, contact, energy, rr)


BODY_SENSOR_LOCATION = "Body Sensor Location"
LOCATIONS = ("other", "chest", "wrist", "finger", "hand", "ear lobe", "foot")


def parse_body_sensor_location(data: bytes) -> str:
    """Where the sensor sits (0x2A38); values 7-255 are reserved by the spec."""
    if len(data) != 1:
        raise GattParseError(BODY_SENSOR_LOCATION, f"expected 1 byte, got {len(data)}", data)
    if data[0] >= len(LOCATIONS):
        raise GattParseError(BODY_SENSOR_LOCATION, f"reserved location value {data[0]}", data)
    return LOCATIONS[data[0]]
