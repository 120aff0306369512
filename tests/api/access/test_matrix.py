"""The access matrix, generated from the app's route table: every protected route x every
principal x its own and a foreign patient, over real HTTP. Exactly the cells the model
below allows return data; no answer anywhere holds a patient its caller may not see; and
every request leaves exactly one audit row. A route added later is in the matrix without
editing this file (or the test says which parameter it cannot fill)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute

from api.app import ROUTERS, create_app
from api.deps import Requirement, connection
from api.fhir.device import device_resource_id
from api.routes import stream
from api.subscriptions.resources import FILTER
from api.subscriptions.topics import NEW_ALERT
from api.web import pages
from tests.api.access.ward import DEVICES, PATIENTS, Ward, ward
from vigil.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.services]

READ_ALL = {(r, p) for r in ("Patient", "Observation", "Flag", "Communication") for p in "rs"}


@dataclass(frozen=True)
class Expect:
    """What a principal may do, written out by hand (not read from the code under test)."""

    sees: frozenset[str]
    may: frozenset[tuple[str, str]]
    fleet: bool = False
    audit: bool = False


MODEL = {
    "dr-north": Expect(
        frozenset({"pn1", "pn2"}),
        frozenset(
            READ_ALL
            | {("Flag", "u"), ("Device", "r"), ("Device", "s"), ("Consent", "r"), ("Consent", "s")}
        ),
    ),
    "dr-south": Expect(
        frozenset({"ps1", "ps2"}),
        frozenset(
            READ_ALL
            | {("Flag", "u"), ("Device", "r"), ("Device", "s"), ("Consent", "r"), ("Consent", "s")}
        ),
    ),
    "pn1": Expect(
        frozenset({"pn1"}),
        frozenset(READ_ALL | {("Device", "r"), ("Device", "s")} | {("Consent", p) for p in "crus"}),
    ),
    "admin": Expect(
        frozenset(PATIENTS),
        frozenset(
            {
                (r, p)
                for r in (
                    "Patient",
                    "Observation",
                    "Flag",
                    "Communication",
                    "Device",
                    "Consent",
                    "AuditEvent",
                )
                for p in "rs"
            }
            | {("Flag", "u")}
        ),
        fleet=True,
        audit=True,
    ),
    "ehr-link": Expect(
        frozenset({"ps1"}),
        frozenset({(r, p) for r in ("Observation", "Flag", "Communication") for p in "rs"}),
    ),
    "scraper": Expect(frozenset(), frozenset({("Device", "r"), ("Device", "s")}), fleet=True),
}
OWN_SUBSCRIPTIONS = {("Subscription", p) for p in "crds"}
"""Every kind manages its own Subscriptions; an integration only when given the scope."""
MODEL = {
    who: e if who in ("ehr-link", "scraper") else replace(e, may=e.may | OWN_SUBSCRIPTIONS)
    for who, e in MODEL.items()
}
FOREIGN = {"dr-north": "ps1", "dr-south": "pn1", "pn1": "pn2", "ehr-link": "pn1", "scraper": "pn1"}
OWN = {"dr-north": "pn2", "dr-south": "ps2", "pn1": "pn1", "admin": "ps2", "ehr-link": "ps1"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    targeted: bool
    need: Requirement

    @property
    def change(self) -> bool:
        return self.method != "GET"


def protected_routes() -> list[tuple[APIRoute, Requirement | None]]:
    app = create_app(Settings(database_url="postgresql:///unused"))
    found = []
    for route in [r for router in ROUTERS for r in router.routes] + app.routes:
        if isinstance(route, APIRoute):
            needs = [
                d.call for d in route.dependant.dependencies if isinstance(d.call, Requirement)
            ]
            found.append((route, needs[0] if needs else None))
    return found


def test_every_route_but_the_capability_statement_goes_through_the_policy() -> None:
    # The pages are files with no data in them: every call they make is to a route here.
    pages_paths = {r.path for r in pages.router.routes}
    public = [r.path for r, n in protected_routes() if n is None and r.path not in pages_paths]
    assert public == ["/fhir/metadata", "/healthz"]
    for route, need in protected_routes():
        calls = [d.call for d in route.dependant.dependencies]
        if need is not None and connection in calls:  # no connection before the caller is known
            assert calls.index(need) < calls.index(connection), route.path


def request_for(
    route: APIRoute, need: Requirement, target: str, w: Ward
) -> tuple[str, dict[str, str], Any]:
    ids = {
        "Patient": target,
        "Device": device_resource_id(DEVICES[target]),
        "Flag": str(w.alerts[target]),
    }
    values = {
        "resource_id": ids.get([*route.path.split("/"), "", ""][2], w.observations[target]),
        "version_id": "1",
        "alert_id": str(w.alerts[target]),
        "consent_id": str(w.consents[target]),
        "subscription_id": w.subscriptions[target],
        "action": "acknowledge",
        "patient_id": target,
    }
    path = route.path
    for param in route.dependant.path_params:
        assert param.name in values, f"teach the matrix a value for path parameter {param.name}"
        path = path.replace("{" + param.name + "}", values[param.name])
    declared = route.openapi_extra.get("x-fhir-interaction", {}) if route.openapi_extra else {}
    names = {p.name for p in route.dependant.query_params} | {
        p["name"] for p in declared.get("searchParam", [])
    }
    query = {"patient": f"Patient/{target}"} if "patient" in names else {}
    bodies = {
        "change": {"note": "from the matrix"},
        "posted": consent_for(target),
        "subscription": subscription_for(target),
    }
    body = None
    for param in route.dependant.body_params:
        assert param.name in bodies, f"teach the matrix a body for {param.name}"
        body = bodies[param.name]
    return path, query, body


def consent_for(target: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "patient": {"reference": f"Patient/{target}"},
        "provision": {
            "type": "permit",
            "actor": [{"reference": {"reference": "CareTeam/t-north"}}],
        },
    }


def subscription_for(target: str) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "the matrix's",
        "criteria": NEW_ALERT.url,
        "_criteria": {"extension": [{"url": FILTER, "valueString": f"patient=Patient/{target}"}]},
        "channel": {"type": "websocket", "payload": "application/fhir+json"},
    }


def calls() -> Iterator[tuple[APIRoute, Requirement]]:
    for route, need in protected_routes():
        if need is not None:
            yield route, need


def fetch(
    w: Ward, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    """One request; a stream is read until its first keep-alive (the backlog since 0)."""
    headers = {**headers, "Last-Event-ID": "0"}
    with httpx.stream(
        method, w.base + path, params=query, json=body, headers=headers, timeout=20
    ) as r:
        lines = []
        for line in r.iter_lines():
            if line.startswith(": still here"):
                break
            lines.append(line)
        return r.status_code, dict(r.headers), "\n".join(lines)


def leaked(text: str, sees: frozenset[str]) -> set[str]:
    """Patients named in an answer's data (a Bundle's links echo the query: not data)."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = text
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        doc = doc.get("entry", [])
    shown = json.dumps(doc)
    return {p for p in PATIENTS if p not in sees and p in shown}


