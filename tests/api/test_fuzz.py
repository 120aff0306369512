"""Hostile input, tried on every route the OpenAPI document lists: 0 answers of 500 or more,
and every refusal a FHIR OperationOutcome.

Two parts, against the populated ward on a real uvicorn:

- a bounded schemathesis run: every operation of the app's own ``/openapi.json`` (path
  and query parameters, bodies), in positive and negative generation modes, as an
  administrator, a clinician, a patient and no one; derandomized, so CI sees the same
  requests every run;
- hand-made hostile values (NUL bytes, superscript digits, impossible and out-of-range
  dates, overlong ids, huge numbers, broken percent-encodings), each sent in every query
  and path parameter of every operation, byte for byte as written here.

A route added later is fuzzed without editing this file: both parts read the document.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode

from api.fhir.device import device_resource_id
from tests.api.access.ward import DEVICES, Ward, ward

pytestmark = [pytest.mark.slow, pytest.mark.services]

PRINCIPALS = (None, "admin", "dr-north", "pn1")
"""Who the fuzzer acts as (None: no token at all)."""
EXAMPLES = 6
"""Generated requests per operation, principal and generation mode."""
STREAM_TIMEOUT_S = 0.2
"""How long a generated request waits for its answer: schemathesis reads an event stream
(which never ends) this long in all, then stops. A request slower than this is sent again
with REQUEST_TIMEOUT_S, which the hand-made requests have (they read a stream's headers
only)."""
REQUEST_TIMEOUT_S = 30.0

HOSTILE = (
    "",
    "\x00",
    "Patient/pn1\x00",
    "%00",
    "²",
    "١٢",  # Arabic-Indic digits: isdigit() is true, int() takes them
    "-1",
    "0",
    "1e3",
    " 1",
    "9" * 30,
    str(2**63),
    str(2**64),
    "ge0000",
    "ge0000-01-01",
    "le9999-12",
    "le9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-02-30",
    "2026-13-01",
    "gt2026-02-29T25:00:00Z",
    "eq2026-02-28T14:00:00",
    "2026-02-28T14:00:00.1234567890Z",
    "ne2026",
    "ap2026",
    "ge",
    "Patient/" + "a" * 65,
    "Patient/",
    "Patient/../pn1",
    "Patient/pn1,Patient/pn2",
    "x" * 5000,
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "|",
    ",,,",
    "http://loinc.org|",
    "\U0001f600",
    "\u202e",
    "\r\nSet-Cookie: a=b",
)
"""Values each query and path parameter is sent (percent-encoded as UTF-8)."""
RAW = (
    "%ZZ",
    "%",
    "%C0%AF",
    "%FF%FE",
    "%ED%A0%80",
    "%25%30%30",
    "Patient%2Fpn1",
    "Patient%2F..%2F..%2Fpn1",
    "%E2%81%B0",
    "%2500",
)
"""Values sent as written, unencoded: broken and odd percent-encodings."""


@dataclass(frozen=True, slots=True)
class Answer:
    route: str
    """The operation's method and path template (of the OpenAPI document)."""
    request: str
    status: int
    body: bytes
    content_type: str


def test_fuzz_every_route(database_url: str) -> None:
    with ward(database_url) as w:
        schema = schemathesis.openapi.from_url(f"{w.base}/openapi.json")
        paths = schema.raw_schema["paths"]
        operations = [schema[path][method] for path, methods in paths.items() for method in methods]
        assert len(operations) >= 15, [op.label for op in operations]
        # hand-made first: the generated requests may resolve the alerts they change
        answers = [*_hand_made(w, schema.raw_schema), *_generated(w, operations)]
    unreached = {op.label for op in operations} - {a.route for a in answers if a.status < 400}
    assert not unreached, f"the fuzz never got past the checks of {sorted(unreached)}"
    wrong = [a for a in answers if not _acceptable(a)]
    summary = "\n".join(
        f"{a.status} {a.request}: {a.body[:300]!r}" for a in sorted(wrong, key=str)[:40]
    )
    assert not wrong, f"{len(wrong)} of {len(answers)} answers are wrong:\n{summary}"


def _acceptable(answer: Answer) -> bool:
    if answer.status >= 500:
        return False
    if answer.status < 400:
        return True
    try:
        document = json.loads(answer.body)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and document.get("resourceType") == "OperationOutcome"
        and answer.content_type.startswith("application/fhir+json")
    )


# -- schemathesis -----------------------------------------------------------------------


