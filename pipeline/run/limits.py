"""Client-side rate limits on model requests and tokens per minute, charged after each document.

A document's cost is known only when it finishes (how many calls, how many tokens), so the
limiter lets a document start while every budget is non-negative and charges its actual usage
afterwards; budgets refill continuously and hold at most one second's allowance. Over any long
stretch the rates hold; the overshoot is bounded by the documents in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = {"requests": requests_per_minute, "tokens": tokens_per_minute}
        self.per_second = {name: rate / 60 for name, rate in limits.items() if rate}
        self.levels = dict.fromkeys(self.per_second, 0.0)
        self.clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        for name, rate in self.per_second.items():
            self.levels[name] = min(rate, self.levels[name] + (now - self._last) * rate)
        self._last = now

    def delay(self) -> float:
        """Seconds until every budget is back to zero; 0 means a document may start now."""
        with self._lock:
            self._refill()
            return max([0.0] + [-self.levels[name] / rate for name, rate in self.per_second.items()])

    def charge(self, requests: int, tokens: int) -> None:
        with self._lock:
            self._refill()
            for name, amount in (("requests", requests), ("tokens", tokens)):
                if name in self.per_second:
                    self.levels[name] -= amount
