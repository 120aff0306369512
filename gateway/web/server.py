"""The pairing page's HTTP server, running inside the gateway process.

aiohttp, because it is asyncio-native: the page is served from the gateway's own event loop,
so it reads the live sessions without locks or a second process, and scans and pairs through
the very bleak backends the service uses; and it is light enough for a Raspberry Pi-class
home box (no separate ASGI server). The platform's FastAPI and uvicorn stay off the gateway
(see the import-linter contract in pyproject.toml).

Every request passes the checks of :mod:`gateway.web.access`: a peer off the local network,
or a Host header that is not the gateway's, gets 403; an API call without a signed-in
session cookie gets 401; a POST without the ``X-Vigil-Pairing`` header gets 403. A browser
sends a custom header cross-origin only after a CORS preflight this server never approves,
so with the SameSite=Strict cookie a page elsewhere cannot pair or unpair through the
patient's browser. The cookie is not ``Secure``: a home box has no certificate a phone would
trust, so the page is plain HTTP and the local-network rule is what keeps it in the house.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib import resources
from typing import Any

from aiohttp import web

from gateway.pairing import Nearby, PairingError, Registry, pair, scan
from gateway.service import Backends, wall_clock_ms
from gateway.web import devices
from gateway.web.access import SESSION_S, Gate, host_allowed, peer_allowed
from vigil.wire.status import DeviceReport

log = logging.getLogger(__name__)

COOKIE = "vigil_pairing"
CSRF_HEADER = "X-Vigil-Pairing"
SCAN_SECONDS = 5.0
FILES = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SOMETHING_WENT_WRONG = (
    "Something went wrong on the gateway. Try again; if it keeps happening, restart the gateway."
)

Reports = Callable[[], Mapping[str, DeviceReport]]
"""Device address -> the running service's report of its session."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refusal(Exception):
    """A request the page answers with words for the patient instead of doing it."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class PairingPage:
    def __init__(
        self,
        registry: Registry,
        backends: Backends,
        reports: Reports,
        gate: Gate | None = None,
        scan_seconds: float = SCAN_SECONDS,
        names: frozenset[str] = frozenset(),
    ) -> None:
        self.registry = registry
        self.backends = backends
        self.reports = reports
        self.gate = gate or Gate()
        self.scan_seconds = scan_seconds
        host = socket.gethostname().lower()
        self.names = names | {host, f"{host}.local"}
        """Host names the page answers to besides IP addresses and localhost."""
        self._busy = asyncio.Lock()
        """One scan or pairing at a time: the controller has one radio."""
        self._nearby: dict[str, Nearby] = {}
        """The last scan's devices: what the patient can pick from."""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        for path, (name, content_type) in FILES.items():
            app.router.add_get(path, _static(name, content_type))
        app.router.add_post("/api/session", self._sign_in)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/scan", self._scan)
        app.router.add_post("/api/pair", self._pair)
        app.router.add_post("/api/unpair", self._unpair)
        app.on_response_prepare.append(_harden)
        return app

    async def start(self, host: str, port: int) -> str:
        """Serve on ``host``:``port`` and return the page's address for the patient; an
        OSError (the port taken, an address this machine lacks) propagates."""
        self.names |= {host.lower()}
        # The page polls, so no access log; a scan in progress does not hold up a stop.
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        shown = lan_address() if host in ("0.0.0.0", "::", "") else host
        return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- checks ---------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not peer_allowed(request.remote) or not host_allowed(request.host, self.names):
            log.info(
                "pairing page: refused a request from %s for host %r (only the home network "
                "and the gateway's own addresses and names are served)",
                request.remote,
                request.host,
            )
            return web.Response(
                status=403, text="This page can only be opened on the gateway's home network.\n"
            )
        try:
            if request.method == "POST" and request.headers.get(CSRF_HEADER) != "1":
                raise Refusal(403, "Open the pairing page itself and try again from there.")
            public = not request.path.startswith("/api/") or request.path == "/api/session"
            if not public and not self.gate.signed_in(request.cookies.get(COOKIE)):
                raise Refusal(401, "Type the code shown on the gateway.")
            return await handler(request)
        except Refusal as refusal:
            return web.json_response(
                {"error": refusal.message, **refusal.extra}, status=refusal.status
            )
        except PairingError as exc:
            return web.json_response({"error": _sentence(str(exc))}, status=409)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("pairing page: %s %s failed", request.method, request.path)
            return web.json_response({"error": SOMETHING_WENT_WRONG}, status=500)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        if self._busy.locked():
            raise Refusal(409, "The gateway is still busy with the last request. Wait a moment.")
        async with self._busy:
            yield

    # -- the API --------------------------------------------------------------------------

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        code = (await _body(request)).get("code")
        if not isinstance(code, str):
            raise Refusal(400, "Type the 6-digit code shown on the gateway.")
        verdict = self.gate.sign_in(code)
        if verdict.token is None and verdict.wait_s:
            wait = math.ceil(verdict.wait_s)
            log.warning("pairing page: too many wrong codes; the next try in %d s", wait)
            raise Refusal(
                429,
                f"Too many wrong codes. Wait {wait} seconds, then try again.",
                retry_after_s=wait,
            )
        if verdict.token is None:
            log.info("pairing page: a wrong code was typed")
            raise Refusal(
                403, "That code is not right. Type the 6-digit code shown on the gateway."
            )
        response = web.json_response({"signed_in": True})
        response.set_cookie(
            COOKIE, verdict.token, httponly=True, samesite="Strict", max_age=int(SESSION_S)
        )
        return response

    async def _state(self, _request: web.Request) -> web.StreamResponse:
        pairings = self.registry.load()
        reports = self.reports()
        return web.json_response(
            {
                "patient": devices.suggested_patient(pairings),
                "devices": [
                    devices.paired(p, reports.get(p.address), wall_clock_ms()) for p in pairings
                ],
            }
        )

    async def _scan(self, _request: web.Request) -> web.StreamResponse:
        async with self._exclusive():
            found = await scan(self.backends, self.scan_seconds)
        self._nearby = {n.address: n for n in found}
        known = self.registry.pairings()
        return web.json_response({"nearby": [devices.nearby(n, known) for n in found]})

    async def _pair(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        address, patient = _text(body, "address").upper(), _text(body, "patient").strip()
        if not patient:
            raise Refusal(400, "Type the patient ID your care team gave you (e.g. p0001).")
        found = self._nearby.get(address)
        if found is None:
            raise Refusal(409, "That device is not in the list any more. Press Scan again.")
        async with self._exclusive():
            pairing = await pair(found, patient, self.backends, self.registry)
        log.info("pairing page: paired %s (%s)", pairing.address, pairing.kind)
        return web.json_response({"device": devices.paired(pairing, None, wall_clock_ms())})

    async def _unpair(self, request: web.Request) -> web.StreamResponse:
        address = _text(await _body(request), "address").upper()
        if address not in self.registry.pairings():
            raise Refusal(409, "That device is not paired any more.")
        removed = self.registry.remove(address)
        log.info("pairing page: unpaired %s (%s)", removed.address, removed.kind)
        return web.json_response({"removed": removed.address})


def lan_address() -> str:
    """The address other machines at home reach this one at: the source address of the
    default route (connecting a UDP socket picks the route and sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed like the internet, never used
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _static(name: str, content_type: str) -> Handler:
    body = (resources.files("gateway.web") / "static" / name).read_bytes()

    async def serve(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    return serve


async def _harden(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Refusal(400, "The page sent something the gateway did not understand. Reload it.")
    return body


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise Refusal(400, "The page sent something the gateway did not understand. Reload it.")
    return value


def _sentence(message: str) -> str:
    """A pairing error as the page shows it: a sentence, starting with a capital."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
