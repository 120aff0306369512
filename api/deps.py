"""FastAPI dependencies shared by the routes: a pooled database connection, and the access
a request has (:func:`require`): who it acts as, and the patients the policy lets it touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from api.access.audit import AuditRecord
from api.access.policy import Compartment, Forbidden, Need, decide
from api.access.principal import Kind, Principal, principal_scopes
from api.access.tokens import authenticate
from api.edge import RECORD
from api.fhir.outcome import FhirError
from api.oidc import Claims, OidcVerifier, TokenRejected, looks_like_jwt


def connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


Connection = Annotated[psycopg.Connection, Depends(connection, scope="function")]
"""One pooled connection per request, shared by the route and its access check, committed
and given back when the route returns: before the edge writes the audit row, so a request
holds one connection at a time, and a change is committed before it is reported."""


@dataclass(frozen=True, slots=True)
class Access:
    who: Principal
    compartment: Compartment
    record: AuditRecord

    def sees(self, patient: str) -> bool:
        return self.compartment.holds(patient)

    def touch(self, patients: Iterable[str | None]) -> None:
        """Name in the audit row the patients whose data the answer holds."""
        self.record.touch(patients)


def credentials(request: Request) -> Principal | str:
    """What the bearer header alone tells: a JWT of the identity provider, verified (no
    database needed), or a Vigil token still to be looked up. No database connection is
    taken for a request without a bearer token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required (Authorization: Bearer ...)", None)
    verifier: OidcVerifier | None = request.app.state.oidc
    if verifier is not None and looks_like_jwt(token):
        try:
            return principal_of(verifier.verify(token))
        except TokenRejected as exc:
            raise _unauthorized(str(exc), "invalid_token") from None
    return token


Credentials = Annotated[Principal | str, Depends(credentials)]


def require(resource: str, interaction: str, *, fleet: bool = False) -> Any:
    """The dependency a route declares for what it serves: it authenticates the request
    (401 otherwise), asks the policy (403 when the principal's kind or scopes never reach
    such data) and hands the route the :class:`Access` to filter by."""
    return Depends(Requirement(Need(resource, interaction, fleet)))


def require_streaming(resource: str, interaction: str) -> Any:
    """:func:`require` for an answer that streams: the connection it checks with is given
    back before the stream starts, so a waiting stream holds none."""
    return Depends(StreamingRequirement(Need(resource, interaction)))


class Requirement:
    """What :func:`require` depends on; it keeps its :class:`Need` where a test reading the
    route table can find it."""

    def __init__(self, need: Need) -> None:
        self.need = need

    def __call__(self, request: Request, credential: Credentials, conn: Connection) -> Access:
        return self.access(request, credential, conn)

    def access(
        self, request: Request, credential: Principal | str, conn: psycopg.Connection
    ) -> Access:
        record: AuditRecord = request.scope[RECORD]
        record.action = self.need.interaction
        who = _known(credential, conn)
        record.actor, record.kind = who.name, str(who.kind)
        try:
            compartment = decide(conn, who, self.need)
        except Forbidden as exc:
            raise FhirError(403, "forbidden", str(exc)) from None
        return Access(who, compartment, record)


class StreamingRequirement(Requirement):
    def __call__(self, request: Request, credential: Credentials) -> Access:  # type: ignore[override]
        pool: ConnectionPool = request.app.state.pool
        with pool.connection() as conn:
            return self.access(request, credential, conn)


def identify(request: Request, conn: psycopg.Connection) -> Principal:
    """The principal the request's bearer token names now (a stream asks again before
    every delivery, so a revoked token stops it)."""
    return _known(credentials(request), conn)


def _known(credential: Principal | str, conn: psycopg.Connection) -> Principal:
    if isinstance(credential, Principal):
        return credential
    who = authenticate(conn, credential)
    if who is None:
        raise _unauthorized("the token is unknown, revoked or expired", "invalid_token")
    return who


_KINDS_OF_USER = {"Patient": Kind.PATIENT, "Practitioner": Kind.CLINICIAN}


def principal_of(claims: Claims) -> Principal:
    """A JWT's principal: ``fhirUser`` Patient/ID is that patient, Practitioner/ID the
    clinician ID (the name care teams list); without one, the client is a system client
    named by ``azp``. Any other kind of user (RelatedPerson, Person) is refused: Vigil has
    no compartment for them yet."""
    if claims.fhir_user is None:
        kind, name = Kind.SYSTEM, claims.client_id or claims.subject
    else:
        resource, _, name = claims.fhir_user.partition("/")
        if resource not in _KINDS_OF_USER:
            raise TokenRejected(f"fhirUser of type {resource} is not a user Vigil knows")
        kind = _KINDS_OF_USER[resource]
    scopes = principal_scopes(kind, " ".join(claims.scopes))
    return Principal(name, kind, scopes, name if kind is Kind.PATIENT else None)


def _unauthorized(problem: str, error: str | None) -> FhirError:
    challenge = 'Bearer realm="vigil"' + (f', error="{error}"' if error else "")
    return FhirError(401, "login", problem, {"WWW-Authenticate": challenge})
