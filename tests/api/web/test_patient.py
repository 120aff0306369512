"""A patient's detail page and night report, in real Chromium over a real `vigil api`: the
week's chart is drawn from the rollup, the alert history, devices and messages are there,
the report shows the seeded night's figures, and a patient of another team is not found.

The browser runs in Europe/Paris (the report's night is the browser's), with an English
locale so the numbers it writes are known here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from alerts.outbox import Channels
from alerts.store import act, take_event
from alerts.teams import assign
from ingest import writer
from ingest.registry import Registry
from tests.alerts.test_store import event
from tests.api.conftest import clinician_token
from tests.api.web.conftest import screenshot
from tests.builders import batch
from vigil.wire.times import iso_of_ms

pytestmark = [pytest.mark.slow, pytest.mark.services]
PARIS = ZoneInfo("Europe/Paris")
OXIMETER = "C2:00:00:00:00:0A"
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Seeded:
    token: str
    night: date
    """The report's date: the night ending on it holds an hour at 1 Hz."""
    week_spo2: list[float]


@pytest.fixture
def paris_page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Europe/Paris", locale="en-GB"
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def oximeter(gateway: str, seq: int, rows: list[tuple[str, str, int, float]]) -> Any:
    return replace(batch(gateway, seq, rows), device=tuple(OXIMETER for _ in rows))


