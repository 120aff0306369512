"""Per-patient rules: the file a care team edits, and what the engine does with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analytics.config import ConfigError, load_patient_rules
from analytics.engine import Engine
from tests.cli.test_main import vigil
from vigil import metrics

T0 = 1_767_261_600_000
HR = metrics.HEART_RATE.id


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "patients.json"
    path.write_text(json.dumps(document))
    return path


def pulse_events(engine: Engine, patient: str, value: float, seconds: int = 200) -> list[str]:
    # up 10 /min a second, then steady but alive (a pulse stuck still would be a flatline)
    ramp = np.minimum(value, 80 + 10 * np.arange(seconds)) + np.arange(seconds) % 2
    events = engine.score(
        [patient] * seconds, np.full(seconds, HR), T0 + np.arange(seconds) * 1000, ramp
    )
    return [f"{e.event.rule}:{e.event.kind}" for e in events]


def test_a_patient_with_a_higher_pulse_threshold_is_not_alerted_at_135(tmp_path: Path) -> None:
    config = load_patient_rules(
        write(tmp_path, {"athlete": {"thresholds": {"hr_news2_red_high": {"high_on": 140}}}})
    )
    engine = Engine(patients=config)
    assert "hr_news2_red_high:persisted" in pulse_events(engine, "someone", 135)
    assert pulse_events(engine, "athlete", 135) == []
    assert "hr_news2_red_high:persisted" in pulse_events(engine, "athlete2", 145)


def test_scale_disabled_and_optional_rules_per_patient(tmp_path: Path) -> None:
    config = load_patient_rules(
        write(
            tmp_path,
            {"copd": {"scale": 2, "disabled": ["hr_extreme_high"], "optional": ["hr_rising"]}},
        )
    )
    engine = Engine(patients=config)
    names = {r.name for r in engine.rules_of("copd")}
    assert "hr_extreme_high" not in names and "hr_rising" in names
    assert next(r for r in engine.rules_of("copd") if r.name == "spo2_desaturation").limit == 80
    assert "hr_rising" not in {r.name for r in engine.rules_of("anyone")}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"p1": {"scale": 3}}, "patient p1: scale"),
        ({"p1": {"optional": ["hr_falling"]}}, "'hr_falling' is not an optional rule"),
        ({"p1": {"disabled": ["fever"]}}, "'fever' is not a rule"),
        ({"p1": {"thresholds": {"hr_news2_red_high": {"colour": 1}}}}, "'colour' is not tunable"),
        ({"p1": {"threshold": {}}}, "patient p1: threshold: Extra inputs"),
        ({"p1": {"thresholds": {"hr_off_baseline": {"low_on": 50}}}}, "'low_on' is not tunable"),
        (
            {"p1": {"thresholds": {"hr_news2_red_high": {"high_on": 115}}}},
            "high_off 120 must be at most high_on 115",
        ),
        ({"p1": {"thresholds": {"novelty": {"persist_s": 60}}}}, "tunable: nothing"),
        (["p1"], "expected an object of patient ids"),
    ],
)
def test_a_mistake_is_named(tmp_path: Path, document: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_patient_rules(write(tmp_path, document))


def test_replay_refuses_a_bad_file_with_a_clear_message(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("patient,time,metric,value\np1,0,spo2,97\n")
    bad = write(tmp_path, {"p1": {"scale": 3}})
    result = vigil(
        "analytics",
        "replay",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o"),
        "--patients",
        str(bad),
    )
    assert result.returncode == 2
    assert "patient p1: scale" in result.stderr and "Traceback" not in result.stderr


def test_the_service_does_not_start_on_a_bad_file(tmp_path: Path) -> None:
    bad = write(tmp_path, {"p1": {"disabled": ["fever"]}})
    env = {"VIGIL_MQTT_URL": "mqtt://127.0.0.1:9", "VIGIL_ANALYTICS_PATIENTS_FILE": str(bad)}
    result = vigil("analytics", env=env)
    assert result.returncode == 2
    assert "'fever' is not a rule" in result.stderr and "Traceback" not in result.stderr
