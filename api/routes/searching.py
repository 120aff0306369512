"""What the search routes share: handling the request's controls, the ``next`` link,
the Bundle's note on what was left out, and the resources ``_include`` brings.

An included resource is shown only if the caller may read that type and sees its
patient, exactly as a read would decide: ``_include`` is never a way around the policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import psycopg
from fastapi import Request

from api import registry
from api.access.policy import Need
from api.deps import Access
from api.fhir.device import render_gateway, render_sensor
from api.fhir.outcome import FhirError
from api.fhir.patient import render_patient
from api.fhir.response import fhir_base
from api.fhir.search.controls import CURSOR, lenient
from api.fhir.search.values import SearchError
from api.routes.compartment import hidden_outcome


def params_of(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def is_lenient(request: Request) -> bool:
    return lenient(request.headers.get("prefer"))


def refused(exc: SearchError) -> FhirError:
    return FhirError(400, "invalid", str(exc))


def now() -> datetime:
    return datetime.now(UTC)


def next_link(request: Request, resource: str, kept: list[tuple[str, str]], cursor: str) -> str:
    """The search again, with its own parameters (those it used) and the cursor."""
    query = [(k, v) for k, v in kept if k != CURSOR] + [(CURSOR, cursor)]
    return f"{fhir_base(request)}/{resource}?{urlencode(query)}"


def used(
    params: list[tuple[str, str]], ignored: list[tuple[str, str, str]]
) -> list[tuple[str, str]]:
    """The parameters a next link repeats: all given but those lenient handling left out
    (each as given: a second ``date`` that was fine stays)."""
    kept = list(params)
    for name, value, _ in ignored:
        kept.remove((name, value))
    return kept


def notes(
    access: Access, patient: str | None, ignored: list[tuple[str, str, str]]
) -> dict[str, Any] | None:
    """The OperationOutcome a Bundle carries: why the patient is hidden, and what lenient
    handling left out of the search."""
    issues: list[dict[str, Any]] = []
    if patient is not None and not access.sees(patient):
        hidden = hidden_outcome(access, patient)
        if hidden is not None:
            issues += hidden["issue"]
    issues += [
        {"severity": "warning", "code": "not-supported", "diagnostics": f"ignored: {why}"}
        for _, _, why in ignored
    ]
    return {"resourceType": "OperationOutcome", "issue": issues} if issues else None


def may_read(access: Access, resource: str) -> bool:
    return access.who.may(resource, Need(resource, "read").permission)


def include_patients(
    conn: psycopg.Connection, access: Access, patients: Iterable[str]
) -> list[dict[str, Any]]:
    if not may_read(access, "Patient"):
        return []
    seen = [p for p in set(patients) if access.sees(p)]
    return [render_patient(p) for p in registry.patients(conn, seen)] if seen else []


def include_devices(
    conn: psycopg.Connection, access: Access, patient: str, addresses: Iterable[str]
) -> list[dict[str, Any]]:
    """The current records of these sensors, where they are still the patient's, and the
    gateways they are on."""
    if not (may_read(access, "Device") and access.sees(patient)):
        return []
    sensors, gateways = registry.sensors_and_gateways(conn, [patient], addresses)
    return [render_sensor(s) for s in sensors] + [render_gateway(g) for g in gateways]
