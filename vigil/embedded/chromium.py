"""A headless Chromium for the pages' tests and `vigil bench web`.

Playwright cannot download its own browser builds on these machines, so it drives the
system's Chromium (Debian's ``chromium``, which `.ci/run` installs when it can;
``VIGIL_CHROMIUM`` names another). Playwright is a development dependency: it is imported
only when a browser is asked for, and its absence is reported in words.

Playwright's sync API runs an event loop of its own on the calling thread, and refuses to
start a second one while the first runs: the page tests' browser for the session and a
test's own browser, in one pytest run, would collide. So every browser opened here is
launched from one Playwright, started by the first and stopped with the last.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

FLAGS = [
    "--no-sandbox",  # the tests and benchmarks run as root here
    "--disable-gpu",
    "--disable-background-networking",  # this machine's closed network refuses its calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class ChromiumUnavailable(RuntimeError):
    """No Chromium or no Playwright here; the message says how to get it."""


@dataclass
class _Driver:
    playwright: Playwright | None = None
    browsers: int = 0


_DRIVER = _Driver()


def executable() -> str | None:
    return (
        os.environ.get("VIGIL_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless Chromium (Playwright's sync Browser), closed on leaving."""
    path = executable()
    if path is None:
        raise ChromiumUnavailable(
            "no Chromium: install Debian's chromium package (`.ci/run` does, as root) "
            "or name one in VIGIL_CHROMIUM"
        )
    with _playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def _playwright() -> Iterator[Playwright]:
    """The one Playwright of the browsers open here."""
    if _DRIVER.playwright is None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise ChromiumUnavailable(
                "playwright is not installed: pip install 'vigil-rpm[browser]'"
            ) from None
        _DRIVER.playwright = sync_playwright().start()
    playwright = _DRIVER.playwright
    _DRIVER.browsers += 1
    try:
        yield playwright
    finally:
        _DRIVER.browsers -= 1
        if _DRIVER.browsers == 0:
            _DRIVER.playwright = None
            playwright.stop()
