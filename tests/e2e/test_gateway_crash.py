"""The gateway process killed with SIGKILL mid-stream, then restarted."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ingest.stats import ingest_stats
from tests.e2e.harness import IngestProcess
from vigil.embedded.processes import spawn, stop, vigil_command
from vigil.metrics import BY_ID
from vigil.mqtt import Watcher
from vigil.settings import Settings
from vigil.wire.status import GatewayStatus, Presence
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]

Key = tuple[str, str]


def sent(path: Path) -> dict[Key, list[float]]:
    out: dict[Key, list[float]] = defaultdict(list)
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        if doc["metric"] != "battery":
            out[(doc["patient"], doc["metric"])].append(doc["value"])
    return out


def published(watcher: Watcher, topic: str) -> int:
    status = watcher.get(topic, GatewayStatus)
    return (status.published or 0) if status else 0


def test_a_killed_gateway_resends_from_its_outbox_and_nothing_is_doubled(
    settings: Settings, tmp_path: Path, durable_broker: None
) -> None:
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    status = Topics(settings.gateway_id).status
    watcher = Watcher(settings, {status: GatewayStatus.decode}, f"watch-{time.time_ns()}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
        "VIGIL_MQTT_URL": settings.mqtt_url or "",
        "VIGIL_GATEWAY_ID": settings.gateway_id,
        "VIGIL_GATEWAY_DATA_DIR": str(tmp_path / "gateway"),
        "VIGIL_PUBLISH_INTERVAL_S": "0.5",
    }
    started = datetime.now(UTC)

    def gateway(log: str) -> subprocess.Popen[bytes]:
        return spawn(
            vigil_command("gateway", "--simulate", "2", "--sent-log", str(tmp_path / log)),
            env,
            tmp_path / f"{log}.out",
        )

    first = gateway("a.jsonl")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and published(watcher, status) < 30:
            time.sleep(0.2)
        assert published(watcher, status) >= 30
        time.sleep(1.3)
        first.kill()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    boundary = datetime.now(UTC)
    second = gateway("b.jsonl")
    time.sleep(10)
    assert stop(second) == 0
    assert watcher.wait_for_state(status, Presence.OFFLINE, 10)
    final = watcher.get(status, GatewayStatus)
    watcher.close()
    assert final is not None and final.outbox_depth == 0

    url = settings.database_url or ""
    before: dict[Key, list[float]] = defaultdict(list)
    after: dict[Key, list[float]] = defaultdict(list)
    expected_after = sent(tmp_path / "b.jsonl")
    total_after = sum(len(v) for v in expected_after.values())
    deadline = time.monotonic() + 30
    with psycopg.connect(url) as conn:
        while time.monotonic() < deadline:
            before.clear()
            after.clear()
            for patient, metric, effective, value in conn.execute(
                "SELECT patient, metric, effective, value FROM observation WHERE metric <> 5"
                " ORDER BY patient, metric, effective"
            ):
                side = before if effective < boundary else after
                side[(patient, BY_ID[metric].name)].append(value)
            if sum(len(v) for v in after.values()) >= total_after:
                break
            time.sleep(0.5)
        stats = ingest_stats(conn, started)
    ingest.stop()

    # After the restart: every reading sent, once, in order.
    for key, values in expected_after.items():
        assert after[key] == pytest.approx(values), key
    # Before the kill: everything up to the last notifications in flight at the SIGKILL
    # (sent over the air but not yet handled by the dying process) is there, once.
    expected_before = sent(tmp_path / "a.jsonl")
    lost_at_kill = 0
    for key, values in expected_before.items():
        stored = before[key]
        assert stored == pytest.approx(values[: len(stored)]), key
        lost_at_kill += len(values) - len(stored)
    assert lost_at_kill <= 2 * len(expected_before)  # at most the last tick of each stream
    assert stats.dead_letters == 0
    print(
        json.dumps(
            {
                "sent_before_kill": sum(len(v) for v in expected_before.values()),
                "lost_at_kill": lost_at_kill,
                "sent_after": total_after,
                "resent_duplicates_removed": stats.duplicates,
            }
        )
    )
