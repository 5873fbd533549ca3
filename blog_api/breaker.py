"""Fail fast while the database is known to be out, and say so in two log lines, not thousands.

After a connection-level failure (refused, cut, no answer by the deadline) the breaker opens:
API requests answer 503 at once, without a driver call, except one probe request let through to
find out whether the database is back: `probe_interval_s` after the last failure, and one at a
time (the next waits for the probe's deadline, `probe_timeout_s`, unless it failed sooner). The
first success (a probe, or the /health check, which always asks the database itself) closes it.

Opening logs one ERROR line; closing one INFO line with how long it lasted and how many requests
were refused meanwhile. Thread-safe: gunicorn's threads share one breaker per app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 1.0


class CircuitBreaker:
    """Closed while the database answers; open (fail fast, probe now and then) while it does not."""

    def __init__(
        self,
        probe_timeout_s: float,
        probe_interval_s: float = PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe_timeout_s = probe_timeout_s
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self.is_open = False
        self._opened_at = 0.0
        self._next_probe_at = 0.0
        self.refused = 0

    def allow(self) -> bool:
        """May a request use the database now? Always when closed; as the probe when open."""
        if not self.is_open:  # the common case: one attribute read, no lock
            return True
        with self._lock:
            if not self.is_open:
                return True
            now = self._clock()
            if now >= self._next_probe_at:
                # No second probe while this one may still be waiting on the database.
                self._next_probe_at = now + self.probe_timeout_s + self.probe_interval_s
                return True
            self.refused += 1
            return False

    def failure(self, reason: str) -> None:
        """A request could not reach the database: open, or count one more refusal if open."""
        with self._lock:
            now = self._clock()
            if self.is_open:
                self.refused += 1
                self._next_probe_at = min(self._next_probe_at, now + self.probe_interval_s)
                return
            self.is_open = True
            self._opened_at = now
            self._next_probe_at = now + self.probe_interval_s
            self.refused = 1
        log.error(
            "database unavailable (%s): API requests answer 503 at once, one probe every %g s",
            reason,
            self.probe_interval_s,
        )

    def success(self) -> None:
        """The database answered: close, if open."""
        if not self.is_open:
            return
        with self._lock:
            if not self.is_open:
                return
            self.is_open = False
            down_s, refused = self._clock() - self._opened_at, self.refused
            self.refused = 0
        log.info(
            "database available again after %.1f s; %d requests were refused meanwhile",
            down_s,
            refused,
        )
