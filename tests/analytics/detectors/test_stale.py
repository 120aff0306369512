"""Silence judged by the clock: a stream with no reading for five minutes."""

from __future__ import annotations

import numpy as np

from analytics.batch import Readings
from analytics.detectors.stale import StaleStreams
from analytics.engine import Engine
from vigil import metrics


def seconds(*times_s: int, stream: int = 0) -> Readings:
    n = len(times_s)
    return Readings.sorted([stream] * n, np.asarray(times_s) * 1000, [97.0] * n)


def test_silence_is_reported_once_after_five_minutes_and_cleared_by_the_next_reading() -> None:
    stale = StaleStreams("no_data")
    stale.configure(0)
    stale.score(seconds(0, 1, 2))
    assert stale.tick(301_999) == []
    events = stale.tick(302_000)
    assert [(e.kind, e.time) for e in events] == [("started", 2_000), ("persisted", 302_000)]
    assert stale.tick(400_000) == []  # once
    back = stale.score(seconds(500))
    assert [(e.kind, e.time) for e in back] == [("cleared", 500_000)]


def test_short_gaps_are_counted_and_a_stream_never_seen_is_not_stale() -> None:
    stale = StaleStreams("no_data", gap_s=10)
    stale.configure(0)
    stale.configure(1)
    stale.score(seconds(0, 1, 20, 21, 40))
    stale.score(seconds(61))
    assert stale.gaps[0] == 3
    assert [e.stream for e in stale.tick(10**9)] == [0, 0]  # stream 1 never sent anything


def test_a_checkpoint_keeps_the_silence() -> None:
    stale = StaleStreams("no_data")
    stale.configure(0)
    stale.score(seconds(0))
    stale.tick(300_000)
    restored = StaleStreams("no_data")
    restored.configure(0)
    restored.restore({k: v.copy() for k, v in stale.state().items()})
    assert restored.tick(900_000) == []
    assert [e.kind for e in restored.score(seconds(901))] == ["cleared"]


def test_replay_reports_a_silence_where_it_happened_not_at_the_end() -> None:
    engine = Engine()
    times = np.r_[np.arange(0, 60), np.arange(1000, 1060)] * 1000 + 1_767_225_600_000
    n = len(times)
    events = engine.score_recorded(
        ["p1"] * n, np.full(n, metrics.SPO2.id), times, np.full(n, 97.0), np.zeros(n)
    )
    silence = [(e.event.kind, (e.event.time - times[0]) // 1000) for e in events]
    assert silence == [("started", 59), ("persisted", 359), ("cleared", 1000)]
