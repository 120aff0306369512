"""Quality bits analytics adds to the device's (never on the wire, so above its 16 bits), and
the groups of bits the rules look at."""

from vigil.wire.quality import Quality

IMPLAUSIBLE_JUMP = 1 << 16
"""Set on a stream's readings for a while after a step no physiology makes (an artefact:
see analytics.detectors.artefacts)."""
FLATLINE = 1 << 17
"""Set on readings of a value unchanged for longer than a living signal stays put."""

SENSOR_PROBLEM = int(
    Quality.NO_CONTACT | Quality.INVALID | Quality.SENSOR_FAULT | Quality.ABSENT | FLATLINE
)
"""The sensor is off, broken or stuck, or there but unable to measure (a reading without a
value, whose value is NaN here): when it persists, the patient or the care team must check
it (the technical rule)."""
POOR_SIGNAL = SENSOR_PROBLEM | int(Quality.MOTION | Quality.QUESTIONABLE) | IMPLAUSIBLE_JUMP
"""A reading that says nothing to a clinical rule: a probe off the finger or a moving hand
must not look like a desaturation. Motion and artefacts alone raise no technical condition:
they pass, and a patient told to check a sensor twenty times a day stops listening."""
