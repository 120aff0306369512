"""The validator itself: it finds what is wrong (in the base definition, in a vital-signs
profile, in the bindings and fixed units medplum alone misses), passes what is right, and
is fast enough to run over every sample the API returns."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fhir_validator import validator
from tests.fhir_validator.validator import FhirValidator, ValidatorUnavailable

HEART_RATE = "http://hl7.org/fhir/StructureDefinition/heartrate"
PERIOD = {"start": "2025-11-24T16:00:00Z", "end": "2025-11-24T15:00:00Z"}
"""ends before it starts"""


def heart_rate() -> dict[str, Any]:
    """A heart-rate Observation as the R4 vital-signs profile wants it, written out here
    rather than rendered by the API, so the validator is tested on its own."""
    return {
        "resourceType": "Observation",
        "id": "hr-1",
        "meta": {"profile": [HEART_RATE]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-11-24T16:00:00Z",
        "valueQuantity": {
            "value": 72,
            "unit": "beats/minute",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def broken(change: dict[str, Any], *removed: str) -> dict[str, Any]:
    resource = copy.deepcopy(heart_rate())
    for key in removed:
        del resource[key]
    resource.update(copy.deepcopy(change))
    return resource


def test_a_correct_vital_sign_has_no_errors(fhir_validator: FhirValidator) -> None:
    report = fhir_validator.report(heart_rate())
    assert report.errors == []
    assert report.not_checked == ()
    fhir_validator.assert_valid(heart_rate())


@pytest.mark.parametrize(
    ("resource", "path", "words"),
    [
        (broken({}, "status"), "Observation.status", "Missing required property"),
        (broken({"status": "done"}), "Observation.status", "not in the required value set"),
        (
            broken({"valueQuantity": {**heart_rate()["valueQuantity"], "value": "72"}}),
            "Observation.value",
            "expected number, but got string",
        ),
        (broken({}, "category"), "Observation.category", "Missing required property"),
        (
            broken({"valueQuantity": {**heart_rate()["valueQuantity"], "code": "bpm"}}),
            "Observation.valueQuantity.code",
            'does not match the fixed "/min"',
        ),
        (broken({"subject": {"reference": 7}}), "Observation.subject.reference", "string"),
        (broken({"colour": "red"}), "Observation.colour", "Invalid additional property"),
    ],
    ids=[
        "no-status",
        "unknown-status",
        "value-as-text",
        "vital-sign-without-category",
        "wrong-unit",
        "reference-not-text",
        "unknown-element",
    ],
)
def test_a_broken_observation_has_errors(
    fhir_validator: FhirValidator, resource: dict[str, Any], path: str, words: str
) -> None:
    errors = fhir_validator.errors(resource)
    assert any(e.startswith(path) and words in e for e in errors), errors
    with pytest.raises(AssertionError, match="is not valid FHIR R4"):
        fhir_validator.assert_valid(resource)


@pytest.mark.parametrize(
    ("resource", "error"),
    [
        (
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": broken({}, "status", "meta")}],
            },
            "Bundle.entry[0].resource.status: Missing required property",
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "total": 1},
            "Bundle: Constraint bdl-1 not met: total only when a search or history",
        ),
        (
            {"resourceType": "Communication", "status": "in-progress", "priority": "soon"},
            'Communication.priority: Value "soon" is not in the required value set'
            " http://hl7.org/fhir/ValueSet/request-priority|4.0.1",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [
                    {"resource": broken({"effectivePeriod": PERIOD}, "effectiveDateTime", "meta")}
                ],
            },
            "Bundle.entry[0].resource.effective[x]: Constraint per-1 not met:"
            " If present, start SHALL have a lower value than end",
        ),
        (
            broken({"effectiveDateTime": "2025-11-24T16:00:00"}),
            "Observation.effective[x]: Invalid dateTime format",
        ),
        ({"resourceType": "Alert"}, ': Invalid resource type "Alert"'),
    ],
    ids=[
        "entry-without-status",
        "invariant",
        "binding",
        "invariant-of-a-type-in-an-entry",
        "time-without-zone",
        "no-such-type",
    ],
)
def test_other_resources_are_held_to_their_definitions(
    fhir_validator: FhirValidator, resource: dict[str, Any], error: str
) -> None:
    assert fhir_validator.errors(resource) == [error]


def test_the_category_is_the_profiles_rule_not_the_base_definitions(
    fhir_validator: FhirValidator,
) -> None:
    unprofiled = broken({}, "category", "meta")
    assert fhir_validator.errors(unprofiled) == []


def test_profiles_the_definitions_lack_are_not_checked_not_failed(
    fhir_validator: FhirValidator,
) -> None:
    own = "https://vigil-rpm.org/fhir/StructureDefinition/anything"
    report = fhir_validator.report(broken({"meta": {"profile": [HEART_RATE, own]}}))
    assert report.errors == []
    assert report.not_checked == (f"profile {own} (not in the definitions)",)


def test_a_bundle_entry_is_checked_against_its_profile(fhir_validator: FhirValidator) -> None:
    entry = {"fullUrl": "http://x/fhir/Observation/hr-1", "resource": broken({}, "category")}
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [entry]}
    assert fhir_validator.errors(bundle) == [
        "Bundle.entry[0].resource.category: Missing required property"
    ]


def test_fifty_resources_take_well_under_five_seconds(fhir_validator: FhirValidator) -> None:
    fhir_validator.errors(heart_rate())  # the first call pays for the definitions
    start = time.monotonic()
    for _ in range(50):
        fhir_validator.errors(heart_rate())
    assert time.monotonic() - start < 2.5


def test_an_installed_cache_is_reused_without_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / f"medplum-{validator.VERSION}/node_modules/@medplum/core/package.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert validator.install(tmp_path) == tmp_path / f"medplum-{validator.VERSION}"


def test_without_npm_or_cache_it_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ValidatorUnavailable, match="npm not found on PATH"):
        validator.install(tmp_path)
    with pytest.raises(ValidatorUnavailable, match=r"node .* not found on PATH"):
        validator.node_command()


def test_the_cache_is_outside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_CACHE_DIR", raising=False)
    checkout = Path(__file__).resolve().parents[2]
    assert not validator.cache_root().resolve().is_relative_to(checkout)
    monkeypatch.setenv("VIGIL_CACHE_DIR", "/somewhere/else")
    assert validator.cache_root() == Path("/somewhere/else")
