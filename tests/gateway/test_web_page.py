"""The pairing page in a real browser: a patient types the gateway's code, scans, pairs the
simulated oximeter, sees it connect, and unpairs it, as on a phone at home.

Debian's chromium, driven by Playwright for Python (:mod:`vigil.embedded.chromium`); the
wearables are `vigil simulate --patients 1` serving the gateway's controller to a real
`vigil gateway --hci ... --web PORT`, with no broker (readings wait in the outbox). With
VIGIL_SCREENSHOTS=1 the page is saved to docs/screenshots/pairing.png for the README.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil.embedded.chromium import ChromiumUnavailable, headless_chromium
from vigil.embedded.processes import free_port, spawn, stop, vigil_command, wait_for_port

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshots" / "pairing.png"
OXIMETER = "C2:00:00:00:00:00"
ANNOUNCED = re.compile(r"Pairing page: (http://\S+)  code: (\d{6})")


def pairings(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "pairings.json"
    return json.loads(path.read_text()) if path.exists() else []


def announced(log: Path, process: subprocess.Popen[bytes], timeout: float) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = ANNOUNCED.search(log.read_text()) if log.exists() else None
        if found:
            return found[1], found[2]
        time.sleep(0.1)
    raise AssertionError(f"the gateway announced no pairing page:\n{log.read_text()[-3000:]}")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(page URL, code, data dir) of a gateway with one simulated patient's wearables."""
    hci, web = free_port(), free_port()
    data_dir = tmp_path / "gateway"
    env = {
        "VIGIL_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",  # nobody there
        "VIGIL_GATEWAY_ID": "gw-web-page",
        "VIGIL_GATEWAY_DATA_DIR": str(data_dir),
    }
    simulator = spawn(
        vigil_command("simulate", "--patients", "1", "--hci", f"tcp-server:127.0.0.1:{hci}"),
        env,
        tmp_path / "simulator.log",
    )
    processes = [simulator]
    try:
        assert wait_for_port(hci, 60, simulator), (tmp_path / "simulator.log").read_text()
        argv = ["gateway", "--hci", f"tcp-client:127.0.0.1:{hci}"]
        log = tmp_path / "gateway.log"
        gateway = spawn(
            vigil_command(*argv, "--web", str(web), "--web-host", "127.0.0.1"), env, log
        )
        processes.append(gateway)
        url, code = announced(log, gateway, 60)
        yield url, code, data_dir
        assert stop(gateway, timeout=30) == 0, log.read_text()[-3000:]
    finally:
        for process in reversed(processes):
            stop(process, timeout=15)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        with headless_chromium() as chromium:
            yield chromium
    except ChromiumUnavailable as missing:
        pytest.skip(str(missing))


def test_the_pairing_page_pairs_a_simulated_device(
    gateway: tuple[str, str, Path], browser: Any
) -> None:
    from playwright.sync_api import expect

    url, code, data_dir = gateway
    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.goto(url)

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label("Code", exact=True).fill(wrong)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_label("Code", exact=True).press("Enter")  # a keyboard is enough
    expect(page.get_by_text("No device is paired yet.")).to_be_visible()
    assert pairings(data_dir) == []

    page.get_by_role("button", name="Scan").click()
    pair = page.get_by_role("button", name="Pair PLX p0001")
    expect(pair).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name="Pair HRM p0001")).to_be_visible()
    page.get_by_label("Patient ID").fill("p0001")
    pair.click()
    expect(page.get_by_role("status").first).to_contain_text("Paired PLX p0001", timeout=20_000)
    assert [(p["address"], p["patient"], p["kind"]) for p in pairings(data_dir)] == [
        (OXIMETER, "p0001", "pulse-oximeter")
    ]

    card = page.locator("#paired-list li", has_text="PLX p0001")
    expect(card).to_contain_text("Connected", timeout=60_000)  # the next discovery pass
    expect(card).to_contain_text("Battery:")
    expect(card).to_contain_text("Last reading:")
    if os.environ.get("VIGIL_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Unpair PLX p0001").click()
    expect(page.get_by_text("No device is paired yet.")).to_be_visible(timeout=10_000)
    assert pairings(data_dir) == []
