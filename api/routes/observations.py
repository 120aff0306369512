"""FHIR Observation: read by id and search, over the stored rows, within the caller's
compartment: another patient's Observation is not found, a search for them is empty."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response

from api import registry
from api.deps import Access, Connection, require
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction
from api.fhir.observation import (
    ROW_COLUMNS,
    Row,
    device_tag,
    parse_observation_id,
    render_observation,
)
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here, read_response
from api.fhir.search import observations as search
from api.fhir.search import paging
from api.fhir.search.controls import shape
from api.fhir.search.values import SearchError
from api.routes.searching import (
    include_devices,
    include_patients,
    is_lenient,
    next_link,
    notes,
    now,
    params_of,
    refused,
    used,
)
from vigil.metrics import CATALOGUE

router = APIRouter(prefix="/fhir")
PROFILES = tuple(dict.fromkeys(m.profile for m in CATALOGUE if m.profile))
READ = Interaction("Observation", "read", profiles=PROFILES)
SEARCH = search.OBSERVATION.interaction("Observation", PROFILES)
SUMMARY_LEAVES = frozenset({"extension", "device"})
"""The elements of a rendered Observation that are not in R4's summary."""


@router.get("/Observation/{resource_id}", response_class=FhirJSON, openapi_extra=READ.declared())
def read_observation(
    request: Request,
    resource_id: str,
    access: Annotated[Access, require("Observation", "read")],
    conn: Connection,
) -> Response:
    key = parse_observation_id(resource_id)
    row = None
    if key is not None and access.sees(key.patient):
        access.touch([key.patient])
        rows = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM observation"
            " WHERE patient = %s AND metric = %s AND effective = %s",
            (key.patient, key.metric, key.effective),
        ).fetchall()
        row = next(
            (r for r in (Row(*r) for r in rows) if device_tag(r.device) == key.device_tag), None
        )
    if row is None:
        raise FhirError(404, "not-found", "no such Observation")
    return read_response(request, render_observation(row))


@router.get(
    "/Observation",
    response_class=FhirJSON,
    openapi_extra=SEARCH.declared(search.OBSERVATION.names),
)
def search_observations(
    request: Request,
    access: Annotated[Access, require("Observation", "search")],
    conn: Connection,
) -> FhirJSON:
    params = params_of(request)
    try:
        query = search.parse(params, is_lenient(request), now())
        given = query.controls.cursor
        cursor = paging.decode(given, datetime, int, str) if given else None
    except SearchError as exc:
        raise refused(exc) from None
    controls = query.controls
    outcome = notes(access, query.patient, controls.ignored)
    base, self_url = fhir_base(request), here(request)
    if not access.sees(query.patient):
        return FhirJSON(searchset([], base, self_url, 0, outcome=outcome))
    access.touch([query.patient])
    cursor = cursor or paging.start(conn)
    devices = (
        None if query.devices is None else registry.addresses_of(conn, query.patient, query.devices)
    )
    total = None
    if controls.total == "accurate" or controls.summary == "count":
        total = _count(conn, query, cursor, devices)
    if controls.summary == "count":
        return FhirJSON(searchset([], base, self_url, total, outcome=outcome))
    rows = _page(conn, query, cursor, devices)
    shown = rows[: controls.count]
    next_url = None
    if len(rows) > controls.count and shown:
        after = paging.Cursor(cursor.snapshot, search.key_of(shown[-1]))
        next_url = next_link(request, "Observation", used(params, controls.ignored), after.encode())
    if total is None and len(rows) <= controls.count and cursor.after is None:
        total = len(shown)  # the whole result is on this page: its total costs nothing
    included = []
    if shown and {"Observation:subject", "Observation:patient"} & set(controls.include):
        included += include_patients(conn, access, [query.patient])
    if shown and "Observation:device" in controls.include:
        included += include_devices(conn, access, query.patient, {r.device for r in shown})
    resources = [shape(render_observation(r), controls, SUMMARY_LEAVES) for r in shown]
    return FhirJSON(searchset(resources, base, self_url, total, next_url, outcome, included))


def _page(
    conn: Connection,
    query: search.ObservationQuery,
    cursor: paging.Cursor,
    devices: list[str] | None,
) -> list[Row]:
    """The page's rows and one more (there is a next page when it is there); an ``_id``
    search reads all its candidates and keeps the rows whose ids were asked for."""
    limit = None if query.ids is not None else query.controls.count + 1
    sql, args = search.page_sql(query, cursor, limit, devices)
    rows = [Row(*r) for r in conn.execute(sql, args)]
    if query.ids is None:
        return rows
    wanted = {(k.metric, k.effective, k.device_tag) for k in query.ids}
    return [r for r in rows if (r.metric, r.effective, device_tag(r.device)) in wanted]


def _count(
    conn: Connection,
    query: search.ObservationQuery,
    cursor: paging.Cursor,
    devices: list[str] | None,
) -> int:
    if query.ids is not None:
        return len(_page(conn, query, paging.Cursor(cursor.snapshot, None), devices))
    sql, args = search.count_sql(query, cursor, devices)
    row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0
