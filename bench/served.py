"""What the benchmarks of the API share: a PostgreSQL of their own for the run, a real
`vigil api` process on it, and the percentiles of requests made one at a time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vigil.embedded.postgres import start_postgres
from vigil.embedded.processes import free_port, spawn, stop, vigil_command, wait_for_port

WARM_UP = 20


@contextmanager
def embedded_database(folder: Path) -> Iterator[str]:
    postgres = start_postgres(folder / "pg")
    try:
        yield postgres.url
    finally:
        postgres.stop()


@contextmanager
def api_process(database_url: str, folder: Path) -> Iterator[int]:
    """A `vigil api` on a free port (the port is yielded once it listens)."""
    port = free_port()
    api = spawn(
        vigil_command("api", "--port", str(port)),
        {"VIGIL_DATABASE_URL": database_url, "VIGIL_LOG_LEVEL": "WARNING"},
        folder / "api.log",
    )
    try:
        if not wait_for_port(port, 30, api):
            raise RuntimeError(f"the API did not start; see {folder / 'api.log'}")
        yield port
    finally:
        stop(api)


def timed(call: Callable[[], object], requests: int) -> dict[str, float]:
    """p50 and p99 in milliseconds of ``requests`` calls, after a warm-up."""
    took = []
    for i in range(WARM_UP + requests):
        started = time.perf_counter()
        call()
        if i >= WARM_UP:
            took.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(took, n=100)
    return {"p50": round(statistics.median(took), 2), "p99": round(cuts[98], 2)}
