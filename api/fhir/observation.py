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

from vigil.metrics import BY_ID, UCUM, Metric
from vigil.wire.quality import Quality
from vigil.wire.times import iso

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
QUALITY_EXTENSION = "https://vigil-rpm.org/fhir/StructureDefinition/reading-quality"
BLUETOOTH_ADDRESS_SYSTEM = "https://vigil-rpm.org/fhir/sid/bluetooth-address"
_ID = re.compile(
    r"(?P<patient>[A-Za-z0-9\-.]{1,36})\.(?P<metric>[0-9]{1,4})\.(?P<ms>[0-9]{1,14})"
    r"\.(?P<tag>[0-9a-f]{8})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Row:
    patient: str
    metric: int
    effective: datetime
    value: float
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


def _category(metric: Metric) -> list[dict[str, Any]]:
    if metric.vital_sign:
        code, display = "vital-signs", "Vital Signs"
    elif metric.name == "rr_interval":
        code, display = "procedure", "Procedure"
    else:
        return []
    return [
        {"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": display}], "text": display}
    ]


def render_observation(row: Row) -> dict[str, Any]:
    metric = BY_ID[row.metric]
    quality = Quality(row.flags & Quality.all_bits())
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(row),
        "meta": {"profile": [metric.profile]} if metric.profile else {},
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
        "valueQuantity": {
            "value": row.value,
            "unit": metric.unit,
            "system": UCUM,
            "code": metric.ucum,
        },
        "device": {
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
    if not resource["meta"]:
        del resource["meta"]
    if not resource["category"]:
        del resource["category"]
    return resource
