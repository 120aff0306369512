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


Connection = Annotated[psycopg.Connection, Depends(connection)]


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


def require(resource: str, interaction: str, *, fleet: bool = False) -> Any:
    """The dependency a route declares for what it serves: it authenticates the request
    (401 otherwise), asks the policy (403 when the principal's kind or scopes never reach
    such data) and hands the route the :class:`Access` to filter by."""
    return Depends(Requirement(Need(resource, interaction, fleet)))


class Requirement:
    """What :func:`require` depends on; it keeps its :class:`Need` where a test reading the
    route table can find it. It borrows its own connection and gives it back at once, so a
    long answer (a stream) holds none."""

    def __init__(self, need: Need) -> None:
        self.need = need

    def __call__(self, request: Request) -> Access:
        record: AuditRecord = request.scope[RECORD]
        record.action = self.need.interaction
        pool: ConnectionPool = request.app.state.pool
        with pool.connection() as conn:
            who = identify(request, conn)
            record.actor, record.kind = who.name, str(who.kind)
            try:
                compartment = decide(conn, who, self.need)
            except Forbidden as exc:
                raise FhirError(403, "forbidden", str(exc)) from None
        return Access(who, compartment, record)


def identify(request: Request, conn: psycopg.Connection) -> Principal:
    """The principal the bearer token names: a Vigil token, or a JWT of the identity
    provider when one is configured."""
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
    who = authenticate(conn, token)
    if who is None:
        raise _unauthorized("the token is unknown, revoked or expired", "invalid_token")
    return who


def principal_of(claims: Claims) -> Principal:
    """A JWT's principal: ``fhirUser`` Patient/ID is that patient, Practitioner/ID the
    clinician ID (the name care teams list); without one, the client is a system client."""
    kind_of = {"Patient": Kind.PATIENT, "Practitioner": Kind.CLINICIAN}
    resource, _, ident = (claims.fhir_user or "").partition("/")
    kind = kind_of.get(resource, Kind.SYSTEM)
    name = ident if kind is not Kind.SYSTEM else (claims.client_id or claims.subject)
    scopes = principal_scopes(kind, " ".join(claims.scopes))
    return Principal(name, kind, scopes, ident if kind is Kind.PATIENT else None, via="oidc")


def _unauthorized(problem: str, error: str | None) -> FhirError:
    challenge = 'Bearer realm="vigil"' + (f', error="{error}"' if error else "")
    return FhirError(401, "login", problem, {"WWW-Authenticate": challenge})
