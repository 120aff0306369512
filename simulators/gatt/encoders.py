"""Spec-exact encoders for the characteristics the simulated wearables notify.

They are written from the specifications, not from the gateway's parsers, so a round trip
through both checks each against the spec rather than against itself.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

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
