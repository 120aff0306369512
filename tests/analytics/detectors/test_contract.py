"""The contract every stage of the engine keeps, as river holds its estimators to shared
checks. Stages are found by walking analytics.detectors: a new detector joins by being
written (with its ``for_contract`` example), not by being listed here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import analytics.detectors
from analytics.batch import Readings
from analytics.detectors.base import Detector, Stage
from vigil.wire.events import EventKind
from vigil.wire.quality import Quality


def discovered() -> list[type[Stage]]:
    found = []
    for module in pkgutil.iter_modules(analytics.detectors.__path__):
        loaded = importlib.import_module(f"analytics.detectors.{module.name}")
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            ours = cls.__module__ == loaded.__name__
            if ours and issubclass(cls, Stage) and not inspect.isabstract(cls):
                found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


STAGES = discovered()
DETECTORS = [s for s in STAGES if issubclass(s, Detector)]


def test_every_stage_of_the_engine_is_found() -> None:
    names = {s.__name__ for s in STAGES}
    assert names >= {
        "ThresholdDetector",
        "RateOfChangeDetector",
        "SignalQualityDetector",
        "BaselineDetector",
        "NoveltyDetector",
        "ArtefactMarker",
        "StaleStreams",
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


@pytest.fixture(params=STAGES, ids=lambda s: s.__name__)
def stage(request: pytest.FixtureRequest) -> type[Stage]:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("seed", range(5))
def test_batching_does_not_change_the_output(stage: type[Stage], seed: int) -> None:
    batch = random_readings(seed)
    whole = stage.for_contract().contract_output(batch)
    cut = stage.for_contract()
    parts = [s for part in by_time(batch, 150_000) for s in cut.contract_output(part)]
    assert sorted(parts) == sorted(whole)


@pytest.mark.parametrize("seed", range(5))
def test_a_restored_state_continues_exactly(stage: type[Stage], seed: int) -> None:
    early, late = by_time(random_readings(seed), 120_000)
    original = stage.for_contract()
    original.contract_output(early)
    restored = stage.for_contract()
    restored.restore({k: v.copy() for k, v in original.state().items()})
    assert restored.contract_output(late) == original.contract_output(late)


def test_a_reading_seen_twice_counts_once(stage: type[Stage]) -> None:
    batch = random_readings(7)
    once = stage.for_contract()
    once.contract_output(batch)
    assert once.contract_output(batch) == []


def test_empty_and_all_nan_batches_are_harmless(stage: type[Stage]) -> None:
    example = stage.for_contract()
    assert example.contract_output(Readings.sorted([], [], [])) == []
    output = example.contract_output(Readings.sorted([0, 1], [0, 0], [np.nan, np.nan]))
    assert all(what == EventKind.STARTED for _, _, what in output)  # news to signal quality


@pytest.fixture(params=DETECTORS, ids=lambda s: s.__name__)
def detector(request: pytest.FixtureRequest) -> type[Detector[object]]:
    return request.param  # type: ignore[no-any-return]


def test_events_are_ordered_and_point_at_readings_of_the_batch(
    detector: type[Detector[object]],
) -> None:
    batch = random_readings(3)
    events = detector.for_contract().score(batch)
    assert events, "the random readings should make this detector speak"
    signature = [(e.stream, e.time) for e in events]
    assert signature == sorted(signature)
    seen = set(zip(batch.stream.tolist(), batch.time.tolist(), strict=True))
    assert all((e.stream, e.time) in seen for e in events)
    assert {type(e.kind) for e in events} == {EventKind}


def test_the_state_has_a_row_per_stream(stage: type[Stage]) -> None:
    example = stage.for_contract()
    example.contract_output(random_readings(1))
    for name, array in example.state().items():
        if array.dtype != np.uint8:  # a pickled model is bytes, not rows
            assert len(array) >= 6, name
