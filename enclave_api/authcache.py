"""Recently authenticated API tokens, so that a read costs no token lookup in the database.

An entry holds what authentication found (the principal) for a short time (``auth_cache_seconds``,
10 s by default) and never past the token's own expiry. Revoking a token in this process takes effect
at once: the token is barred here (a tombstone outlives any entry made before the revocation
committed), so it is looked up again in the database, which then refuses it. Another API process
notices within the cache's lifetime, as JupyterHub's own token cache does. Notebook session
credentials are never cached: each call checks its session and caller address.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

P = TypeVar("P")
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry(Generic[P]):
    principal: P
    token_id: str
    token_expires_at: datetime
    fresh_until: float


class AuthCache(Generic[P]):
    """Token hash → principal, for ``seconds`` (0 turns the cache off)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._clock = seconds, clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry[P]] = OrderedDict()
        self._barred: dict[str, float] = {}  # token id → until when (monotonic)

    def get(self, token_hash: str, now: datetime) -> P | None:
        if self.seconds <= 0:
            return None
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is None:
                return None
            if (
                entry.fresh_until <= self._clock()
                or now >= entry.token_expires_at
                or entry.token_id in self._barred
            ):
                del self._entries[token_hash]
                return None
            return entry.principal

    def put(self, token_hash: str, principal: P, token_id: str, token_expires_at: datetime) -> None:
        if self.seconds <= 0:
            return
        now = self._clock()
        with self._lock:
            self._forget_expired_bars(now)
            if token_id in self._barred:
                return
            self._entries[token_hash] = _Entry(principal, token_id, token_expires_at, now + self.seconds)
            self._entries.move_to_end(token_hash)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def update(self, token_hash: str, principal: P) -> None:
        """Replace the principal of a cached token (e.g. its recorded last use), keeping its lifetime."""
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is not None:
                self._entries[token_hash] = _Entry(
                    principal, entry.token_id, entry.token_expires_at, entry.fresh_until
                )

    def bar(self, token_id: str) -> None:
        """The token was revoked: never serve it from the cache again (until any entry made before
        the revocation committed has expired)."""
        now = self._clock()
        with self._lock:
            self._barred[token_id] = now + 2 * self.seconds + 1
            for key in [k for k, e in self._entries.items() if e.token_id == token_id]:
                del self._entries[key]

    def _forget_expired_bars(self, now: float) -> None:
        if self._barred:
            for token_id in [t for t, until in self._barred.items() if until <= now]:
                del self._barred[token_id]
