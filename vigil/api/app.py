"""The FastAPI application: mounts the routers, owns the connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

import vigil
from alerts.router import router as alerts_router
from ingest.metrics import router as ingest_router
from ingest.router import router as fhir_router
from vigil.api.deps import FhirError
from vigil.settings import Settings

FHIR_JSON = "application/fhir+json"


def create_app(settings: Settings) -> FastAPI:
    if not settings.database_url:
        raise ValueError("no database configured: set VIGIL_DATABASE_URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(settings.database_url or "", min_size=1, max_size=8, open=False)
        pool.open(wait=True, timeout=30)
        app.state.pool = pool
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(title="Vigil", version=vigil.__version__, lifespan=lifespan)
    app.include_router(fhir_router)
    app.include_router(ingest_router)
    app.include_router(alerts_router)

    @app.exception_handler(FhirError)
    async def fhir_error(_request: Request, exc: FhirError) -> JSONResponse:
        return JSONResponse(exc.outcome(), status_code=exc.status_code, media_type=FHIR_JSON)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