def _generated(w: Ward, operations: list[APIOperation]) -> list[Answer]:
    answers: list[Answer] = []
    for operation in operations:
        before = len(answers)
        fixed: list[dict[str, Any]] = [{}]
        if "alert_id" in operation.path_parameters:
            fixed.append({"alert_id": w.alerts["pn1"]})
        if "resource_id" in operation.path_parameters:
            fixed.append({"resource_id": w.observations["pn1"]})
        if "subscription_id" in operation.path_parameters:
            deleted = "ps2" if operation.method.upper() == "DELETE" else "pn1"  # pn1's stays
            fixed.append({"subscription_id": w.subscriptions[deleted]})
        for who in PRINCIPALS:
            headers = w.auth(who) if who else {}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for path_parameters in fixed:
                    strategy = operation.as_strategy(
                        generation_mode=mode,
                        headers=headers,
                        path_parameters=path_parameters or None,
                    )
                    _run(strategy, w.base, answers)
        assert len(answers) > before, f"nothing generated for {operation.label}"
    return answers


def _run(strategy: Any, base: str, answers: list[Answer]) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def send(case: Case) -> None:
        try:
            response = case.call(base_url=base, timeout=STREAM_TIMEOUT_S)
        except OSError:  # requests' timeout: a slow answer, not a stream; once more, patiently
            response = case.call(base_url=base, timeout=REQUEST_TIMEOUT_S)
        content_type = response.headers.get("content-type", [""])[0]
        route = f"{case.method} {case.path}"
        answer = Answer(route, "", response.status_code, response.content, content_type)
        if not _acceptable(answer):  # the command is costly to make: only for what is shown
            answer = replace(answer, request=case.as_curl_command())
        answers.append(answer)

    with contextlib.suppress(Unsatisfiable):  # negative mode with nothing left to break
        send()


# -- hand-made --------------------------------------------------------------------------


def _hand_made(w: Ward, document: dict[str, Any]) -> Iterator[Answer]:
    client = _Client(w.base)
    values = [quote(v, safe="") for v in HOSTILE] + list(RAW)
    try:
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                params = operation.get("parameters", [])
                query = [p["name"] for p in params if p["in"] == "query"]
                in_path = [p["name"] for p in params if p["in"] == "path"]
                body = b"{}" if "requestBody" in operation else None
                route = f"{method.upper()} {path}"
                for who in ("admin", "dr-north"):
                    headers = w.auth(who)
                    if method != "delete":  # the generated ones delete ps2's, not pn1's
                        yield client.send(route, _fill(path, w), headers, body)  # a plain one
                    for name in query:
                        base = _valid_query(query, name)
                        for value in values:
                            target = _fill(path, w) + "?" + "&".join([*base, f"{name}={value}"])
                            yield client.send(route, target, headers, body)
                    for name in in_path:
                        for value in values:
                            target = _fill(path, w, {name: value})
                            yield client.send(route, target, headers, body)
        alert = w.alerts["pn2"]  # left open: a change is stored, so its note reaches SQL
        for body in _hostile_bodies():
            for action in ("snooze", "acknowledge"):
                target = f"/alerts/{alert}/{action}"
                yield client.send(
                    "POST /alerts/{alert_id}/{action}", target, w.auth("dr-north"), body
                )
            yield client.send("POST /fhir/Consent", "/fhir/Consent", w.auth("pn1"), body)
        for method, target, headers, body in _odd_requests(w):
            yield client.send(f"{method} {target.partition('?')[0]}", target, headers, body)
    finally:
        client.close()


def _odd_requests(w: Ward) -> Iterator[tuple[str, str, dict[str, str], bytes | None]]:
    """What no parameter list gives: odd tokens, routes and methods, headers, sizes."""
    token = w.tokens["dr-north"]
    for authorization in (
        "Bearer " + "x" * 8000,
        "Bearer ²",
        "Bearer",
        "Bearer  " + token + " ",
        "bearer " + token.upper(),
        "Basic ZHItbm9ydGg6eA==",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "Bearer a.b.c",
    ):
        yield "GET", "/fhir/Observation?subject=Patient/pn1", {"Authorization": authorization}, None
    admin = w.auth("admin")
    for resume in ("9" * 30, "-1", "²", "1e3", str(2**63)):
        yield "GET", "/alerts/stream", admin | {"Last-Event-ID": resume}, None
    for method, target in (
        ("GET", "/nope"),
        ("DELETE", "/fhir/Observation"),
        ("PUT", "/alerts/1"),
        ("PATCH", "/fhir/Consent"),
        ("GET", "/fhir/Observation/"),
        ("GET", "/fhir//Observation"),
        ("GET", "/fhir/Observation?subject=Patient/pn1&subject=Patient/pn2"),
        ("GET", "/fhir/Observation?subject=Patient/pn1&" + "&".join(["date=ge2026"] * 500)),
        ("GET", "/fhir/Observation?subject=Patient/pn1&_count=1000&_offset=10000000"),
        ("GET", "/fhir/Observation?subject=Patient/pn1&code=" + ",".join(["x"] * 2000)),
        ("GET", "/fhir/AuditEvent?_before=1&_count=1000&agent=" + "a" * 200),
        ("GET", "/alerts?limit=%2B5"),
        ("GET", "/alerts/%2B1"),
        ("GET", "/alerts/0x10"),
        ("GET", "/alerts/1_000"),
    ):
        yield method, target, admin, None
    consent = json.dumps(_consent("Patient/pn1", "CareTeam/t-north")).encode()
    pn1 = w.auth("pn1")
    yield "POST", "/fhir/Consent", pn1 | {"Content-Type": "text/plain"}, consent
    yield "POST", "/fhir/Consent", pn1 | {"Content-Type": "application/fhir+json"}, consent
    yield "POST", "/fhir/Consent", pn1, b" " * 70_000
    yield "POST", "/fhir/Consent", pn1, consent[:-1]


