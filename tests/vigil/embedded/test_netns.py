"""A network namespace on a veth pair: what runs inside, what a cut does to TCP, and
that nothing of a link outlives it (nor a crashed run)."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest

from vigil.embedded.netns import Link, unavailable

CLIENT = """
import socket, sys, threading
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def forward():
    for line in sys.stdin:
        sock.sendall(line.encode())
threading.Thread(target=forward, daemon=True).start()
print("connected", flush=True)
while data := sock.recv(1000):
    print(data.decode().strip(), flush=True)
print("closed by the host", flush=True)
"""
"""Inside the namespace: lines from stdin go to the host's server, what it sends comes out."""

LOOPBACK_ECHO = """
import socket
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
client.sendall(b"ping")
assert peer.recv(4) == b"ping"
"""


@pytest.fixture
def namespaces() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def link(namespaces: None) -> Iterator[Link]:
    with Link.create() as link:
        yield link


def ip_json(*args: str) -> list[dict[str, object]]:
    return list(json.loads(subprocess.check_output(["ip", "-j", *args], text=True) or "[]"))


def leftovers(link: Link) -> set[str]:
    """What of ``link`` is on this host: all of :data:`WHOLE` while it is open."""
    found = {"namespace" for n in ip_json("netns", "list") if n["name"] == link.name}
    found |= {"veth" for i in ip_json("link", "show") if i["ifname"] == link.host_interface}
    found |= {
        f"{r.get('type', 'unicast')} route"
        for r in ip_json("-4", "route", "show", "table", "all")
        if r["dst"] == link.network
    }
    return found


WHOLE = {"namespace", "veth", "unicast route", "unreachable route"}


class Lines:
    """A child's stdout, line by line, read on a thread so that a test can wait with a
    timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.strip())

    def next(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None


def read_line(conn: socket.socket, timeout: float) -> bytes | None:
    """One line from ``conn``, or None when nothing came within ``timeout``; a reset
    raises and a close returns what came before it."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = conn.recv(1000)
        except TimeoutError:
            return None
        if not chunk:
            return data
        data += chunk
    return data


def test_processes_inside_talk_to_each_other_on_loopback(link: Link) -> None:
    done = subprocess.run(
        link.wrap([sys.executable, "-c", LOOPBACK_ECHO]), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_cut_stalls_a_connection_both_ways_and_a_restore_resumes_it(link: Link) -> None:
    server = socket.create_server((link.host_address, 0))
    server.settimeout(10)
    client = subprocess.Popen(
        link.wrap([sys.executable, "-c", CLIENT, link.host_address, str(server.getsockname()[1])]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None
    try:
        conn, peer = server.accept()
        assert peer[0] == link.inner_address
        from_host = Lines(client.stdout)
        assert from_host.next(10) == "connected"

        def send(line: str) -> None:
            assert client.stdin is not None
            client.stdin.write(line + "\n")
            client.stdin.flush()

        send("one")
        assert read_line(conn, 10) == b"one\n"

        link.cut()
        send("two")
        conn.sendall(b"back\n")
        assert read_line(conn, 3) is None  # nothing arrived, and no FIN or RST either
        assert from_host.next(0.5) is None
        assert client.poll() is None, "the client inside saw its connection fail"

        link.restore()
        assert read_line(conn, 30) == b"two\n"  # at its next retransmission
        assert from_host.next(30) == "back"
        conn.close()
        assert from_host.next(10) == "closed by the host"
    finally:
        client.kill()
        client.wait(5)
        server.close()


def test_two_links_have_their_own_names_addresses_and_subnets(namespaces: None) -> None:
    with Link.create() as first, Link.create() as second:
        assert first.name != second.name
        assert first.host_interface != second.host_interface
        assert first.network != second.network
        assert first.host_address.rsplit(".", 1)[0] == first.inner_address.rsplit(".", 1)[0]
        assert first.host_address != first.inner_address


def test_close_removes_everything_and_may_be_repeated(namespaces: None) -> None:
    link = Link.create()
    assert leftovers(link) == WHOLE
    link.close()
    assert leftovers(link) == set()
    link.close()
    with Link.create() as other:
        pass
    assert leftovers(other) == set()


@pytest.mark.slow
def test_a_link_left_by_a_dead_process_goes_when_the_next_one_is_made(namespaces: None) -> None:
    crashed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, os; from vigil.embedded.netns import Link; l = Link.create(); "
            "print(json.dumps([l.name, l.host_address, l.inner_address, l.host_interface, "
            "l.network]), flush=True); os._exit(0)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    left = Link(*json.loads(crashed.stdout))
    assert leftovers(left) == WHOLE
    with Link.create() as fresh:
        # its subnet may be handed out again, now that nobody holds it
        reused = {"unicast route", "unreachable route"} if fresh.network == left.network else set()
        assert leftovers(left) == reused
    assert leftovers(left) == set()
