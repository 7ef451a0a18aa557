"""The real clock: the sole reader of time and the sole sleeper in asyncrouter.

Everything that needs time takes a :class:`~asyncrouter._types.Clock`; tests pass
:class:`asyncrouter.testing.FakeClock` instead, which advances instantly.
"""

from __future__ import annotations

import time

import anyio

__all__ = ["AnyioClock"]


class AnyioClock:
    """Wall and monotonic time from :mod:`time`; sleeping through :func:`anyio.sleep`."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "AnyioClock()"
