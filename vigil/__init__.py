"""Vigil: remote patient monitoring from Bluetooth wearables to FHIR Observations.

The ``vigil`` package holds what every service shares: settings, the MQTT wire contract,
the metric catalogue, the command line and the embedded demo stack. Service logic lives in
``gateway``, ``ingest``, ``analytics`` and ``alerts``.
"""

__version__ = "0.1.0"
