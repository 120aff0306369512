"""FastAPI dependencies shared by the routers: a database connection per request, the
authenticated principal, and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request
from psycopg_pool import ConnectionPool

from vigil.api.tokens import Principal, authenticate


class FhirError(HTTPException):
    """An error answered as a FHIR OperationOutcome."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(status, diagnostics)
        self.code = code
        self.diagnostics = diagnostics

    def outcome(self) -> dict[str, Any]:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": self.code, "diagnostics": self.diagnostics}],
        }


def connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


Connection = Annotated[psycopg.Connection, Depends(connection)]


def principal(request: Request, conn: Connection) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    who = authenticate(conn, token.strip()) if scheme.lower() == "bearer" and token else None
    if who is None:
        audit(conn, "anonymous", "access", request.url.path, str(request.url.query), "denied")
        raise FhirError(
            401,
            "login",
            "a valid bearer token is required "
            "(Authorization: Bearer vgl_...; create one with "
            "`vigil token create NAME`)",
        )
    return who


Caller = Annotated[Principal, Depends(principal)]


def audit(
    conn: psycopg.Connection,
    actor: str,
    action: str,
    resource: str,
    query: str | None,
    outcome: str,
    patients: list[str] | None = None,
) -> None:
    """Record one access; committed at once so a failing request still leaves its trace."""
    conn.execute(
        "INSERT INTO audit_event (actor, action, resource, query, outcome, patients)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (actor, action, resource, query, outcome, patients or []),
    )
    conn.commit()
