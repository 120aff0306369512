"""An Observation of a reading the device sent without a value: no valueQuantity, the reason
as a dataAbsentReason, and still a valid vital sign."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.fhir.observation import DATA_ABSENT_REASON_SYSTEM, Row, render_observation
from tests.fhir_checks import check_vital_sign
from tests.fhir_validator.validator import FhirValidator
from vigil.metrics import PULSE_RATE, SPO2
from vigil.wire.quality import Quality

AT = datetime(2026, 1, 1, 10, tzinfo=UTC)


def row(value: float | None, flags: int, metric: int = SPO2.id) -> Row:
    return Row("p0001", metric, AT, value, flags, "C1:00:00:00:00:01", AT)


@pytest.mark.parametrize(
    ("reason", "code", "text"),
    [
        (Quality.NOT_A_NUMBER, "not-a-number", "the device could not measure"),
        (Quality.POSITIVE_INFINITY, "positive-infinity", "above what the device can measure"),
        (Quality.NEGATIVE_INFINITY, "negative-infinity", "below what the device can measure"),
        (Quality.NOT_AT_RESOLUTION, "error", "not at this resolution"),
    ],
)
def test_an_absent_value_is_served_with_its_reason(
    reason: Quality, code: str, text: str, fhir_validator: FhirValidator
) -> None:
    resource = render_observation(row(None, int(reason | Quality.INVALID)))
    assert "valueQuantity" not in resource
    absent = resource["dataAbsentReason"]
    assert absent["coding"][0]["system"] == DATA_ABSENT_REASON_SYSTEM
    assert absent["coding"][0]["code"] == code and absent["text"] == text
    assert {e["valueCode"] for e in resource["extension"]} == {
        "invalid",
        reason.name.lower().replace("_", "-"),  # type: ignore[union-attr]
    }
    check_vital_sign(resource)
    fhir_validator.assert_valid(resource)


def test_a_value_is_served_as_before(fhir_validator: FhirValidator) -> None:
    resource = render_observation(row(64.0, 0, PULSE_RATE.id))
    assert "dataAbsentReason" not in resource
    assert resource["valueQuantity"]["value"] == 64.0
    check_vital_sign(resource)
    fhir_validator.assert_valid(resource)
