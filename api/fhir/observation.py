"""Rendering an observation row as a FHIR R4 Observation (vital-signs profiles).

Rows are compact; the resource is built on read from the metric catalogue. The id is
derived from the row's unique key, ``{patient}.{metric id}.{epoch ms}.{device tag}``, so it
is stable across re-ingestion and a read by id is a primary-key range lookup. The device
tag is 8 hex digits of a hash of the device id: device ids may be MAC addresses or, on
macOS, 36-character UUIDs, and FHIR ids are limited to 64 characters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from api.fhir.device import BLUETOOTH_ADDRESS_SYSTEM, device_resource_id
from vigil.metrics import BY_ID, UCUM, Metric
from vigil.wire.quality import Quality
from vigil.wire.times import iso

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
QUALITY_EXTENSION = "https://vigil-rpm.org/fhir/StructureDefinition/reading-quality"
DEVICE_CATEGORY_SYSTEM = "https://vigil-rpm.org/fhir/CodeSystem/observation-category"
_ID = re.compile(
    r"(?P<patient>[A-Za-z0-9\-.]{1,36})\.(?P<metric>[0-9]{1,4})\.(?P<ms>[0-9]{1,14})"
    r"\.(?P<tag>[0-9a-f]{8})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


ROW_COLUMNS = "patient, metric, effective, value, flags, device, received"
"""The observation columns a :class:`Row` is made of, in its order."""


@dataclass(frozen=True, slots=True)
class Row:
    patient: str
    metric: int
    effective: datetime
    value: float | None
    """None when the device sent no value: the flags say why."""
    flags: int
    device: str
    received: datetime


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def device_tag(device: str) -> str:
    return hashlib.blake2s(device.encode(), digest_size=4).hexdigest()


def observation_id(row: Row) -> str:
    return f"{row.patient}.{row.metric}.{epoch_ms(row.effective)}.{device_tag(row.device)}"


@dataclass(frozen=True, slots=True)
class ObservationKey:
    patient: str
    metric: int
    effective: datetime
    device_tag: str


def parse_observation_id(resource_id: str) -> ObservationKey | None:
    """The key an Observation id stands for; None for anything that is not one (the
    patient id is the wire's, 36 at most; 14 digits of milliseconds end in the year 5138)."""
    match = _ID.fullmatch(resource_id) if len(resource_id) <= 68 else None
    if match is None or int(match["metric"]) not in BY_ID:
        return None
    effective = _EPOCH + timedelta(milliseconds=int(match["ms"]))
    return ObservationKey(match["patient"], int(match["metric"]), effective, match["tag"])


def category_of(metric: Metric) -> tuple[str, str, str] | None:
    """(system, code, display) of the metric's category: vital signs with a profile; the
    strap's R-R intervals are electrodiagnostics, FHIR's 'procedure'; a battery level is
    about the device, not the patient, which no R4 category covers, so Vigil's own code
    says so (and it claims no vital-signs profile)."""
    if metric.vital_sign:
        return CATEGORY_SYSTEM, "vital-signs", "Vital Signs"
    if metric.name == "rr_interval":
        return CATEGORY_SYSTEM, "procedure", "Procedure"
    if metric.name == "battery":
        return DEVICE_CATEGORY_SYSTEM, "device", "Device status"
    return None


def _category(metric: Metric) -> list[dict[str, Any]]:
    found = category_of(metric)
    if found is None:
        return []
    system, code, display = found
    return [{"coding": [{"system": system, "code": code, "display": display}], "text": display}]


def _meta(row: Row, metric: Metric) -> dict[str, Any]:
    """A reading is never changed once stored (a re-sent one is the same row), so every
    Observation is at its first version, last updated when it was stored."""
    meta: dict[str, Any] = {"versionId": "1", "lastUpdated": iso(row.received)}
    if metric.profile:
        meta["profile"] = [metric.profile]
    return meta


DATA_ABSENT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_ABSENT_REASONS = {
    Quality.NOT_A_NUMBER: ("not-a-number", "Not a Number (NaN)", "the device could not measure"),
    Quality.POSITIVE_INFINITY: (
        "positive-infinity",
        "Positive Infinity (PINF)",
        "above what the device can measure",
    ),
    Quality.NEGATIVE_INFINITY: (
        "negative-infinity",
        "Negative Infinity (NINF)",
        "below what the device can measure",
    ),
    # R4 has no code for IEEE 11073's NRes; 'error' is the parent of the three above.
    Quality.NOT_AT_RESOLUTION: ("error", "Error", "not at this resolution"),
}
"""(code, display, text) for each reason a device gives for sending no value."""


def _value(row: Row, metric: Metric) -> dict[str, Any]:
    """The reading's value, or why the device sent none: the vital-signs profile takes a
    dataAbsentReason instead of a value (invariant vs-2), so its claim stays true, and a
    clinician sees that the sensor was there but could not measure."""
    if row.value is not None:
        quantity = {"value": row.value, "unit": metric.unit, "system": UCUM, "code": metric.ucum}
        return {"valueQuantity": quantity}
    code, display, text = next(r for f, r in _ABSENT_REASONS.items() if row.flags & f)
    coding = {"system": DATA_ABSENT_REASON_SYSTEM, "code": code, "display": display}
    return {"dataAbsentReason": {"coding": [coding], "text": text}}


def render_observation(row: Row) -> dict[str, Any]:
    metric = BY_ID[row.metric]
    quality = Quality(row.flags & Quality.all_bits())
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(row),
        "meta": _meta(row, metric),
        "status": "preliminary" if Quality.EARLY_ESTIMATE in quality else "final",
        "category": _category(metric),
        "code": {
            "coding": [
                {"system": c.system, "code": c.code, "display": c.display} for c in metric.codings
            ],
            "text": metric.title,
        },
        "subject": {"reference": f"Patient/{row.patient}"},
        "effectiveDateTime": iso(row.effective),
        "issued": iso(row.received),
        **_value(row, metric),
        "device": {
            "reference": f"Device/{device_resource_id(row.device)}",
            "identifier": {"system": BLUETOOTH_ADDRESS_SYSTEM, "value": row.device},
            "display": row.device,
        },
    }
    if quality:
        resource["extension"] = [
            {"url": QUALITY_EXTENSION, "valueCode": flag.name.lower().replace("_", "-")}
            for flag in Quality
            if flag in quality and flag.name
        ]
    if not resource["category"]:
        del resource["category"]
    return resource
