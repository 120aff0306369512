"""What the API returns, validated as FHIR R4 against the official StructureDefinitions
(and the vital-signs profiles the Observations claim): a sample of every resource type it
serves, fetched over real HTTP from the test ward on a real PostgreSQL.

A resource type the API starts serving gets one line in ``SAMPLES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from api.fhir.device import device_resource_id, gateway_resource_id
from api.fhir.observation import Row, observation_id
from ingest import writer
from tests.api.access.ward import Ward, ward
from tests.builders import T0, batch
from tests.fhir_validator.validator import FhirValidator
from vigil.metrics import CATALOGUE, MDC, Metric
from vigil.wire.quality import Quality

pytestmark = [pytest.mark.slow, pytest.mark.services]

PATIENT = "pn1"
DEVICE = "C1:00:00:00:00:01"  # the device tests.builders.batch gives every reading
READINGS = {m.name: (T0 + 60_000 + i * 1000, (m.low + m.high) / 2) for i, m in enumerate(CATALOGUE)}
"""metric name -> (time ms, value) of one reading of each metric of the catalogue"""
FLAGGED = (T0 + 120_000, 91.0, Quality.EARLY_ESTIMATE | Quality.MOTION)
"""an SpO2 reading with quality flags: status 'preliminary' and the quality extension"""


@dataclass(frozen=True)
class Sample:
    name: str
    principal: str
    path: str
    """May name ``{consent}``, ``{flagged}`` or a metric (``{spo2}``): the ward's ids."""
    status: int = 200
    resource_type: str = "Bundle"
    headers: tuple[tuple[str, str], ...] = ()


OUTCOME = "OperationOutcome"


def _mdc(metric: Metric) -> str:
    return next(f"{c.system}|{c.code}" for c in metric.codings if c.system == MDC)


SAMPLES = (
    *(
        Sample(f"{m.name} read", "dr-north", f"/fhir/Observation/{{{m.name}}}", 200, "Observation")
        for m in CATALOGUE
    ),
    *(
        Sample(
            f"{m.name} searchset", "dr-north", f"/fhir/Observation?patient={PATIENT}&code={_mdc(m)}"
        )
        for m in CATALOGUE
    ),
    Sample("flagged read", "dr-north", "/fhir/Observation/{flagged}", 200, "Observation"),
    Sample("paged searchset", "dr-north", f"/fhir/Observation?patient={PATIENT}&_count=2"),
    Sample("hidden patient searchset", "dr-north", "/fhir/Observation?patient=ps1"),
    Sample("Flag searchset", "dr-north", f"/fhir/Flag?patient={PATIENT}"),
    Sample("Communication searchset", "dr-north", f"/fhir/Communication?patient={PATIENT}"),
    Sample("Consent searchset", PATIENT, f"/fhir/Consent?patient={PATIENT}"),
    Sample("Consent read", PATIENT, "/fhir/Consent/{consent}", 200, "Consent"),
    Sample("AuditEvent searchset", "admin", f"/fhir/AuditEvent?patient=Patient/{PATIENT}"),
    Sample("CapabilityStatement", "dr-north", "/fhir/metadata", 200, "CapabilityStatement"),
    Sample("400", "dr-north", f"/fhir/Observation?patient={PATIENT}&colour=red", 400, OUTCOME),
    Sample("404", "dr-north", "/fhir/Observation/nothing", 404, OUTCOME),
    Sample("404 of no route", "dr-north", "/fhir/Nothing", 404, OUTCOME),
    Sample("Patient read", "dr-north", f"/fhir/Patient/{PATIENT}", 200, "Patient"),
    Sample("Patient searchset", "dr-north", f"/fhir/Patient?_id={PATIENT}"),
    Sample("Patient with devices", "dr-north", "/fhir/Patient?_revinclude=Device:patient"),
    Sample("Device read", "dr-north", "/fhir/Device/{device}", 200, "Device"),
    Sample("Device history", "dr-north", "/fhir/Device/{device}/_history"),
    Sample("gateway read", "dr-north", "/fhir/Device/{gateway}", 200, "Device"),
    Sample(
        "Device searchset", "dr-north", f"/fhir/Device?patient={PATIENT}&_include=Device:patient"
    ),
    Sample(
        "included",
        "dr-north",
        f"/fhir/Observation?patient={PATIENT}&_include=Observation:device&_include=Observation:subject",
    ),
    Sample(
        "lenient",
        "dr-north",
        f"/fhir/Observation?patient={PATIENT}&colour=red&_count=1",
        headers=(("Prefer", "handling=lenient"),),
    ),
    Sample("elements", "dr-north", f"/fhir/Observation?patient={PATIENT}&_elements=code,status"),
    Sample("$lastn", "dr-north", f"/fhir/Observation/$lastn?patient={PATIENT}&max=2"),
    Sample(
        "$stats",
        "dr-north",
        f"/fhir/Observation/$stats?subject={PATIENT}&duration=9000",
        200,
        "Parameters",
    ),
    Sample("Flag read", "dr-north", "/fhir/Flag/{flag}", 200, "Flag"),
    Sample(
        "Subscription read", "dr-north", "/fhir/Subscription/{subscription}", 200, "Subscription"
    ),
    Sample("Subscription searchset", "dr-north", "/fhir/Subscription"),
    Sample("Subscription $status", "dr-north", "/fhir/Subscription/{subscription}/$status"),
    Sample("406", "dr-north", f"/fhir/Patient/{PATIENT}?_format=xml", 406, OUTCOME),
)


