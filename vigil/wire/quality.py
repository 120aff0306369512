"""Quality flags carried with every reading, one bit each.

They come from what the device itself reports (sensor contact in the Heart Rate Measurement,
the measurement and device status fields of the PLX characteristics) so that analytics can
tell a real desaturation from a finger slipping out of the probe. A flagged reading is still
stored with its flag: dropping it would hide exactly the evidence a clinician needs.

The wire's flags are 16 bits (:mod:`vigil.wire.batch` refuses more); analytics keeps its own
bits above them (:mod:`analytics.quality`).
"""

from enum import IntFlag


class Quality(IntFlag):
    NO_CONTACT = 1 << 0
    """The sensor supports contact detection and reports no skin contact."""
    EARLY_ESTIMATE = 1 << 1
    """PLX: the value is an early estimate while the device settles."""
    LOW_PERFUSION = 1 << 2
    """PLX: low perfusion at the measurement site."""
    QUESTIONABLE = 1 << 3
    """PLX: questionable pulse or measurement, or signal processing irregularity."""
    INVALID = 1 << 4
    """The device marks the measurement invalid (e.g. PLX 'invalid measurement detected')."""
    MOTION = 1 << 5
    """PLX: excessive motion."""
    SENSOR_FAULT = 1 << 6
    """PLX: sensor malfunction, unconnected or disconnected."""

    # The reading has no value, and the device said why (IEEE 11073 special values). One
    # bit per reason, at most one set: the reason travels, is stored and is served with the
    # flags, so nothing between the device and the FHIR API needs a column of its own.
    NOT_A_NUMBER = 1 << 7
    """No value: the device sent NaN (it could not compute one)."""
    NOT_AT_RESOLUTION = 1 << 8
    """No value: the device sent NRes (the result cannot be given at its resolution)."""
    POSITIVE_INFINITY = 1 << 9
    """No value: the device sent +INFINITY (above what it can represent)."""
    NEGATIVE_INFINITY = 1 << 10
    """No value: the device sent -INFINITY (below what it can represent)."""
    ABSENT = NOT_A_NUMBER | NOT_AT_RESOLUTION | POSITIVE_INFINITY | NEGATIVE_INFINITY
    """Any of the reasons: the reading carries no value (an alias, not a bit of its own)."""

    @classmethod
    def all_bits(cls) -> int:
        value = 0
        for flag in cls:
            value |= flag.value
        return value
