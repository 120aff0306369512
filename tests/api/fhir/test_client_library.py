"""The API as a client developer meets it through a FHIR client library (SMART's
``fhirclient``, R4 models that refuse what R4 does not define): search, follow ``next``
links to the end, resolve the references each Observation carries."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest
from fhirclient.models.device import Device
from fhirclient.models.flag import Flag
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRServer

from ingest import writer
from tests.api.access.ward import DEVICES, ward
from tests.builders import T0, batch

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_a_client_library_walks_every_page_and_resolves_every_reference(database_url: str) -> None:
    with ward(database_url) as w:
        rows = [
            ("pn1", m, T0 + 10_000 + s * 1000, 90.0 + s % 9)
            for s in range(40)
            for m in ("spo2", "pulse_rate")
        ]
        with psycopg.connect(database_url) as conn:
            made = replace(batch(seq=5, rows=rows), device=tuple(DEVICES["pn1"] for _ in rows))
            writer.store(conn, [made])
            conn.commit()
            expected = conn.execute(
                "SELECT count(*) FROM observation WHERE patient = 'pn1'"
            ).fetchone()
        server = FHIRServer(None, base_uri=f"{w.base}/fhir/")
        server.session.headers["Authorization"] = w.auth("dr-north")["Authorization"]
        search = Observation.where(struct={"subject": "Patient/pn1", "_count": "7"})
        found = list(search.perform_resources_iter(server))
        assert expected is not None and len(found) == expected[0]
        assert len({o.id for o in found}) == len(found)
        for observation in found[:3] + found[-3:]:
            assert observation.subject.resolved(Patient).id == "pn1"  # read from the server
            device = observation.device.resolved(Device)
            assert device.patient.reference == "Patient/pn1"
        flags = list(Flag.where(struct={"patient": "pn1"}).perform_resources_iter(server))
        assert [f.subject.reference for f in flags] == ["Patient/pn1"]
        assert Flag.read(flags[0].id, server).id == flags[0].id
