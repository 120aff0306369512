"""A network you can cut: a network namespace joined to this host by a veth pair.

The namespace plays the home network of a gateway and the veth pair its router's uplink:
processes run inside with :meth:`Link.wrap` (and talk to each other on the namespace's own
127.0.0.1), and reach the host on ``host_address``. :meth:`Link.cut` sets the host end of
the pair down, which is what a router losing its uplink looks like to TCP. Measured on this
machine (Linux 6.18, no ``sch_netem``, no iptables/nft, so neither ``tc netem loss 100%``
nor a DROP rule is available) with a connection from inside to a server on the host:

- Inside, the inner end shows NO-CARRIER and its route stays (``linkdown``; routes are only
  ignored with ``ignore_routes_with_linkdown``). Frames sent on it are dropped by the veth
  driver: ``send()`` on an established connection succeeds and the data is retransmitted
  into nothing. The socket gets a soft EHOSTUNREACH (readable by ``SO_ERROR`` only; send
  and receive go on), no RST, no FIN. A new ``connect()`` fails after about 0.1 s with
  EHOSTUNREACH, as from a router answering 'host unreachable'.
- On the host, the down link takes its connected route with it, and the 10.213.N.0/24
  traffic would then follow the machine's default route out of eth0 (seen). An
  ``unreachable`` route for the /24 at a high metric, added with the link, catches it
  instead: the host's retransmissions are discarded, nothing leaves the machine, an
  established connection stalls the same way (no error on send), and a new connect fails
  at once with EHOSTUNREACH.
- After :meth:`restore` the same connections deliver again, both ways, at their next
  retransmission (TCP's backoff: up to a few seconds after a short cut, up to 2 minutes
  after a long one). A peer that gave up meanwhile (e.g. a broker whose keep-alive expired)
  answers the retransmission with a RST.

Setting the inner end down as well, or instead, changes nothing for established
connections; inside, it removes the route, so a new connect fails with ENETUNREACH at once.

Names (``vigil-PID-N``, host end ``vgPIDnN``) and subnets are unique across processes:
they are chosen under a file lock, and a link whose creating process is gone (a crashed
run) is removed before a new one is made.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

_SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
_FALLBACK_METRIC = 4213
"""The metric of the 'unreachable' route that holds a link's /24 while its link is down;
also how a stale one is recognised."""
_INNER_INTERFACE = "uplink"
_LOCK = Path("/run/vigil-netns.lock")
_NAMESPACE = re.compile(r"vigil-(\d+)-(\w+)")
_HOST_INTERFACE = re.compile(r"vg(\d+)n(\d+)")
_counter = itertools.count()


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message has its words."""


