from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gateway.gatt.heart_rate import HeartRateMeasurement
from gateway.gatt.pulse_oximeter import MS_INVALID, PlxContinuous, PlxSpotCheck
from gateway.gatt.sfloat import (
    NAN,
    NEGATIVE_INFINITY,
    NRES,
    POSITIVE_INFINITY,
    RESERVED,
    NoValue,
)
from gateway.outbox import Outbox
from gateway.readings import from_heart_rate, from_plx_continuous, from_plx_spot_check
from vigil.metrics import HEART_RATE, PULSE_RATE, RR_INTERVAL, SPO2
from vigil.wire.batch import ABSENT_VALUE, Batch
from vigil.wire.quality import Quality


def test_rr_intervals_end_at_successive_beats() -> None:
    m = HeartRateMeasurement(75, True, None, (800.0, 790.0))
    readings = from_heart_rate(m, "A", "p1", 10_000).readings
    assert [(r.metric, r.time, r.value) for r in readings] == [
        (HEART_RATE.id, 10_000, 75.0),
        (RR_INTERVAL.id, 9_210, 800.0),
        (RR_INTERVAL.id, 10_000, 790.0),
    ]
    assert all(r.flags == 0 for r in readings)


def test_strap_off_the_chest_flags_every_reading() -> None:
    readings = from_heart_rate(HeartRateMeasurement(0, False, None, ()), "A", "p1", 1).readings
    assert [r.flags for r in readings] == [int(Quality.NO_CONTACT)]


@pytest.mark.parametrize(
    ("special", "reason"),
    [
        (NAN, Quality.NOT_A_NUMBER),
        (NRES, Quality.NOT_AT_RESOLUTION),
        (POSITIVE_INFINITY, Quality.POSITIVE_INFINITY),
        (NEGATIVE_INFINITY, Quality.NEGATIVE_INFINITY),
    ],
)
def test_no_value_sfloats_are_published_as_absent_readings_and_counted(
    special: NoValue, reason: Quality
) -> None:
    m = PlxContinuous(spo2=special, pulse_rate=70.0, device_status=1 << 5)
    converted = from_plx_continuous(m, "B", "p1", 5)
    assert [(r.metric, r.value, r.flags) for r in converted.readings] == [
        (SPO2.id, ABSENT_VALUE, int(Quality.LOW_PERFUSION | reason)),
        (PULSE_RATE.id, 70.0, int(Quality.LOW_PERFUSION)),
    ]
    assert converted.no_values == [f"{SPO2.name}: {special.reason}"]


def test_an_absent_reading_never_carries_the_invalid_bit() -> None:
    """The device's own 'invalid measurement' stays on the readings that have a value; on an
    absent one it would make an ingest that predates absent readings store its number."""
    m = PlxContinuous(spo2=97.0, pulse_rate=NAN, measurement_status=MS_INVALID)
    spo2, pulse = from_plx_continuous(m, "B", "p1", 5).readings
    assert spo2.flags == int(Quality.INVALID)
    assert pulse.flags == int(Quality.NOT_A_NUMBER) and pulse.value == ABSENT_VALUE


def test_reserved_sfloats_are_dropped_and_counted() -> None:
    converted = from_plx_continuous(PlxContinuous(RESERVED, 70.0), "B", "p1", 5)
    assert [r.metric for r in converted.readings] == [PULSE_RATE.id]
    assert converted.no_values == [f"{SPO2.name}: {RESERVED.reason}"]


def test_an_absent_reading_leaves_the_outbox_as_one(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw-1")
    box.append(from_plx_continuous(PlxContinuous(NRES, 70.0), "B", "p1", 5).readings)
    sealed = box.seal(6)
    assert sealed is not None
    batch = Batch.decode(sealed.payload)
    assert batch.absent.tolist() == [True, False]
    assert np.isnan(batch.value[0]) and batch.value[1] == 70.0


def test_spot_check_keeps_the_device_time_in_the_gateway_zone() -> None:
    stamp = datetime(2026, 11, 25, 7, 30, 5)
    m = PlxSpotCheck(spo2=93.0, pulse_rate=88.0, timestamp=stamp)
    readings = from_plx_spot_check(m, "B", "p1", 5).readings
    expected = int(stamp.astimezone(UTC).timestamp() * 1000)
    assert [(r.metric, r.time, r.value) for r in readings] == [
        (SPO2.id, expected, 93.0),
        (PULSE_RATE.id, expected, 88.0),
    ]
    assert from_plx_spot_check(PlxSpotCheck(93.0, 88.0), "B", "p1", 5).readings[0].time == 5
