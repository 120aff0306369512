"""`vigil migrate` against a database that is not there."""

from __future__ import annotations

from tests.cli.test_main import vigil
from vigil.embedded.processes import free_port


def test_unreachable_database_is_one_line() -> None:
    result = vigil("migrate", env={"VIGIL_DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/x"})
    assert result.returncode == 2
    assert "cannot connect to the database" in result.stderr
    assert "Traceback" not in result.stderr
