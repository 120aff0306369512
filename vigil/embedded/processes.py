"""Child processes that die with their parent and ports that are free."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from vigil.mqtt.watcher import Watcher
from vigil.process import peak_rss_mb
from vigil.wire.status import Presence
from vigil.wire.topics import service_status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[Any] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this child when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C reaches the supervisor only; it stops children in order


def spawn(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    stdout: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    out: Any = stdout
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(
        list(argv),
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT if out is not None else None,
        preexec_fn=_die_with_parent,
    )


def stop(process: subprocess.Popen[Any], timeout: float = 15.0) -> int | None:
    """SIGTERM, wait, then SIGKILL; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def stop_and_measure(process: subprocess.Popen[Any], timeout: float) -> float | None:
    """Stop the process (SIGTERM, then SIGKILL) and return its peak resident memory in MB,
    read just before it stops (see :mod:`vigil.process`)."""
    peak = peak_rss_mb(process.pid)
    stop(process, timeout)
    return peak


def vigil_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def start_service(
    command: Sequence[str],
    client_id: str,
    env: dict[str, str],
    log: Path,
    watcher: Watcher,
    timeout: float = 60,
) -> subprocess.Popen[bytes]:
    """`vigil COMMAND ...` as its own process, returned once its status topic says it is
    online (its subscription exists); one that does not come online is stopped, and the
    error names its log."""
    process = spawn(vigil_command(*command), env, log)
    if not watcher.wait_for_state(service_status(client_id), Presence.ONLINE, timeout):
        stop(process, timeout=5)
        raise RuntimeError(f"{command[0]} did not come online; see {log}")
    return process
