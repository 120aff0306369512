import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.gatt import GattParseError, parse_body_sensor_location, parse_device_information_string


def test_strings_are_trimmed() -> None:
    assert (
        parse_device_information_string(0x2A29, b"Polar Electro Oy\x00\x00") == "Polar Electro Oy"
    )
    assert parse_device_information_string(0x2A24, "H10 ñ ".encode()) == "H10 ñ"


def test_non_utf8_is_an_error_naming_the_characteristic() -> None:
    with pytest.raises(GattParseError, match="Serial Number String: not UTF-8"):
        parse_device_information_string(0x2A25, b"\xff\xfe")


@pytest.mark.parametrize(
    ("value", "location"), [(0, "other"), (1, "chest"), (3, "finger"), (6, "foot")]
)
def test_body_sensor_location(value: int, location: str) -> None:
    assert parse_body_sensor_location(bytes([value])) == location


@pytest.mark.parametrize("data", [b"", bytes([7]), bytes([1, 1])])
def test_bad_body_sensor_location(data: bytes) -> None:
    with pytest.raises(GattParseError):
        parse_body_sensor_location(data)


@given(st.binary(max_size=20))
def test_arbitrary_bytes_raise_only_the_parser_error(data: bytes) -> None:
    with contextlib.suppress(GattParseError):
        parse_body_sensor_location(data)
    with contextlib.suppress(GattParseError):
        parse_device_information_string(0x2A26, data)


def test_a_string_with_a_control_character_inside_is_a_parse_error() -> None:
    with pytest.raises(GattParseError, match="control characters"):
        parse_device_information_string(0x2A25, b"SN\x00123")
