"""A private MQTT broker: Mosquitto on a free port when it is installed, else amqtt.

Mosquitto gets a generated config sized for the demo and tests (see deploy/mosquitto.conf
for a production one); amqtt speaks MQTT 3.1.1 only, which the services handle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vigil.embedded.processes import free_port, spawn, stop, wait_for_port

_MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {folder}/
autosave_interval 30
max_inflight_messages 100
max_queued_messages 100000
max_queued_bytes 0
set_tcp_nodelay true
log_dest file {log}
"""


@dataclass
class PrivateBroker:
    url: str
    kind: str
    process: subprocess.Popen[bytes]
    folder: Path
    port: int

    def stop(self) -> None:
        stop(self.process, timeout=5)

    def restart(self) -> None:
        """Start again on the same port and persistence file, after :meth:`stop`."""
        self.process = start_broker(self.folder, self.kind, self.port).process


def _run_as() -> str:
    """Started by root, Mosquitto drops to the 'mosquitto' user, which cannot reach a
    private folder (pytest's and mkdtemp's are 0700) for its log and persistence file.
    This broker listens on loopback only and lives as long as the demo or test run, so it
    stays with the user that started it."""
    return "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""


def find_mosquitto() -> str | None:
    """Debian installs it in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def start_broker(folder: Path, prefer: str = "mosquitto", port: int | None = None) -> PrivateBroker:
    """Mosquitto when installed and preferred, else amqtt (``prefer="amqtt"`` forces it)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    mosquitto = find_mosquitto() if prefer == "mosquitto" else None
    if mosquitto:
        conf = folder / "mosquitto.conf"
        conf.write_text(
            _MOSQUITTO_CONF.format(port=port, folder=folder, log=folder / "mosquitto.log")
            + _run_as()
        )
        process = spawn([mosquitto, "-c", str(conf)], log=folder / "mosquitto.out")
        kind = "mosquitto"
    else:
        process = spawn(
            [sys.executable, "-m", "vigil.embedded.amqtt_broker", str(port)],
            log=folder / "amqtt.log",
        )
        kind = "amqtt"
    if not wait_for_port(port, 15, process):
        stop(process, timeout=2)
        raise RuntimeError(f"the {kind} broker did not start; see {folder}")
    return PrivateBroker(f"mqtt://127.0.0.1:{port}", kind, process, folder, port)
