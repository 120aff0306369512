"""The FastAPI application: the routes of every group, the connection pool, and FHIR
errors answered as OperationOutcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from psycopg_pool import ConnectionPool

import vigil
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON
from api.routes import alerts, flags, ingest, metadata, observations, stream
from vigil.settings import Settings

POOL_SIZE = 8


def create_app(settings: Settings) -> FastAPI:
    if not settings.database_url:
        raise ValueError("no database configured: set VIGIL_DATABASE_URL")
    url = settings.database_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False)
        pool.open(wait=True, timeout=30)
        app.state.pool = pool
        app.state.started = datetime.now(UTC)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(title="Vigil", version=vigil.__version__, lifespan=lifespan)
    app.include_router(metadata.router)
    app.include_router(observations.router)
    app.include_router(flags.router)
    app.include_router(stream.router)  # before /alerts/{alert_id}, which would take "stream"
    app.include_router(alerts.router)
    app.include_router(ingest.router)

    @app.exception_handler(FhirError)
    async def fhir_error(_request: Request, exc: FhirError) -> FhirJSON:
        return FhirJSON(exc.outcome(), status_code=exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
