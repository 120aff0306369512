"""Subscription events are kept as long as the readings they carry, no longer, and their
numbers go on after a prune."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from api.access.principal import Kind, Principal, principal_scopes
from api.subscriptions import store
from api.subscriptions.topics import NEW_ALERT

pytestmark = pytest.mark.services


def test_events_past_the_retention_period_are_pruned(database_url: str) -> None:
    owner = Principal("dr-x", Kind.CLINICIAN, principal_scopes(Kind.CLINICIAN, None))
    with psycopg.connect(database_url, autocommit=True) as conn:
        sub = store.create(
            conn, owner, topic=NEW_ALERT.url, patient="p1", channel="websocket", endpoint=None,
            headers=[], content="id-only", reason="test", timeout_s=10, max_count=20, ends=None,
        )  # fmt: skip
        now = datetime.now(UTC)
        old, recent = now - timedelta(days=31), now - timedelta(days=29)
        events = [(old, "p1", "Flag/1", {}, True), (recent, "p1", "Flag/2", {}, True)]
        assert store.record_events(conn, sub, events) == 2
        assert store.prune_events(conn, 0) == 0  # 0: kept for ever
        assert store.prune_events(conn, 30) == 1
        assert [e.number for e in store.events(conn, sub.id, 0, 10, 10)] == [2]
        assert store.prune_events(conn, 1) == 0  # the newest stays: the count is read off it
        again = store.read(conn, sub.id)
        assert again is not None and again.events == 2
