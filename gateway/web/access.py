"""Who may use the pairing page: someone on the home network who typed the gateway's code.

The page decides whose readings a wearable's are, so it is guarded three ways:

* The peer's address must be private, link-local or loopback. ``--web`` binds every
  interface by default, because a home box's LAN address is not known in advance and changes
  with DHCP; this check, not the bind, keeps the internet out when a router forwards the port
  or the box has a public address. The Host header must be an IP address, ``localhost`` or
  the gateway's own name, so a web page elsewhere cannot rebind its DNS name to the gateway
  and talk to it from the patient's browser.
* A 6-digit code, new at each start and shown on the gateway. New rather than kept on disk:
  nothing secret lies in the data directory, and a code glimpsed over a shoulder or left in
  a log stops working at the next restart; the page is only needed while setting up, next
  to the gateway. A correct code buys a random session token, kept in an HttpOnly,
  SameSite=Strict cookie.
* Wrong codes: five, then a wait that doubles with each further wrong one (30 s up to
  15 min), counted for all peers together. A per-peer count is evaded by taking another
  address on the LAN; a shared one lets a nuisance delay the patient, never guess the code
  (at 96 tries a day, half the million codes take fourteen years).

Nothing here does I/O; :mod:`gateway.web.server` applies it to each request.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

FREE_TRIES = 5
FIRST_WAIT_S = 30.0
LONGEST_WAIT_S = 900.0
SESSION_S = 12 * 3600.0
MAX_SESSIONS = 16
"""Browsers signed in at once; the oldest is signed out past it, so repeated sign-ins
cannot grow the gateway's memory."""

Clock = Callable[[], float]


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def peer_allowed(peer: str | None) -> bool:
    """Whether a connection from ``peer`` comes from the local network (or this machine)."""
    if peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_private or address.is_link_local or address.is_loopback


def host_allowed(host: str | None, names: frozenset[str]) -> bool:
    """Whether a request's Host header names the gateway: an IP address, ``localhost``, or
    one of ``names`` (its host names, lower case), with or without a port."""
    if not host:
        return False
    if host.startswith("["):  # [fe80::1]:8080
        literal, _, _ = host[1:].partition("]")
        return _is_ip(literal)
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower().rstrip(".")
    return _is_ip(name) or name == "localhost" or name in names


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to a code: a session token when right, else how long to wait (0: may try
    again at once)."""

    token: str | None
    wait_s: float


class Gate:
    """The code, the wrong-code count and the signed-in sessions."""

    def __init__(self, code: str | None = None, clock: Clock = time.monotonic) -> None:
        self.code = code or new_code()
        self._clock = clock
        self._failures = 0
        self._locked_until = 0.0
        self._sessions: dict[str, float] = {}
        """Token -> when it expires; insertion order is sign-in order."""

    def sign_in(self, code: str) -> Verdict:
        now = self._clock()
        if now < self._locked_until:
            return Verdict(None, self._locked_until - now)
        if hmac.compare_digest(code.strip().encode(), self.code.encode()):
            self._failures = 0
            token = secrets.token_urlsafe(32)
            self._sessions[token] = now + SESSION_S
            while len(self._sessions) > MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            return Verdict(token, 0.0)
        self._failures += 1
        if self._failures >= FREE_TRIES:
            wait = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (self._failures - FREE_TRIES))
            self._locked_until = now + wait
            return Verdict(None, wait)
        return Verdict(None, 0.0)

    def signed_in(self, token: str | None) -> bool:
        if token is None:
            return False
        expires = self._sessions.get(token)
        if expires is None:
            return False
        if self._clock() >= expires:
            del self._sessions[token]
            return False
        return True