def seed(database_url: str) -> Seeded:
    """A week of one-a-minute readings (but in the report's night, which has an hour at
    1 Hz: ten minutes at 87 % among 95 %), an oximeter moved from one gateway to another,
    an alert in that night acknowledged by a clinician, and a patient of another team."""
    now_ms = int(time.time() * 1000)
    night = datetime.now(PARIS).date() - timedelta(days=2)
    night_start = datetime(night.year, night.month, night.day, tzinfo=PARIS) - timedelta(hours=2)
    night_start_ms = int(night_start.timestamp() * 1000)
    night_end_ms = night_start_ms + 9 * 3_600_000
    block_ms = night_start_ms + 3_600_000  # 23:00
    first = now_ms - 7 * 86_400_000 + 600_000
    first -= first % MINUTE_MS
    week = [
        first + k * MINUTE_MS
        for k in range((now_ms - MINUTE_MS - first) // MINUTE_MS)
        if not night_start_ms <= first + k * MINUTE_MS < night_end_ms
    ]
    spo2 = [("p1", "spo2", ms, 92.0 + k % 7) for k, ms in enumerate(week)]
    pulse = [("p1", "pulse_rate", ms, 60.0 + k % 15) for k, ms in enumerate(week)]
    block = [
        (
            ("p1", "spo2", block_ms + s * 1000, 87.0 if 600 <= s < 1200 else 95.0),
            ("p1", "pulse_rate", block_ms + s * 1000, 58.0 + s % 20),
        )
        for s in range(3600)
    ]
    with psycopg.connect(database_url) as conn:
        token = clinician_token(conn, "dr-page", ["p1"], team="t-ward")
        assign(conn, "p1", "t-ward", "Ada Lovelace")
        clinician_token(conn, "dr-elsewhere", ["p2"], team="t-elsewhere")
        older = oximeter("gw-old", 0, [("p1", "spo2", first - MINUTE_MS, 96.0)])
        writer.store(conn, [older])
        Registry().record_readings(conn, [older], trusted=True)
        conn.commit()
        newer = oximeter("gw-1", 0, spo2 + pulse + [r for pair in block for r in pair])
        writer.store(conn, [newer])
        Registry().record_readings(conn, [newer], trusted=True)
        writer.store(conn, [batch("gw-2", 0, [("p2", "spo2", now_ms - 5000, 81.0)])])
        onset = block_ms + 600_000
        alert = take_event(
            conn,
            event(
                "persisted",
                patient="p1",
                time=iso_of_ms(onset + 15_000),
                evidence={"onset": iso_of_ms(onset)},
            ),
            Channels(),
        )
        assert alert is not None
        take_event(
            conn, event("cleared", patient="p1", time=iso_of_ms(onset + 600_000)), Channels()
        )
        act(conn, alert, "acknowledged", "dr-page", "called the patient")
        conn.commit()
    return Seeded(token, night, [r[3] for r in spo2] + [p[0][3] for p in block] + [96.0])


def test_the_detail_page_draws_the_week_from_the_rollup_and_prints_the_night(
    paris_page: Any, api_base: str, database_url: str
) -> None:
    seeded = seed(database_url)
    page = paris_page
    page.goto(f"{api_base}/app/patient?id=p1#token={seeded.token}")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    spo2 = page.locator("#spo2-chart")
    assert spo2.get_attribute("data-range") == "24h"
    assert page.locator("#name").inner_text() == "Ada Lovelace (p1)"

    page.focus(".ranges button[data-range='24h']")
    with page.expect_response(lambda r: "/trend?range=7d&metric=spo2" in r.url) as answer:
        page.keyboard.press("ArrowRight")  # the range buttons work from the keyboard
    week = json.loads(answer.value.text())
    page.wait_for_selector("#spo2-chart[data-range='7d']:not([aria-busy])")
    assert spo2.get_attribute("data-source") == "rollup" == week["source"]
    assert spo2.get_attribute("data-band") == "true"
    assert spo2.get_attribute("data-bucket") == "600"
    assert int(spo2.get_attribute("data-points") or 0) == len(week["points"]) > 900
    assert page.locator(".ranges button[data-range='7d']").get_attribute("aria-pressed") == "true"
    assert spo2.locator("canvas").count() >= 1
    summary = spo2.locator(".summary").inner_text()
    assert summary.startswith("SpO₂, the last 7 days, from the one-minute rollup")
    lowest, highest = min(seeded.week_spo2), max(seeded.week_spo2)
    assert f"lowest {lowest:g} %, highest {highest:g} %" in summary
    assert f"over {len(seeded.week_spo2):,} readings" in summary
    assert "1 alert episode shaded: high spo2 desaturation" in summary
    plot = spo2.locator(".plot")
    assert plot.get_attribute("aria-label") == "SpO₂ chart, the last 7 days"
    assert page.locator(f"#{plot.get_attribute('aria-describedby')}").inner_text() == summary

    changes = page.locator("#alerts tr[data-alert]").first.inner_text()
    assert "spo2 desaturation" in changes and "high" in changes
    assert "triggered by vigil-alerts" in changes
    assert "acknowledged by dr-page: called the patient" in changes
    devices = page.locator("#devices").inner_text()
    assert OXIMETER in devices and "in use" in devices
    assert "gw-old" in devices and "gw-1" in devices  # both versions of the assignment
    told = page.locator("#told").inner_text()
    assert "Your oxygen level has been low" in told
    screenshot(page, "patient")

    page.fill("#night-date", seeded.night.isoformat())
    page.click("#night-form button[type=submit]")
    page.wait_for_url(f"{api_base}/app/patient?id=p1&report={seeded.night.isoformat()}")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    figures = {
        key: page.locator(f"#{key}").inner_text()
        for key in ("below-90", "below-88", "lowest", "pulse-range", "monitored")
    }
    # An hour at 1 Hz: ten minutes at 87 %; its last reading holds 10 s, not the gap after.
    share = f"{100 * 600 / 3609:.1f}"
    assert figures["below-90"] == f"10 min 0 s ({share} % of the monitored time)"
    assert figures["below-88"] == figures["below-90"]
    assert figures["lowest"].startswith("87 % at ")
    assert figures["pulse-range"].startswith("58 \N{EN DASH} 77 /min")
    assert figures["monitored"] == "1 h 00 min of the night's 9 h 00 min (3,600 readings)"
    assert "Europe/Paris" in page.locator("#report-night").inner_text()
    assert "at most 10 s" in page.locator("#report-method").inner_text()
    assert "acknowledged by dr-page" in page.locator("#report-alerts").inner_text()
    page.emulate_media(media="print")
    assert not page.locator("#print").is_visible() and not page.locator("header.bar").is_visible()
    page.emulate_media(media="screen")
    screenshot(page, "report")


def test_a_patient_of_another_team_typed_into_the_address_is_not_found(
    paris_page: Any, api_base: str, database_url: str
) -> None:
    seeded = seed(database_url)
    page = paris_page
    seen: list[tuple[str, int]] = []
    page.on("response", lambda r: seen.append((r.url, r.status)))
    page.goto(f"{api_base}/app/patient?id=p2#token={seeded.token}")
    page.wait_for_selector("body[data-ready=error]", timeout=15_000)
    assert "not found" in page.locator("[role=alert]").inner_text().lower()
    assert page.locator("#detail").is_hidden() and page.locator("#report").is_hidden()
    assert "81" not in page.locator("body").inner_text()
    asked = [(url, status) for url, status in seen if "/app/" not in url]
    assert asked and all(status == 404 for _, status in asked), asked
    page.goto(f"{api_base}/app/patient?id=p2&report={seeded.night.isoformat()}")
    page.wait_for_selector("body[data-ready=error]", timeout=15_000)
    assert page.locator("#report").is_hidden()
