"""Fixtures of the alerts tests: a database connection, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.alerts.receiver import SECRET, Receiver


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()
