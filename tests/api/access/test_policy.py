"""Membership has its time: a locum whose period ended, on the roster or by a grant, sees
none of the team's patients any more (and is no longer paged for them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.outbox import Channels
from alerts.store import take_event
from alerts.teams import add_member, assign
from api.access.policy import Need, decide
from api.access.tokens import authenticate, create_client
from tests.alerts.test_store import event
from tests.api.access.ward import populate

pytestmark = pytest.mark.services
SEARCH = Need("Observation", "search")


def test_a_membership_that_ended_reaches_nobody(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        populate(conn)
        past = datetime.now(UTC) - timedelta(days=1)
        add_member(conn, "t-south", "dr-locum", 1, "mailto:locum@example.org", until=past)
        add_member(conn, "t-south", "dr-on-call", 1, "mailto:on-call@example.org")
        roster = create_client(conn, "dr-locum")
        granted = create_client(conn, "dr-visitor", teams=["t-south"])
        conn.execute("UPDATE access_grant SET period_end = %s WHERE client = 'dr-visitor'", (past,))
        for token in (roster, granted):
            who = authenticate(conn, token)
            assert who is not None
            assert decide(conn, who, SEARCH).patients == frozenset()
        current = create_client(conn, "dr-current", teams=["t-south"])
        who = authenticate(conn, current)
        assert who is not None and decide(conn, who, SEARCH).patients == {"ps1", "ps2"}
        # and the roster that pages for a new alert leaves the locum out
        assign(conn, "ps9", "t-south")
        with conn.transaction():
            alert = take_event(conn, event("persisted", patient="ps9"), Channels())
        paged = {
            t for (t,) in conn.execute("SELECT target FROM notification WHERE alert = %s", (alert,))
        }
    assert "mailto:locum@example.org" not in paged and "mailto:on-call@example.org" in paged
