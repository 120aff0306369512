"""A process the bench starts, kills and starts again: a service, the gateway or the
wearables, with its crash hook when it has one (see :mod:`bench.faults.stack`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from vigil.embedded.processes import spawn, stop


def last_line(log: Path) -> str:
    """What an operator sees first of why a process ended: the log's last line that is not
    the indented rest of a traceback or of a multi-line message."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    unindented = [line for line in lines if line.strip() and not line[0].isspace()]
    return unindented[-1][-300:] if unindented else ""


@dataclass
class Managed:
    """Its crash hook's variables are set only for the lives started ``armed``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    hook: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    planned: bool = False
    """Its current exit (or the one it is about to make) is the fault's doing."""
    armed: bool = False
    """This life runs with the crash hook."""
    armed_lives: int = 0
    """Lives still to be started with the hook after this one."""
    kills: int = 0
    """By the bench (SIGKILL) or by its own crash hook."""

    def start(self, armed: bool = False) -> None:
        self.armed, self.planned = armed, False
        self.process = spawn(self.argv, {**self.env, **(self.hook if armed else {})}, self.log)

    def kill(self) -> None:
        assert self.process is not None
        self.planned, self.armed = True, False
        self.process.kill()
        self.process.wait(10)
        self.kills += 1

    def stop(self, timeout: float = 15) -> int | None:
        self.planned, self.armed = True, False
        return stop(self.process, timeout) if self.process is not None else None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()
