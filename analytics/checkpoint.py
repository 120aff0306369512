"""Checkpoints: an engine's streams and every stage's state in one file, so a restarted
service resumes with the patients' baselines and open conditions, not a four-hour warm-up.

One numpy ``.npz`` written atomically: the stream keys, the configuration that decides the
rules (scale 2 patients, optional rules), and each stage's state under its name (the river
models of the novelty rule pickled into it). Configuration columns are not saved: they are
rebuilt from the rules as configured at start, so a changed rule takes effect.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from analytics.config import PatientRules
from analytics.engine import Engine


def save_checkpoint(engine: Engine, path: Path) -> None:
    """The engine's streams and every detector's state, written atomically (numpy .npz),
    so a restarted service resumes without a cold start."""
    arrays: dict[str, Any] = {
        "patients": np.asarray([p for p, _ in engine.keys], dtype=str),
        "metrics": np.asarray([m for _, m in engine.keys], dtype=np.int64),
        "scale2": np.asarray(sorted(engine.scale2), dtype=str),
        "optional": np.asarray(engine.optional, dtype=str),
        "saved_at": np.asarray(time.time_ns() // 1_000_000, dtype=np.int64),
    }
    for name, detector in engine.stateful():
        for key, array in detector.state().items():
            arrays[f"{name}.{key}"] = array
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    # Patient ids and their state: for the service's own user only.
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        np.savez(out, **arrays)
    os.replace(temporary, path)


def load_checkpoint(
    path: Path,
    scale2: Iterable[str] | None = None,
    patients: Mapping[str, PatientRules] | None = None,
) -> Engine:
    """The engine saved at ``path``; with ``scale2`` and ``patients``, the rules as
    configured now rather than as they were when it was saved (state is kept, thresholds
    are rebuilt)."""
    with np.load(path) as saved:
        engine = Engine(
            saved["scale2"].tolist() if scale2 is None else scale2,
            saved["optional"].tolist() if "optional" in saved.files else (),
            patients,
        )
        if "saved_at" in saved.files:
            engine.saved_at = int(saved["saved_at"])
        for patient, metric in zip(
            saved["patients"].tolist(), saved["metrics"].tolist(), strict=True
        ):
            engine.slot(patient, metric)
        for name, detector in engine.stateful():
            keys = [k.split(".", 1)[1] for k in saved.files if k.startswith(f"{name}.")]
            if keys:
                detector.restore({k: saved[f"{name}.{k}"] for k in keys})
    return engine
