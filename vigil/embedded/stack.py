"""A private database and broker in a temporary folder, for the benchmarks: nothing of a
run is left behind, and nothing of another run is measured."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from vigil.embedded.broker import start_broker
from vigil.embedded.postgres import start_postgres


@contextmanager
def private_stack(
    prefix: str, postgres_settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Path, str, str]]:
    """(folder, database URL, broker URL); both stopped and the folder removed after.
    ``postgres_settings``: what the server needs at start (e.g. a preloaded TimescaleDB)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        folder = Path(temp)
        postgres = start_postgres(folder / "pg", postgres_settings)
        broker = start_broker(folder / "broker")
        try:
            yield folder, postgres.url, broker.url
        finally:
            broker.stop()
            postgres.stop()
