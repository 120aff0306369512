"""Whether analytics has heard long enough to call a stream silent.

Silence is judged by the clock (:mod:`analytics.detectors.stale`), but a stream is only
silent if analytics could have heard it. While analytics has lost its broker nothing
reaches it, from any gateway, and when the broker is back the readings of that time arrive
as a backlog: judging silence meanwhile would raise ``no_data`` for every patient at once
and tell every care team of an outage that is the platform's, not the patients'. So the
clock's judgement waits while the broker is away and for the silence period after it is
back, by which time every stream that is alive has been heard again.
"""

from __future__ import annotations


class Hearing:
    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._deaf = False
        self._back_at: float | None = None

    def heard_again(self, now: float) -> None:
        """The broker connection is (re)made."""
        if self._deaf:
            self._back_at = now
            self._deaf = False

    def may_judge(self, now: float, connected: bool) -> bool:
        if not connected:
            self._deaf = True
            return False
        return self._back_at is None or now - self._back_at >= self.settle_s
