"""What the pages' tests share: Debian's Chromium driven by Playwright, and a real `vigil api`
serving the pages over a test database.

Playwright drives the system's Chromium (:mod:`vigil.embedded.chromium`, shared with `vigil
bench web`). Without it, or without Playwright, these tests are skipped, and say why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.served import api_process
from vigil.embedded.chromium import ChromiumUnavailable, headless_chromium

SCREENSHOTS = Path(__file__).parents[3] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright's Browser), for one test module: while Playwright's
    sync API runs, the main thread has an event loop, and a later test's asyncio.run() in
    the same session would fail, so the last browser closes (and stops it) with its module."""
    try:
        with headless_chromium() as browser:
            yield browser
    except ChromiumUnavailable as missing:
        pytest.skip(str(missing))


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    """A fresh page in a context of its own (its own sessionStorage), 1280x800."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def api_base(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A `vigil api` over the test's database: its base URL once it listens."""
    with api_process(database_url, tmp_path) as port:
        yield f"http://127.0.0.1:{port}"


def screenshot(page: Any, name: str) -> None:
    """Keep a picture of the page for the README when ``VIGIL_SCREENSHOTS=1`` (`make
    screenshots`)."""
    if os.environ.get("VIGIL_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