def store_readings(conn: psycopg.Connection) -> dict[str, str]:
    """One reading of every metric and a flagged one for the patient; their ids by name."""
    rows = [(PATIENT, name, ms, value) for name, (ms, value) in READINGS.items()]
    ms, value, flags = FLAGGED
    flagged = batch(seq=11, rows=[(PATIENT, "spo2", ms, value)], flags=[int(flags)])
    writer.store(conn, [batch(seq=10, rows=rows), flagged])
    ids = {"flagged": _id("spo2", ms)}
    ids.update((name, _id(name, ms)) for name, (ms, _) in READINGS.items())
    return ids


def _id(metric: str, ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    number = next(m.id for m in CATALOGUE if m.name == metric)
    return observation_id(Row(PATIENT, number, moment, 0.0, 0, DEVICE, moment))


def fetch(w: Ward, sample: Sample, ids: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """The sample's body, and what is wrong with the answer besides its FHIR."""
    headers = w.auth(sample.principal) | dict(sample.headers)
    response = httpx.get(w.base + sample.path.format(**ids), headers=headers)
    body = response.json()
    wrong = []
    if response.status_code != sample.status:
        wrong.append(f"HTTP {response.status_code}, expected {sample.status}")
    if body.get("resourceType") != sample.resource_type:
        wrong.append(f"a {body.get('resourceType')}, expected a {sample.resource_type}")
    if sample.resource_type == "Bundle" and "hidden" not in sample.name and not body.get("entry"):
        wrong.append("an empty Bundle: nothing in it was validated")
    return body, wrong


def test_every_sample_the_api_returns_is_valid_fhir_r4(
    database_url: str, fhir_validator: FhirValidator
) -> None:
    found: dict[str, list[str]] = {}
    with ward(database_url) as w:
        with psycopg.connect(database_url) as conn:
            ids = store_readings(conn)
        ids["consent"] = str(w.consents[PATIENT])
        ids["flag"] = str(w.alerts[PATIENT])
        ids["device"] = device_resource_id(DEVICE)
        ids["gateway"] = gateway_resource_id("gw-1")
        ids["subscription"] = w.subscriptions["pn2"]  # dr-north's
        for sample in SAMPLES:
            body, wrong = fetch(w, sample, ids)
            problems = wrong + fhir_validator.errors(body)
            if problems:
                found[sample.name] = problems
    assert not found, "\n".join(
        f"{name}:\n  " + "\n  ".join(problems) for name, problems in found.items()
    )


def test_every_resource_type_served_has_a_sample(database_url: str) -> None:
    """A resource served is a resource sampled: the CapabilityStatement says what is."""
    with ward(database_url) as w:
        statement = httpx.get(f"{w.base}/fhir/metadata").json()
    served = {r["type"] for rest in statement["rest"] for r in rest["resource"]}
    sampled = {s.path.split("/")[2].split("?")[0] for s in SAMPLES}
    assert served <= sampled, f"served without a sample here: {sorted(served - sampled)}"


def test_every_metric_has_a_sample_read_and_searched() -> None:
    paths = " ".join(s.path for s in SAMPLES)
    assert all(f"{{{m.name}}}" in paths and _mdc(m) in paths for m in CATALOGUE)
