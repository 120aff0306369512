"""`vigil bench web`: how long each page takes to show its data, in real Chromium.

A private embedded PostgreSQL gets ``patients`` patients on one care team with ``days`` days
of SpO2 and pulse rate in the one-minute rollup (filled server-side with
``generate_series``: 200 x 30 days is 17 million rows), the last hour of 1 Hz readings
through ingest's own writer (which rolls them up as ingest does), each patient's strap and
oximeter through the registry, and a few open alerts of each priority through the alerts
store. A real `vigil api` serves the pages; headless Chromium (Debian's, through
Playwright) loads each one ``repeats`` times, each time in a fresh browser context (a first
visit: nothing cached, the token taken from the link as the demo prints it), after one
round not counted:

- ``station``: the central station, signed in as a clinician who sees every patient (a
  station that did not draw a tile for each of them stops the bench);
- ``patient``: a patient's detail page (the one with a high alert), then ``patient_RANGE``
  for each range button it has (``button[data-range]``, on any page), from the click to
  the charts drawn (nothing on the page ``aria-busy`` any more);
- ``patient_view``: the patient's own view, signed in as that patient, on a phone's screen.

A load is timed from navigation start to the moment the page marks itself ready
(``document.body.dataset.ready = "true"``, the pages' convention), read from the page's own
clock (``performance.now()``, whose origin is navigation start) by a script Chromium runs in
the page before the page's own, so Playwright's polling is not in the figure. A page that
marks an error, or never marks itself ready, stops the bench with what it said. Goal (issue
16): every page under 1 s.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from alerts.outbox import Channels
from alerts.store import take_event
from alerts.teams import add_team, assign
from api.access.tokens import create_client
from bench.served import api_process, embedded_database
from ingest.registry import Registry
from ingest.writer import store
from simulators.ble.ward import oximeter_address, patient_id, strap_address
from vigil.db.enrollment import EnrollmentView
from vigil.db.migrate import migrate
from vigil.embedded.chromium import headless_chromium
from vigil.metrics import PULSE_RATE, SPO2
from vigil.wire.batch import Batch
from vigil.wire.events import AnalyticsEvent, EventKind
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.times import iso
from vigil.wire.topics import Topics

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

GOAL_MS = 1000
TEAM = "bench-ward"
PAGE_TIMEOUT_MS = 30_000
RAW_S = 3600
"""The last hour is raw 1 Hz readings; before it, the rollup alone."""
ALERT_RULES = (
    ("spo2_desaturation", "spo2"),  # high
    ("hr_news2_red_high", "pulse_rate"),  # medium
    ("spo2_below_baseline", "spo2"),  # low
)
ALERTS_PER_PRIORITY = 3
WARM_UP = 1
"""Rounds of loads not counted: the API process's first requests pay for its connection
pool and lazy imports, which no clinician meets after the first."""
DESK: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Runs in the page before its own scripts, and keeps the page's clock of two moments: each
# time body's data-ready is set ("ready", with its value), and each time the last element
# marked aria-busy stops being busy ("settled": a range's charts drawn). Observed from the
# document down: neither <html> nor <body> is parsed yet when it runs.
_PAGE_CLOCK = """
window.__vigilMarks = [];
new MutationObserver((changes) => {
  const at = performance.now();
  for (const change of changes) {
    if (change.attributeName === "data-ready") {
      const state = document.body && document.body.dataset.ready;
      if (state) window.__vigilMarks.push({ kind: "ready", state, at });
    } else if (!document.querySelector("[aria-busy=true]")) {
      window.__vigilMarks.push({ kind: "settled", state: "true", at });
    }
  }
}).observe(document, {
  subtree: true, attributes: true, attributeFilter: ["data-ready", "aria-busy"],
});
"""
_MARKED = "([kind, after]) => window.__vigilMarks.some((m) => m.kind === kind && m.at > after)"
_FIRST_MARK = "([kind, after]) => window.__vigilMarks.find((m) => m.kind === kind && m.at > after)"
_DISTINCT_PATIENTS = "(tiles) => new Set(tiles.map((tile) => tile.dataset.patient)).size"
_CLICK = "(button) => { const at = performance.now(); button.click(); return at; }"
_ROLLUP = """
INSERT INTO observation_1m (patient, metric, bucket, min, max, sum, count)
SELECT patient, metric, bucket, value - 1, value + 1, value * 60, 60
FROM unnest(%(patients)s::text[]) WITH ORDINALITY AS p (patient, n),
     unnest(%(metrics)s::smallint[]) AS m (metric),
     generate_series(%(from)s::timestamptz, %(to)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS bucket,
     LATERAL (SELECT CASE WHEN metric = %(spo2)s
                  THEN 95 + 2 * sin(extract(epoch FROM bucket) / 3600 + n)
                  ELSE 72 + 9 * sin(extract(epoch FROM bucket) / 5400 + n) END) AS v (value)
"""


class WebBench:
    def __init__(self, patients: int, days: int, repeats: int, folder: Path) -> None:
        self.patients = [patient_id(i) for i in range(patients)]
        self.days = days
        self.repeats = repeats
        self.folder = folder

    def run(self) -> dict[str, Any]:
        # The browser first: without one, nothing is worth seeding.
        with headless_chromium() as browser, embedded_database(self.folder) as url:
            with psycopg.connect(url, autocommit=True) as conn:
                started = time.perf_counter()
                clinician, patient = self._seed(conn)
                loaded = time.perf_counter() - started
            with api_process(url, self.folder) as port:
                pages = self._measure(browser, f"http://127.0.0.1:{port}", clinician, patient)
        return {
            "pages": pages,
            "goal_ms": GOAL_MS,
            "met": all(page["max_ms"] < GOAL_MS for page in pages.values()),
            "patients": len(self.patients),
            "days": self.days,
            "repeats": self.repeats,
            "load_s": round(loaded, 1),
        }

    # -- the data -----------------------------------------------------------------------

    def _seed(self, conn: psycopg.Connection) -> tuple[str, str]:
        """Everything a page shows, written as the services write it; the clinician's and
        the first patient's tokens."""
        migrate(conn)
        add_team(conn, TEAM, "Bench ward")
        for patient in self.patients:
            assign(conn, patient, TEAM)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        raw_from = now - timedelta(seconds=RAW_S)
        self._roll_up(conn, now - timedelta(days=self.days), raw_from)
        self._devices(conn)
        self._readings(conn, raw_from, now)
        self._alerts(conn, now)
        conn.execute("VACUUM ANALYZE observation_1m")
        conn.execute("VACUUM ANALYZE observation")
        clinician = create_client(conn, "bench-clinician", teams=[TEAM])
        patient = create_client(conn, "bench-patient", "patient", patient=self.patients[0])
        return clinician, patient

    def _roll_up(self, conn: psycopg.Connection, start: datetime, end: datetime) -> None:
        """The rollup, a day at a time, as years of ingest would have left it."""
        for day in range((end.date() - start.date()).days + 1):
            conn.execute(
                "SELECT vigil_ensure_day('observation', %(d)s),"
                " vigil_ensure_day('observation_1m', %(d)s)",
                {"d": start.date() + timedelta(days=day)},
            )
        chunk = start
        while chunk < end:
            chunk_end = min(chunk + timedelta(days=1), end)
            conn.execute(
                _ROLLUP,
                {
                    "patients": self.patients,
                    "metrics": [SPO2.id, PULSE_RATE.id],
                    "spo2": SPO2.id,
                    "from": chunk,
                    "to": chunk_end,
                },
            )
            print(f"rollup to {chunk_end:%Y-%m-%d %H:%M} loaded", file=sys.stderr, flush=True)
            chunk = chunk_end

    def _devices(self, conn: psycopg.Connection) -> None:
        """Each patient's gateway online with a strap and an oximeter connected, as the
        gateways' retained reports tell ingest's registry."""
        reports: list[tuple[str, bytes]] = []
        for index, patient in enumerate(self.patients):
            topics = Topics(_gateway(patient))
            battery = 100 - (index * 7) % 90
            devices = GatewayDevices(
                (
                    _connected(strap_address(index), patient, "heart-rate-strap", battery),
                    _connected(oximeter_address(index), patient, "pulse-oximeter", battery),
                )
            )
            status = GatewayStatus(_gateway(patient), Presence.ONLINE)
            reports += [(topics.devices, devices.encode()), (topics.status, status.encode())]
        Registry().record_reports(conn, reports, EnrollmentView("off"))

    def _readings(self, conn: psycopg.Connection, start: datetime, end: datetime) -> None:
        """The last hour at 1 Hz from each oximeter, through ingest's writer."""
        rng = np.random.default_rng(1)
        first_ms = int(start.timestamp() * 1000)
        seconds = int((end - start).total_seconds())
        times = first_ms + 1000 * np.arange(seconds, dtype=np.int64)
        batches = []
        for index, patient in enumerate(self.patients):
            spo2 = np.clip(96 + rng.normal(0, 1, seconds), 85, 100).round()
            pulse = (72 + rng.normal(0, 3, seconds)).round()
            batches.append(
                Batch(
                    gateway=_gateway(patient),
                    seq=0,
                    sent=int(times[-1]),
                    device=(oximeter_address(index),) * (2 * seconds),
                    patient=(patient,) * (2 * seconds),
                    metric=np.repeat(np.array([SPO2.id, PULSE_RATE.id], np.int16), seconds),
                    time=np.tile(times, 2),
                    value=np.concatenate([spo2, pulse]),
                    flags=np.zeros(2 * seconds, np.int32),
                )
            )
        for at in range(0, len(batches), 20):
            with conn.transaction():
                store(conn, batches[at : at + 20])
        print(f"{len(batches) * 2 * seconds} raw readings stored", file=sys.stderr, flush=True)

    def _alerts(self, conn: psycopg.Connection, now: datetime) -> None:
        """Open alerts, high, medium and low in turn, on the first patients."""
        count = min(len(self.patients), ALERTS_PER_PRIORITY * len(ALERT_RULES))
        for index in range(count):
            rule, metric = ALERT_RULES[index % len(ALERT_RULES)]
            at = now - timedelta(minutes=5 + index)
            event = AnalyticsEvent(
                id=f"bench-{index}",
                patient=self.patients[index],
                metric=metric,
                rule=rule,
                kind=EventKind.PERSISTED,
                time=at,
                value=86.0 if metric == "spo2" else 132.0,
                evidence={"onset": iso(at - timedelta(seconds=15))},
                gateway=_gateway(self.patients[index]),
            )
            with conn.transaction():
                take_event(conn, event, Channels())

    # -- the pages ----------------------------------------------------------------------

    def _measure(
        self, browser: Browser, base: str, clinician: str, patient: str
    ) -> dict[str, dict[str, float]]:
        pages = (
            ("station", f"{base}/app/#token={clinician}", DESK),
            ("patient", f"{base}/app/patient?id={self.patients[0]}#token={clinician}", DESK),
            ("patient_view", f"{base}/app/mine#token={patient}", PHONE),
        )
        took: dict[str, list[float]] = {}
        tiles: set[int] = set()
        for round_ in range(WARM_UP + self.repeats):
            for name, url, viewport in pages:
                loads, shown = _load(browser, name, url, viewport)
                for timed, ms in loads:
                    if round_ >= WARM_UP:
                        took.setdefault(timed, []).append(ms)
                if name == "station":
                    tiles.add(shown)
        print(f"{self.repeats} loads of each page timed", file=sys.stderr, flush=True)
        if tiles != {len(self.patients)}:
            raise RuntimeError(
                f"the station showed {sorted(tiles)} patients' tiles, not {len(self.patients)}"
            )
        return {name: percentiles(values) for name, values in took.items()}


def _gateway(patient: str) -> str:
    return f"gw-{patient}"


def _connected(address: str, patient: str, kind: str, battery: int) -> DeviceReport:
    return DeviceReport(address, patient, "connected", kind=kind, battery=battery)


def _load(
    browser: Browser, name: str, url: str, viewport: ViewportSize
) -> tuple[list[tuple[str, float]], int]:
    """Open ``url`` in a fresh context: ms from navigation start to the page's ready mark,
    then from each click on a range button (``button[data-range]``) until nothing on the
    page is busy any more (the patient page marks its charts aria-busy while it fetches and
    draws a range). And how many patients' tiles (``[data-patient]``) it showed when ready:
    a station that drew fewer than it was given was not measured with its data."""
    context = browser.new_context(viewport=viewport)
    try:
        context.add_init_script(_PAGE_CLOCK)
        page = context.new_page()
        page.goto(url, wait_until="commit")
        took = [(name, _mark_after(page, "ready", name, 0.0))]
        shown = int(page.eval_on_selector_all("[data-patient]", _DISTINCT_PATIENTS))
        for button in page.locator("button[data-range]").all():
            timed = f"{name}_{button.get_attribute('data-range')}"
            clicked = float(button.evaluate(_CLICK))
            took.append((timed, _mark_after(page, "settled", timed, clicked) - clicked))
        return took, shown
    finally:
        context.close()


def _mark_after(page: Page, kind: str, name: str, after: float) -> float:
    """The page's clock at its next ``kind`` mark after ``after``; an error the page showed,
    or no mark at all, stops the bench saying so."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.wait_for_function(_MARKED, arg=[kind, after], timeout=PAGE_TIMEOUT_MS)
    except PlaywrightError as exc:  # a timeout, or the page went elsewhere (signed out)
        waited_for = (
            "mark itself ready (document.body.dataset.ready)"
            if kind == "ready"
            else "finish drawing (its aria-busy elements)"
        )
        raise RuntimeError(
            f"the {name} page ({page.url}) did not {waited_for} within "
            f"{PAGE_TIMEOUT_MS // 1000} s: {exc.message}"
        ) from None
    mark = page.evaluate(_FIRST_MARK, [kind, after])
    if mark["state"] != "true":
        alert = page.locator("[role=alert]").all_inner_texts()
        said = " ".join(text.strip() for text in alert if text.strip()) or "nothing"
        raise RuntimeError(f"the {name} page marked an error; it said: {said}")
    return float(mark["at"])


def percentiles(took: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank) and max in ms."""
    ordered = sorted(took)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1], 1),
    }
