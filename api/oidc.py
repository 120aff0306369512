"""Bearer JWTs from a hospital's own identity provider (Keycloak, Entra ID, Okta).

Hospitals keep their staff in an identity provider rather than in a new user database, so
the API also accepts the OAuth 2.0 / OIDC access tokens it issues. A token is trusted only
when its signature verifies against one of the provider's published keys (its JWKS) and
its claims say it was issued by that provider (`iss`), for this API (`aud`), to someone
(`sub`), and is still valid (`exp`, `nbf`, `iat`, with a little leeway for clock skew).

PyJWT does the JOSE work (it is the most used maintained JWT library for Python; 2.15 or
later, as 2.13-2.15 fixed an algorithm allow-list bypass with JWKS keys, unbounded refetches
and exceptions escaping on malformed input); its `PyJWKClient` fetches the key set. This
module adds what a service facing the internet needs around it: only asymmetric algorithms
(an HS256 token "signed" with the public key as HMAC secret must not verify), one refetch
for an unknown `kid` (key rotation) at most every few seconds (a flood of made-up kids must
not hammer the provider), no retry storm while the provider is down, and error messages
that are safe to show the client.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt

from vigil.settings import Settings

log = logging.getLogger(__name__)

# Public-key algorithms only: "none" and HS* (symmetric) are never accepted, whatever the config.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_TOKEN_LENGTH = 16_384  # access tokens are a few KB; anything longer is refused unread
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_FHIR_REFERENCE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9.-]{1,64}")


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    leeway_s: int = 30


@dataclass(frozen=True, slots=True)
class Claims:
    """What the API needs from a verified token; the policy decides what it may do."""

    subject: str
    client_id: str | None
    scopes: tuple[str, ...]
    fhir_user: str | None  # "Practitioner/dr-ada", "Patient/p0001"
    expires: datetime


class TokenRejected(Exception):
    """The token is not accepted; the message says why and is safe to show the client."""


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments separated by dots (the signature may be empty, so that an
    unsigned token is routed here and refused as such rather than looked up elsewhere)."""
    return len(token) <= MAX_TOKEN_LENGTH and _JWT_SHAPE.fullmatch(token) is not None


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The OIDC configuration, or None when none of its settings is set (OIDC off)."""
    values = {
        "VIGIL_OIDC_ISSUER": (settings.oidc_issuer or "").strip(),
        "VIGIL_OIDC_AUDIENCE": (settings.oidc_audience or "").strip(),
        "VIGIL_OIDC_JWKS_URL": (settings.oidc_jwks_url or "").strip(),
    }
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(values):
        return None
    if missing:
        given = ", ".join(name for name in values if name not in missing)
        raise ValueError(
            f"OIDC is half configured: {given} set but {', '.join(missing)} not; set all three "
            "(the issuer and JWKS URL are in the identity provider's "
            "/.well-known/openid-configuration) to accept its tokens, or none to turn OIDC off"
        )
    issuer, audience, jwks_url = values.values()
    return OidcConfig(issuer=issuer, audience=audience, jwks_url=jwks_url)


class OidcVerifier:
    """Verifies bearer JWTs against one identity provider; safe to share between threads."""

    cache_s = 300.0  # a fetched key set is used this long before it is read again
    timeout_s = 5.0  # a JWKS request that takes longer counts as the provider being down
    refetch_interval_s = 10.0  # at most one refetch for an unknown kid per interval
    retry_after_failure_s = 5.0  # after a failed fetch, refuse at once for this long

    def __init__(self, config: OidcConfig) -> None:
        refused = sorted(set(config.algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused or not config.algorithms:
            raise ValueError(
                f"OIDC algorithms {refused or '(none)'} are not allowed; use public-key "
                f"ones ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
            )
        url = urlsplit(config.jwks_url)
        local = url.scheme == "http" and url.hostname in ("localhost", "127.0.0.1", "::1")
        if url.scheme != "https" and not local:
            raise ValueError(
                f"the OIDC JWKS URL {config.jwks_url!r} must be https:// (anyone on the path "
                "of a plain http one could swap the keys and sign tokens of their own)"
            )
        self._config = config
        # PyJWKClient fetches (http(s) only, no redirects, a timeout) and parses the set,
        # skipping unusable keys; the caching is ours, as its own cannot tell us whether it
        # fetched, and its unknown-kid cooldown also follows routine fetches, so a key
        # rotated in just after one would be refused for the whole cooldown.
        self._client = jwt.PyJWKClient(config.jwks_url, cache_jwk_set=False, timeout=self.timeout_s)
        self._lock = threading.Lock()  # one fetch at a time; the others wait and reuse it
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = self._last_refetch = self._failed_at = -math.inf

    def verify(self, token: str) -> Claims:
        """The token's claims, or TokenRejected saying why it is not accepted."""
        if not looks_like_jwt(token):
            raise TokenRejected("the token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the token is malformed") from None
        if header.get("alg") not in self._config.algorithms:
            raise TokenRejected("the token's signing algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key (kid)")
        key = self._signing_key(kid)
        cfg = self._config
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=list(cfg.algorithms),
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token was issued by another identity provider") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("the token is not meant for this service (aud)") from None
        except jwt.MissingRequiredClaimError as e:
            raise TokenRejected(f"the token has no {e.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except jwt.PyJWTError:
            raise TokenRejected("the token is invalid") from None
        return _claims(payload)

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        """The provider's key named `kid`, refetching the key set once if it is unknown:
        providers publish a new key before signing with it, so an unknown kid is either
        a rotation we have not seen yet or a forgery, and we cannot tell which."""
        with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._fetched_at >= self.cache_s
            if stale:
                self._download(now)
            key = _find(self._keys, kid)
            if key is None and not stale and now - self._last_refetch >= self.refetch_interval_s:
                self._last_refetch = now
                self._download(now)
                key = _find(self._keys, kid)
        if key is None:
            raise TokenRejected(
                "the token is signed with a key the identity provider does not list"
            )
        return key

    def _download(self, now: float) -> None:
        """Fetch the key set. While the provider is unreachable every request would wait
        `timeout_s` for it, so after a failure we do not ask again for a few seconds (a
        fresh cached set is still used) and log once per failure, not once per request."""
        unavailable = "the identity provider's signing keys are unavailable; retry later"
        if now - self._failed_at < self.retry_after_failure_s:
            raise TokenRejected(unavailable)
        try:
            self._keys = self._client.get_jwk_set()
        except (jwt.PyJWTError, OSError, ValueError) as e:
            self._failed_at = now
            log.warning("OIDC: cannot read the signing keys at %s: %s", self._config.jwks_url, e)
            raise TokenRejected(unavailable) from None
        self._fetched_at = now


def _find(keys: jwt.PyJWKSet | None, kid: str) -> jwt.PyJWK | None:
    usable = keys.keys if keys is not None else []
    return next((k for k in usable if k.key_id == kid and k.public_key_use in ("sig", None)), None)


def _claims(payload: dict[str, Any]) -> Claims:
    """The verified payload as Claims; a claim of the wrong shape rejects the token, as it
    means the provider is configured unlike what the policy expects."""
    subject = payload["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("the token's 'sub' claim is empty")
    client_id = payload.get("azp", payload.get("client_id"))
    # Keycloak and Entra send a space-separated `scope` or `scp` string, Okta an `scp` list.
    raw = payload.get("scope", payload.get("scp", ()))
    scopes = raw.split() if isinstance(raw, str) else raw
    if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
        raise TokenRejected("the token's scopes are neither a string nor a list of strings")
    fhir_user = payload.get("fhirUser")
    if fhir_user is not None:
        # SMART allows a full URL (https://fhir.example/fhir/Practitioner/dr-ada): keep Type/id
        path = urlsplit(fhir_user).path if isinstance(fhir_user, str) else ""
        fhir_user = "/".join(path.rstrip("/").split("/")[-2:])
        if not _FHIR_REFERENCE.fullmatch(fhir_user):
            raise TokenRejected("the token's 'fhirUser' claim is not a FHIR reference (Type/id)")
    try:
        expires = datetime.fromtimestamp(payload["exp"], UTC)
    except (OverflowError, OSError, ValueError):
        raise TokenRejected("the token's 'exp' claim is out of range") from None
    return Claims(
        subject=subject,
        client_id=client_id if isinstance(client_id, str) else None,
        scopes=tuple(scopes),
        fhir_user=fhir_user,
        expires=expires,
    )
