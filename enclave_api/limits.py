"""Abuse limits: per-user rate limits on costly actions and throttling of failed logins.

Sliding windows kept in the process (each API replica counts its own callers; behind a load balancer
with N replicas a caller gets at most N times the limit — the limits bound abuse, the privacy budget
and the reviews bound what can leave). Limits come from :class:`~enclave_api.settings.Settings`:

* DP queries per user per minute, egress submissions per user per hour (``429`` with ``Retry-After``);
* failed logins per (username, caller address) and per caller address in a window: past the limit,
  further attempts are refused without checking the password — also a correct one — until the window
  has passed, so guessing a password online takes years instead of hours.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from enclave_api.errors import EnclaveError
from enclave_api.settings import Settings


class TooManyRequests(EnclaveError):
    status, title = 429, "Too many requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, retry_after=max(1, math.ceil(retry_after)))


class SlidingWindow:
    """At most ``limit`` events per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        return events

    def wait(self, key: str) -> float:
        """Seconds until one more event for ``key`` is allowed (0: now)."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) < self.limit:
                return 0.0
            return self.window - (now - events[0])

    def take(self, key: str) -> float:
        """Record an event for ``key`` if allowed; else return the seconds to wait (nothing recorded)."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) >= self.limit:
                return self.window - (now - events[0])
            events.append(now)
            if len(self._events) > 100_000:  # forget idle keys rather than grow without bound
                self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < self.window}
            return 0.0

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


class AbuseLimits:
    """The limits of one enclave process."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.queries = SlidingWindow(settings.rate_limit_queries_per_minute, 60.0, clock)
        self.egress = SlidingWindow(settings.rate_limit_egress_per_hour, 3600.0, clock)
        window = settings.login_throttle_minutes * 60.0
        self.login_user = SlidingWindow(settings.login_max_failures, window, clock)
        self.login_address = SlidingWindow(settings.login_max_failures_per_address, window, clock)

    def take_query(self, user_id: str) -> None:
        wait = self.queries.take(user_id)
        if wait:
            raise TooManyRequests(
                f"at most {self.queries.limit} DP queries per minute; try again in {math.ceil(wait)} s", wait
            )

    def take_egress(self, user_id: str) -> None:
        wait = self.egress.take(user_id)
        if wait:
            raise TooManyRequests(
                f"at most {self.egress.limit} egress submissions per hour; "
                f"try again in {math.ceil(wait / 60)} min",
                wait,
            )

    def login_wait(self, username: str, address: str | None) -> float:
        """Seconds before this username may try to log in from ``address`` again (0: now)."""
        return max(self.login_user.wait(f"{username}\0{address}"), self.login_address.wait(address or "-"))

    def login_failed(self, username: str, address: str | None) -> None:
        self.login_user.take(f"{username}\0{address}")
        self.login_address.take(address or "-")

    def login_succeeded(self, username: str, address: str | None) -> None:
        self.login_user.clear(f"{username}\0{address}")
