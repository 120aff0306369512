"""What every request passes through, before and after its route: limits on what it may
send, the audit row (written before the first byte of the answer, and for refusals and
failures too), security headers, and a FHIR OperationOutcome for whatever went wrong.

It is plain ASGI rather than a Starlette ``BaseHTTPMiddleware`` so that it sees the status
of a streamed answer (the alert stream) when it starts, and holds nothing while it flows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool, PoolTimeout

from api.access import audit
from api.access.audit import AuditRecord
from api.fhir.negotiation import NOT_ACCEPTABLE, acceptable
from api.fhir.outcome import operation_outcome

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RECORD = "vigil.audit"
"""Where a request's :class:`AuditRecord` lives in its ASGI scope."""
UNAUDITED = frozenset({"/healthz", "/"})
"""A liveness probe touches no data and would bury the trail."""
UNAUDITED_UNDER = "/app/"
"""Nor do the pages and their files: the data they show comes from audited API calls."""
TOO_LARGE = 413
_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'; form-action 'self'"
)


class Edge:
    def __init__(self, app: ASGIApp, *, max_body: int, https: bool) -> None:
        self.app = app
        self.max_body = max_body
        headers = [
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", _CSP.encode()),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if https:
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, scope, receive, send)
        refusal = self._refusal(scope)
        try:
            if refusal is not None:
                await exchange.answer(*refusal)
            else:
                await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            if not exchange.too_large:  # else the route failed on a body cut off: a 413
                _log_failure(scope, exc)
            if not exchange.started:
                await exchange.fail(exc)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """Requests refused before any route sees them."""
        raw = scope["query_string"] + scope.get("raw_path", b"")
        if b"\x00" in unquote_to_bytes(raw) or "\x00" in scope["path"]:
            return 400, "invalid", "a NUL byte is not allowed in a URL"
        if scope["path"].startswith("/fhir/"):
            accept = next((v for n, v in scope["headers"] if n == b"accept"), b"")
            query = scope["query_string"].decode("latin-1")
            if not acceptable(accept.decode("latin-1"), query):
                return 406, "not-supported", NOT_ACCEPTABLE
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return 400, "invalid", "Content-Length must be a number of bytes"
                if int(value) > self.max_body:
                    return TOO_LARGE, "too-costly", self.too_large
        return None

    @property
    def too_large(self) -> str:
        return f"the request body is over {self.max_body} bytes"


class _Exchange:
    """One request on its way through: it stops reading the body past the limit, and
    holds back the answer until its audit row is written. An answer of its own (a 413, a
    503 when the audit cannot be written, a 500) replaces whatever the route sends."""

    def __init__(self, edge: Edge, scope: Scope, receive: Receive, send: Send) -> None:
        self.edge = edge
        self.scope = scope
        self.record = AuditRecord(
            resource=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            action=scope["method"].lower(),
        )
        scope[RECORD] = self.record
        path = scope["path"]
        self.audited = path not in UNAUDITED and not path.startswith(UNAUDITED_UNDER)
        self.started = False
        self.replaced = False
        self.too_large = False
        self.body_read = 0
        self._receive = receive
        self._send = send

    async def receive(self) -> Message:
        """The body; past the limit, the client is gone as far as the route can tell, so
        it never acts on a body cut short."""
        if self.too_large:
            return {"type": "http.disconnect"}
        message = await self._receive()
        self.body_read += len(message.get("body", b""))
        if self.body_read > self.edge.max_body:
            self.too_large = True
            return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            if self.too_large:
                await self.answer(TOO_LARGE, "too-costly", self.edge.too_large)
                return
            self.started = True
            if not await self._audit(message["status"]):
                await self._replace(503, "transient", "the audit trail is unavailable", False)
                return
            names = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [
                *message.get("headers", []),
                *((n, v) for n, v in self.edge.headers if n not in names),
            ]
        await self._send(message)

    async def answer(self, status: int, code: str, diagnostics: str) -> None:
        """Answer with an OperationOutcome of its own, audited, in place of the route's."""
        await self._replace(status, code, diagnostics, True)

    async def fail(self, exc: Exception) -> None:
        if self.too_large:
            await self.answer(TOO_LARGE, "too-costly", self.edge.too_large)
        elif isinstance(exc, PoolTimeout):
            await self.answer(503, "transient", "the database is busy; try again shortly")
        else:
            await self.answer(500, "exception", "the server failed; the request is audited")

    async def _replace(self, status: int, code: str, diagnostics: str, audited: bool) -> None:
        if self.replaced:
            return
        self.replaced = self.started = True
        if audited and not await self._audit(status):
            status, code, diagnostics = 503, "transient", "the audit trail is unavailable"
        body = json.dumps(operation_outcome(code, diagnostics)).encode()
        headers = [
            (b"content-type", b"application/fhir+json"),
            (b"content-length", str(len(body)).encode()),
            *self.edge.headers,
        ]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})

    async def _audit(self, status: int) -> bool:
        if not self.audited or (self.record.written and status < 400):
            return True
        pool: ConnectionPool = self.scope["app"].state.pool

        def write() -> None:
            with pool.connection() as conn:
                audit.write(conn, self.record, status)

        try:
            await run_in_threadpool(write)
        except Exception as exc:
            log.error("audit row not written (%s): the answer is withheld", type(exc).__name__)
            return False
        return True


def _log_failure(scope: Scope, exc: Exception) -> None:
    """The route's template, never the path: a path can name a patient."""
    route = getattr(scope.get("route"), "path", "an unknown route")
    if isinstance(exc, PoolTimeout):
        log.error("no database connection in time for %s", route)
    else:
        log.error("unhandled %s on %s", type(exc).__name__, route)
        log.debug("unhandled error", exc_info=True)
