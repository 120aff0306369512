"""Signal quality: persisting poor readings become 'check the sensor'; a good one clears."""

import numpy as np

from analytics.batch import Readings
from analytics.detectors.signal_quality import SignalQualityDetector, SignalQualityRule
from vigil.wire.quality import Quality

OFF = int(Quality.NO_CONTACT)


def check_sensor(poor_flags: int) -> SignalQualityDetector:
    rule = SignalQualityRule("check_sensor", (), persist_s=30, poor_flags=poor_flags)
    detector = rule.detector()
    detector.configure(0, rule)
    return detector


def test_a_strap_off_the_chest_for_30_s_needs_checking() -> None:
    detector = check_sensor(OFF | int(Quality.INVALID))
    flags = [0] * 5 + [OFF] * 40 + [0] * 3
    values = [72.0] * 5 + [0.0] * 40 + [74.0] * 3
    batch = Readings.sorted([0] * 48, np.arange(48) * 1000, values, flags)
    events = detector.score(batch)
    assert [(e.kind, e.time // 1000) for e in events] == [
        ("started", 5),
        ("persisted", 35),
        ("cleared", 45),
    ]
    assert events[1].evidence["onset"] == 5000


def test_brief_contact_losses_are_not_reported() -> None:
    detector = check_sensor(OFF)
    flags = ([OFF] * 10 + [0]) * 6
    batch = Readings.sorted(
        [0] * len(flags), np.arange(len(flags)) * 1000, [70.0] * len(flags), flags
    )
    assert {e.kind for e in detector.score(batch)} == {"started", "cleared"}
