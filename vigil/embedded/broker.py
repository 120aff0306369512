"""A private MQTT broker: Mosquitto on a free port when it is installed, else amqtt.

Mosquitto gets a generated config sized for the demo and tests (see deploy/mosquitto.conf
for a production one); amqtt speaks MQTT 3.1.1 only, which the services handle.

Besides loopback, a broker may listen on other addresses of this host (the same port on
each), e.g. the host end of a :class:`vigil.embedded.netns.Link`, for clients in a network
that a test can cut. Mosquitto's persistence is a snapshot every ``autosave_interval``
seconds and at a clean shutdown, never at a SIGKILL: a test that kills the broker chooses
the interval (production's is 60 s, in deploy/mosquitto.conf).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vigil.embedded.processes import free_port, spawn, stop, wait_for_port

LOOPBACK = "127.0.0.1"

_MOSQUITTO_CONF = """\
{listeners}allow_anonymous true
persistence true
persistence_location {folder}/
autosave_interval {autosave_interval}
max_inflight_messages 100
max_queued_messages 100000
max_queued_bytes 0
set_tcp_nodelay true
log_dest file {log}
"""


@dataclass
class PrivateBroker:
    url: str
    """On loopback; :meth:`url_on` gives the other addresses'."""
    kind: str
    process: subprocess.Popen[bytes]
    folder: Path
    port: int
    listen: tuple[str, ...] = (LOOPBACK,)
    autosave_interval: int = 30

    def url_on(self, address: str) -> str:
        if address not in self.listen:
            raise ValueError(f"the broker listens on {', '.join(self.listen)}, not on {address}")
        return f"mqtt://{address}:{self.port}"

    def stop(self) -> None:
        stop(self.process, timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer: nothing is saved on the way down, so
        what Mosquitto accepted since its last autosave is gone."""
        self.process.kill()
        self.process.wait(10)

    def restart(self) -> None:
        """Start again on the same port, addresses, config and persistence file, after
        :meth:`stop` or :meth:`kill`."""
        self.process = start_broker(
            self.folder, self.kind, self.port, self.listen, self.autosave_interval
        ).process


def _run_as() -> str:
    """Started by root, Mosquitto drops to the 'mosquitto' user, which cannot reach a
    private folder (pytest's and mkdtemp's are 0700) for its log and persistence file.
    This broker listens on loopback (and on a test's private links) and lives as long as
    the demo or test run, so it stays with the user that started it."""
    return "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""


def find_mosquitto() -> str | None:
    """Debian installs it in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def start_broker(
    folder: Path,
    prefer: str = "mosquitto",
    port: int | None = None,
    listen: tuple[str, ...] = (LOOPBACK,),
    autosave_interval: int = 30,
) -> PrivateBroker:
    """Mosquitto when installed and preferred, else amqtt (``prefer="amqtt"`` forces it),
    on ``port`` (default: a free one) of every address in ``listen``, loopback included."""
    if LOOPBACK not in listen:
        raise ValueError(
            f"listen={listen!r} must include {LOOPBACK}: the start is checked there, "
            "and PrivateBroker.url points there"
        )
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # Loopback last: listeners open in order, and the start is checked on loopback.
    others = tuple(address for address in listen if address != LOOPBACK)
    mosquitto = find_mosquitto() if prefer == "mosquitto" else None
    if mosquitto:
        conf = folder / "mosquitto.conf"
        listeners = "".join(f"listener {port} {a}\n" for a in (*others, LOOPBACK))
        conf.write_text(
            _MOSQUITTO_CONF.format(
                listeners=listeners,
                folder=folder,
                autosave_interval=autosave_interval,
                log=folder / "mosquitto.log",
            )
            + _run_as()
        )
        process = spawn([mosquitto, "-c", str(conf)], log=folder / "mosquitto.out")
        kind = "mosquitto"
    else:
        process = spawn(
            [sys.executable, "-m", "vigil.embedded.amqtt_broker", str(port), *others],
            log=folder / "amqtt.log",
        )
        kind = "amqtt"
    if not wait_for_port(port, 15, process):
        stop(process, timeout=2)
        raise RuntimeError(f"the {kind} broker did not start; see {folder}")
    return PrivateBroker(
        f"mqtt://{LOOPBACK}:{port}", kind, process, folder, port, listen, autosave_interval
    )
