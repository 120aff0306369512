"""Shared fixtures: a real PostgreSQL and a real MQTT broker.

``VIGIL_TEST_DATABASE_URL`` / ``VIGIL_TEST_MQTT_URL`` point the tests at existing servers
(for example a TimescaleDB); otherwise a private embedded PostgreSQL and a private broker
(Mosquitto on a free port when installed, else amqtt) are started for the session. Each
test that asks for ``database_url`` gets a fresh, migrated database of its own.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vigil.db.migrate import migrate
from vigil.embedded.broker import start_broker
from vigil.embedded.postgres import has_extension, preloading_timescaledb, start_postgres
from vigil.settings import Settings

_counter = itertools.count()
pytest_plugins = ["tests.fhir_validator.fixture"]  # fhir_validator: FHIR R4 on official definitions


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("VIGIL_TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = start_postgres(None)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def timescaledb_url() -> Iterator[str]:
    """A server where ``CREATE EXTENSION timescaledb`` works: ``VIGIL_TEST_TIMESCALEDB_URL``,
    else a private embedded server preloading the extension when it is installed in the
    wheel (`make test` installs it from ../shared/timescaledb when that folder is there)."""
    url = os.environ.get("VIGIL_TEST_TIMESCALEDB_URL")
    if url:
        yield url
        return
    if not has_extension("timescaledb"):
        pytest.skip(
            "TimescaleDB is not installed in the embedded PostgreSQL (../shared/timescaledb/"
            "install.sh does it; or set VIGIL_TEST_TIMESCALEDB_URL)"
        )
    # No background jobs: a policy run and a test's DROP SCHEMA deadlock each other, and the
    # tests run what they check (compression, refreshes) themselves.
    server = start_postgres(None, preloading_timescaledb(background_jobs=False))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(url, kind): kind is 'external', 'mosquitto' or 'amqtt'."""
    url = os.environ.get("VIGIL_TEST_MQTT_URL")
    if url:
        yield url, "external"
        return
    private = start_broker(tmp_path_factory.mktemp("broker"))
    try:
        yield private.url, private.kind
    finally:
        private.stop()


@pytest.fixture(scope="session")
def mqtt_url(broker: tuple[str, str]) -> str:
    return broker[0]


@pytest.fixture
def durable_broker(broker: tuple[str, str]) -> None:
    """For tests of redelivery after a crash, which only a broker that keeps a
    disconnected client's session (its unacknowledged and queued QoS 1 messages) can pass.
    amqtt, the fallback when Mosquitto is not installed, keeps neither (checked with amqtt
    0.12.1): on such a machine the test cannot pass, whatever Vigil does."""
    if broker[1] == "amqtt":
        pytest.skip(
            "amqtt does not keep QoS 1 messages for a disconnected session; "
            "install mosquitto (`.ci/run` does) to run this test"
        )


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database, dropped after the test."""
    name = f"vigil_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield with_database(postgres_server_url, name)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A fresh database with the schema applied, dropped after the test."""
    with psycopg.connect(empty_database_url) as conn:
        migrate(conn)
    return empty_database_url


def with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, mqtt_url: str, tmp_path: Path) -> Settings:
    n = next(_counter)
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        gateway_id=f"gw-test-{os.getpid()}-{n}",
        gateway_data_dir=tmp_path / "gateway",
        ingest_client_id=f"ingest-test-{os.getpid()}-{n}",
        ingest_share_group=f"ingest-test-{os.getpid()}-{n}",
        publish_interval_s=0.5,
    )


@pytest.fixture(scope="session")
def amqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded MQTT 3.1.1 broker the demo falls back to without Mosquitto."""
    broker = start_broker(tmp_path_factory.mktemp("amqtt"), prefer="amqtt")
    try:
        yield broker.url
    finally:
        broker.stop()


SERVICE_FIXTURES = {"postgres_server_url", "broker", "amqtt_url"}
"""Fixtures that start (or reach) a real PostgreSQL or MQTT broker."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that needs a real database or broker says so with the ``services`` marker,
    so that ``-m "not services"`` runs on a machine with neither."""
    unmarked = [
        item.nodeid
        for item in items
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("services") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use a real database or broker but lack the services marker "
            "(pytestmark = pytest.mark.services):\n  " + "\n  ".join(unmarked)
        )
