"""Pulse Oximeter Service 1.0.1: PLX Continuous Measurement (0x2A5F), PLX Spot-Check
Measurement (0x2A5E) and PLX Features (0x2A60).

Continuous: flags (1 byte), SpO2PR-Normal (two SFLOATs: SpO2 %, pulse rate /min), then by
flag bit: SpO2PR-Fast (bit 0), SpO2PR-Slow (bit 1), Measurement Status uint16 (bit 2),
Device and Sensor Status uint24 (bit 3), Pulse Amplitude Index SFLOAT (bit 4).
Spot-check: flags, SpO2PR, then Timestamp (Date Time, bit 0), Measurement Status (bit 1),
Device and Sensor Status (bit 2), Pulse Amplitude Index (bit 3); bit 4 says the device
clock is not set, so its timestamp means nothing. The status fields carry what a clinician
needs to distrust a number (probe off, low perfusion, motion), and
:meth:`PlxContinuous.quality` folds them into Vigil's quality flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.gatt.errors import GattParseError
from gateway.gatt.reader import ByteReader
from gateway.gatt.sfloat import NoValue
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
    flags = _flags(NAME, data, reserved=_RESERVED_FLAGS)
    read = ByteReader(NAME, data)
    read.u8("flags")
    spo2, pr = read.sfloat("SpO2"), read.sfloat("pulse rate")
    fast = (read.sfloat("fast SpO2"), read.sfloat("fast PR")) if flags & _FAST else (None, None)
    slow = (read.sfloat("slow SpO2"), read.sfloat("slow PR")) if flags & _SLOW else (None, None)
    measurement = read.u16("measurement status") if flags & _MEASUREMENT_STATUS else None
    device = read.u24("device and sensor status") if flags & _DEVICE_STATUS else None
    pai = read.sfloat("pulse amplitude index") if flags & _PULSE_AMPLITUDE else None
    read.end()
    return PlxContinuous(spo2, pr, fast[0], fast[1], slow[0], slow[1], measurement, device, pai)


SPOT_CHECK_NAME = "PLX Spot-Check Measurement"
_SC_TIMESTAMP = 0x01
_SC_MEASUREMENT_STATUS = 0x02
_SC_DEVICE_STATUS = 0x04
_SC_PULSE_AMPLITUDE = 0x08
_SC_CLOCK_NOT_SET = 0x10
_SC_RESERVED = 0xE0


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    """One spot-check, possibly replayed from the device's storage with its own timestamp."""

    spo2: Value
    pulse_rate: Value
    timestamp: datetime | None = None
    """Device local time, without a zone; None when absent or the device clock is not set."""
    measurement_status: int | None = None
    device_status: int | None = None
    pulse_amplitude_index: Value | None = None
    clock_not_set: bool = False


def parse_plx_spot_check(data: bytes) -> PlxSpotCheck:
    flags = _flags(SPOT_CHECK_NAME, data, reserved=_SC_RESERVED)
    read = ByteReader(SPOT_CHECK_NAME, data)
    read.u8("flags")
    spo2, pr = read.sfloat("SpO2"), read.sfloat("pulse rate")
    timestamp = read.date_time("timestamp") if flags & _SC_TIMESTAMP else None
    measurement = read.u16("measurement status") if flags & _SC_MEASUREMENT_STATUS else None
    device = read.u24("device and sensor status") if flags & _SC_DEVICE_STATUS else None
    pai = read.sfloat("pulse amplitude index") if flags & _SC_PULSE_AMPLITUDE else None
    read.end()
    clock_not_set = bool(flags & _SC_CLOCK_NOT_SET)
    return PlxSpotCheck(
        spo2, pr, None if clock_not_set else timestamp, measurement, device, pai, clock_not_set
    )


FEATURES_NAME = "PLX Features"


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    supported: int
    measurement_status_support: int | None
    device_status_support: int | None

    @property
    def spot_check_storage(self) -> bool:
        return bool(self.supported & 0x04)

    @property
    def spot_check_timestamp(self) -> bool:
        return bool(self.supported & 0x08)

    @property
    def fast_metric(self) -> bool:
        return bool(self.supported & 0x10)

    @property
    def slow_metric(self) -> bool:
        return bool(self.supported & 0x20)

    @property
    def pulse_amplitude_index(self) -> bool:
        return bool(self.supported & 0x40)

    @property
    def multiple_bonds(self) -> bool:
        return bool(self.supported & 0x80)


def parse_plx_features(data: bytes) -> PlxFeatures:
    read = ByteReader(FEATURES_NAME, data)
    supported = read.u16("supported features")
    measurement = read.u16("measurement status support") if supported & 0x01 else None
    device = read.u24("device and sensor status support") if supported & 0x02 else None
    read.end()
    return PlxFeatures(supported, measurement, device)


def _flags(name: str, data: bytes, reserved: int) -> int:
    if not data:
        raise GattParseError(name, "empty payload", data)
    if data[0] & reserved:
        raise GattParseError(name, f"reserved flag bits set (flags 0x{data[0]:02x})", data)
    return data[0]