def _ip_binary() -> str | None:
    """Debian installs ``ip`` in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip") if Path(p).exists()), None
    )


def _ip(*args: str, check: bool = True) -> str:
    ip = _ip_binary()
    if ip is None:
        raise NetnsError("iproute2's `ip` is not installed (apt-get install iproute2)")
    done = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@functools.cache
def unavailable() -> str | None:
    """Why network namespaces cannot be made here, else None (asked once per process)."""
    if os.geteuid() != 0:
        return "network namespaces need root (`ip netns add`); run as root"
    if _ip_binary() is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    probe = f"vigil-{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
        _ip("-n", probe, "link", "add", "name", "p0", "type", "veth", "peer", "name", "p1")
    except NetnsError as exc:
        return f"this machine refuses network namespaces with veth pairs ({exc})"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialises choosing, making and removing links between processes: two test runs
    must not pick the same subnet, nor one clean what the other is making."""
    with open(_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def _remove_stale() -> None:
    """Links left by processes that died without closing them (a crashed or killed run)."""
    for entry in _ip_json("netns", "list"):
        match = _NAMESPACE.fullmatch(entry["name"])
        if match and not _alive(int(match[1])):
            _ip("netns", "del", entry["name"], check=False)
    for entry in _ip_json("link", "show"):
        match = _HOST_INTERFACE.fullmatch(entry["ifname"])
        if match and not _alive(int(match[1])):
            _ip("link", "del", entry["ifname"], check=False)
    addresses = [address for address, _ in _addresses()]
    for route in _ip_json("-4", "route", "show", "type", "unreachable"):
        network = ipaddress.IPv4Network(route["dst"], strict=False)
        if route.get("metric") == _FALLBACK_METRIC and not any(a in network for a in addresses):
            _ip("route", "del", "unreachable", route["dst"], "metric", str(_FALLBACK_METRIC))


def _ip_json(*args: str) -> list[dict[str, Any]]:
    return list(json.loads(_ip("-j", *args) or "[]"))


def _addresses() -> Iterator[tuple[ipaddress.IPv4Address, ipaddress.IPv4Network]]:
    """Every IPv4 address of this host, with the network it is on."""
    for interface in _ip_json("-4", "addr", "show"):
        for info in interface.get("addr_info", []):
            network = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            yield ipaddress.IPv4Address(info["local"]), network


def _free_subnet() -> ipaddress.IPv4Network:
    """The first 10.213.N.0/24 that overlaps no address, network or route of this machine
    (other links and their fallback routes included)."""
    taken = [network for _, network in _addresses()]
    taken += [
        ipaddress.IPv4Network(route["dst"], strict=False)
        for route in _ip_json("-4", "route", "show", "table", "all")
        if route["dst"] != "default"
    ]
    for candidate in _SUBNETS.subnets(new_prefix=24):
        if not any(candidate.overlaps(network) for network in taken):
            return candidate
    raise NetnsError(
        f"every /24 of {_SUBNETS} overlaps an address or route of this machine "
        "(`ip -4 route show table all`); remove leftover links with `ip netns del`"
    )


@dataclass
class Link:
    """A network namespace joined to this host by a veth pair; the home router between a
    gateway and the platform."""

    name: str
    host_address: str
    inner_address: str
    host_interface: str
    network: str
    _closed: bool = field(default=False, init=False, repr=False)

    @classmethod
    def create(cls) -> Link:
        """A new namespace with its loopback up, joined to the host; raises NetnsError
        (see :func:`unavailable` for why it may not be possible at all)."""
        n = next(_counter)
        pid = os.getpid()
        with _locked():
            _remove_stale()
            subnet = _free_subnet()
            host, inner = (str(a) for a in itertools.islice(subnet.hosts(), 2))
            link = cls(f"vigil-{pid}-{n}", host, inner, f"vg{pid}n{n}", str(subnet))
            try:
                link._make(subnet.prefixlen)
            except NetnsError:
                link._remove()
                raise
        return link

    def _make(self, prefix: int) -> None:
        _ip("netns", "add", self.name)
        peer = ("peer", "name", _INNER_INTERFACE, "netns", self.name)
        _ip("link", "add", self.host_interface, "type", "veth", *peer)
        _ip("addr", "add", f"{self.host_address}/{prefix}", "dev", self.host_interface)
        _ip("route", "add", "unreachable", self.network, "metric", str(_FALLBACK_METRIC))
        _ip("link", "set", self.host_interface, "up")
        inside = ("-n", self.name)
        _ip(*inside, "addr", "add", f"{self.inner_address}/{prefix}", "dev", _INNER_INTERFACE)
        _ip(*inside, "link", "set", _INNER_INTERFACE, "up")
        _ip(*inside, "link", "set", "lo", "up")

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace; ``ip netns exec`` execs it, so the process id
        (and any signal sent to it) is the command's own."""
        return [_ip_binary() or "ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Packets stop both ways; connections stall rather than fail (see the module)."""
        _ip("link", "set", self.host_interface, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_interface, "up")

    def close(self) -> None:
        """Remove the veth pair, its route and the namespace. The pair goes first: a
        namespace outlives ``ip netns del`` while a process is still inside it."""
        if self._closed:
            return
        with _locked():
            self._remove()
        self._closed = True

    def _remove(self) -> None:
        _ip("link", "del", self.host_interface, check=False)
        _ip(
            "route",
            "del",
            "unreachable",
            self.network,
            "metric",
            str(_FALLBACK_METRIC),
            check=False,
        )
        _ip("netns", "del", self.name, check=False)

    def __enter__(self) -> Link:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()
