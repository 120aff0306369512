"""The contract every detector keeps (as river holds its estimators to shared checks).
A new detector joins by adding a factory to DETECTORS."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from analytics.batch import Event, Readings
from analytics.detectors.base import Detector
from analytics.detectors.baseline import BaselineDetector
from analytics.detectors.novelty import NoveltyDetector
from analytics.detectors.rate_of_change import RateOfChangeDetector
from analytics.detectors.signal_quality import SignalQualityDetector
from analytics.detectors.threshold import ThresholdDetector
from vigil.wire.quality import Quality


def threshold_low_and_high() -> ThresholdDetector:
    detector = ThresholdDetector("contract")
    for stream in range(6):
        detector.configure(stream, low_on=88, low_off=90, high_on=100, high_off=98, persist_s=5)
    return detector


def rising_and_falling() -> RateOfChangeDetector:
    detector = RateOfChangeDetector("contract", window_min=2)
    for stream in range(6):
        detector.configure(stream, rise=12, clear_below=6, persist_s=5)
    return detector


def poor_signal() -> SignalQualityDetector:
    detector = SignalQualityDetector("contract", int(Quality.NO_CONTACT))
    for stream in range(6):
        detector.configure(stream, persist_s=3)
    return detector


def personal_baseline() -> BaselineDetector:
    detector = BaselineDetector(
        "contract", baseline_half_life_s=60, level_half_life_s=5, warm_up_s=20, warm_up_readings=5
    )
    for stream in range(6):
        detector.configure(stream, sides="both", min_change=3, sd_multiple=0.5, persist_s=5)
    return detector


def multivariate_novelty() -> NoveltyDetector:
    detector = NoveltyDetector(
        "contract", fading_factor=0.2, warm_up_min=1, novel_d2=2, persist_s=0
    )
    for stream in range(6):
        detector.configure(stream, patient=stream // 2, feature=stream % 2)
    return detector


DETECTORS: dict[str, Callable[[], Detector]] = {
    "threshold": threshold_low_and_high,
    "rate_of_change": rising_and_falling,
    "signal_quality": poor_signal,
    "baseline": personal_baseline,
    "novelty": multivariate_novelty,
}


def random_readings(seed: int, n: int = 600) -> Readings:
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, 6, n)
    time = rng.integers(0, 300, n) * 1000
    value = np.where(rng.random(n) < 0.05, np.nan, rng.normal(94, 6, n).round())
    flags = np.where(rng.random(n) < 0.3, int(Quality.NO_CONTACT), 0)
    return Readings.sorted(stream, time, value, flags)


def by_time(batch: Readings, cut_ms: int) -> tuple[Readings, Readings]:
    early = batch.time < cut_ms
    return batch.take(early), batch.take(~early)


def signature(events: list[Event]) -> list[tuple[int, int, str]]:
    return [(e.stream, e.time, e.kind) for e in events]


@pytest.fixture(params=sorted(DETECTORS))
def make(request: pytest.FixtureRequest) -> Callable[[], Detector]:
    return DETECTORS[request.param]


@pytest.mark.parametrize("seed", range(5))
def test_batching_does_not_change_the_events(make: Callable[[], Detector], seed: int) -> None:
    batch = random_readings(seed)
    whole = make().score(batch)
    detector = make()
    parts = [e for part in by_time(batch, 150_000) for e in detector.score(part)]
    assert sorted(signature(parts)) == sorted(signature(whole))


@pytest.mark.parametrize("seed", range(5))
def test_a_restored_state_continues_exactly(make: Callable[[], Detector], seed: int) -> None:
    early, late = by_time(random_readings(seed), 120_000)
    original = make()
    original.score(early)
    restored = make()
    restored.restore({k: v.copy() for k, v in original.state().items()})
    assert signature(restored.score(late)) == signature(original.score(late))


def test_a_reading_seen_twice_counts_once(make: Callable[[], Detector]) -> None:
    batch = random_readings(7)
    detector = make()
    detector.score(batch)
    assert detector.score(batch) == []


def test_events_are_ordered_and_point_at_readings_of_the_batch(
    make: Callable[[], Detector],
) -> None:
    batch = random_readings(3)
    events = make().score(batch)
    assert events, "the random readings should make this detector speak"
    assert signature(events) == sorted(signature(events), key=lambda s: (s[0], s[1]))
    seen = set(zip(batch.stream.tolist(), batch.time.tolist(), strict=True))
    assert all((e.stream, e.time) in seen for e in events)
    assert {e.kind for e in events} <= {"started", "persisted", "cleared"}


def test_empty_and_all_nan_batches_are_harmless(make: Callable[[], Detector]) -> None:
    detector = make()
    assert detector.score(Readings.sorted([], [], [])) == []
    events = detector.score(Readings.sorted([0, 1], [0, 0], [np.nan, np.nan]))
    assert all(e.kind == "started" for e in events)  # no value is news to signal quality only
