"""``/fhir/AuditEvent``: the audit trail, for administrators (the policy admits no one
else), searchable by patient, agent and date, newest first, paged by id."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from api.deps import Access, Connection, require
from api.fhir.audit_event import AuditRow, render_audit_event
from api.fhir.bundle import searchset
from api.fhir.capability import Interaction, SearchParam
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here
from api.fhir.search.controls import DEFAULT_COUNT, MAX_COUNT
from api.fhir.search.values import (
    Condition,
    SearchError,
    date_condition,
    join,
    patient_reference,
    whole_number,
)
from api.routes.searching import now

router = APIRouter(prefix="/fhir")
PARAMS = (
    SearchParam("patient", "reference", "a patient the request touched (Patient/ID)"),
    SearchParam("agent", "reference", "who made the request (the principal's name)"),
    SearchParam("date", "date", "when it was recorded, every prefix"),
    SearchParam("_count", "number", f"entries per page, at most {MAX_COUNT}"),
    SearchParam("_before", "number", "paging: entries older than this AuditEvent id"),
)
SEARCH = Interaction("AuditEvent", "search-type", PARAMS)
_COLUMNS = "id, at, actor, principal_kind, action, resource, query, outcome, status, patients"


@router.get(
    "/AuditEvent",
    response_class=FhirJSON,
    openapi_extra=SEARCH.declared(tuple(p.name for p in PARAMS)),
)
def search_audit_events(
    request: Request,
    access: Annotated[Access, require("AuditEvent", "search")],
    conn: Connection,
) -> FhirJSON:
    params = list(request.query_params.multi_items())
    try:
        where, args, count = _search(params)
    except SearchError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit_event WHERE {where} ORDER BY id DESC LIMIT %s",
        [*args, count + 1],
    ).fetchall()
    page = [AuditRow(*r) for r in rows[:count]]
    access.touch(p for row in page for p in row.patients)
    next_url = None
    if len(rows) > count and page:
        kept = [(k, v) for k, v in params if k != "_before"] + [("_before", str(page[-1].id))]
        next_url = f"{fhir_base(request)}/AuditEvent?{urlencode(kept)}"
    resources = [render_audit_event(r) for r in page]
    return FhirJSON(searchset(resources, fhir_base(request), here(request), None, next_url))


def _search(params: list[tuple[str, str]]) -> tuple[str, list[Any], int]:
    conditions: list[Condition] = []
    count = DEFAULT_COUNT
    for name, value in params:
        if name == "patient":
            conditions.append(
                Condition("patients @> ARRAY[%s]::text[]", [patient_reference(name, value)])
            )
        elif name == "agent":
            if not 1 <= len(value) <= 200 or not value.isprintable():
                raise SearchError("agent: a principal's name, 1 to 200 printable characters")
            conditions.append(Condition("actor = %s", [value]))
        elif name == "date":
            conditions.append(date_condition(name, "at", value, now()))
        elif name == "_count":
            count = whole_number(name, value, 1, MAX_COUNT)
        elif name == "_before":
            conditions.append(Condition("id < %s", [whole_number(name, value, 1, 2**62)]))
        else:
            known = ", ".join(p.name for p in PARAMS)
            raise SearchError(f"'{name[:40]}' is not a search parameter here ({known})")
    where = join(conditions)
    return where.sql, where.args, count
