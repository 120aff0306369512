"""Bearer JWTs of a hospital's identity provider (here a JWKS served on loopback with keys
of our own) reach the API as the principals their ``fhirUser`` names, under the same
policy as Vigil's own tokens; forged, expired or misdirected ones are 401s."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from api.access.tokens import revoke
from tests.api.access.ward import Ward, ward
from tests.api.test_oidc import (
    ATTACKER_KEY,
    AUDIENCE,
    ISSUER,
    Idp,
    hand_made,
    running_idp,
    token,
)

pytestmark = [pytest.mark.slow, pytest.mark.services]
__all__ = ["running_idp"]  # the module-scoped JWKS server fixture


@pytest.fixture
def hospital(database_url: str, running_idp: Idp) -> Iterator[Ward]:
    running_idp.reset()
    settings = {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_url": running_idp.url}
    with ward(database_url, **settings) as w:
        yield w


def seen(w: Ward, bearer: str, path: str = "/access") -> httpx.Response:
    return httpx.get(f"{w.base}{path}", headers={"Authorization": f"Bearer {bearer}"})


def test_a_practitioner_sees_their_teams_patients_and_a_patient_themselves(
    hospital: Ward,
) -> None:
    scopes = "openid fhirUser user/Observation.rs user/Patient.rs"
    clinician = token(fhirUser="Practitioner/dr-north", scope=scopes)
    answer = seen(hospital, clinician).json()
    assert (answer["kind"], answer["patients"]) == ("clinician", ["pn1", "pn2"])
    assert answer["scopes"] == ["user/Observation.rs", "user/Patient.rs"]
    assert seen(hospital, clinician, "/fhir/Observation?patient=ps1").json()["total"] == 0
    assert seen(hospital, clinician, "/fhir/Flag?patient=pn1").status_code == 403  # no Flag scope
    patient = token(fhirUser="https://ehr.example/fhir/Patient/pn1", scope="patient/*.rs")
    assert seen(hospital, patient).json()["patients"] == ["pn1"]
    assert seen(hospital, patient, "/fhir/Observation?patient=pn2").json()["total"] == 0


def test_a_client_credentials_token_is_a_system_client_with_its_grants(hospital: Ward) -> None:
    scopes = (
        "system/Patient.$export system/Observation.rs?category=vital-signs system/Observation.rs"
    )
    bearer = token(azp="ehr-link", sub="svc-1", scope=scopes)
    assert seen(hospital, bearer, "/fhir/Observation?patient=ps1").json()["total"] == 1
    assert seen(hospital, bearer, "/fhir/Observation?patient=pn1").json()["total"] == 0
    with psycopg.connect(hospital.url, autocommit=True) as conn:
        revoke(conn, "ehr-link")  # the registration that holds the grants
    assert seen(hospital, bearer, "/fhir/Observation?patient=ps1").json()["total"] == 0


def test_a_user_vigil_has_no_compartment_for_is_refused(hospital: Ward) -> None:
    bearer = token(fhirUser="RelatedPerson/rp-1", scope="user/*.rs")
    assert seen(hospital, bearer).status_code == 401


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": int(time.time()) - 3600},
        {"iss": "https://evil.example"},
        {"aud": "someone-else"},
        {"key": ATTACKER_KEY},
        {"alg": "none"},
    ],
)
def test_tokens_the_provider_did_not_issue_for_us_are_refused(
    hospital: Ward, bad: dict[str, object]
) -> None:
    if bad.get("alg") == "none":
        bearer = hand_made({"alg": "none", "kid": "rsa-1"}, None)
    else:
        bearer = token(fhirUser="Practitioner/dr-north", scope="user/*.rs", **bad)
    refused = seen(hospital, bearer)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="vigil", error="invalid_token"'
