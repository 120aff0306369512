"""The home gateway: Bluetooth sessions with the patient's wearables (through bleak, or
bumble's host stack on an HCI transport), the pairing registry, an on-disk outbox, and the
MQTT publisher. Parsers in :mod:`gateway.gatt` are pure functions over bytes."""
