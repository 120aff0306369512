"""Parsers for the GATT characteristics Vigil reads, one module per service.

Each parser takes the bytes of one notification or read and returns a frozen dataclass, or
raises :class:`GattParseError`. None of them touches Bluetooth, a clock or a global.
"""

from gateway.gatt.battery import parse_battery_level
from gateway.gatt.device_information import parse_device_information_string
from gateway.gatt.errors import GattParseError
from gateway.gatt.heart_rate import (
    HeartRateMeasurement,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
)
from gateway.gatt.pulse_oximeter import (
    PlxContinuous,
    PlxFeatures,
    PlxSpotCheck,
    parse_plx_continuous,
    parse_plx_features,
    parse_plx_spot_check,
)
from gateway.gatt.sfloat import NoValue, decode_float, decode_sfloat

__all__ = [
    "GattParseError",
    "HeartRateMeasurement",
    "NoValue",
    "PlxContinuous",
    "PlxFeatures",
    "PlxSpotCheck",
    "decode_float",
    "decode_sfloat",
    "parse_battery_level",
    "parse_body_sensor_location",
    "parse_device_information_string",
    "parse_heart_rate_measurement",
    "parse_plx_continuous",
    "parse_plx_features",
    "parse_plx_spot_check",
]
