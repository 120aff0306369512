"""FHIR Observation: read by id and search, over the stored rows, within the caller's
compartment: another patient's Observation is not found, a search for them is empty."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction
from api.fhir.observation import Row, device_tag, parse_observation_id, render_observation
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here
from api.fhir.search import (
    KNOWN,
    OBSERVATION_PARAMS,
    ObservationQuery,
    SearchError,
    parse_observation_search,
)
from api.routes.compartment import hidden_outcome
from vigil.metrics import CATALOGUE

router = APIRouter(prefix="/fhir")
_COLUMNS = "patient, metric, effective, value, flags, device, received"
_PROFILES = tuple(dict.fromkeys(m.profile for m in CATALOGUE if m.profile))
READ = Interaction("Observation", "read", profiles=_PROFILES)
SEARCH = Interaction("Observation", "search-type", OBSERVATION_PARAMS, _PROFILES)


@router.get("/Observation/{resource_id}", response_class=FhirJSON, openapi_extra=READ.declared())
def read_observation(
    resource_id: str,
    access: Annotated[Access, require("Observation", "read")],
    conn: Connection,
) -> FhirJSON:
    key = parse_observation_id(resource_id)
    row = None
    if key is not None and access.sees(key.patient):
        access.touch([key.patient])
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM observation"
            " WHERE patient = %s AND metric = %s AND effective = %s",
            (key.patient, key.metric, key.effective),
        ).fetchall()
        row = next(
            (r for r in (Row(*r) for r in rows) if device_tag(r.device) == key.device_tag), None
        )
    if row is None:
        raise FhirError(404, "not-found", "no such Observation")
    return FhirJSON(render_observation(row))


@router.get(
    "/Observation", response_class=FhirJSON, openapi_extra=SEARCH.declared(tuple(sorted(KNOWN)))
)
def search_observations(
    request: Request,
    access: Annotated[Access, require("Observation", "search")],
    conn: Connection,
) -> FhirJSON:
    params = list(request.query_params.multi_items())
    try:
        query = parse_observation_search(params)
    except SearchError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    if not access.sees(query.patient):
        outcome = hidden_outcome(access, query.patient)
        return FhirJSON(searchset([], fhir_base(request), here(request), 0, outcome=outcome))
    access.touch([query.patient])
    where, args = _where(query)
    row = conn.execute(f"SELECT count(*) FROM observation WHERE {where}", args).fetchone()
    total = int(row[0]) if row else 0
    order = "DESC" if query.newest_first else "ASC"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM observation WHERE {where}"
        f" ORDER BY effective {order}, metric LIMIT %s OFFSET %s",
        [*args, query.count, query.offset],
    ).fetchall()
    next_url = None
    if query.offset + query.count < total and query.count:
        kept = [(k, v) for k, v in params if k in KNOWN and k != "_offset"]
        kept.append(("_offset", str(query.offset + query.count)))
        next_url = f"{fhir_base(request)}/Observation?{urlencode(kept)}"
    resources = [render_observation(Row(*r)) for r in rows]
    return FhirJSON(searchset(resources, fhir_base(request), here(request), total, next_url))


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
