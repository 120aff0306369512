"""Turning parsed measurements into readings for the outbox.

This is where device semantics become Vigil's: contact and status bits become quality
flags, RR intervals get their own measurement times, and 'no value' SFLOATs are published
as absent readings, the reason among their flags, never as numbers: a clinician then sees
that the sensor was there but could not measure. Reserved codes, which no conforming device
sends, say nothing a clinician could use and are only counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from gateway.gatt.heart_rate import HeartRateMeasurement
from gateway.gatt.pulse_oximeter import PlxContinuous, PlxSpotCheck
from gateway.gatt.sfloat import NAN, NEGATIVE_INFINITY, NRES, POSITIVE_INFINITY, NoValue
from vigil.metrics import BATTERY, HEART_RATE, PULSE_RATE, RR_INTERVAL, SPO2
from vigil.wire.batch import ABSENT_VALUE
from vigil.wire.quality import Quality

ABSENT_REASONS = {
    NAN: Quality.NOT_A_NUMBER,
    NRES: Quality.NOT_AT_RESOLUTION,
    POSITIVE_INFINITY: Quality.POSITIVE_INFINITY,
    NEGATIVE_INFINITY: Quality.NEGATIVE_INFINITY,
}
"""The special values kept as absent readings, with the flag that says which."""


@dataclass(frozen=True, slots=True)
class Reading:
    device: str
    patient: str
    metric: int
    time: int
    """UTC milliseconds when the measurement was taken (or, lacking a device time, received)."""
    value: float
    """The measurement; :data:`~vigil.wire.batch.ABSENT_VALUE` when the flags say there is
    none (the outbox and the wire hold a number either way)."""
    flags: int


@dataclass(frozen=True, slots=True)
class Converted:
    readings: list[Reading]
    no_values: list[str]
    """Reasons for SFLOAT fields that carried no number (NaN, NRes, ...), whether they are
    kept as absent readings or, reserved, dropped."""


def from_heart_rate(
    m: HeartRateMeasurement, device: str, patient: str, received_ms: int
) -> Converted:
    flags = int(Quality.NO_CONTACT) if m.contact is False else 0
    readings = [Reading(device, patient, HEART_RATE.id, received_ms, float(m.bpm), flags)]
    # Each RR interval ends at a beat; the last beat ended about when the notification
    # left the strap, the earlier ones one interval before each other.
    end = float(received_ms)
    timed: list[Reading] = []
    for rr in reversed(m.rr_intervals_ms):
        timed.append(Reading(device, patient, RR_INTERVAL.id, round(end), rr, flags))
        end -= rr
    readings.extend(reversed(timed))
    return Converted(readings, [])


def from_plx_continuous(m: PlxContinuous, device: str, patient: str, received_ms: int) -> Converted:
    flags = int(m.quality())
    readings: list[Reading] = []
    no_values: list[str] = []
    for metric, value in ((SPO2, m.spo2), (PULSE_RATE, m.pulse_rate)):
        if not isinstance(value, NoValue):
            readings.append(Reading(device, patient, metric.id, received_ms, value, flags))
            continue
        no_values.append(f"{metric.name}: {value.reason}")
        reason = ABSENT_REASONS.get(value)
        if reason is not None:
            # Never with the invalid bit, which the reason makes redundant: an ingest that
            # predates absent readings stores an invalid reading's number, and must refuse this.
            absent_flags = flags & ~int(Quality.INVALID) | int(reason)
            readings.append(
                Reading(device, patient, metric.id, received_ms, ABSENT_VALUE, absent_flags)
            )
    return Converted(readings, no_values)


def from_plx_spot_check(m: PlxSpotCheck, device: str, patient: str, received_ms: int) -> Converted:
    """A spot-check keeps its own time when the device has one (stored measurements are
    replayed later); the device clock is local time, taken as the gateway's zone."""
    when = received_ms
    if m.timestamp is not None:
        when = int(m.timestamp.astimezone(UTC).timestamp() * 1000)
    continuous = PlxContinuous(
        m.spo2,
        m.pulse_rate,
        measurement_status=m.measurement_status,
        device_status=m.device_status,
    )
    return from_plx_continuous(continuous, device, patient, when)


def from_battery_level(level: int, device: str, patient: str, received_ms: int) -> Converted:
    return Converted([Reading(device, patient, BATTERY.id, received_ms, float(level), 0)], [])
