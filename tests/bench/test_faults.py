"""`vigil bench faults`: its counting, and the short matrix on the real pipeline.

The short matrix is the default one made small (a few thousand readings per fault, a 20 s
broker outage, a 50 s network cut: past the broker's 45 s keep-alive expiry), run four
faults side by side. Every fault must lose nothing, double nothing, and tell every expected
alert exactly once. The wearables measure every 400 ms: the gateway stamps a reading when
it arrives, and a gateway process stalled longer than a device's interval (the machine's
two cores busy elsewhere) stamps two of its readings alike, which the store keeps as one.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest

from bench.faults.episodes import RULE, Episode, deficit_pct_s, judged, plan
from bench.faults.managed import last_line
from bench.faults.matrix import FAULTS
from bench.faults.tally import SentLog, alerts, readings
from bench.gateway import Key
from tests.cli.test_main import vigil

TICK_S = 0.25


def test_the_deficit_leaks_above_the_limit_and_resets_at_clear_at() -> None:
    limit, clear_at = RULE.limit, RULE.clear_at
    assert deficit_pct_s([limit - 8] * 4, 1.0) == 32
    # one point above the limit takes back one point a second; clear_at starts over
    assert deficit_pct_s([limit - 8, limit + 1, limit - 8], 1.0) == 15
    assert deficit_pct_s([limit - 8, clear_at, limit - 8], 1.0) == 8
    assert deficit_pct_s([96.0] * 100, 1.0) == 0


def test_an_episode_is_expected_only_when_the_sent_log_shows_twice_the_threshold() -> None:
    episodes = [Episode("p0001", 10, "before"), Episode("p0002", 20, "across")]
    threshold = RULE.sat_seconds or 0
    low = RULE.limit - 12
    seconds_for = {"whole": 2.5 * threshold / 12, "cut short": 1.5 * threshold / 12}
    spo2 = {
        "p0001": [96.0] * 40 + [low] * round(seconds_for["whole"] / TICK_S) + [96.0] * 40,
        "p0002": [96.0] * 40 + [low] * round(seconds_for["cut short"] / TICK_S),
    }
    verdicts = judged([*episodes, Episode("p0003", 30, "after")], spo2, TICK_S)
    assert [v["verdict"] for v in verdicts.values()] == ["expected", "marginal", "not sent"]
    assert verdicts["p0003"]["deficit_pct_s"] == 0


def test_the_plan_puts_three_episodes_on_three_patients_around_the_fault() -> None:
    before, across, after = plan(patients=6, connected_s=7, fault_s=20, across_s=14, over_s=40)
    assert len({before.patient, across.patient, after.patient}) == 3
    assert before.start_s == 8 and across.start_s == 14 and after.start_s == 43


def key(device: str, metric: str, value: float) -> Key:
    return (device, metric, value)


def test_lost_and_doubled_readings_are_counted_by_device_metric_and_value() -> None:
    strap, oximeter = "C1:00:00:00:00:00", "C2:00:00:00:00:00"
    sent = SentLog(
        collections.Counter(
            {
                key(strap, "heart_rate", 70.0): 2,
                key(oximeter, "spo2", 97.0): 3,
                key(oximeter, "battery", 99.0): 1,
            }
        )
    )
    stored = collections.Counter(
        {
            key(strap, "heart_rate", 70.0): 3,  # one doubled
            key(oximeter, "spo2", 97.0): 1,  # two lost
            key(oximeter, "battery", 99.0): 1,
            key(oximeter, "battery", 100.0): 2,  # read on connecting: neither sent nor doubled
        }
    )
    counts = readings(sent, stored)
    assert (counts["sent"], counts["stored"], counts["lost"], counts["doubled"]) == (6, 5, 2, 1)
    assert counts["battery_read_on_connect"] == 2
    assert counts["lost_examples"] == [[oximeter, "spo2", 97.0, 2]]
    assert counts["doubled_examples"] == [[strap, "heart_rate", 70.0, 1]]


def test_alerts_raised_twice_notified_twice_or_unexpected_are_told_apart() -> None:
    verdicts: dict[str, dict[str, Any]] = {
        "p0001": {"verdict": "expected"},
        "p0002": {"verdict": "expected"},
        "p0003": {"verdict": "marginal"},
        "p0004": {"verdict": "expected"},
    }
    raised = [
        (1, "p0001", RULE.name),
        (2, "p0002", RULE.name),
        (3, "p0002", RULE.name),
        (4, "p0003", RULE.name),
        (5, "p0005", RULE.name),
        (6, "p0001", "no_data"),
    ]
    deliveries = {(1, 0): 1, (2, 0): 2, (4, 0): 1}
    counts = alerts(raised, deliveries, verdicts)
    assert counts["alerts_expected"] == 3
    assert counts["alerts_raised"] == 6
    assert counts["alerts_notified"] == 3
    assert counts["notified_twice"] == 1
    assert counts["alerts_marginal"] == 1
    assert counts["expected_not_raised"] == ["p0004"]
    assert counts["raised_twice"] == ["p0002"]
    assert counts["raised_unexpected"] == ["p0001: no_data", "p0005"]


def test_a_process_that_exits_is_reported_by_its_last_message(tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    log.write_text(
        "2026-12-02 05:14:32,813 WARNING alerts.service: something\n"
        "Traceback (most recent call last):\n"
        '  File "alerts/service.py", line 9, in run\n'
        "psycopg.OperationalError: consuming input failed: server closed the connection\n"
        "\tbefore or while processing the request.\n"
    )
    assert last_line(log) == (
        "psycopg.OperationalError: consuming input failed: server closed the connection"
    )
    assert last_line(tmp_path / "none.log") == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--only", "meteor_strike"], "--only meteor_strike: one of broker_kill, broker_stop"),
        (["--patients", "2"], "--patients: at least 3"),
        (["--interval", "0s"], "--interval must be above 0"),
        (["--folder", str(Path(__file__).parent)], "is not empty: give a new or an empty one"),
    ],
)
def test_a_matrix_that_cannot_run_is_refused_in_one_line(args: list[str], words: str) -> None:
    result = vigil("bench", "faults", *args)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr


SHORT = {
    "--readings": "3000",
    "--patients": "8",
    "--interval": "400ms",
    "--outage": "20s",
    "--cut": "50s",
    "--parallel": "4",
}
ACTED = {
    "broker_kill": lambda e: e["sent_while_queued"] > 0,
    "broker_stop": lambda e: e["outage_s"] == 20 and e["caught_up_after_fault_s"] is not None,
    "ingest_kill": lambda e: e["kills"] == 5 and e["batch_redeliveries"] > 0,
    "analytics_kill": lambda e: e["kills"] == 1 and len(e["analytics_resumed"]) == 2,
    "alerts_kill": lambda e: e["kills"] == 4,
    "gateway_kill": lambda e: e["reconnected_after_s"] < 60,
    "postgres_restart": lambda e: e["down_s"] == 3,
    "postgres_backend_kill": lambda e: e["ingest_backends"] == 1,
    "network_cut": lambda e: e["broker_dropped_gateway_after_s"] is not None,
    "disk_full": lambda e: e["filler_mb"] > 0,
}
"""What shows that each fault did strike, besides its own timing."""


@pytest.fixture(scope="module")
def short_matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("faults")
    options = [word for pair in SHORT.items() for word in pair]
    result = vigil("bench", "faults", *options, "--folder", str(folder), timeout=560)
    assert result.returncode == 0, result.stderr[-5000:]
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    report["folder"] = folder
    return report


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_short_matrix_loses_nothing_and_tells_each_alert_once(
    short_matrix: dict[str, Any], fault: str
) -> None:
    assert short_matrix["readings_per_fault"] == 3000
    entry = short_matrix["faults"][fault]
    if "skipped" in entry:
        pytest.skip(entry["skipped"])
    logs = Path(short_matrix["folder"]) / fault / "logs"
    assert "error" not in entry, (entry, logs)
    assert entry["unplanned_exits"] == [], entry  # every service rides the fault through
    assert ACTED[fault](entry), (entry, logs)
    assert entry["sent"] >= 3000
    assert (entry["lost"], entry["doubled"]) == (0, 0), (entry, logs)
    # 'before' and 'after' always stream whole; a gateway down across one may cut it short
    assert entry["alerts_expected"] >= 2, entry["episodes"]
    assert entry["expected_not_raised"] == [], (entry, logs)
    assert entry["raised_twice"] == [] and entry["raised_unexpected"] == [], entry
    assert entry["alerts_notified"] == entry["alerts_raised"], (entry, logs)
    assert entry["notified_twice"] == 0, (entry, logs)
