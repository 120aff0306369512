"""OIDC bearer JWTs, verified against a JWKS served from a local HTTP server with keys of our
own: what an identity provider's valid tokens give, and every way a token or the provider can
be wrong that must end in TokenRejected (never another exception, never the token logged)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from api.oidc import Claims, OidcConfig, OidcVerifier, TokenRejected, looks_like_jwt, oidc_config
from vigil.settings import Settings

ISSUER = "https://sso.example/realms/vigil"
AUDIENCE = "vigil-api"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        public, alg = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "RS256"
    else:
        public, alg = ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "ES256"
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


class Idp:
    """The identity provider's JWKS endpoint: what it serves, how often it was asked."""

    def __init__(self) -> None:
        self.reset()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.fetches += 1
                body = idp.body or json.dumps({"keys": idp.keys}).encode()
                self.send_response(idp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"

    def reset(self) -> None:
        self.keys = [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1")]
        self.status = 200
        self.body: bytes | None = None  # instead of the keys
        self.fetches = 0


@pytest.fixture(scope="module")
def running_idp() -> Iterator[Idp]:
    idp = Idp()
    thread = threading.Thread(target=idp.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield idp
    idp.server.shutdown()
    idp.server.server_close()
    thread.join()


@pytest.fixture
def idp(running_idp: Idp) -> Idp:
    running_idp.reset()
    return running_idp


@pytest.fixture
def verifier(idp: Idp) -> OidcVerifier:
    return OidcVerifier(OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url))


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-42", "iat": now, "exp": now + 300}
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def token(key: Any = RSA_KEY, kid: str = "rsa-1", alg: str = "RS256", **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm=alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: unsigned, or HMAC-signed with `secret`."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def rejected(verifier: OidcVerifier, bearer: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(bearer)
    return str(caught.value)


def test_a_valid_token_gives_its_claims(verifier: OidcVerifier) -> None:
    exp = int(time.time()) + 300
    got = verifier.verify(
        token(
            scope="patient/Observation.rs openid", azp="portal", fhirUser="Patient/p0001", exp=exp
        )
    )
    assert got == Claims(
        subject="u-42",
        client_id="portal",
        scopes=("patient/Observation.rs", "openid"),
        fhir_user="Patient/p0001",
        expires=datetime.fromtimestamp(exp, UTC),
    )


def test_scp_list_client_id_and_fhir_user_as_a_url(verifier: OidcVerifier) -> None:
    got = verifier.verify(
        token(
            scp=["user/Observation.rs", "user/Flag.rsu"],
            client_id="ward-display",
            fhirUser="https://fhir.example/fhir/Practitioner/dr-ada",
        )
    )
    assert got.scopes == ("user/Observation.rs", "user/Flag.rsu")
    assert got.client_id == "ward-display"
    assert got.fhir_user == "Practitioner/dr-ada"
    assert verifier.verify(token()).scopes == ()
    assert verifier.verify(token()).fhir_user is None


def test_an_ec_signed_token_and_an_audience_list_containing_ours(verifier: OidcVerifier) -> None:
    bearer = token(EC_KEY, "ec-1", "ES256", aud=["account", AUDIENCE])
    assert verifier.verify(bearer).subject == "u-42"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://sso.example/realms/other"}, "another identity provider"),
        ({"iss": ISSUER + "x"}, "another identity provider"),
        ({"aud": "another-api"}, "not meant for this service"),
        ({"aud": ["account", "another-api"]}, "not meant for this service"),
        ({"exp": None}, "no 'exp' claim"),
        ({"iss": None}, "no 'iss' claim"),
        ({"aud": None}, "no 'aud' claim"),
        ({"sub": None}, "no 'sub' claim"),
        ({"sub": ""}, "'sub' claim is empty"),
        ({"scope": 7}, "scopes"),
        ({"fhirUser": "dr-ada"}, "FHIR reference"),
    ],
)
def test_claims_that_reject_the_token(
    verifier: OidcVerifier, changes: dict[str, Any], reason: str
) -> None:
    assert reason in rejected(verifier, token(**changes))


@pytest.mark.parametrize(
    ("claim", "offset_s", "reason"),
    [("exp", -60, "expired"), ("nbf", 120, "not valid yet"), ("iat", 120, "not valid yet")],
)
def test_times_that_reject_the_token(
    verifier: OidcVerifier, claim: str, offset_s: int, reason: str
) -> None:
    """Times relative to when the test runs, not to when the suite was collected."""
    assert reason in rejected(verifier, token(**{claim: int(time.time()) + offset_s}))


def test_leeway_forgives_a_little_clock_skew(verifier: OidcVerifier) -> None:
    now = int(time.time())
    assert verifier.verify(token(exp=now - 10, nbf=now + 10, iat=now + 10))


def test_a_key_not_in_the_jwks_under_a_known_kid(verifier: OidcVerifier) -> None:
    assert "signature does not verify" in rejected(verifier, token(ATTACKER_KEY, "rsa-1"))


def test_an_encryption_key_does_not_verify_signatures(verifier: OidcVerifier, idp: Idp) -> None:
    idp.keys = [{**jwk(RSA_KEY, "rsa-1"), "use": "enc"}]
    assert "does not list" in rejected(verifier, token())


def test_a_token_whose_alg_is_not_its_keys(verifier: OidcVerifier) -> None:
    assert "invalid" in rejected(verifier, token(EC_KEY, "rsa-1", "ES256"))


def test_unknown_kid_refetches_once_and_not_for_every_bogus_kid(
    verifier: OidcVerifier, idp: Idp
) -> None:
    verifier.verify(token())
    assert idp.fetches == 1
    assert "does not list" in rejected(verifier, token(ATTACKER_KEY, "made-up-1"))
    assert idp.fetches == 2
    for n in range(20):
        rejected(verifier, token(ATTACKER_KEY, f"made-up-{n + 2}"))
    assert idp.fetches == 2


def test_a_first_token_with_an_unknown_kid_fetches_once(verifier: OidcVerifier, idp: Idp) -> None:
    assert "does not list" in rejected(verifier, token(ATTACKER_KEY, "made-up"))
    assert idp.fetches == 1


def test_a_token_without_kid(verifier: OidcVerifier, idp: Idp) -> None:
    bearer = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    assert "names no signing key" in rejected(verifier, bearer)
    assert idp.fetches == 0


def test_the_key_set_is_cached_for_cache_s(verifier: OidcVerifier, idp: Idp) -> None:
    for _ in range(3):
        verifier.verify(token())
    assert idp.fetches == 1
    verifier.cache_s = 0
    verifier.verify(token())
    assert idp.fetches == 2


def test_a_failed_refetch_does_not_refuse_tokens_of_cached_keys(
    verifier: OidcVerifier, idp: Idp
) -> None:
    verifier.verify(token())
    idp.status = 503
    assert "unavailable" in rejected(verifier, token(ATTACKER_KEY, "made-up"))
    assert verifier.verify(token()).subject == "u-42"
    assert idp.fetches == 2


def test_key_rotation_is_picked_up_by_the_new_kid(verifier: OidcVerifier, idp: Idp) -> None:
    verifier.verify(token())
    idp.keys = [jwk(ROTATED_KEY, "rsa-2")]
    assert verifier.verify(token(ROTATED_KEY, "rsa-2")).subject == "u-42"
    assert idp.fetches == 2
    # the refetched set no longer lists the old key, so its tokens are no longer accepted
    assert "does not list" in rejected(verifier, token())


def test_alg_none_is_refused(verifier: OidcVerifier, idp: Idp) -> None:
    for alg in ("none", "None", "NONE"):
        bearer = hand_made({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, None)
        assert looks_like_jwt(bearer)
        assert "algorithm is not accepted" in rejected(verifier, bearer)
    assert idp.fetches == 0


def test_hs256_signed_with_the_public_key_is_refused(verifier: OidcVerifier) -> None:
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, json.dumps(jwk(RSA_KEY, "rsa-1")).encode()):
        bearer = hand_made({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, secret)
        assert "algorithm is not accepted" in rejected(verifier, bearer)


def test_symmetric_algorithms_cannot_be_configured(idp: Idp) -> None:
    for algorithms in (("RS256", "HS256"), ("none",), ()):
        with pytest.raises(ValueError, match="not allowed"):
            OidcVerifier(OidcConfig(ISSUER, AUDIENCE, idp.url, algorithms=algorithms))


def test_a_plain_http_jwks_url_is_refused_unless_local() -> None:
    for url in ("http://sso.example/certs", "file://localhost/etc/certs", "sso.example/certs"):
        with pytest.raises(ValueError, match="must be https"):
            OidcVerifier(OidcConfig(ISSUER, AUDIENCE, url))
    OidcVerifier(OidcConfig(ISSUER, AUDIENCE, "https://sso.example/certs"))


@pytest.mark.parametrize(
    "garbage",
    ["", "opaque-vigil-token", "a.b", "a.b.c", "a.b.c.d", "e30.e30.", "ey!!.e30.x", "a" * 20_000],
)
def test_garbage_is_rejected(verifier: OidcVerifier, garbage: str) -> None:
    rejected(verifier, garbage)


def test_looks_like_jwt() -> None:
    assert looks_like_jwt(token())
    assert not looks_like_jwt("vgl_3f9a8c")
    assert not looks_like_jwt("a.b")
    assert not looks_like_jwt(token() + "\n")


def test_jwks_server_down(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/certs"
    verifier = OidcVerifier(OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=url))
    bearer = token()
    with caplog.at_level(logging.WARNING, logger="api.oidc"):
        assert "signing keys are unavailable" in rejected(verifier, bearer)
        # within retry_after_failure_s every request is refused at once, and logged once
        assert "unavailable" in rejected(verifier, bearer)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert url in warnings[0].getMessage()
    assert bearer not in caplog.text and bearer.split(".")[1] not in caplog.text


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, None), (404, None), (200, b"<html>"), (200, b"[]"), (200, b'{"keys": [{"kty": 1}]}')],
)
def test_jwks_server_failing_then_recovering(
    verifier: OidcVerifier, idp: Idp, status: int, body: bytes | None
) -> None:
    idp.status, idp.body = status, body
    assert "unavailable" in rejected(verifier, token())
    idp.status, idp.body = 200, None
    verifier.retry_after_failure_s = 0
    assert verifier.verify(token()).subject == "u-42"


def test_oidc_config_from_settings() -> None:
    def settings(issuer: str | None, audience: str | None, url: str | None) -> Settings:
        return Settings(oidc_issuer=issuer, oidc_audience=audience, oidc_jwks_url=url)

    assert oidc_config(settings(None, None, None)) is None
    assert oidc_config(settings("", " ", None)) is None
    full = settings(ISSUER, AUDIENCE, "https://x/certs")
    assert oidc_config(full) == OidcConfig(ISSUER, AUDIENCE, "https://x/certs")
    with pytest.raises(ValueError) as caught:
        oidc_config(settings(ISSUER, " ", None))
    assert "VIGIL_OIDC_ISSUER set" in str(caught.value)
    assert "VIGIL_OIDC_AUDIENCE, VIGIL_OIDC_JWKS_URL not" in str(caught.value)
