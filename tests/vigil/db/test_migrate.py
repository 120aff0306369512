"""A PostgreSQL with TimescaleDB installed but not preloaded: native partitions, and a
warning that says how to have TimescaleDB, never a closed connection."""

import logging

import psycopg
import pytest

from vigil.db.migrate import migrate
from vigil.embedded.postgres import has_extension

pytestmark = pytest.mark.services


def test_installed_but_not_preloaded_keeps_partitions_and_says_how(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if not has_extension("timescaledb"):
        pytest.skip("TimescaleDB is not installed in the embedded PostgreSQL (make timescaledb)")
    with psycopg.connect(empty_database_url) as conn, caplog.at_level(logging.WARNING):
        applied = migrate(conn)
        assert "003_partitions_and_rollup.sql" in applied
        (storage,) = conn.execute("SELECT vigil_storage()").fetchone()  # type: ignore[misc]
        assert storage == "partitions"
    assert "shared_preload_libraries = 'timescaledb'" in caplog.text
