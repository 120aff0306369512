import pytest

from gateway.gatt import GattParseError, parse_battery_level


def test_level() -> None:
    assert parse_battery_level(bytes([87])) == 87


@pytest.mark.parametrize("data", [b"", bytes([101]), bytes([50, 0])])
def test_bad_levels(data: bytes) -> None:
    with pytest.raises(GattParseError):
        parse_battery_level(data)
