"""Signing in, in real Chromium: a token leads a clinician to the station and a patient to
their own view; a bad one is refused in words."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from api.access.tokens import create_client
from tests.api.conftest import clinician_token
from tests.api.web.conftest import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_a_token_signs_in_and_a_bad_one_is_refused(
    browser_page: Any, api_base: str, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        clinician = clinician_token(conn, "dr-web", ["p0001"])
        patient = create_client(conn, "pt-web", "patient", patient="p0001")
        conn.commit()
    page = browser_page
    page.goto(f"{api_base}/")
    page.wait_for_url(f"{api_base}/app/signin*")
    screenshot(page, "signin")
    page.fill("#token", "vigil_not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("#error")).to_contain_text("not valid")

    page.fill("#token", clinician)
    page.click("button[type=submit]")
    page.wait_for_url(f"{api_base}/app/")
    assert page.evaluate("sessionStorage.getItem('vigil.token')") == clinician

    other = page.context.new_page()  # another tab: not signed in
    other.goto(f"{api_base}/app/mine#token={patient}")
    assert other.evaluate("location.hash") == ""  # the token left the address bar
    assert other.evaluate("sessionStorage.getItem('vigil.token')") == patient
