"""Browsers opened one inside another (the page tests' session browser and a test's own, in
one pytest run) share one Playwright, and the last to close stops it."""

from __future__ import annotations

import pytest

from vigil.embedded import chromium
from vigil.embedded.chromium import ChromiumUnavailable, headless_chromium

pytestmark = pytest.mark.slow


def test_a_browser_opens_while_another_is_open() -> None:
    before = chromium._DRIVER.browsers  # the page tests' session browser may be open
    try:
        with headless_chromium() as outer:
            with headless_chromium() as inner:
                assert inner.new_page().evaluate("1 + 1") == 2
            assert outer.new_page().evaluate("2 + 2") == 4
    except ChromiumUnavailable as missing:
        pytest.skip(str(missing))
    assert chromium._DRIVER.browsers == before
    if before == 0:
        assert chromium._DRIVER.playwright is None
    with headless_chromium() as again:  # a fresh Playwright after the last one stopped
        assert again.is_connected()
