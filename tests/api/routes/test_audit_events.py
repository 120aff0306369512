"""The audit trail as FHIR AuditEvents for administrators: valid R4, searchable by patient,
agent and date, paged newest first without losing or repeating a row."""

from __future__ import annotations

import base64

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from tests.api.access.ward import ward

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_administrators_search_the_trail_by_patient_agent_and_date(database_url: str) -> None:
    with ward(database_url) as w:
        for patient in ("pn1", "pn2", "pn1"):
            url = f"{w.base}/fhir/Observation?patient={patient}&_count=5"
            assert httpx.get(url, headers=w.auth("dr-north")).status_code == 200
        assert httpx.get(f"{w.base}/fhir/Observation?patient=pn1").status_code == 401
        admin = w.auth("admin")
        found = httpx.get(
            f"{w.base}/fhir/AuditEvent?patient=Patient/pn1&agent=dr-north", headers=admin
        ).json()
        events = [e["resource"] for e in found["entry"]]
        assert len(events) == 2
        for event in events:
            AuditEvent.model_validate(event)
            assert event["agent"][0]["who"]["display"] == "dr-north"
            assert event["outcome"] == "0" and event["subtype"][0]["code"] == "search-type"
            assert {"reference": "Patient/pn1"} in [e["what"] for e in event["entity"]]
            query = base64.b64decode(event["entity"][-1]["query"]).decode()
            assert query == "patient=pn1&_count=5"
        denied = httpx.get(f"{w.base}/fhir/AuditEvent?agent=anonymous", headers=admin).json()
        assert [e["resource"]["outcome"] for e in denied["entry"]] == ["4"]
        future = httpx.get(f"{w.base}/fhir/AuditEvent?date=gt2999-01-01", headers=admin).json()
        assert future["entry"] == []
        pages, url = [], f"{w.base}/fhir/AuditEvent?_count=2"
        while url:
            page = httpx.get(url, headers=admin).json()
            pages += [int(e["resource"]["id"]) for e in page["entry"]]
            url = next((x["url"] for x in page["link"] if x["relation"] == "next"), None)
        assert pages == sorted(set(pages), reverse=True) and len(pages) >= 6
        for bad in ("_count=0", "date=2026-02-30", "patient=Patient/%2F..", "flavour=x"):
            refused = httpx.get(f"{w.base}/fhir/AuditEvent?{bad}", headers=admin)
            assert refused.status_code == 400, bad
            assert refused.json()["resourceType"] == "OperationOutcome"
