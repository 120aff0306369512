"""Parsers for the GATT characteristics Vigil reads, one module per service.

Each parser takes the bytes of one notification or read and returns a frozen dataclass, or
raises :class:`GattParseError`. None of them touches Bluetooth, a clock or a global.
"""

from gateway.gatt.battery import parse_battery_level
from gateway.gatt.errors import GattParseError
from gateway.gatt.heart_rate import HeartRateMeasurement, parse_heart_rate_measurement
from gateway.gatt.pulse_oximeter import PlxContinuous, parse_plx_continuous
from gateway.gatt.sfloat import NoValue, decode_sfloat

__all__ = [
    "GattParseError",
    "HeartRateMeasurement",
    "NoValue",
    "PlxContinuous",
    "decode_sfloat",
    "parse_battery_level",
    "parse_heart_rate_measurement",
    "parse_plx_continuous",
]
