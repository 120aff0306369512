"""The CapabilityStatement: public, valid, and made from the routes that are registered, so
it states every resource served and only those."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from api.app import create_app
from api.fhir.capability import Interaction, SearchParam, declarations
from vigil.settings import Settings

pytestmark = pytest.mark.services


@pytest.fixture
def app(database_url: str) -> FastAPI:
    return create_app(Settings(database_url=database_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def fhir_operations(app: FastAPI) -> dict[str, dict[str, object]]:
    """Every FHIR operation the app serves (its OpenAPI document lists every route)."""
    return {
        f"{method} {path}": operation
        for path, methods in app.openapi()["paths"].items()
        if path.startswith("/fhir/")
        for method, operation in methods.items()
    }


def served_types(app: FastAPI) -> set[str]:
    return {m[1] for p in fhir_operations(app) if (m := re.search(r"/fhir/([A-Z]\w+)", p))}


def resources(statement: dict[str, object]) -> dict[str, dict[str, object]]:
    (rest,) = statement["rest"]  # type: ignore[misc]
    return {r["type"]: r for r in rest["resource"]}


def test_the_statement_is_public_and_valid(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"


def test_every_resource_served_is_stated_with_its_search_parameters(
    app: FastAPI, client: TestClient
) -> None:
    stated = resources(client.get("/fhir/metadata").json())
    assert set(stated) == served_types(app)
    assert {"Observation", "Patient", "Device", "Flag", "Communication", "Consent"} <= set(stated)
    undeclared = [
        name for name, op in fhir_operations(app).items() if "x-fhir-interaction" not in op
    ]
    assert undeclared == ["get /fhir/metadata"]
    assert len(declarations(app.openapi())) == len(fhir_operations(app)) - 1
    observation = stated["Observation"]
    assert [i["code"] for i in observation["interaction"]] == ["read", "search-type"]  # type: ignore[index]
    params = {p["name"]: p for p in observation["searchParam"]}  # type: ignore[attr-defined]
    assert {"subject", "patient", "code", "category", "date", "device", "status"} <= set(params)
    assert {"value-quantity", "_id", "_lastUpdated"} <= set(params)
    assert params["code"]["definition"] == "http://hl7.org/fhir/SearchParameter/clinical-code"
    assert [o["name"] for o in observation["operation"]] == ["lastn", "stats"]  # type: ignore[index]
    device = [i["code"] for i in stated["Device"]["interaction"]]  # type: ignore[index]
    assert device == ["read", "vread", "history-instance", "search-type"]
    flag = {p["name"] for p in stated["Flag"]["searchParam"]}  # type: ignore[index]
    assert flag == {"patient", "subject", "date", "status"}


def test_observations_claim_the_profiles_some_of_them_carry_not_vital_signs_for_all(
    client: TestClient,
) -> None:
    observation = resources(client.get("/fhir/metadata").json())["Observation"]
    assert "profile" not in observation  # RR intervals and battery levels are no vital signs
    assert set(observation["supportedProfile"]) == {  # type: ignore[arg-type]
        "http://hl7.org/fhir/StructureDefinition/heartrate",
        "http://hl7.org/fhir/StructureDefinition/oxygensat",
    }


def test_a_route_added_with_its_declaration_is_stated(app: FastAPI) -> None:
    practitioner = Interaction("Practitioner", "read", (SearchParam("_id", "token", "the id"),))

    @app.get("/fhir/Practitioner/{practitioner_id}", openapi_extra=practitioner.declared())
    def read_practitioner(practitioner_id: str) -> dict[str, str]:
        return {"resourceType": "Practitioner", "id": practitioner_id}

    with TestClient(app) as client:
        stated = resources(client.get("/fhir/metadata").json())
    assert stated["Practitioner"]["interaction"] == [{"code": "read"}]
