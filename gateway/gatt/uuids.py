"""Bluetooth SIG assigned numbers Vigil uses, as bleak's normalized 128-bit UUID strings."""

from bleak.uuids import normalize_uuid_16

HEART_RATE_SERVICE = normalize_uuid_16(0x180D)
HEART_RATE_MEASUREMENT = normalize_uuid_16(0x2A37)
BODY_SENSOR_LOCATION = normalize_uuid_16(0x2A38)

PULSE_OXIMETER_SERVICE = normalize_uuid_16(0x1822)
PLX_SPOT_CHECK_MEASUREMENT = normalize_uuid_16(0x2A5E)
PLX_CONTINUOUS_MEASUREMENT = normalize_uuid_16(0x2A5F)
PLX_FEATURES = normalize_uuid_16(0x2A60)

BATTERY_SERVICE = normalize_uuid_16(0x180F)
BATTERY_LEVEL = normalize_uuid_16(0x2A19)

MONITORED_SERVICES = (HEART_RATE_SERVICE, PULSE_OXIMETER_SERVICE)
"""What the gateway scans for: a device advertising either is a candidate wearable."""
