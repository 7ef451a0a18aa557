"""The real clock: the sole reader of time and the sole sleeper in asyncrouter.

Everything that needs time takes a :class:`~asyncrouter._types.Clock`; tests pass
:class:`asyncrouter.testing.FakeClock` instead, which advances instantly.
"""

from __future__ import annotations

import time

import anyio

__all__ = ["AnyioClock", "deadline_now"]

#: Seconds on a monotonic clock, for request deadlines. Deadlines only ever become relative timeouts (for
#: ``anyio.fail_after`` and aiohttp), so any monotonic clock serves; reading it directly costs a tenth of
#: ``anyio.current_time()`` (which first asks sniffio for the running library). It is not the injected
#: :class:`~asyncrouter._types.Clock`: deadlines must run on real time even when a test fakes the clock.
deadline_now = time.monotonic


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