def _valid_query(names: list[str], fuzzed: str) -> list[str]:
    """A patient for the search, so the parameter fuzzed is read past that check."""
    if fuzzed in ("patient", "subject") or "patient" not in names:
        return []
    return ["patient=Patient/pn1"]


def _fill(path: str, w: Ward, values: dict[str, str] | None = None) -> str:
    """The path with the ward's own ids (pn1's), unless ``values`` say otherwise."""
    kind = [*path.split("/"), "", ""][2]
    resource_ids = {
        "Patient": "pn1",
        "Device": device_resource_id(DEVICES["pn1"]),
        "Flag": str(w.alerts["pn1"]),
    }
    known = {
        "alert_id": str(w.alerts["pn1"]),
        "resource_id": quote(resource_ids.get(kind, w.observations["pn1"]), safe=""),
        "version_id": "1",
        "subscription_id": w.subscriptions["pn1"],
        "action": "snooze",
    } | (values or {})
    for name, value in known.items():
        path = path.replace("{" + name + "}", value)
    return path


def _hostile_bodies() -> Iterator[bytes]:
    yield json.dumps(_consent("Patient/pn1", "CareTeam/t-north")).encode()  # one that is fine
    times = (
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-02-30T00:00:00Z",
        "2026-02-28T14:00:00",
        "\u0000",
        "²",
        "9" * 40,
    )
    for moment in times:
        yield json.dumps({"until": moment, "note": "x"}).encode()
        yield json.dumps(_consent("Patient/pn1", "CareTeam/t-north", moment, moment)).encode()
    yield json.dumps(_consent("Patient/pn1\u0000", "CareTeam/t-north\u0000")).encode()
    yield json.dumps(_consent("Patient/pn1", "CareTeam/t-north\u0000")).encode()
    yield json.dumps(_consent("Patient/pn1", "Device/ehr-link\u0000")).encode()
    yield json.dumps(_consent("Patient/" + "a" * 90, "Device/" + "b" * 90)).encode()
    yield json.dumps(_consent("Patient/pn1", "CareTeam/\ud800")).encode()
    yield json.dumps({"note": "\u0000" * 100}).encode()
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    yield json.dumps({"note": "a\u0000b", "until": soon}).encode()
    yield b'{"note": "x", "until": 1e400}'
    yield b"[" * 5000 + b"]" * 5000
    yield b'{"note": "\xff\xfe"}'
    yield b"\x00"
    yield b""


def _consent(
    patient: str, actor: str, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    period = {"period": {"start": start, "end": end}} if start or end else {}
    return {
        "resourceType": "Consent",
        "status": "active",
        "patient": {"reference": patient},
        "provision": {"type": "permit", "actor": [{"reference": {"reference": actor}}], **period},
    }


class _Client:
    """Requests sent byte for byte as written, on one kept-alive connection (a new one
    after a stream, or when the server closed it)."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        assert parts.hostname and parts.port
        self.host, self.port = parts.hostname, parts.port
        self.conn: http.client.HTTPConnection | None = None

    def send(
        self, route: str, target: str, headers: dict[str, str], body: bytes | None = None
    ) -> Answer:
        method = route.partition(" ")[0]
        sent = ({"Content-Type": "application/json"} if body is not None else {}) | headers
        try:
            response = self._exchange(method, target, sent, body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()  # the server let the idle connection go: once more, on a new one
            response = self._exchange(method, target, sent, body)
        content_type = response.getheader("content-type", "")
        if content_type.startswith("text/event-stream"):
            content = b""  # a stream never ends: its status and headers are the answer
            self.close()
        else:
            content = response.read()
            if response.will_close:
                self.close()
        request = f"{method} {target} {body!r:.300}"
        return Answer(route, request, response.status, content, content_type)

    def _exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> http.client.HTTPResponse:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        self.conn.request(method, target, body=body, headers=headers)
        return self.conn.getresponse()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
