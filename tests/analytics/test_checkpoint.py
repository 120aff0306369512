"""Checkpoints: a restored engine continues exactly where the saved one stopped."""

import logging

import numpy as np

from analytics.checkpoint import load_checkpoint, save_checkpoint
from analytics.engine import Engine
from analytics.service import AnalyticsService, checkpoint_path
from tests.analytics.test_engine import SPO2, T0, seconds
from vigil.settings import Settings


def test_a_restored_checkpoint_continues_where_the_engine_stopped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 40
    values = np.r_[np.full(5, 96.0), [94, 92, 90, 88], np.full(n - 9, 85.0)]
    patients, kinds, times = ["p1", "copd"] * n, np.full(2 * n, SPO2), np.repeat(seconds(n), 2)
    both = np.repeat(values, 2)

    def summary(events: list) -> list:  # type: ignore[type-arg]
        return [(e.patient, e.event.rule, e.event.kind, e.event.time) for e in events]

    whole = summary(Engine(["copd"]).score(patients, kinds, times, both))
    first = Engine(["copd"])
    half = 2 * 12
    before = summary(first.score(patients[:half], kinds[:half], times[:half], both[:half]))
    save_checkpoint(first, tmp_path / "engine.npz")
    assert (tmp_path / "engine.npz").stat().st_mode & 0o777 == 0o600  # patient ids inside
    second = load_checkpoint(tmp_path / "engine.npz")
    after = summary(second.score(patients[half:], kinds[half:], times[half:], both[half:]))
    assert before + after == whole
    assert ("p1", "spo2_desaturation", "persisted", T0 + 25_000) in after
    assert second.scale2 == {"copd"} and second.keys == first.keys


def test_a_checkpoint_of_another_layout_starts_the_service_cold(
    tmp_path,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    settings = Settings(analytics_state_dir=tmp_path)
    engine = Engine()
    engine.score(["p1"] * 3, np.full(3, SPO2), seconds(3), np.array([97.0, 96.0, 97.0]))
    path = checkpoint_path(settings)
    save_checkpoint(engine, path)
    with np.load(path) as saved:  # as written before the parts' state had their own names
        older = {k.replace(".condition.", "."): saved[k] for k in saved.files}
    np.savez(path, **older)
    with caplog.at_level(logging.WARNING):
        service = AnalyticsService(settings)
    assert service.engine.keys == [] and "starting cold" in caplog.text
