"""The FastAPI application: the routes of every group, the connection pool, the edge every
request passes (limits, audit, headers), and every error answered as an OperationOutcome."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, StarletteHTTPException
from psycopg_pool import ConnectionPool

import vigil
from api.edge import Edge
from api.fhir.outcome import FhirError, operation_outcome
from api.fhir.response import FhirJSON
from api.fhir.search.paging import sees_other_sessions
from api.oidc import OidcVerifier, oidc_config
from api.routes import (
    alerts,
    audit_events,
    consents,
    devices,
    flags,
    ingest,
    me,
    messages,
    metadata,
    observation_operations,
    observations,
    patients,
    station,
    stream,
    subscriptions,
    trends,
)
from api.stream_feed import AlertFeed
from api.subscriptions.websocket import Sockets
from api.subscriptions.worker import Worker
from api.web import pages
from vigil.settings import Settings

log = logging.getLogger(__name__)

POOL_SIZE = 8
ROUTERS = (
    metadata.router,
    observation_operations.router,  # before /Observation/{resource_id}, which would take "$lastn"
    observations.router,
    patients.router,
    devices.router,
    flags.router,
    consents.router,
    subscriptions.router,
    audit_events.router,
    stream.router,  # before /alerts/{alert_id}, which would take "stream"
    alerts.router,
    station.router,
    ingest.router,
    me.router,
    messages.router,
    trends.router,
    pages.router,
)
"""Every group of routes the API serves, in the order they are matched."""
_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict"}


def public_base(settings: Settings) -> str:
    """The address every link the API gives starts with; never the request's Host."""
    base = settings.api_base_url or f"http://{settings.api_host}:{settings.api_port}"
    return base.rstrip("/")


def create_app(settings: Settings) -> FastAPI:
    if not settings.database_url:
        raise ValueError("no database configured: set VIGIL_DATABASE_URL")
    url = settings.database_url
    config = oidc_config(settings)
    base = public_base(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False)
        pool.open(wait=True, timeout=30)
        with pool.connection() as conn:
            if not sees_other_sessions(conn):
                log.warning(
                    "the database role cannot see other sessions' transactions: paging walks "
                    "and subscriptions may miss a row committed late; GRANT pg_read_all_stats "
                    "TO the API's role"
                )
        app.state.pool = pool
        app.state.feed = AlertFeed(pool, settings.api_streams_per_principal)
        app.state.sockets = Sockets(pool, f"{base}/fhir")
        worker = Worker(url, f"{base}/fhir", settings.retention_days, settings.api_local_hooks)
        worker.start()
        try:
            yield
        finally:
            worker.stop()
            await app.state.sockets.close()
            await app.state.feed.close()
            pool.close()

    # No /docs: its page loads scripts from a CDN, which the pages' CSP (rightly) refuses.
    app = FastAPI(
        title="Vigil",
        version=vigil.__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # its Location would be built from the Host header
    )
    app.state.started = datetime.now(UTC)
    app.state.base_url = base
    app.state.local_hooks = settings.api_local_hooks
    app.state.subscriptions_per_principal = settings.api_subscriptions_per_principal
    app.state.oidc = OidcVerifier(config) if config else None
    app.add_middleware(Edge, max_body=settings.api_max_body_bytes, https=base.startswith("https:"))
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/app/static", pages.static_files, name="static")

    @app.exception_handler(FhirError)
    async def fhir_error(_request: Request, exc: FhirError) -> FhirJSON:
        return FhirJSON(exc.outcome(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> FhirJSON:
        code = _CODES.get(exc.status_code, "invalid")
        return FhirJSON(
            operation_outcome(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> FhirJSON:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return FhirJSON(operation_outcome("invalid", problems), status_code=400)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
