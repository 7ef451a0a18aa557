"""Client-side rate limits per model: requests per minute and tokens per minute, as token buckets.

Time comes from the injected clock, so limits are tested without waiting. Waiting callers re-check after each
sleep; the bucket never goes negative, so the long-run rate never exceeds the limit.
"""

from __future__ import annotations

from ._types import Clock

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """``capacity`` units refilled evenly over ``period`` seconds (a burst of ``capacity`` is allowed)."""

    __slots__ = ("_clock", "_last", "_level", "capacity", "rate")

    def __init__(self, capacity: float, *, period: float = 60.0, clock: Clock) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = float(capacity)
        self.rate = self.capacity / period
        self._clock = clock
        self._level = self.capacity
        self._last = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if now > self._last:
            self._level = min(self.capacity, self._level + (now - self._last) * self.rate)
            self._last = now

    def try_take(self, amount: float) -> float:
        """Take *amount* if available and return 0; otherwise return the seconds to wait before trying again."""
        amount = min(amount, self.capacity)  # a request bigger than the bucket waits for a full bucket
        self._refill()
        if self._level >= amount:
            self._level -= amount
            return 0.0
        return (amount - self._level) / self.rate

    async def take(self, amount: float = 1.0) -> None:
        while True:
            wait = self.try_take(amount)
            if wait <= 0:
                return
            await self._clock.sleep(wait)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits of one model (either may be None)."""

    __slots__ = ("requests", "tokens")

    def __init__(self, *, requests_per_minute: int | None, tokens_per_minute: int | None, clock: Clock) -> None:
        self.requests = TokenBucket(requests_per_minute, clock=clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock=clock) if tokens_per_minute else None

    async def acquire(self, tokens: int) -> None:
        if self.requests is not None:
            await self.requests.take(1.0)
        if self.tokens is not None:
            await self.tokens.take(float(tokens))
