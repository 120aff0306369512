"""FHIR endpoints over stored observations: search, read, and the CapabilityStatement.

Every read of patient data is authorized (bearer token) and audited with the patients it
returned; ``/fhir/metadata`` is public, as FHIR expects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import vigil
from ingest.fhir.observation import Row, device_tag, parse_observation_id, render_observation
from ingest.fhir.search import KNOWN, ObservationQuery, SearchError, parse_observation_search
from vigil.api.deps import Caller, Connection, FhirError, audit

router = APIRouter(prefix="/fhir")
FHIR_JSON = "application/fhir+json"
_COLUMNS = "patient, metric, effective, value, flags, device, received"


def _fhir(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=FHIR_JSON)


@router.get("/metadata")
def metadata(request: Request) -> JSONResponse:
    return _fhir(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-25",
            "kind": "instance",
            "software": {"name": "Vigil", "version": vigil.__version__},
            "implementation": {
                "description": "Vigil remote patient monitoring",
                "url": str(request.base_url).rstrip("/") + "/fhir",
            },
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {"description": "Bearer tokens (Authorization: Bearer ...)"},
                    "resource": [
                        {
                            "type": "Observation",
                            "profile": "http://hl7.org/fhir/StructureDefinition/vitalsigns",
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [
                                {"name": "subject", "type": "reference"},
                                {"name": "patient", "type": "reference"},
                                {"name": "code", "type": "token"},
                                {"name": "date", "type": "date"},
                            ],
                        }
                    ],
                }
            ],
        }
    )


@router.get("/Observation/{resource_id}")
def read_observation(resource_id: str, conn: Connection, caller: Caller) -> JSONResponse:
    key = parse_observation_id(resource_id)
    if key is None:
        audit(conn, caller.name, "read", f"Observation/{resource_id}", None, "not-found")
        raise FhirError(404, "not-found", f"Observation/{resource_id} is not known")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM observation WHERE patient = %s AND metric = %s AND effective = %s",
        (key.patient, key.metric, key.effective),
    ).fetchall()
    row = next((r for r in (Row(*r) for r in rows) if device_tag(r.device) == key.device_tag), None)
    audit(
        conn,
        caller.name,
        "read",
        f"Observation/{resource_id}",
        None,
        "success" if row else "not-found",
        [key.patient],
    )
    if row is None:
        raise FhirError(404, "not-found", f"Observation/{resource_id} is not known")
    return _fhir(render_observation(row))


@router.get("/Observation")
def search_observations(request: Request, conn: Connection, caller: Caller) -> JSONResponse:
    params = list(request.query_params.multi_items())
    try:
        query = parse_observation_search(params)
    except SearchError as exc:
        audit(conn, caller.name, "search", "Observation", str(request.url.query), "invalid")
        raise FhirError(400, "invalid", str(exc)) from None
    where, args = _where(query)
    (total,) = conn.execute(f"SELECT count(*) FROM observation WHERE {where}", args).fetchone() or (
        0,
    )
    order = "DESC" if query.newest_first else "ASC"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM observation WHERE {where}"
        f" ORDER BY effective {order}, metric LIMIT %s OFFSET %s",
        [*args, query.count, query.offset],
    ).fetchall()
    audit(
        conn,
        caller.name,
        "search",
        "Observation",
        str(request.url.query),
        "success",
        [query.patient],
    )
    base = str(request.url).split("?", 1)[0]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "total": total,
        "link": [{"relation": "self", "url": f"{base}?{request.url.query}"}],
        "entry": [],
    }
    if query.offset + query.count < total and query.count:
        kept = [(k, v) for k, v in params if k in KNOWN and k != "_offset"]
        kept.append(("_offset", str(query.offset + query.count)))
        bundle["link"].append({"relation": "next", "url": f"{base}?{urlencode(kept)}"})
    for row in rows:
        resource = render_observation(Row(*row))
        bundle["entry"].append(
            {
                "fullUrl": f"{base}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
        )
    return _fhir(bundle)


def _where(query: ObservationQuery) -> tuple[str, list[Any]]:
    clauses = ["patient = %s"]
    args: list[Any] = [query.patient]
    if query.metrics is not None:
        clauses.append("metric = ANY(%s)")
        args.append(query.metrics)
    for op, bound in query.lower + query.upper:
        clauses.append(f"effective {op} %s")
        args.append(bound)
    return " AND ".join(clauses), args
