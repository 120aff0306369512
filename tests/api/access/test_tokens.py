"""`vigil token create | list | revoke` as an operator uses them, and what each token can
then do: revocation and expiry take effect on the very next request."""

from __future__ import annotations

import httpx
import pytest

from tests.api.access.ward import ward
from tests.cli.test_main import vigil

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_create_list_revoke_and_the_token_stops_working_at_once(database_url: str) -> None:
    env = {"VIGIL_DATABASE_URL": database_url}
    with ward(database_url) as w:
        made = vigil("token", "create", "dr-locum", "--team", "t-north", "--expires", "1d", env=env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        seen = httpx.get(f"{w.base}/access", headers=headers).json()
        assert seen["kind"] == "clinician" and seen["patients"] == ["pn1", "pn2"]
        listed = vigil("token", "list", env=env).stdout
        line = next(x for x in listed.splitlines() if x.startswith("dr-locum"))
        assert "clinician" in line and "expires" in line and "CareTeam/t-north" in line
        assert token not in listed
        assert vigil("token", "revoke", "dr-locum", env=env).returncode == 0
        refused = httpx.get(f"{w.base}/access", headers=headers)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert "revoked" in vigil("token", "list", env=env).stdout


def test_a_patient_token_and_a_system_client_with_grants(database_url: str) -> None:
    env = {"VIGIL_DATABASE_URL": database_url}
    with ward(database_url) as w:
        patient = vigil(
            "token", "create", "ps2-self", "--role", "patient", "--patient", "ps2", env=env
        )
        system = vigil(
            "token", "create", "lab-feed", "--role", "system", "--patient", "pn2",
            "--scope", "system/Observation.rs", "--expires", "never", env=env,
        )  # fmt: skip
        for made, own, foreign in ((patient, "ps2", "ps1"), (system, "pn2", "pn1")):
            assert made.returncode == 0, made.stderr
            auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
            for whose, total in ((own, 1), (foreign, 0)):
                url = f"{w.base}/fhir/Observation?patient={whose}"
                assert httpx.get(url, headers=auth).json()["total"] == total
        mine = {"Authorization": f"Bearer {patient.stdout.strip()}"}
        assert httpx.get(f"{w.base}/access", headers=mine).json()["patients"] == ["ps2"]
        lab = {"Authorization": f"Bearer {system.stdout.strip()}"}
        assert httpx.get(f"{w.base}/fhir/Flag?patient=pn2", headers=lab).status_code == 403
        assert httpx.get(f"{w.base}/access", headers=lab).status_code == 403


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--role", "patient"], "give --patient ID once"),
        (["--role", "admin", "--team", "t-north"], "takes no --team or --patient"),
        (["--scope", "system/*.rs"], "a clinician token's scopes are user/... scopes"),
        (["--scope", "user/Observation.sr"], "permissions go in the order"),
        (["--scope", "Observation.read"], "is not a SMART scope"),
        (["--team", "t-nowhere"], "no team 't-nowhere'"),
        (["--patient", "pn1"], "a clinician sees the patients of their care teams"),
        (["--expires", "soon"], "--expires"),
    ],
)
def test_bad_token_requests_say_what_to_change(
    database_url: str, args: list[str], words: str
) -> None:
    result = vigil("token", "create", "someone", *args, env={"VIGIL_DATABASE_URL": database_url})
    assert result.returncode == 2, result.stdout
    assert words in result.stderr and "Traceback" not in result.stderr


def test_no_scope_lets_a_patient_silence_their_own_alert(database_url: str) -> None:
    env = {"VIGIL_DATABASE_URL": database_url}
    with ward(database_url) as w:
        made = vigil(
            "token", "create", "pn2-self", "--role", "patient", "--patient", "pn2",
            "--scope", "patient/*.*", env=env,
        )  # fmt: skip
        auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
        assert httpx.get(f"{w.base}/alerts", headers=auth).json()[0]["patient"] == "pn2"
        resolve = httpx.post(f"{w.base}/alerts/{w.alerts['pn2']}/resolve", headers=auth)
        assert resolve.status_code == 403


def test_revoking_an_unknown_client_is_an_error(database_url: str) -> None:
    result = vigil("token", "revoke", "nobody", env={"VIGIL_DATABASE_URL": database_url})
    assert result.returncode == 2 and "no live client 'nobody'" in result.stderr
