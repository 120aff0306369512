"""FastAPI dependencies shared by the routes: a pooled database connection per request and
the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from api.audit import Outcome, audit
from api.fhir.outcome import FhirError
from api.tokens import Principal, authenticate


def connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


Connection = Annotated[psycopg.Connection, Depends(connection)]


def caller_of(request: Request, conn: psycopg.Connection) -> Principal:
    """The principal the request's bearer token names; a request without a valid one is
    audited as denied and answered 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    who = authenticate(conn, token.strip()) if scheme.lower() == "bearer" and token else None
    if who is None:
        audit(conn, "anonymous", "access", request.url.path, request.url.query, Outcome.DENIED)
        raise FhirError(
            401,
            "login",
            "a valid bearer token is required "
            "(Authorization: Bearer vgl_...; create one with `vigil token create NAME`)",
        )
    return who


def principal(request: Request, conn: Connection) -> Principal:
    return caller_of(request, conn)


Caller = Annotated[Principal, Depends(principal)]
