"""The home gateway: Bluetooth sessions with the patient's wearables, an on-disk outbox,
and the MQTT publisher. Parsers in :mod:`gateway.gatt` are pure functions over bytes."""
