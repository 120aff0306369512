"""Battery Level (0x2A19): one unsigned byte, percent of full charge."""

from gateway.gatt.errors import GattParseError


def parse_battery_level(data: bytes) -> int:
    if len(data) != 1:
        raise GattParseError("Battery Level", f"expected 1 byte, got {len(data)}", data)
    level = data[0]
    if level > 100:
        raise GattParseError("Battery Level", f"{level}% is above 100%", data)
    return level
