"""`vigil bench fhir`: what a FHIR client waits for on a large table.

An embedded PostgreSQL is filled (server-side, with ``generate_series``) with
``patients`` patients x ``days`` days of SpO2, pulse rate and heart rate every
``interval`` seconds (8 x 30 x 3 every 3 s: 20.7 million observations) and their
one-minute rollup; a real `vigil api` process then answers, one request at a time over a
kept-alive connection:

- the first page (100 rows) of one patient's last 24 hours, newest first;
- a page in the middle of that walk (its ``next`` link);
- ``Observation/$stats`` over 30 days.

The reference in the same run is the database alone: the same page's SQL, and the same
statistics' SQL, timed from Python, so what the API adds (authorization, audit row,
rendering, HTTP) is the difference. Goals: p99 <= 50 ms for the page, <= 100 ms for $stats.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from alerts.teams import add_team, assign
from api.access.tokens import create_client
from bench.served import api_process, embedded_database, timed
from vigil.db.migrate import migrate
from vigil.metrics import HEART_RATE, PULSE_RATE, SPO2

_FILL = """
INSERT INTO observation (patient, metric, effective, value, flags, device, gateway, seq)
SELECT 'p' || lpad(p::text, 4, '0'), m, t, 90 + (extract(epoch FROM t)::bigint %% 9), 0,
       'C1:00:00:00:00:' || lpad(to_hex(p), 2, '0'), 'gw-bench', 0
FROM generate_series(1, %(patients)s) p,
     unnest(%(metrics)s::smallint[]) m,
     generate_series(%(from)s::timestamptz, %(to)s::timestamptz, %(step)s::interval) t
WHERE t < %(to)s::timestamptz
"""
_ROLLUP = """
INSERT INTO observation_1m
SELECT patient, metric, date_bin('1 minute', effective, timestamptz 'epoch'),
       min(value), max(value), sum(value), count(*)
FROM observation WHERE effective >= %s AND effective < %s
GROUP BY 1, 2, 3
ON CONFLICT (patient, metric, bucket) DO UPDATE SET
    min = least(observation_1m.min, excluded.min), max = greatest(observation_1m.max, excluded.max),
    sum = observation_1m.sum + excluded.sum, count = observation_1m.count + excluded.count
"""
_PAGE_SQL = """
SELECT patient, metric, effective, value, flags, device, received FROM observation
WHERE patient = 'p0001' AND metric = ANY(%s) AND effective >= %s
ORDER BY effective DESC, metric DESC, device DESC LIMIT 101
"""
_STATS_SQL = """
SELECT metric, sum(count), min(min), max(max), sum(sum) / nullif(sum(count), 0), sum(sum)
FROM observation_1m WHERE patient = 'p0001' AND bucket >= %s AND bucket < %s GROUP BY metric
"""


class FhirBench:
    def __init__(
        self, patients: int, days: int, interval: int, requests: int, folder: Path
    ) -> None:
        self.patients = patients
        self.days = days
        self.interval = interval
        self.requests = requests
        self.folder = folder

    def run(self) -> dict[str, Any]:
        with embedded_database(self.folder) as url:
            return self._run(url)

    def _run(self, url: str) -> dict[str, Any]:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            add_team(conn, "bench-ward")
            assign(conn, "p0001", "bench-ward")
            token = create_client(conn, "bench-reader", teams=["bench-ward"])
            rows, loaded = self._fill(conn)
            end = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            day_ago = end.timestamp() - 86_400
            metrics = [SPO2.id, PULSE_RATE.id, HEART_RATE.id]
            since = _iso(day_ago)
            month = (end.timestamp() - 30 * 86_400, end.timestamp())
            page_sql = self._time(lambda: conn.execute(_PAGE_SQL, (metrics, since)).fetchall())
            stats_sql = self._time(
                lambda: conn.execute(_STATS_SQL, tuple(_iso(t) for t in month)).fetchall()
            )
        with api_process(url, self.folder) as port:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Authorization": f"Bearer {token}"}
            first = f"/fhir/Observation?patient=p0001&date=ge{quote(since)}&_count=100"
            middle = _next_of(client, headers, first, hops=50)
            stats = "/fhir/Observation/$stats?subject=p0001&duration=720"
            figures = {
                "page_24h_first": self._time(lambda: _get(client, headers, first)),
                "page_24h_middle": self._time(lambda: _get(client, headers, middle)),
                "stats_30d": self._time(lambda: _get(client, headers, stats)),
            }
            client.close()
        return {
            "observations": rows,
            "load_s": round(loaded, 1),
            "requests": self.requests,
            "api_ms": figures,
            "sql_ms": {"page_24h": page_sql, "stats_30d": stats_sql},
            "goal": "p99 <= 50 ms for a 24-h page of 100, <= 100 ms for $stats over 30 days",
            "met": figures["page_24h_first"]["p99"] <= 50
            and figures["page_24h_middle"]["p99"] <= 50
            and figures["stats_30d"]["p99"] <= 100,
        }

    def _fill(self, conn: psycopg.Connection) -> tuple[int, float]:
        """A day at a time, each day's rollup after it, as ingest would have kept it."""
        started = time.perf_counter()
        now = time.time()
        start = now - self.days * 86_400
        metrics = [SPO2.id, PULSE_RATE.id, HEART_RATE.id]
        for day in range(self.days + 1):
            conn.execute(
                "SELECT vigil_ensure_day('observation', %(d)s::timestamptz::date),"
                " vigil_ensure_day('observation_1m', %(d)s::timestamptz::date)",
                {"d": _iso(start + day * 86_400)},
            )
        for day in range(self.days):
            window = (_iso(start + day * 86_400), _iso(min(start + (day + 1) * 86_400, now)))
            conn.execute(
                _FILL,
                {
                    "patients": self.patients,
                    "metrics": metrics,
                    "from": window[0],
                    "to": window[1],
                    "step": f"{self.interval} seconds",
                },
            )
            conn.execute(_ROLLUP, window)
            print(f"day {day + 1} of {self.days} loaded", file=sys.stderr, flush=True)
        conn.execute("VACUUM ANALYZE observation")
        conn.execute("VACUUM ANALYZE observation_1m")
        row = conn.execute("SELECT count(*) FROM observation").fetchone()
        return int(row[0]) if row else 0, time.perf_counter() - started

    def _time(self, call: Callable[[], object]) -> dict[str, float]:
        return timed(call, self.requests)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _get(client: http.client.HTTPConnection, headers: dict[str, str], path: str) -> bytes:
    client.request("GET", path, headers=headers)
    answer = client.getresponse()
    body = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"{path} answered {answer.status}: {body[:300]!r}")
    return body


def _next_of(
    client: http.client.HTTPConnection, headers: dict[str, str], path: str, hops: int
) -> str:
    """The page ``hops`` next links into the walk that starts at ``path``."""
    for _ in range(hops):
        links = json.loads(_get(client, headers, path))["link"]
        found = [link["url"] for link in links if link["relation"] == "next"]
        if not found:
            break
        path = found[0].split("/fhir/", 1)[1]
        path = "/fhir/" + path
    return path
