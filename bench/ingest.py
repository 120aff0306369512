"""`vigil bench ingest`: stored readings per second through the broker, against COPY.

A fleet of simulated gateways' batches (each gateway serving a few patients, each batch
what a gateway seals from its outbox) is encoded up front, then published as fast as the
broker takes them to a private broker, where one `vigil ingest` process stores them in a
private PostgreSQL. The clock runs from the first publish until every reading is stored.
In the same run, with the same database, the same rows are then copied straight into the
emptied observation table with binary COPY, a transaction per 5,000 rows: the rate ingest
is compared with (`ratio`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from ingest import writer
from vigil import metrics
from vigil.commands import UserError
from vigil.db.migrate import migrate
from vigil.embedded.broker import start_broker
from vigil.embedded.postgres import preloading_timescaledb
from vigil.embedded.processes import start_service, stop_and_measure
from vigil.embedded.stack import private_stack
from vigil.mqtt import Watcher, connect
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.topics import Topics

INGEST_ID = "bench-ingest"
GOALS = {"readings_per_s": 150_000, "ratio": 0.5, "peak_rss_mb": 300, "lost": 0}
T0_MS = 1_767_225_600_000  # 2026-01-01, a fixed start keeps runs comparable
COPY_ROWS_PER_COMMIT = 5000


def fleet_batches(
    readings: int, batch_readings: int, gateways: int, patients_per_gateway: int = 4
) -> Iterator[Batch]:
    """Batches as gateways send them: per gateway, consecutive seqs; in each batch a
    second's worth of heart rate, SpO2 and pulse rate per patient, one reading per metric
    and patient per second, with plausible values."""
    rng = np.random.default_rng(7)
    kinds = (metrics.HEART_RATE, metrics.SPO2, metrics.PULSE_RATE)
    per_second = patients_per_gateway * len(kinds)
    made = 0
    seq = 0
    while made < readings:
        for g in range(gateways):
            n = min(batch_readings, readings - made)
            if n <= 0:
                return
            k = np.arange(n)
            slot = k % per_second
            who = (slot // len(kinds)).tolist()
            what = (slot % len(kinds)).tolist()
            patient = [f"g{g:04d}p{i}" for i in who]
            metric = np.array([kinds[i].id for i in what], np.int16)
            # heart rate from the strap, SpO2 and pulse rate from the oximeter
            device = [
                f"{'HRM' if j == 0 else 'PLX'}-g{g:04d}p{i}" for i, j in zip(who, what, strict=True)
            ]
            second = seq * (batch_readings // per_second + 1) + k // per_second
            spo2 = np.minimum(rng.normal(96, 1.5, n), 100.0)
            value = np.where(metric == metrics.SPO2.id, spo2, rng.normal(75, 8, n)).round(1)
            yield Batch(
                gateway=f"bench-gw-{g:04d}",
                seq=seq,
                sent=T0_MS,
                device=tuple(device),
                patient=tuple(patient),
                metric=metric,
                time=(T0_MS + second * 1000).astype(np.int64),
                value=value.astype(np.float64),
                flags=np.zeros(n, np.int32),
            )
            made += n
        seq += 1


class IngestBench:
    def __init__(
        self,
        readings: int,
        batch_readings: int,
        gateways: int,
        settings: Settings,
        progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
        timescaledb: bool = False,
        database_url: str | None = None,
    ) -> None:
        """``timescaledb``: store into a hypertable, on a server that preloads it;
        ``database_url``: into that database instead (empty: the bench counts what it
        stores), whatever its storage, with a private broker."""
        self.timescaledb = timescaledb
        self.database_url = database_url
        self.readings = readings
        self.batch_readings = batch_readings
        self.gateways = gateways
        self.settings = settings
        self.progress = progress

    def run(self) -> dict[str, Any]:
        if self.database_url:
            with tempfile.TemporaryDirectory(prefix="vigil-bench-") as temp:
                broker = start_broker(Path(temp) / "broker")
                try:
                    return self._run(Path(temp), self.database_url, broker.url)
                finally:
                    broker.stop()
        # its jobs idle: the compression and refresh policies would not run during a
        # two-minute benchmark anyway
        server = preloading_timescaledb(background_jobs=False) if self.timescaledb else None
        with private_stack("vigil-bench-", server) as (folder, database_url, mqtt_url):
            return self._run(folder, database_url, mqtt_url)

    def _run(self, folder: Path, database_url: str, mqtt_url: str) -> dict[str, Any]:
        settings = self.settings.model_copy(
            update={"database_url": database_url, "mqtt_url": mqtt_url}
        )
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
            (rows,) = conn.execute("SELECT count(*) FROM observation").fetchone() or (0,)
        if rows:
            raise UserError(
                f"the database already holds {rows} observations, and the bench counts what it"
                " stores: give it an empty one (e.g. createdb vigil_bench)"
            )
        payloads = [
            (Topics(b.gateway).readings, b.encode())
            for b in fleet_batches(self.readings, self.batch_readings, self.gateways)
        ]
        self.progress(f"{len(payloads)} batches of up to {self.batch_readings} readings ready")
        env = {
            "VIGIL_DATABASE_URL": database_url,
            "VIGIL_MQTT_URL": mqtt_url,
            "VIGIL_INGEST_CLIENT_ID": INGEST_ID,
            "VIGIL_LOG_LEVEL": "WARNING",
        }
        status = Watcher.services(settings, [INGEST_ID], "bench-ingest-watch")
        try:
            ingest = start_service(["ingest"], INGEST_ID, env, folder / "ingest.log", status)
        finally:
            status.close()
        try:
            elapsed = self._publish_and_wait(settings, payloads, database_url)
        finally:
            peak_rss_mb = stop_and_measure(ingest, timeout=60)
        with psycopg.connect(database_url) as conn:
            (stored,) = conn.execute("SELECT count(*) FROM observation").fetchone() or (0,)
            (delivered, kept) = conn.execute(
                "SELECT sum(readings * deliveries), sum(stored) FROM ingest_batch"
            ).fetchone() or (0, 0)
        copy_limit = self._copy_limit(database_url, [p for _, p in payloads])
        with psycopg.connect(database_url) as conn:
            (storage,) = conn.execute("SELECT vigil_storage()").fetchone() or ("",)
        rate = self.readings / elapsed
        return {
            "readings": self.readings,
            "batches": len(payloads),
            "batch_readings": self.batch_readings,
            "gateways": self.gateways,
            "seconds": round(elapsed, 2),
            "readings_per_s": round(rate),
            "copy_limit_per_s": round(copy_limit),
            "ratio": round(rate / copy_limit, 3),
            "storage": storage,
            "peak_rss_mb": peak_rss_mb,
            "lost": self.readings - int(stored),
            "duplicates": int(delivered or 0) - int(kept or 0),
            "goals": GOALS,
        }

    def _publish_and_wait(
        self, settings: Settings, payloads: list[tuple[str, bytes]], database_url: str
    ) -> float:
        # A fleet is thousands of clients publishing at once; one client stands in for it
        # with a wide in-flight window, or its round trips would be what is measured.
        publisher = connect(settings, "bench-publisher", max_inflight=1000)
        try:
            started = time.monotonic()
            for topic, payload in payloads:
                publisher.publish(topic, payload, qos=1)
            with psycopg.connect(database_url, autocommit=True) as conn:
                stored, progressed = 0, time.monotonic()
                while stored < self.readings:
                    time.sleep(0.05)
                    (now_stored,) = conn.execute(
                        "SELECT coalesce(sum(stored), 0) FROM ingest_batch"
                    ).fetchone() or (0,)
                    if int(now_stored) > stored:
                        stored, progressed = int(now_stored), time.monotonic()
                    elif time.monotonic() - progressed > 60:
                        self.progress(f"stalled at {stored} of {self.readings} readings")
                        break
                return time.monotonic() - started
        finally:
            publisher.disconnect()
            publisher.loop_stop()

    def _copy_limit(self, database_url: str, payloads: list[bytes]) -> float:
        """Rows per second of binary COPY of the same rows into the same (emptied) table."""
        batches = [Batch.decode(p) for p in payloads]
        with psycopg.connect(database_url) as conn:
            conn.execute("TRUNCATE observation")
            conn.commit()
            started = time.monotonic()
            chunk: list[Batch] = []
            rows = in_chunk = 0
            for batch in batches:
                chunk.append(batch)
                rows += len(batch)
                in_chunk += len(batch)
                if in_chunk >= COPY_ROWS_PER_COMMIT:
                    with conn.cursor() as cur:
                        writer.copy_rows(cur, "observation", chunk)
                    conn.commit()
                    chunk, in_chunk = [], 0
            if chunk:
                with conn.cursor() as cur:
                    writer.copy_rows(cur, "observation", chunk)
                conn.commit()
            return rows / (time.monotonic() - started)
