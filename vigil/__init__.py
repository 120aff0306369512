"""Vigil: remote patient monitoring from Bluetooth wearables to FHIR Observations.

The ``vigil`` package is the foundation every process shares, and imports no service:
settings, the wire contract (:mod:`vigil.wire`), the metric catalogue, MQTT clients, the
database and its migrations, the embedded servers of the demo and the tests, and what every
command shares. The services are ``gateway``, ``ingest``, ``analytics`` and ``alerts``; the
API is ``api``; the `vigil` command is ``cli``. The version is here, and only here.
"""

__version__ = "0.1.0"
