"""The outbox's writes on a disk that may be full.

A full disk must not stop a gateway that is monitoring someone: readings the outbox cannot
write wait in memory (up to :data:`HELD_IN_MEMORY`; past it the oldest go, counted as
dropped) and every other write (sealing, releasing, dropping) is tried again at the next
tick. An ERROR says once per episode to free some space, a WARNING when it writes again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from gateway.outbox import Outbox
from gateway.readings import Reading

log = logging.getLogger(__name__)
R = TypeVar("R")

HELD_IN_MEMORY = 200_000
"""Readings held in memory while the outbox cannot write: minutes of a big household's
devices at their fastest."""


class Disk:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.held: list[Reading] = []
        self.held_dropped = 0
        self._full = False

    def append(self, readings: Sequence[Reading]) -> None:
        """To the outbox, behind whatever waits in memory."""
        if not self.held and self.attempt(self.outbox.append, readings) is not None:
            return
        self.held.extend(readings)
        excess = len(self.held) - HELD_IN_MEMORY
        if excess > 0:
            del self.held[:excess]
            self.held_dropped += excess

    def write_held(self) -> None:
        if not self.held or self.attempt(self.outbox.append, self.held) is None:
            return
        log.warning("the outbox writes again: %d readings from memory", len(self.held))
        self.held = []
        if self.held_dropped and self.attempt(self.outbox.count_dropped, self.held_dropped):
            self.held_dropped = 0

    def attempt(self, write: Callable[..., R], *args: object) -> R | None:
        """``write(*args)``'s result (every write returns something), or None when the
        disk refused it."""
        try:
            result = write(*args)
        except sqlite3.OperationalError as exc:
            if not self._full:
                log.error("the outbox cannot write (%s): free some disk space", exc)
            self._full = True
            return None
        self._full = False
        return result

    def dropped(self) -> int:
        return self.outbox.dropped() + self.held_dropped
