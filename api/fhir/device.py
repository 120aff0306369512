"""Sensors and gateways as FHIR R4 Devices, with their history of assignments.

A sensor's Device id comes from its address: a MAC ``AA:BB:CC:DD:EE:FF`` is
``aa-bb-cc-dd-ee-ff``, a macOS device UUID is itself lower-cased; any other address,
which FHIR's id syntax cannot hold, is ``h`` and 16 hex digits of its hash. A gateway's is
``gateway.`` and its id the same way (``gateway.h...`` when that does not fit).

R4 has no DeviceAssociation. Which patient a sensor was whose, and when, is told by
Device *versions*: each change of patient, gateway or identity (model, firmware ...) is a
new version (``meta.versionId``), kept in ``device_version``, read with
``Device/ID/_history``; each version carries the period it held in the extension
:data:`ASSIGNMENT_EXTENSION` (a ``valuePeriod``), so the current version tells since when
the sensor is the patient's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vigil.wire.times import iso

BLUETOOTH_ADDRESS_SYSTEM = "https://vigil-rpm.org/fhir/sid/bluetooth-address"

ASSIGNMENT_EXTENSION = "https://vigil-rpm.org/fhir/StructureDefinition/assignment-period"
GATEWAY_SYSTEM = "https://vigil-rpm.org/fhir/sid/gateway"
_FHIR_ID = re.compile(r"[a-z0-9\-.]{1,64}")
_KINDS = {
    "heart-rate-strap": "Heart rate monitor (chest strap)",
    "pulse-oximeter": "Pulse oximeter",
}
_GATEWAY = "gateway."


def device_resource_id(address: str) -> str:
    plain = address.lower().replace(":", "-")
    if _FHIR_ID.fullmatch(plain) and not plain.startswith(_GATEWAY):
        return plain
    return "h" + hashlib.blake2s(address.lower().encode(), digest_size=8).hexdigest()


def gateway_resource_id(gateway: str) -> str:
    plain = _GATEWAY + gateway.lower()
    if _FHIR_ID.fullmatch(plain):
        return plain
    return _GATEWAY + "h" + hashlib.blake2s(gateway.lower().encode(), digest_size=8).hexdigest()


def is_gateway_id(resource_id: str) -> bool:
    return resource_id.startswith(_GATEWAY)


@dataclass(frozen=True, slots=True)
class SensorVersion:
    """A row of ``device_version`` (or the current ``device`` row) with its period."""

    address: str
    version: int
    kind: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    location: str | None
    gateway: str | None
    patient: str | None
    valid_from: datetime
    valid_until: datetime | None


def render_sensor(sensor: SensorVersion) -> dict[str, Any]:
    """One version of a sensor. Battery and connection state change by the minute and are
    not versions: they are served as Observations (battery) and on the status stream."""
    title = _KINDS.get(sensor.kind, "Wearable sensor")
    period: dict[str, str] = {"start": iso(sensor.valid_from)}
    if sensor.valid_until is not None:
        period["end"] = iso(sensor.valid_until)
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_resource_id(sensor.address),
        "meta": {"versionId": str(sensor.version), "lastUpdated": iso(sensor.valid_from)},
        "extension": [{"url": ASSIGNMENT_EXTENSION, "valuePeriod": period}],
        "identifier": [{"system": BLUETOOTH_ADDRESS_SYSTEM, "value": sensor.address}],
        "status": "active" if sensor.valid_until is None and sensor.patient else "inactive",
        "deviceName": [{"name": title, "type": "user-friendly-name"}],
        "type": {"text": title},
    }
    if sensor.manufacturer:
        resource["manufacturer"] = sensor.manufacturer
    if sensor.model:
        resource["modelNumber"] = sensor.model
        resource["deviceName"].append({"name": sensor.model, "type": "model-name"})
    if sensor.serial:
        resource["serialNumber"] = sensor.serial
    if sensor.firmware:
        resource["version"] = [{"type": {"text": "firmware"}, "value": sensor.firmware}]
    if sensor.location:
        resource["note"] = [{"text": f"worn at: {sensor.location}"}]
    if sensor.patient:
        resource["patient"] = {"reference": f"Patient/{sensor.patient}"}
    if sensor.gateway:
        resource["parent"] = {"reference": f"Device/{gateway_resource_id(sensor.gateway)}"}
    return resource


@dataclass(frozen=True, slots=True)
class Gateway:
    id: str
    enrolled: datetime | None
    state: str | None
    software: str | None
    seen: datetime | None


def render_gateway(gateway: Gateway) -> dict[str, Any]:
    """A home gateway: enrolled or merely seen, online or not by its last status."""
    changed = gateway.seen or gateway.enrolled
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": gateway_resource_id(gateway.id),
        "identifier": [{"system": GATEWAY_SYSTEM, "value": gateway.id}],
        "status": "active" if gateway.state == "online" else "inactive",
        "deviceName": [{"name": f"Vigil home gateway {gateway.id}", "type": "user-friendly-name"}],
        "type": {"text": "Home gateway (Bluetooth to MQTT)"},
        "manufacturer": "Vigil",
    }
    if changed is not None:  # no versions: a gateway's record has no history to read
        resource["meta"] = {"lastUpdated": iso(changed)}
    if gateway.software:
        resource["version"] = [{"type": {"text": "software"}, "value": gateway.software}]
    notes = []
    if gateway.enrolled is not None:
        notes.append(f"enrolled {iso(gateway.enrolled)}")
    if gateway.state:
        notes.append(
            f"last status {gateway.state}" + (f" at {iso(gateway.seen)}" if gateway.seen else "")
        )
    if notes:
        resource["note"] = [{"text": "; ".join(notes)}]
    return resource
