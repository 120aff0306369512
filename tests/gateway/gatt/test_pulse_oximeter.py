import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.gatt import GattParseError, NoValue, parse_plx_continuous
from gateway.gatt import pulse_oximeter as plx
from simulators.gatt.encoders import SFLOAT_NAN, encode_plx_continuous, encode_sfloat
from vigil.wire.quality import Quality


def test_minimal_measurement() -> None:
    m = parse_plx_continuous(encode_plx_continuous(encode_sfloat(97, 0), encode_sfloat(64, 0)))
    assert (m.spo2, m.pulse_rate) == (97.0, 64.0)
    assert m.measurement_status is None and m.device_status is None
    assert m.quality() == Quality(0)


def test_special_sfloat_is_no_value() -> None:
    m = parse_plx_continuous(encode_plx_continuous(SFLOAT_NAN, encode_sfloat(64, 0)))
    assert isinstance(m.spo2, NoValue) and "NaN" in m.spo2.reason


@pytest.mark.parametrize(
    ("measurement", "device", "quality"),
    [
        (plx.MS_EARLY_ESTIMATE, 0, Quality.EARLY_ESTIMATE),
        (plx.MS_INVALID, 0, Quality.INVALID),
        (plx.MS_QUESTIONABLE, 0, Quality.QUESTIONABLE),
        (0, plx.DS_LOW_PERFUSION, Quality.LOW_PERFUSION),
        (0, plx.DS_SENSOR_UNCONNECTED, Quality.NO_CONTACT),
        (0, plx.DS_SENSOR_DISPLACED, Quality.NO_CONTACT),
        (0, plx.DS_SENSOR_MALFUNCTIONING, Quality.SENSOR_FAULT),
        (0, plx.DS_ERRATIC_SIGNAL, Quality.QUESTIONABLE),
        (plx.MS_FULLY_QUALIFIED | plx.MS_VALIDATED, 0, Quality(0)),
    ],
)
def test_status_bits_become_quality_flags(measurement: int, device: int, quality: Quality) -> None:
    data = encode_plx_continuous(
        encode_sfloat(91, 0),
        encode_sfloat(80, 0),
        measurement_status=measurement,
        device_status=device,
    )
    assert parse_plx_continuous(data).quality() == quality


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=5)))
def test_round_trip_for_every_flag_combination(present: tuple[bool, ...]) -> None:
    fast, slow, status, device, pai = present
    data = encode_plx_continuous(
        encode_sfloat(97.5, -1),
        encode_sfloat(61, 0),
        fast=(encode_sfloat(96, 0), encode_sfloat(62, 0)) if fast else None,
        slow=(encode_sfloat(98, 0), encode_sfloat(60, 0)) if slow else None,
        measurement_status=0x0180 if status else None,
        device_status=0x800020 if device else None,
        pulse_amplitude_index=encode_sfloat(3.25, -2) if pai else None,
    )
    m = parse_plx_continuous(data)
    assert (m.spo2, m.pulse_rate) == (97.5, 61.0)
    assert (m.spo2_fast, m.pulse_rate_fast) == ((96.0, 62.0) if fast else (None, None))
    assert (m.spo2_slow, m.pulse_rate_slow) == ((98.0, 60.0) if slow else (None, None))
    assert m.measurement_status == (0x0180 if status else None)
    assert m.device_status == (0x800020 if device else None)
    assert m.pulse_amplitude_index == (3.25 if pai else None)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (bytes([0x00, 1, 2, 3]), "truncated"),
        (bytes([0x01, 1, 2, 3, 4]), "truncated in fast SpO2"),
        (bytes([0x00, 1, 2, 3, 4, 5]), "1 unexpected bytes"),
        (bytes([0x20, 1, 2, 3, 4]), "reserved flag"),
    ],
)
def test_bad_payloads_raise_the_parser_error(data: bytes, words: str) -> None:
    with pytest.raises(GattParseError, match=words):
        parse_plx_continuous(data)


@given(st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_the_parser_error(data: bytes) -> None:
    with contextlib.suppress(GattParseError):
        parse_plx_continuous(data)
