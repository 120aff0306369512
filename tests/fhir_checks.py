"""Checks of FHIR output: structure with fhir.resources (R4B models, the closest shipped to
R4 for Observation) and the vital-signs profile rules, which fhir.resources does not check."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ABSENT_CODES = {"error", "not-a-number", "positive-infinity", "negative-infinity"}
PROFILES = {
    "8867-4": ("http://hl7.org/fhir/StructureDefinition/heartrate", "/min", {"8867-4"}),
    "2708-6": ("http://hl7.org/fhir/StructureDefinition/oxygensat", "%", {"2708-6", "59408-5"}),
}
STATUSES = {
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
}


def check_vital_sign(resource: dict[str, Any]) -> None:
    Observation.model_validate(resource)
    assert resource["status"] in STATUSES
    categories = {(c["system"], c["code"]) for cat in resource["category"] for c in cat["coding"]}
    assert (CATEGORY, "vital-signs") in categories
    loinc = {c["code"] for c in resource["code"]["coding"] if c["system"] == LOINC}
    key = "2708-6" if "2708-6" in loinc else "8867-4"
    profile, unit, required = PROFILES[key]
    assert required <= loinc, f"missing LOINC codes {required - loinc}"
    assert profile in resource["meta"]["profile"]
    assert resource["subject"]["reference"].startswith("Patient/")
    assert resource["effectiveDateTime"].endswith("Z")
    # vs-2: a value, or the reason there is none (never both).
    assert ("valueQuantity" in resource) != ("dataAbsentReason" in resource)
    if "dataAbsentReason" in resource:
        (absent,) = resource["dataAbsentReason"]["coding"]
        assert absent["system"] == DATA_ABSENT_REASON and absent["code"] in ABSENT_CODES
    else:
        quantity = resource["valueQuantity"]
        assert quantity["system"] == UCUM and quantity["code"] == unit
        assert isinstance(quantity["value"], int | float)
    assert resource["device"]["identifier"]["value"]


def check_searchset(bundle: dict[str, Any]) -> None:
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
