"""A patient's own view, in real Chromium on a phone's screen over a real `vigil api`: their
readings in plain words, their messages, their devices and the sensor hint, and nothing at
all of another patient, on this page, on the clinicians' pages opened by URL, or through the
API called with their token.

The browser runs in UTC with an English locale, so the times and numbers it writes are
known here."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from alerts.model import KINDS
from alerts.outbox import Channels
from alerts.store import take_event
from api.access.tokens import create_client
from ingest import writer
from ingest.registry import Registry
from tests.alerts.test_store import event
from tests.api.conftest import clinician_token
from tests.api.web.conftest import screenshot
from tests.builders import batch
from vigil.db.enrollment import EnrollmentView
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.services]
MINUTE_MS = 60_000
PHONE = {"width": 375, "height": 812}
A, B = "p0001", "p0002"
B_MESSAGE = "Bravo's own words: recharge the blue strap tonight."
B_SIGNS = (B, "83 %", "71 %", "133", "57 %", "C2:00:00:00:00:0C", B_MESSAGE)
"""Everything that would tell that B's data leaked: id, values, battery, device, message."""


@dataclass(frozen=True)
class Seeded:
    token: str
    dip: datetime
    """When A's oxygen was lowest (91 %), three hours ago."""


def readings(patient: str, device: str, gateway: str, spo2: Any, pulse: Any, now_ms: int) -> Any:
    """A week of one reading a minute of SpO2 and pulse rate from one oximeter, ending a
    minute ago; ``spo2``/``pulse``: the value at minute ``k`` (its time in ms)."""
    first = now_ms - 7 * 86_400_000 + 10 * MINUTE_MS
    first -= first % MINUTE_MS
    times = [first + k * MINUTE_MS for k in range((now_ms - MINUTE_MS - first) // MINUTE_MS)]
    rows = [(patient, "spo2", ms, spo2(k, ms)) for k, ms in enumerate(times)]
    rows += [(patient, "pulse_rate", ms, pulse(k, ms)) for k, ms in enumerate(times)]
    return replace(batch(gateway, 0, rows), device=tuple(device for _ in rows))


def devices(conn: psycopg.Connection, gateway: str, *reports: DeviceReport) -> None:
    """The gateway's retained reports, recorded as ingest records them."""
    topics = Topics(gateway)
    Registry().record_reports(
        conn,
        [
            (topics.status, GatewayStatus(gateway, Presence.ONLINE).encode()),
            (topics.devices, GatewayDevices(reports).encode()),
        ],
        EnrollmentView("off"),
    )


def seed(database_url: str) -> Seeded:
    """A: oxygen 95-96 % with one minute at 91 % three hours ago, pulse 62-64; an oximeter
    connected at 80 % and a strap being searched for at 15 %; told of low oxygen, then of
    the finger clip, which is still off. B: oxygen 83 % (71 % once), pulse 133, an oximeter
    at 57 %, and a message of their own wording."""
    now_ms = int(time.time() * 1000)
    dip_ms = now_ms - 3 * 3_600_000
    dip_ms -= dip_ms % MINUTE_MS
    with psycopg.connect(database_url, autocommit=True) as conn:
        writer.store(
            conn,
            [
                readings(
                    A,
                    "C1:00:00:00:00:0A",
                    "gw-a",
                    lambda k, ms: 91.0 if ms == dip_ms else 95.0 + k % 2,
                    lambda k, ms: 62.0 + k % 3,
                    now_ms,
                ),
                replace(
                    readings(
                        B,
                        "C2:00:00:00:00:0C",
                        "gw-b",
                        lambda k, ms: 71.0 if k == 100 else 83.0,
                        lambda k, ms: 133.0,
                        now_ms,
                    ),
                    seq=1,
                ),
            ],
        )
        devices(
            conn,
            "gw-a",
            DeviceReport("C1:00:00:00:00:0A", A, "connected", "pulse-oximeter", battery=80),
            DeviceReport("C1:00:00:00:00:0B", A, "searching", "heart-rate-strap", battery=15),
        )
        devices(
            conn, "gw-b", DeviceReport("C2:00:00:00:00:0C", B, "connected", "pulse-oximeter", 57)
        )
        for e, channels in (
            (event("persisted", patient=A, gateway="gw-a"), Channels()),
            (event("persisted", "check_sensor", "spo2", patient=A, gateway="gw-a"), Channels()),
            (
                event("persisted", "check_sensor", "heart_rate", patient=B, gateway="gw-b"),
                Channels(patient_messages={"check_sensor": B_MESSAGE}),
            ),
        ):
            with conn.transaction():
                take_event(conn, e, channels)
        clinician_token(conn, "dr-both", [A, B])  # one team has both: only the policy parts them
        token = create_client(conn, "a-self", "patient", patient=A)
    return Seeded(token, datetime.fromtimestamp(dip_ms / 1000, UTC))


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport=PHONE, timezone_id="UTC", locale="en-GB", is_mobile=True, has_touch=True
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def ready(page: Any) -> str:
    page.wait_for_selector("body[data-ready]", timeout=15_000)
    return str(page.evaluate("document.body.dataset.ready"))


def shows_nothing_of_b(page: Any) -> None:
    text = page.inner_text("body")
    html = page.content()
    for sign in B_SIGNS:
        assert sign not in text and sign not in html, sign


def test_a_patient_sees_their_own_readings_messages_devices_and_sensor_hint(
    phone: Any, api_base: str, database_url: str
) -> None:
    seeded = seed(database_url)
    page = phone
    page.goto(f"{api_base}/app/mine#token={seeded.token}")
    assert ready(page) == "true", page.inner_text("#error")
    dip = seeded.dip.strftime("%H:%M")
    assert page.inner_text("#day-oxygen") == (
        f"Your oxygen in the last 24 hours: mostly between 95 and 96 %. Lowest 91 % at {dip}."
    )
    assert page.inner_text("#day-pulse").startswith(
        "Your pulse in the last 24 hours: mostly between 62 and 64 beats a minute."
    )
    assert page.inner_text("#night").startswith(("Your oxygen last night", "Your oxygen tonight"))
    assert "Lowest 91 %" in page.inner_text("#week-oxygen")
    assert page.get_attribute("#day-chart", "role") == "img"
    assert page.get_attribute("#day-chart", "aria-label") == page.inner_text("#day-oxygen")
    assert page.locator("#day-chart canvas").count() >= 1

    messages = page.locator("#messages li")
    assert messages.count() == 2
    assert messages.nth(0).inner_text().count(KINDS["check_sensor"].patient_message) == 1
    assert KINDS["spo2_desaturation"].patient_message in messages.nth(1).inner_text()

    hint = page.locator("#sensor")
    assert hint.is_visible()
    assert "finger clip is not getting a good reading" in hint.inner_text()
    assert "chest strap" not in hint.inner_text()  # the strap has no open condition

    cards = page.locator("#devices li")
    assert cards.count() == 2
    shown = [cards.nth(i).inner_text() for i in range(2)]
    clip = next(c for c in shown if c.startswith("Finger clip"))
    strap = next(c for c in shown if c.startswith("Chest strap"))
    assert "Connected" in clip and "Battery 80 %" in clip
    assert "Not connected" in strap
    assert "Battery low: 15 %" in strap
    # The last was seeded a minute or two before the page opened.
    assert re.fullmatch(r"Your last reading came [1-5] min ago\.", page.inner_text("#last-reading"))
    # A phone's width: nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shows_nothing_of_b(page)
    screenshot(page, "patient-view")


def test_another_patient_is_out_of_reach_by_url_and_by_api(
    phone: Any, api_base: str, database_url: str
) -> None:
    seeded = seed(database_url)
    page = phone
    page.goto(f"{api_base}/app/mine#token={seeded.token}")
    assert ready(page) == "true"

    page.goto(f"{api_base}/app/patient?id={B}")  # the same tab: still signed in as A
    assert ready(page) == "error"
    assert "not found" in page.inner_text("[role=alert]").lower()
    text = page.inner_text("body")
    for sign in B_SIGNS[1:]:  # the id is in the address typed, and may be said back
        assert sign not in text, sign

    page.goto(f"{api_base}/app/")  # the station sends a patient to their own view
    page.wait_for_url(f"{api_base}/app/mine")
    assert ready(page) == "true"
    shows_nothing_of_b(page)

    answers = page.evaluate(
        """async (paths) => {
          const token = sessionStorage.getItem("vigil.token");
          const out = [];
          for (const path of paths) {
            const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
            out.push([path, r.status, await r.text()]);
          }
          return out;
        }""",
        [
            f"/patients/{B}/messages",
            f"/patients/{B}/trend?metric=spo2&range=24h",
            f"/patients/{B}/night",
            f"/alerts?patient={B}&state=all",
            f"/fhir/Device?patient=Patient/{B}",
            f"/fhir/Observation?patient=Patient/{B}",
            f"/fhir/Communication?patient=Patient/{B}",
            f"/fhir/Patient/{B}",
            "/station",
            "/alerts?state=all",
        ],
    )
    for path, status, body in answers:
        shown = body.replace(path, "")  # a search's self link repeats what was asked
        assert status in (200, 404), (path, status)
        for sign in B_SIGNS:
            assert sign not in shown, (path, sign)
    statuses = {path: status for path, status, _ in answers}
    assert statuses[f"/patients/{B}/messages"] == 404
    assert statuses["/station"] == 200


def test_the_plain_words_name_the_usual_range_the_lowest_and_the_night(
    phone: Any, api_base: str
) -> None:
    """summary.js on its own: a short dip does not widen "mostly between", it is named as
    the lowest with its time; the night is the one begun last; a week ago has its date."""
    page = phone
    page.goto(f"{api_base}/app/signin")
    said = page.evaluate(
        """async () => {
          const s = await import("/app/static/js/summary.js");
          const now = new Date("2026-03-04T08:00:00Z");
          const start = Date.parse("2026-03-03T08:00:00Z");
          const points = [];
          for (let k = 0; k < 1440; k += 1) {
            const value = k >= 1150 && k < 1155 ? 88 : 95 + (k % 2);
            points.push([start + k * 60000, value, value, value]);
          }
          const night = (iso) => {
            const { start: begun, over } = s.lastNight(new Date(iso));
            return [begun.toISOString(), over];
          };
          const steady = points.slice(0, 2).map(([t]) => [t, 97, 97, 97]);
          return {
            day: s.describe("spo2", points, "in the last 24 hours", now),
            none: s.describe("pulse_rate", [], "last night", now),
            steady: s.describe("spo2", steady, "today", now),
            before: night("2026-03-03T21:59:00Z"),
            after: night("2026-03-03T22:00:00Z"),
            week: s.when(new Date("2026-02-25T03:12:00Z"), now),
            days: s.when(new Date("2026-02-27T03:12:00Z"), now),
          };
        }"""
    )
    assert said["day"] == (
        "Your oxygen in the last 24 hours: mostly between 95 and 96 %."
        " Lowest 88 % at 03:10."  # minute 1150 after 08:00 the day before
    )
    assert said["none"] == "No pulse readings last night."
    assert said["steady"].startswith("Your oxygen today: mostly 97 %. Lowest 97 %")
    assert said["before"] == ["2026-03-02T22:00:00.000Z", True]
    assert said["after"] == ["2026-03-03T22:00:00.000Z", False]
    assert said["week"] == "on Wednesday 25 February at 03:12"
    assert said["days"] == "on Friday at 03:12"
