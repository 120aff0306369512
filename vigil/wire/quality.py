"""Quality flags carried with every reading, one bit each.

They come from what the device itself reports (sensor contact in the Heart Rate Measurement,
the measurement and device status fields of the PLX characteristics) so that analytics can
tell a real desaturation from a finger slipping out of the probe. A flagged reading is still
stored with its flag: dropping it would hide exactly the evidence a clinician needs.
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

    @classmethod
    def all_bits(cls) -> int:
        value = 0
        for flag in cls:
            value |= flag.value
        return value
