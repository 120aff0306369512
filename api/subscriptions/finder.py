"""Finding events: alert changes and stored observations become numbered events of every
live subscription whose topic, filter and owner's reach they match.

Each source is read by a window of time written (``alert_change.at``, ``observation.received``:
both the start of the transaction that wrote the row) from the cursor up to a bound that
no transaction still open can write below: the start of the oldest open transaction that
has written, or began in the last minute, on this database (and a second ago at the
latest, for transactions of roles whose start this role cannot see). So a row committed
late, by a transaction that began before others already read, is not passed over; a
reading is never missed, and never taken twice, since the events and the moved cursor are
committed together. The window is read in a snapshot taken after the bound was: whatever
began below the bound has committed by then.

Observations are read only for patients some live subscription names, and through a BRIN
index on ``received``: the blocks written since the cursor, not the table. A window spans
at most :data:`MAX_WINDOW_S` of writes, so a long outage is caught up in steps.

Several API processes may run the finder; an advisory lock lets one at a time read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg

from alerts.queries import read_alert
from api.access.policy import Compartment
from api.fhir.flag import render_flag
from api.fhir.observation import ROW_COLUMNS, Row, observation_id, render_observation
from api.fhir.search.paging import OLDEST_OPEN_TRANSACTION
from api.subscriptions import store
from api.subscriptions.owners import may_see, reach
from api.subscriptions.resources import Subscription
from api.subscriptions.topics import NEW_OBSERVATION, TOPICS

log = logging.getLogger(__name__)

LOCK_KEY = 0x56534253  # 'VSBS'
MAX_WINDOW_S = 60.0
LAGGING_S = 60.0
"""A bound this far behind the clock is logged: an open transaction is holding it back."""
_BOUND = (
    "SELECT clock_timestamp(),"
    f" least(clock_timestamp() - interval '1 second', {OLDEST_OPEN_TRANSACTION})"
)
_ALERT_TOPICS = [t for t in TOPICS.values() if t.source == "alert_change"]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A source row that may become an event of a subscription."""

    at: datetime
    patient: str
    focus: str
    new: bool
    render: Callable[[], dict[str, Any]]
    """Its resource, rendered only for a subscription that takes it."""


class Finder:
    def __init__(self, conn: psycopg.Connection) -> None:
        """``conn``: a connection of the finder's own, in autocommit mode."""
        self.conn = conn
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

    def run_once(self) -> int:
        """Record the events written since the last run; how many."""
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if not row or not row[0]:
            return 0  # another process is finding
        try:
            clock, bound = self._bound()
            if clock - bound > timedelta(seconds=LAGGING_S):
                log.warning("subscription events wait for a transaction open since %s", bound)
            with self.conn.transaction():
                return self._alert_changes(bound) + self._observations(bound)
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def _bound(self) -> tuple[datetime, datetime]:
        row = self.conn.execute(_BOUND).fetchone()
        assert row is not None
        return row[0], row[1]

    def _alert_changes(self, bound: datetime) -> int:
        start = store.cursor(self.conn, "alert_change")
        end = min(bound, start + timedelta(seconds=MAX_WINDOW_S))
        if end <= start:
            return 0
        subs = store.live(self.conn, "alert_change", [t.url for t in _ALERT_TOPICS])
        found = 0
        if subs:
            changes = sorted({c for t in _ALERT_TOPICS for c in t.changes})
            rows = self.conn.execute(
                "SELECT c.at, c.change, c.alert, a.patient FROM alert_change c"
                " JOIN alert a ON a.id = c.alert WHERE c.at >= %s AND c.at < %s"
                " AND c.change = ANY(%s) ORDER BY c.at, c.id",
                (start, end, changes),
            ).fetchall()
            flags: dict[int, dict[str, Any]] = {}

            def flag(alert_id: int) -> dict[str, Any]:
                if alert_id not in flags:
                    alert = read_alert(self.conn, alert_id)
                    assert alert is not None
                    flags[alert_id] = render_flag(alert)
                return flags[alert_id]

            for sub in subs:
                wanted = TOPICS[sub.topic].changes
                found += self._record(
                    sub,
                    [
                        _Candidate(
                            at,
                            patient,
                            f"Flag/{alert}",
                            change == "triggered",
                            partial(flag, alert),
                        )
                        for at, change, alert, patient in rows
                        if change in wanted
                    ],
                )
        store.move_cursor(self.conn, "alert_change", end)
        return found

    def _observations(self, bound: datetime) -> int:
        start = store.cursor(self.conn, "observation")
        end = min(bound, start + timedelta(seconds=MAX_WINDOW_S))
        if end <= start:
            return 0
        subs = store.live(self.conn, "observation", [NEW_OBSERVATION.url])
        found = 0
        if subs:
            rows = [
                Row(*r)
                for r in self.conn.execute(
                    f"SELECT {ROW_COLUMNS}"
                    " FROM observation WHERE received >= %s AND received < %s"
                    " AND patient = ANY(%s) ORDER BY received, patient, metric, effective, device",
                    (start, end, sorted({s.patient for s in subs if s.patient})),
                )
            ]
            for sub in subs:
                found += self._record(
                    sub,
                    [
                        _Candidate(
                            r.received,
                            r.patient,
                            f"Observation/{observation_id(r)}",
                            True,
                            partial(render_observation, r),
                        )
                        for r in rows
                    ],
                )
        store.move_cursor(self.conn, "observation", end)
        return found

    def _record(self, sub: Subscription, candidates: list[_Candidate]) -> int:
        """The candidates this subscription takes: after it was made, of its patient, of
        a patient its owner may see now (the policy is asked once per subscription and run;
        a withdrawn consent or an ended care relation stops events from being recorded)."""
        compartment: Compartment | None = None
        asked = False
        taken: list[tuple[datetime, str, str, dict[str, Any], bool]] = []
        for c in candidates:
            if c.at < sub.created or sub.patient not in (None, c.patient):
                continue
            if not asked:
                compartment, asked = reach(self.conn, sub), True
            if may_see(compartment, sub, c.patient):
                taken.append((c.at, c.patient, c.focus, c.render(), c.new))
        if taken:
            store.record_events(self.conn, sub, taken)
        return len(taken)
