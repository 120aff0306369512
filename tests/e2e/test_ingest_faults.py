"""Ingest under faults, with a real broker and a real PostgreSQL: killed between commit and
acknowledgement, the database restarted under it, and a flood of malformed payloads."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tests.builders import T0, batch
from tests.cli.test_main import vigil
from tests.e2e.harness import IngestProcess, publish, wait_for
from vigil.db.migrate import migrate
from vigil.embedded.postgres import start_postgres
from vigil.embedded.processes import stop_and_measure
from vigil.settings import Settings
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]
READINGS_PER_BATCH = 50


def stream(gateway: str, batches: int) -> list[bytes]:
    """Batches of one gateway, each reading unique (a patient's SpO2, second by second)."""
    return [
        (
            batch(
                gateway,
                seq,
                [
                    ("p0001", "spo2", T0 + (seq * READINGS_PER_BATCH + i) * 1000, 90.0 + i % 9)
                    for i in range(READINGS_PER_BATCH)
                ],
            )
        ).encode()
        for seq in range(batches)
    ]


def in_background(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def accounting(url: str) -> tuple[int, int, int, int]:
    """(rows in observation, distinct batches, deliveries, rows the batches stored)."""
    with psycopg.connect(url) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM observation").fetchone()  # type: ignore[misc]
        batches, deliveries, stored = conn.execute(
            "SELECT count(*), coalesce(sum(deliveries), 0), coalesce(sum(stored), 0)"
            " FROM ingest_batch"
        ).fetchone()  # type: ignore[misc]
    return int(rows), int(batches), int(deliveries), int(stored)


def test_killed_between_commit_and_ack_five_times(
    durable_broker: None, settings: Settings, tmp_path: Path
) -> None:
    payloads = stream("gw-k", 60)
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start(VIGIL_INGEST_CRASH_AFTER_COMMITS="1")
    publisher = in_background(publish, settings, Topics("gw-k").readings, payloads, 0.1)
    kills = 0
    try:
        for _ in range(5):  # each life stores one micro-batch, then dies before acking it
            ingest.wait_for_death(30)
            kills += 1
            ingest.start(VIGIL_INGEST_CRASH_AFTER_COMMITS="1")
        ingest.wait_for_death(30)
        kills += 1
        publisher.join(30)
        ingest.start()  # and now it lives
        url = settings.database_url or ""
        assert wait_for(lambda: accounting(url)[0] == 60 * READINGS_PER_BATCH, 30)
    finally:
        ingest.stop()
    rows, batches, deliveries, stored = accounting(url)
    assert kills == 6
    assert (rows, batches, stored) == (3000, 60, 3000)  # stored == published, none doubled
    assert deliveries > batches  # the broker re-sent what was committed and not acknowledged


@pytest.fixture
def own_postgres(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    folder = tmp_path / "pg"
    server = start_postgres(folder)
    with psycopg.connect(server.url, autocommit=True) as conn:
        migrate(conn)
    try:
        yield settings.model_copy(update={"database_url": server.url}), folder
    finally:
        start_postgres(folder).stop()  # whichever incarnation is running


def test_a_postgresql_restart_mid_stream_loses_nothing(
    durable_broker: None, own_postgres: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, folder = own_postgres
    url = settings.database_url or ""
    payloads = stream("gw-r", 50)
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    try:
        publisher = in_background(publish, settings, Topics("gw-r").readings, payloads, 0.1)
        assert wait_for(lambda: accounting(url)[0] > 0, 20)
        start_postgres(folder).stop()  # the running server, stopped under ingest
        time.sleep(3)
        start_postgres(folder)
        publisher.join(30)
        assert wait_for(lambda: accounting(url)[0] == 50 * READINGS_PER_BATCH, 60)
        assert ingest.process is not None and ingest.process.poll() is None
    finally:
        ingest.stop()
    rows, batches, _, stored = accounting(url)
    assert (rows, batches, stored) == (2500, 50, 2500)
    assert "database" in (tmp_path / "ingest.log").read_text()  # it noticed, and said so


MALFORMED = {
    "not UTF-8": b"\xff\xfe\x00",
    "not JSON": b'{"v": 1, "gateway": "gw-m"',
    "empty": b"",
    "not an object": b"[1, 2, 3]",
    "schema version": b'{"v": 2, "gateway": "gw-m", "seq": 9000}',
    "nested": b"[" * 100_000,
    "missing column": b'{"v": 1, "gateway": "gw-m", "seq": 9001, "sent": 1, "device": []}',
}


def malformed_batches() -> dict[str, bytes]:
    cases = dict(MALFORMED)
    good = (batch("gw-m", 9002)).encode().decode()
    cases["lengths differ"] = good.replace('"flags":[0,0]', '"flags":[0]').encode()
    cases["unknown metric"] = good.replace('"heart_rate"', '"glucose"').encode()
    cases["NaN value"] = good.replace("72.0", "NaN").encode()
    cases["other gateway"] = (batch("gw-other", 9003)).encode()
    cases["implausible"] = (batch("gw-m", 9004, [("p0001", "spo2", T0, 140.0)])).encode()
    cases["future"] = (batch("gw-m", 9005, [("p0001", "spo2", 2**52, 95.0)])).encode()
    return cases


def test_a_flood_of_malformed_payloads_among_good_ones(settings: Settings, tmp_path: Path) -> None:
    url = settings.database_url or ""
    good = stream("gw-m", 40)
    bad = malformed_batches()
    mixed: list[bytes] = []
    for i, payload in enumerate(good):
        mixed.append(payload)
        mixed.append(list(bad.values())[i % len(bad)])
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    try:
        publish(settings, Topics("gw-m").readings, mixed, 0)
        assert wait_for(lambda: accounting(url)[0] == 40 * READINGS_PER_BATCH, 30)
        with psycopg.connect(url) as conn:
            assert wait_for(
                lambda: conn.execute("SELECT count(*) FROM dead_letter").fetchone() == (40,), 10
            )
            letters = conn.execute(
                "SELECT payload_sha256, payload, payload_size, reason FROM dead_letter"
            ).fetchall()
        assert ingest.process is not None and ingest.process.poll() is None
    finally:
        assert ingest.stop() == 0
    assert accounting(url)[0] == 2000
    kept = {bytes(digest): (bytes(p), size) for digest, p, size, _ in letters}
    # every kind, with its raw bytes up to 64 KiB; beyond, identified by size and digest
    assert kept == {hashlib.sha256(p).digest(): (p[:65536], len(p)) for p in bad.values()}
    by_payload = {bytes(p): r for _, p, _, r in letters}
    assert all(reason for reason in by_payload.values())
    assert by_payload[bad["schema version"]].startswith("v: unsupported schema version 2")
    assert by_payload[bad["implausible"]] == (
        "1 of 1 readings refused: reading 0 (spo2 140 outside 50..100)"
    )
    assert "in the future" in by_payload[bad["future"]]
    assert by_payload[bad["other gateway"]].startswith("gateway: batch says 'gw-other'")


def test_memory_stays_bounded_under_a_burst(
    durable_broker: None, settings: Settings, tmp_path: Path
) -> None:
    """A fleet's backlog queued in the broker while ingest is away: ingest takes at most
    its Receive Maximum at a time, so ten times the burst costs no more memory."""
    url = settings.database_url or ""

    def peak_rss_after(gateway: str, batches: int) -> float:
        ingest = IngestProcess(settings, tmp_path / f"{gateway}.log")
        ingest.start(VIGIL_INGEST_MAX_MESSAGES="20")
        ingest.kill()  # its session stays, and queues the burst
        payloads = [
            (
                batch(
                    gateway,
                    seq,
                    [(gateway, "spo2", T0 + (seq * 1000 + i) * 1000, 95.0) for i in range(1000)],
                )
            ).encode()
            for seq in range(batches)
        ]
        publish(settings, Topics(gateway).readings, payloads, 0)
        before = accounting(url)[0]
        ingest.start(VIGIL_INGEST_MAX_MESSAGES="20")
        assert wait_for(lambda: accounting(url)[0] == before + batches * 1000, 180)
        assert ingest.process is not None
        peak = stop_and_measure(ingest.process, timeout=30)
        ingest.watcher.close()
        return peak

    small = peak_rss_after("gw-small", 30)
    large = peak_rss_after("gw-large", 1000)  # a million readings, 90 MB of JSON payloads
    # Buffered whole, the large burst's payloads alone would add 90 MB; taken twenty at a
    # time it costs what the allocator's high-water mark drifts by.
    assert large < small + 40, (small, large)


def test_once_gateways_are_enrolled_only_their_assigned_devices_are_stored(
    settings: Settings, tmp_path: Path
) -> None:
    """VIGIL_INGEST_ENROLLED_ONLY's default (auto) enforces as soon as a gateway is
    enrolled; enrolling another takes effect at once."""
    url = settings.database_url or ""
    env = {"VIGIL_DATABASE_URL": url}
    enroll = vigil(
        "enroll", "gw-known", "--note", "ward 3", "--device", "C1:00:00:00:00:01=p0001", env=env
    )
    assert enroll.returncode == 0, enroll.stderr
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    # The builders' device is C1:00:00:00:00:01: p0001's on gw-known, and not p0009's.
    known = (
        batch("gw-known", 0, [("p0001", "spo2", T0, 95.0), ("p0009", "spo2", T0, 91.0)])
    ).encode()
    stranger = (batch("gw-stranger", 0, [("p0001", "spo2", T0 + 1000, 96.0)])).encode()
    later = replace(
        batch("gw-stranger", 1, [("p0001", "spo2", T0 + 2000, 97.0)]), device=("C1:00:00:00:00:02",)
    ).encode()
    try:
        publish(settings, Topics("gw-known").readings, [known], 0)
        publish(settings, Topics("gw-stranger").readings, [stranger], 0)
        with psycopg.connect(url, autocommit=True) as conn:
            assert wait_for(
                lambda: conn.execute("SELECT count(*) FROM dead_letter").fetchone() == (2,), 20
            )
            reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letter ORDER BY id")]
        stranger_enrolled = vigil(
            "enroll", "gw-stranger", "--device", "C1:00:00:00:00:02=p0001", env=env
        )
        assert stranger_enrolled.returncode == 0, stranger_enrolled.stderr
        publish(settings, Topics("gw-stranger").readings, [later], 0)
        assert wait_for(lambda: accounting(url)[0] == 2, 20)
    finally:
        assert ingest.stop() == 0
    assert reasons == [
        "1 of 2 readings refused: reading 1 (device C1:00:00:00:00:01 is not assigned to p0009"
        " on gw-known)",
        "gateway: 'gw-stranger' is not enrolled (`vigil enroll gw-stranger`)",
    ]
    listing = vigil("enroll", "--list", env=env).stdout
    assert "gw-known" in listing and "ward 3" in listing and "gw-stranger" in listing
    assert "C1:00:00:00:00:01" in listing and "p0001 (gw-known)" in listing
    assert "(no gateway" not in listing
