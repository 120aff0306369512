"""SMART scopes as Vigil reads them, and the ceiling each kind of principal stays under."""

from __future__ import annotations

import pytest

from api.access.principal import Kind, Principal, principal_scopes
from api.access.scopes import Scope, ScopeError, parse_scope, parse_scopes


def test_v2_and_v1_scopes() -> None:
    assert parse_scope("user/Observation.rs") == Scope("user", "Observation", "rs")
    assert parse_scope("patient/*.read") == Scope("patient", "*", "rs")
    assert parse_scope("system/Flag.write") == Scope("system", "Flag", "cud")
    assert parse_scope("patient/*.*") == Scope("patient", "*", "cruds")


@pytest.mark.parametrize(
    "text",
    ["user/Observation.sr", "Observation.read", "user/observation.rs", "user/Observation.x",
     "system/Patient.$export", "patient/Observation.rs?category=laboratory", "user/.rs"],
)  # fmt: skip
def test_what_is_not_a_scope_vigil_honours_is_refused_when_typed(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scopes(text, strict=True)


def test_an_identity_providers_extras_give_nothing_and_break_nothing() -> None:
    scopes = parse_scopes(
        "openid fhirUser launch/patient offline_access system/Patient.$export"
        " patient/Observation.rs?category=laboratory user/Observation.sr user/Flag.rs"
    )
    assert scopes == (Scope("user", "Flag", "rs"),)


def test_scopes_reach_no_further_than_the_kind_may() -> None:
    patient = Principal(
        "p1-self", Kind.PATIENT, principal_scopes(Kind.PATIENT, "patient/*.*"), "p1"
    )
    assert patient.may("Observation", "r") and patient.may("Consent", "c")
    assert not patient.may("Flag", "u")  # resolving one's own alert would stop its escalation
    assert not patient.may("AuditEvent", "s")
    system = Principal("feed", Kind.SYSTEM, principal_scopes(Kind.SYSTEM, "system/*.cruds"))
    assert system.may("Observation", "s") and not system.may("Flag", "u")
    clinician = Principal("dr", Kind.CLINICIAN, principal_scopes(Kind.CLINICIAN, "system/*.rs"))
    assert not clinician.may("Observation", "r")  # another context gives nothing
