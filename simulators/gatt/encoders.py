"""Spec-exact encoders for the characteristics the simulated wearables notify.

They are written from the specifications, not from the gateway's parsers, so a round trip
through both checks each against the spec rather than against itself.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime

SFLOAT_NAN = 0x07FF
SFLOAT_NRES = 0x0800
SFLOAT_POSITIVE_INFINITY = 0x07FE
SFLOAT_NEGATIVE_INFINITY = 0x0802
SFLOAT_RESERVED = 0x0801


def encode_sfloat(value: float, exponent: int = -1) -> int:
    """The 16-bit SFLOAT of ``value`` at ``10**exponent`` resolution (NRes if it won't fit)."""
    if not -8 <= exponent <= 7:
        raise ValueError(f"SFLOAT exponent {exponent} outside -8..7")
    mantissa = round(value / 10.0**exponent)
    if not -2045 <= mantissa <= 2045:  # 0x7FE-0x802 are the special values
        return SFLOAT_NRES
    return ((exponent & 0x0F) << 12) | (mantissa & 0x0FFF)


def encode_heart_rate_measurement(
    bpm: int,
    *,
    contact: bool | None = None,
    energy_expended_kj: int | None = None,
    rr_intervals_ms: Sequence[float] = (),
) -> bytes:
    flags = 0
    body = b""
    if bpm > 0xFF:
        flags |= 0x01
        body += struct.pack("<H", bpm)
    else:
        body += struct.pack("<B", bpm)
    if contact is not None:
        flags |= 0x04 | (0x02 if contact else 0)
    if energy_expended_kj is not None:
        flags |= 0x08
        body += struct.pack("<H", energy_expended_kj)
    if rr_intervals_ms:
        flags |= 0x10
        body += b"".join(struct.pack("<H", round(rr * 1024 / 1000)) for rr in rr_intervals_ms)
    return bytes([flags]) + body


def encode_plx_continuous(
    spo2: int,
    pulse_rate: int,
    *,
    fast: tuple[int, int] | None = None,
    slow: tuple[int, int] | None = None,
    measurement_status: int | None = None,
    device_status: int | None = None,
    pulse_amplitude_index: int | None = None,
) -> bytes:
    """Values are raw SFLOAT integers (see :func:`encode_sfloat`), so tests can send specials."""
    flags = 0
    body = struct.pack("<HH", spo2, pulse_rate)
    if fast is not None:
        flags |= 0x01
        body += struct.pack("<HH", *fast)
    if slow is not None:
        flags |= 0x02
        body += struct.pack("<HH", *slow)
    if measurement_status is not None:
        flags |= 0x04
        body += struct.pack("<H", measurement_status)
    if device_status is not None:
        flags |= 0x08
        body += struct.pack("<HB", device_status & 0xFFFF, device_status >> 16)
    if pulse_amplitude_index is not None:
        flags |= 0x10
        body += struct.pack("<H", pulse_amplitude_index)
    return bytes([flags]) + body


def encode_battery_level(percent: int) -> bytes:
    return bytes([percent])


FLOAT_NAN = 0x007FFFFF
FLOAT_NRES = 0x00800000


def encode_float(value: float, exponent: int = -2) -> int:
    """The 32-bit FLOAT of ``value`` at ``10**exponent`` resolution (NRes if it won't fit)."""
    if not -128 <= exponent <= 127:
        raise ValueError(f"FLOAT exponent {exponent} outside -128..127")
    mantissa = round(value / 10.0**exponent)
    if not -(2**23 - 3) <= mantissa <= 2**23 - 3:  # 0x7FFFFE-0x800002 are the special values
        return FLOAT_NRES
    return ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)


def encode_date_time(moment: datetime | None) -> bytes:
    """Bluetooth Date Time: year uint16, month, day, hours, minutes, seconds; zeros = unknown."""
    if moment is None:
        return bytes(7)
    return struct.pack(
        "<HBBBBB", moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second
    )


def encode_plx_spot_check(
    spo2: int,
    pulse_rate: int,
    *,
    timestamp: datetime | None = None,
    measurement_status: int | None = None,
    device_status: int | None = None,
    pulse_amplitude_index: int | None = None,
    clock_not_set: bool = False,
) -> bytes:
    """Values are raw SFLOAT integers, as in :func:`encode_plx_continuous`."""
    flags = 0x10 if clock_not_set else 0
    body = struct.pack("<HH", spo2, pulse_rate)
    if timestamp is not None:
        flags |= 0x01
        body += encode_date_time(timestamp)
    if measurement_status is not None:
        flags |= 0x02
        body += struct.pack("<H", measurement_status)
    if device_status is not None:
        flags |= 0x04
        body += struct.pack("<HB", device_status & 0xFFFF, device_status >> 16)
    if pulse_amplitude_index is not None:
        flags |= 0x08
        body += struct.pack("<H", pulse_amplitude_index)
    return bytes([flags]) + body


def encode_plx_features(
    supported: int,
    measurement_status_support: int | None = None,
    device_status_support: int | None = None,
) -> bytes:
    """Bits 0 and 1 of ``supported`` follow from which support fields are given."""
    supported &= ~0x03
    body = b""
    if measurement_status_support is not None:
        supported |= 0x01
        body += struct.pack("<H", measurement_status_support)
    if device_status_support is not None:
        supported |= 0x02
        body += struct.pack("<HB", device_status_support & 0xFFFF, device_status_support >> 16)
    return struct.pack("<H", supported) + body
