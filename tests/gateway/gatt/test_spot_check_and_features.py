import contextlib
import itertools
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.gatt import GattParseError, parse_plx_features, parse_plx_spot_check
from simulators.gatt.encoders import encode_plx_features, encode_plx_spot_check, encode_sfloat

WHEN = datetime(2026, 11, 25, 7, 30, 5)


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=5)))
def test_spot_check_round_trip_for_every_flag_combination(present: tuple[bool, ...]) -> None:
    stamp, status, device, pai, clock_not_set = present
    data = encode_plx_spot_check(
        encode_sfloat(94, 0),
        encode_sfloat(101, 0),
        timestamp=WHEN if stamp else None,
        measurement_status=0x4000 if status else None,
        device_status=0x000020 if device else None,
        pulse_amplitude_index=encode_sfloat(1.5, -1) if pai else None,
        clock_not_set=clock_not_set,
    )
    m = parse_plx_spot_check(data)
    assert (m.spo2, m.pulse_rate) == (94.0, 101.0)
    assert m.timestamp == (WHEN if stamp and not clock_not_set else None)
    assert m.clock_not_set == clock_not_set
    assert m.measurement_status == (0x4000 if status else None)
    assert m.device_status == (0x20 if device else None)
    assert m.pulse_amplitude_index == (1.5 if pai else None)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (bytes([0x01, 1, 0, 2, 0, 0xEA, 0x07]), "truncated in timestamp"),
        (bytes([0x01, 1, 0, 2, 0, 0xEA, 0x07, 13, 1, 0, 0, 0]), "is not a date"),
        (bytes([0x20, 1, 0, 2, 0]), "reserved flag"),
        (bytes([0x00, 1, 0, 2, 0, 9]), "unexpected bytes"),
    ],
)
def test_bad_spot_checks(data: bytes, words: str) -> None:
    with pytest.raises(GattParseError, match=words):
        parse_plx_spot_check(data)


def test_unknown_timestamp_is_none() -> None:
    data = bytes([0x01, 1, 0, 2, 0]) + bytes(7)
    assert parse_plx_spot_check(data).timestamp is None


@pytest.mark.parametrize(
    ("measurement", "device"), list(itertools.product([None, 0xFFE0], [None, 0x00FFFF]))
)
def test_features_round_trip(measurement: int | None, device: int | None) -> None:
    f = parse_plx_features(encode_plx_features(0x00FC, measurement, device))
    assert f.measurement_status_support == measurement
    assert f.device_status_support == device
    assert f.spot_check_storage and f.spot_check_timestamp and f.fast_metric
    assert f.slow_metric and f.pulse_amplitude_index and f.multiple_bonds


def test_features_claiming_a_missing_field_are_truncated() -> None:
    with pytest.raises(GattParseError, match="truncated in measurement status support"):
        parse_plx_features(bytes([0x01, 0x00]))


@given(st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_the_parser_error(data: bytes) -> None:
    for parse in (parse_plx_spot_check, parse_plx_features):
        with contextlib.suppress(GattParseError):
            parse(data)
