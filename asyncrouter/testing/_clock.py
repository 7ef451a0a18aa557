"""A clock you control: time moves only when you (or a sleeper) move it."""

from __future__ import annotations

import anyio.lowlevel

__all__ = ["FakeClock"]


class FakeClock:
    """A :class:`~asyncrouter._types.Clock` for tests.

    ``sleep(s)`` advances the clock by *s* and yields to the event loop once, so backoff, cool-downs, breaker
    reset timeouts and the budget's daily rollover run instantly. ``advance(s)`` moves time by hand.

    Args:
        start: initial wall-clock time, seconds since the epoch (default: 2026-01-01T00:00:00Z).
        monotonic_start: initial monotonic reading.

    .. versionadded:: 0.1
    """

    def __init__(self, start: float = 1_767_225_600.0, monotonic_start: float = 1000.0) -> None:
        self._offset = 0.0
        self._wall0 = start
        self._mono0 = monotonic_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._mono0 + self._offset

    def time(self) -> float:
        return self._wall0 + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by *seconds* (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._offset += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self._offset += seconds
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"FakeClock(time={self.time():.3f})"
