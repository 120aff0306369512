"""The pairing page's server: who gets in, how wrong codes are slowed, and that pairing and
unpairing change the same registry as `vigil pair`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from gateway.pairing import Pairing, Registry
from gateway.service import Backends
from gateway.web.access import MAX_SESSIONS, SESSION_S, Gate, host_allowed, peer_allowed
from gateway.web.devices import paired, signal_label, suggested_patient
from gateway.web.server import COOKIE, CSRF_HEADER, SOMETHING_WENT_WRONG, PairingPage
from simulators.ble import Ward
from tests.cli.test_main import vigil
from vigil.embedded.processes import free_port
from vigil.wire.status import DeviceReport

CODE = "402917"
POST = {CSRF_HEADER: "1"}
OXIMETER = "C2:00:00:00:00:00"


def oximeter(patient: str = "p0001") -> Pairing:
    return Pairing(OXIMETER, patient, "pulse-oximeter", "PLX p0001", "2026-12-01T10:00:00Z", True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Scenario = Callable[[TestClient[web.Request, web.Application]], Awaitable[None]]


def serve(page: PairingPage, scenario: Scenario) -> None:
    async def run() -> None:
        async with TestClient(TestServer(page.app())) as client:
            await scenario(client)

    asyncio.run(run())


def page_on(
    tmp_path: Path,
    reports: Callable[[], Mapping[str, DeviceReport]] = dict,
    gate: Gate | None = None,
) -> PairingPage:
    return PairingPage(
        Registry(tmp_path / "pairings.json"), Backends(), reports, gate or Gate(CODE)
    )


async def sign_in(client: TestClient[web.Request, web.Application], code: str = CODE) -> int:
    response = await client.post("/api/session", json={"code": code}, headers=POST)
    return response.status


# -- who may connect ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "peer",
    [
        "127.0.0.1",
        "::1",
        "192.168.1.20",
        "10.4.0.7",
        "172.16.3.4",
        "169.254.10.1",
        "fe80::1%eth0",
        "fd12:3456::1",
        "::ffff:192.168.1.2",
    ],
)
def test_the_home_network_may_connect(peer: str) -> None:
    assert peer_allowed(peer)


@pytest.mark.parametrize(
    "peer", ["8.8.8.8", "100.64.0.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "", None, "x"]
)
def test_the_internet_may_not(peer: str | None) -> None:
    assert not peer_allowed(peer)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("192.168.1.5:8080", True),
        ("[fe80::1]:8080", True),
        ("localhost:8080", True),
        ("homebox.local:8080", True),
        ("HOMEBOX", True),
        ("evil.example:8080", False),  # a DNS name rebound to the gateway's address
        ("homebox.evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_only_the_gateways_own_host_names_are_served(host: str | None, allowed: bool) -> None:
    assert host_allowed(host, frozenset({"homebox", "homebox.local"})) is allowed


def test_a_request_from_outside_the_local_network_is_refused(tmp_path: Path) -> None:
    page = page_on(tmp_path)
    handler = mock.AsyncMock()
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, *_: (
        ("8.8.8.8", 40000) if key == "peername" else None
    )
    request = make_mocked_request("GET", "/", headers={"Host": "127.0.0.1"}, transport=transport)

    response = asyncio.run(page._guard(request, handler))

    assert response.status == 403
    handler.assert_not_called()


# -- the code -----------------------------------------------------------------------------


def test_wrong_codes_are_slowed_down_ever_more() -> None:
    clock = Clock()
    gate = Gate(CODE, clock)
    assert [gate.sign_in("111111").wait_s for _ in range(4)] == [0, 0, 0, 0]
    assert gate.sign_in("111111").wait_s == 30
    clock.now += 29
    assert gate.sign_in(CODE).token is None  # even the right code waits
    clock.now += 1
    assert gate.sign_in("111111").wait_s == 60
    clock.now += 60
    assert gate.sign_in("111111").wait_s == 120
    clock.now += 120
    right = gate.sign_in(CODE)
    assert right.token is not None and gate.signed_in(right.token)
    assert gate.sign_in("111111").wait_s == 0  # a success starts the count again


def test_a_session_expires_and_old_ones_make_room() -> None:
    clock = Clock()
    gate = Gate(CODE, clock)
    tokens = [gate.sign_in(CODE).token for _ in range(MAX_SESSIONS + 1)]
    assert not gate.signed_in(tokens[0])
    assert all(gate.signed_in(t) for t in tokens[1:])
    assert len(set(tokens)) == len(tokens)
    clock.now += SESSION_S
    assert not gate.signed_in(tokens[-1])
    assert not gate.signed_in(None) and not gate.signed_in("guessed")


def test_every_api_call_needs_the_code(tmp_path: Path) -> None:
    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.get("/")).status == 200  # the page itself, to type the code in
        assert (await client.get("/api/state")).status == 401
        for path in ("/api/scan", "/api/pair", "/api/unpair"):
            assert (await client.post(path, json={}, headers=POST)).status == 401
        signed = await client.post("/api/session", json={"code": CODE}, headers=POST)
        assert signed.status == 200
        cookie = signed.cookies[COOKIE]
        assert len(cookie.value) >= 40 and CODE not in cookie.value
        assert "HttpOnly" in signed.headers["Set-Cookie"]
        assert "SameSite=Strict" in signed.headers["Set-Cookie"]
        state = await client.get("/api/state")
        assert state.status == 200
        assert await state.json() == {"patient": "", "devices": []}
        assert "frame-ancestors 'none'" in state.headers["Content-Security-Policy"]

    serve(page_on(tmp_path), scenario)


def test_wrong_codes_are_refused_rate_limited_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        for _ in range(4):
            response = await client.post("/api/session", json={"code": "555123"}, headers=POST)
            assert response.status == 403
            assert "That code is not right" in (await response.json())["error"]
        response = await client.post("/api/session", json={"code": "555123"}, headers=POST)
        assert response.status == 429
        assert await response.json() == {
            "error": "Too many wrong codes. Wait 30 seconds, then try again.",
            "retry_after_s": 30,
        }
        assert await sign_in(client) == 429
        assert (await client.get("/api/state")).status == 401

    serve(page_on(tmp_path), scenario)
    assert "555123" not in caplog.text and CODE not in caplog.text


def test_a_change_needs_the_pages_own_header(tmp_path: Path) -> None:
    """What a form or script on another site cannot send without a CORS preflight."""
    registry = Registry(tmp_path / "pairings.json")
    registry.add(oximeter())

    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.post("/api/session", json={"code": CODE})).status == 403
        assert await sign_in(client) == 200
        response = await client.post("/api/unpair", json={"address": OXIMETER})
        assert response.status == 403

    serve(page_on(tmp_path), scenario)
    assert registry.pairings() == {OXIMETER: "p0001"}


# -- the devices --------------------------------------------------------------------------


def test_a_paired_device_shows_its_sessions_state_while_it_is_that_pairings() -> None:
    report = DeviceReport(
        address=OXIMETER, patient="p0001", state="connected", battery=81, last_reading_ms=1_000
    )
    shown = paired(oximeter(), report, now_ms=4_000)
    assert (shown["state"], shown["state_label"], shown["battery"], shown["last_reading_s"]) == (
        "connected",
        "Connected",
        81,
        3,
    )
    moved = paired(oximeter("p0002"), report, 4_000)  # re-paired; the old session still runs
    assert (moved["state"], moved["battery"], moved["last_reading_s"]) == ("searching", None, None)
    assert paired(oximeter(), None, 0)["hint"] == "Make sure it is on and close to the gateway."


def test_the_suggested_patient_is_the_one_already_paired() -> None:
    assert suggested_patient([]) == ""
    assert suggested_patient([oximeter()]) == "p0001"
    assert suggested_patient([oximeter(), oximeter("p0002")]) == ""
    assert [signal_label(r) for r in (-40, -70, -90)] == ["strong", "good", "weak"]


def test_unpairing_changes_the_registry(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "pairings.json")
    registry.add(oximeter())

    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        assert await sign_in(client) == 200
        state = await (await client.get("/api/state")).json()
        assert [d["address"] for d in state["devices"]] == [OXIMETER]
        response = await client.post("/api/unpair", json={"address": OXIMETER}, headers=POST)
        assert response.status == 200
        again = await client.post("/api/unpair", json={"address": OXIMETER}, headers=POST)
        assert again.status == 409
        assert (await again.json())["error"] == "That device is not paired any more."

    serve(page_on(tmp_path), scenario)
    assert registry.load() == []


def test_failures_are_words_for_the_patient(tmp_path: Path) -> None:
    def broken() -> Mapping[str, DeviceReport]:
        raise RuntimeError("a bug")

    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        assert await sign_in(client) == 200
        crashed = await client.get("/api/state")
        assert crashed.status == 500
        assert await crashed.json() == {"error": SOMETHING_WENT_WRONG}
        unseen = await client.post(
            "/api/pair", json={"address": OXIMETER, "patient": "p0001"}, headers=POST
        )
        assert (await unseen.json())["error"] == (
            "That device is not in the list any more. Press Scan again."
        )
        nonsense = await client.post("/api/pair", data="{", headers=POST)
        assert nonsense.status == 400

    serve(page_on(tmp_path, broken), scenario)


def test_a_damaged_registry_is_said_in_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "pairings.json").write_text("{not json")

    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        assert await sign_in(client) == 200
        response = await client.get("/api/state")
        assert response.status == 409
        error = (await response.json())["error"]
        assert error.startswith("The pairing registry ") and "is damaged" in error

    serve(page_on(tmp_path), scenario)


@pytest.mark.slow
def test_scanning_and_pairing_a_simulated_wearable_records_it(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "pairings.json")

    async def run() -> None:
        ward = Ward(1)
        central = await ward.start()
        page = PairingPage(registry, Backends(*central.backends()), dict, Gate(CODE), 1.0)
        try:
            async with TestClient(TestServer(page.app())) as client:
                assert await sign_in(client) == 200
                found = await (await client.post("/api/scan", headers=POST)).json()
                assert {(n["address"], n["kind"], n["paired_to"]) for n in found["nearby"]} == {
                    ("C1:00:00:00:00:00", "heart-rate-strap", None),
                    (OXIMETER, "pulse-oximeter", None),
                }
                bad = await client.post(
                    "/api/pair", json={"address": OXIMETER, "patient": "no way!"}, headers=POST
                )
                assert bad.status == 409
                assert (await bad.json())["error"].startswith("Patient id 'no way!' must be")
                assert registry.load() == []
                done = await client.post(
                    "/api/pair",
                    json={"address": OXIMETER.lower(), "patient": "p0042"},
                    headers=POST,
                )
                assert done.status == 200
                assert (await done.json())["device"]["state"] == "searching"
                assert registry.pairings() == {OXIMETER: "p0042"}
                again = await (await client.post("/api/scan", headers=POST)).json()
                assert {n["address"]: n["paired_to"] for n in again["nearby"]}[OXIMETER] == "p0042"
                state = await (await client.get("/api/state")).json()
                assert state["patient"] == "p0042"
        finally:
            await ward.stop()

    asyncio.run(run())
    (only,) = registry.load()
    assert (only.kind, only.name) == ("pulse-oximeter", "PLX p0001")


def test_the_page_starts_on_a_free_port_and_says_so_on_a_taken_one(tmp_path: Path) -> None:
    async def run() -> None:
        port = free_port()
        first, second = page_on(tmp_path), page_on(tmp_path)
        assert await first.start("127.0.0.1", port) == f"http://127.0.0.1:{port}"
        try:
            with pytest.raises(OSError):
                await second.start("127.0.0.1", port)
        finally:
            await first.stop()

    asyncio.run(run())


def test_the_page_goes_with_the_registry() -> None:
    result = vigil(
        "gateway", "--simulate", "1", "--web", "8080", env={"VIGIL_MQTT_URL": "mqtt://x"}
    )
    assert result.returncode == 2
    assert "--web pairs devices into this gateway's registry" in result.stderr
    assert "Traceback" not in result.stderr
