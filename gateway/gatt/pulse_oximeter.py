"""PLX Continuous Measurement (0x2A5F), Pulse Oximeter Service 1.0.1, section 3.2.

Layout: flags (1 byte), SpO2PR-Normal (two SFLOATs: SpO2 %, pulse rate /min), then by flag
bit: SpO2PR-Fast (bit 0), SpO2PR-Slow (bit 1), Measurement Status uint16 (bit 2), Device
and Sensor Status uint24 (bit 3), Pulse Amplitude Index SFLOAT (bit 4). The status fields
carry what a clinician needs to distrust a number (probe off, low perfusion, motion), and
:meth:`PlxContinuous.quality` folds them into Vigil's quality flags.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.gatt.errors import GattParseError
from gateway.gatt.sfloat import NoValue, decode_sfloat
from vigil.wire.quality import Quality

NAME = "PLX Continuous Measurement"
_FAST = 0x01
_SLOW = 0x02
_MEASUREMENT_STATUS = 0x04
_DEVICE_STATUS = 0x08
_PULSE_AMPLITUDE = 0x10
_RESERVED_FLAGS = 0xE0

# Measurement Status bits (uint16)
MS_MEASUREMENT_ONGOING = 1 << 5
MS_EARLY_ESTIMATE = 1 << 6
MS_VALIDATED = 1 << 7
MS_FULLY_QUALIFIED = 1 << 8
MS_FROM_STORAGE = 1 << 9
MS_DEMONSTRATION = 1 << 10
MS_TESTING = 1 << 11
MS_CALIBRATION_ONGOING = 1 << 12
MS_UNAVAILABLE = 1 << 13
MS_QUESTIONABLE = 1 << 14
MS_INVALID = 1 << 15

# Device and Sensor Status bits (uint24)
DS_EXTENDED_DISPLAY_UPDATE = 1 << 0
DS_EQUIPMENT_MALFUNCTION = 1 << 1
DS_SIGNAL_PROCESSING_IRREGULARITY = 1 << 2
DS_INADEQUATE_SIGNAL = 1 << 3
DS_POOR_SIGNAL = 1 << 4
DS_LOW_PERFUSION = 1 << 5
DS_ERRATIC_SIGNAL = 1 << 6
DS_NONPULSATILE_SIGNAL = 1 << 7
DS_QUESTIONABLE_PULSE = 1 << 8
DS_SIGNAL_ANALYSIS_ONGOING = 1 << 9
DS_SENSOR_INTERFERENCE = 1 << 10
DS_SENSOR_UNCONNECTED = 1 << 11
DS_UNKNOWN_SENSOR = 1 << 12
DS_SENSOR_DISPLACED = 1 << 13
DS_SENSOR_MALFUNCTIONING = 1 << 14
DS_SENSOR_DISCONNECTED = 1 << 15

Value = float | NoValue


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    spo2: Value
    pulse_rate: Value
    spo2_fast: Value | None = None
    pulse_rate_fast: Value | None = None
    spo2_slow: Value | None = None
    pulse_rate_slow: Value | None = None
    measurement_status: int | None = None
    device_status: int | None = None
    pulse_amplitude_index: Value | None = None

    def quality(self) -> Quality:
        q = Quality(0)
        ms = self.measurement_status or 0
        ds = self.device_status or 0
        if ms & MS_EARLY_ESTIMATE or ms & MS_MEASUREMENT_ONGOING:
            q |= Quality.EARLY_ESTIMATE
        if ms & (MS_INVALID | MS_UNAVAILABLE):
            q |= Quality.INVALID
        if ms & MS_QUESTIONABLE or ds & (
            DS_SIGNAL_PROCESSING_IRREGULARITY
            | DS_INADEQUATE_SIGNAL
            | DS_POOR_SIGNAL
            | DS_ERRATIC_SIGNAL
            | DS_NONPULSATILE_SIGNAL
            | DS_QUESTIONABLE_PULSE
            | DS_SENSOR_INTERFERENCE
        ):
            q |= Quality.QUESTIONABLE
        if ds & DS_LOW_PERFUSION:
            q |= Quality.LOW_PERFUSION
        if ds & (DS_SENSOR_UNCONNECTED | DS_SENSOR_DISPLACED | DS_SENSOR_DISCONNECTED):
            q |= Quality.NO_CONTACT
        if ds & (DS_EQUIPMENT_MALFUNCTION | DS_SENSOR_MALFUNCTIONING | DS_UNKNOWN_SENSOR):
            q |= Quality.SENSOR_FAULT
        return q


def parse_plx_continuous(data: bytes) -> PlxContinuous:
    if not data:
        raise GattParseError(NAME, "empty payload", data)
    flags = data[0]
    if flags & _RESERVED_FLAGS:
        raise GattParseError(NAME, f"reserved flag bits set (flags 0x{flags:02x})", data)
    expected = 1 + 4
    expected += 4 if flags & _FAST else 0
    expected += 4 if flags & _SLOW else 0
    expected += 2 if flags & _MEASUREMENT_STATUS else 0
    expected += 3 if flags & _DEVICE_STATUS else 0
    expected += 2 if flags & _PULSE_AMPLITUDE else 0
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise GattParseError(
            NAME, f"{what}: flags 0x{flags:02x} need {expected} bytes, got {len(data)}", data
        )

    offset = 1

    def sfloat() -> Value:
        nonlocal offset
        (raw,) = struct.unpack_from("<H", data, offset)
        offset += 2
        return decode_sfloat(raw)

    spo2, pr = sfloat(), sfloat()
    fast = (sfloat(), sfloat()) if flags & _FAST else (None, None)
    slow = (sfloat(), sfloat()) if flags & _SLOW else (None, None)
    measurement_status = None
    if flags & _MEASUREMENT_STATUS:
        (measurement_status,) = struct.unpack_from("<H", data, offset)
        offset += 2
    device_status = None
    if flags & _DEVICE_STATUS:
        low, high = struct.unpack_from("<HB", data, offset)
        device_status = low | high << 16
        offset += 3
    pai = sfloat() if flags & _PULSE_AMPLITUDE else None
    return PlxContinuous(
        spo2, pr, fast[0], fast[1], slow[0], slow[1], measurement_status, device_status, pai
    )