def alert_state(w: Ward, alert: int) -> str:
    with psycopg.connect(w.url) as conn:
        row = conn.execute("SELECT state FROM alert WHERE id = %s", (alert,)).fetchone()
    assert row is not None
    return str(row[0])


def test_exactly_the_allowed_cells_return_data_and_every_request_is_audited(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "KEEP_ALIVE_S", 0.5)
    requests = 0
    wrong: list[str] = []
    with ward(database_url) as w:
        with psycopg.connect(database_url) as conn:
            before = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]
        for route, need in calls():
            method = next(iter(route.methods))
            letter = need.need.permission
            for principal, expect in MODEL.items():
                kind_ok = (
                    (need.need.resource, letter) in expect.may
                    and (not need.need.fleet or expect.fleet)
                    and (need.need.resource != "AuditEvent" or expect.audit)
                )
                for target in filter(None, (OWN.get(principal), FOREIGN.get(principal))):
                    path, query, body = request_for(route, need, target, w)
                    targeted = path != route.path or bool(query) or body is not None
                    status, _, text = fetch(w, method, path, query, body, w.auth(principal))
                    requests += 1
                    cell = f"{method} {route.path} as {principal} for {target}: {status}"
                    visible = target in expect.sees
                    if leaked(text, expect.sees):
                        wrong.append(f"{cell} leaked {leaked(text, expect.sees)}")
                    if not kind_ok:
                        if status != 403:
                            wrong.append(f"{cell}, expected 403")
                    elif visible or not targeted:
                        if not 200 <= status < 300:
                            wrong.append(f"{cell}, expected data")
                        elif (
                            targeted
                            and method == "GET"
                            and "/Subscription/{subscription_id}/$" not in route.path
                            and target not in text
                        ):
                            wrong.append(f"{cell} returned no data for {target}")
                    elif route.dependant.path_params or method != "GET":
                        if status not in (403, 404):
                            wrong.append(f"{cell}, expected 404 (or 403 for a foreign consent)")
                    elif not 200 <= status < 300:
                        wrong.append(f"{cell}, expected an empty search")
                    if "alert_id" in path or ("/alerts/" in path and method == "POST"):
                        alert = w.alerts[target]
                        state = alert_state(w, alert)
                        if state != "triggered":
                            if not (kind_ok and visible):
                                wrong.append(f"{cell} changed a foreign alert to {state}")
                            with psycopg.connect(w.url, autocommit=True) as conn:
                                conn.execute(
                                    "UPDATE alert SET state = 'triggered' WHERE id = %s", (alert,)
                                )
                    if not targeted:
                        break
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM audit_event WHERE id > %s AND action <> 'deliver'", (before,)
            ).fetchone()[0]  # type: ignore[index]
    assert wrong == [], "\n".join(wrong)
    assert rows == requests


@pytest.mark.parametrize(
    "credential", [None, "Bearer garbage", "Bearer vgl_unknown", "expired", "revoked", "Basic eDp5"]
)
def test_without_a_live_token_every_protected_route_answers_401_with_a_challenge(
    database_url: str, credential: str | None
) -> None:
    with ward(database_url) as w:
        for route, need in calls():
            method = next(iter(route.methods))
            path, query, body = request_for(route, need, "pn1", w)
            header = {
                "expired": f"Bearer {w.tokens['expired']}",
                "revoked": f"Bearer {w.tokens['revoked']}",
            }.get(credential or "", credential)
            status, headers, text = fetch(
                w, method, path, query, body, {"Authorization": header} if header else {}
            )
            assert status == 401, (method, route.path, credential)
            assert headers["www-authenticate"].startswith("Bearer")
            assert json.loads(text)["resourceType"] == "OperationOutcome"
            assert not leaked(text, frozenset())
