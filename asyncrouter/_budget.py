"""The daily budget: reservations against a cap, in one process or shared by many through Redis.

Every provider call is bracketed by the budget::

    reservation = await budget.reserve(worst_case_usd, model=alias)   # BudgetExceeded if it cannot fit
    try:
        reply = await provider.send(...)
        await budget.settle(reservation, actual_usd)                   # release the hold, count the real cost
    finally:
        await budget.release(reservation)                              # no-op once settled; frees a failed call

``spent + reserved`` never exceeds the daily limit, however many tasks (or, with Redis, processes) race for it:
the check and the update are one atomic step (a synchronous critical section in memory, one Lua script in Redis).
The invariant holds as long as each settlement costs no more than its reservation; a provider that overruns is
recorded anyway (the truth beats the cap) and pushes the budget into the ``exhausted`` state.

Money is counted internally in integer nano-dollars, so millions of small additions never drift.

The day follows the configured time zone and the injected clock. At midnight the new day starts at zero.
A reservation made before midnight and settled after it releases its hold from the day it was reserved on and
its actual cost counts on the day of settlement: spend is booked when it is known.

Backends:

* ``memory``: counters in this process.
* ``sqlite``: the memory counters, rebuilt at :meth:`Budget.aopen` from what the tracker recorded today (any
  :class:`SpentSource`), so a restart does not forget the day's spend.
* ``redis``: counters in Redis (``{prefix}:budget:{YYYY-MM-DD}:spent|reserved``, expiring a margin after the day
  ends), so several processes share one cap exactly. Needs the ``asyncrouter[redis]`` extra.

.. versionadded:: 0.1
"""

from __future__ import annotations

import asyncio
import logging
import math
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, Protocol, TypeAlias, runtime_checkable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import anyio

from ._config import BudgetConfig
from ._exceptions import BudgetExceeded, ConfigError, RouterError
from ._types import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = [
    "DEFAULT_REDIS_KEY_MARGIN",
    "DEFAULT_REDIS_MAX_BATCH",
    "DEFAULT_REDIS_TIMEOUT",
    "NANO_PER_USD",
    "Budget",
    "BudgetBackend",
    "BudgetEvent",
    "BudgetListener",
    "BudgetState",
    "BudgetStatus",
    "LedgerTotals",
    "MemoryBackend",
    "RedisBackend",
    "Reservation",
    "SpentSource",
]

_log = logging.getLogger("asyncrouter.budget")

#: Internal money unit: integer nano-dollars (1e-9 USD). A one-token call to the cheapest models is still > 0.
NANO_PER_USD: Final = 1_000_000_000
#: Counters stay exact up to 2**53 in Redis' Lua (doubles); keep sums of limit + overrun far below that.
_MAX_NANO: Final = 2**52
_MAX_USD: Final = _MAX_NANO / NANO_PER_USD
#: Redis counters outlive their day by this many seconds, so late settlements and status queries still find them.
DEFAULT_REDIS_KEY_MARGIN: Final = 86_400.0
#: Seconds to wait for Redis (connect and each reply) before an operation fails.
DEFAULT_REDIS_TIMEOUT: Final = 5.0
#: At most this many budget operations travel in one Lua call.
DEFAULT_REDIS_MAX_BATCH: Final = 512

BudgetState: TypeAlias = Literal["normal", "warn", "downgrade", "exhausted"]
_STATE_RANK: Final[dict[str, int]] = {"normal": 0, "warn": 1, "downgrade": 2, "exhausted": 3}


def _usd(nano: int) -> float:
    return nano / NANO_PER_USD


def _nano(usd: float, what: str) -> int:
    # A chained comparison rejects NaN, infinities and negatives in one step on the hot path.
    if not 0.0 <= usd <= _MAX_USD:
        raise ValueError(f"{what} must be a finite amount of USD between 0 and {_MAX_USD:.0f}, got {usd!r}")
    return round(usd * NANO_PER_USD)


# --------------------------------------------------------------------------------------------- public data


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A snapshot of today's budget.

    Attributes:
        spent: USD settled today.
        reserved: USD held by calls in flight.
        remaining: ``limit - spent - reserved`` (never below 0), or ``None`` when there is no cap.
        limit: the daily cap in USD, or ``None``.
        state: ``"normal"``, ``"warn"``, ``"downgrade"`` or ``"exhausted"`` (from ``spent``, see :class:`Budget`).
        day: today's date in the budget's time zone, ISO format (``2026-01-31``).
        fraction: ``spent / limit`` (0.0 without a cap; 1.0 for a zero cap).
        timezone: the budget's time zone name.

    .. versionadded:: 0.1
    """

    spent: float
    reserved: float
    remaining: float | None
    limit: float | None
    state: BudgetState
    day: str
    fraction: float
    timezone: str


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """Sent to subscribers when the budget changes state.

    Attributes:
        state: the new state.
        previous: the state before.
        status: the budget at the moment of the change.

    .. versionadded:: 0.1
    """

    state: BudgetState
    previous: BudgetState
    status: BudgetStatus


BudgetListener: TypeAlias = Callable[[BudgetEvent], object]


@dataclass(slots=True, eq=False)
class Reservation:
    """A hold on the budget for one provider call; settle or release it exactly once.

    Attributes:
        amount_usd: the amount held (the call's worst-case cost).
        model: the model alias the hold is for (informational).
        day: the budget day the hold was taken on.

    .. versionadded:: 0.1
    """

    amount_usd: float
    model: str
    day: str
    _nano: int = field(repr=False)
    _open: bool = field(default=True, repr=False)

    @property
    def open(self) -> bool:
        """Whether the reservation is still held (neither settled nor released)."""
        return self._open


class LedgerTotals(NamedTuple):
    """One day's counters as a backend reports them, in nano-dollars.

    ``granted`` is the outcome of a reservation (always true for other operations).

    .. versionadded:: 0.1
    """

    granted: bool
    spent: int
    reserved: int


@runtime_checkable
class SpentSource(Protocol):
    """Where the ``sqlite`` backend reads what was already spent today: the tracker.

    .. versionadded:: 0.1
    """

    async def spent_between(self, start: float, end: float) -> float:
        """USD recorded with a timestamp in ``[start, end)`` (seconds since the epoch)."""
        ...


@runtime_checkable
class BudgetBackend(Protocol):
    """Shared counters behind a :class:`Budget`; all amounts are integer nano-dollars.

    Each method must apply its whole update atomically, and once called it must happen even if the caller is
    cancelled. A method may return a coroutine: the budget then runs it as a task shielded from the caller's
    cancellation and gives back a hold granted after its caller left. Or it may return an
    :class:`asyncio.Future` it completes itself (cheaper: no extra task): then a cancelled future must not stop
    the operation, and a reservation whose future was cancelled must be given back by the backend.

    ``day_ends_in`` is how many seconds the day's counters are still needed (until the day ends); a backend
    that stores them remotely keeps them at least that long.

    .. versionadded:: 0.1
    """

    async def aopen(self) -> None: ...

    async def aclose(self) -> None: ...

    def reserve(self, *, day: str, amount: int, limit: int | None, day_ends_in: float) -> Awaitable[LedgerTotals]:
        """If ``limit`` is ``None`` or ``spent + reserved + amount <= limit``: ``reserved += amount``."""
        ...

    def settle(
        self, *, day: str, reserved_day: str, amount: int, actual: int, day_ends_in: float
    ) -> Awaitable[LedgerTotals]:
        """``reserved[reserved_day] -= amount`` and ``spent[day] += actual``; report ``day``'s totals."""
        ...

    def release(self, *, day: str, amount: int) -> Awaitable[LedgerTotals]:
        """``reserved[day] -= amount``; report ``day``'s totals."""
        ...

    def totals(self, *, day: str) -> Awaitable[LedgerTotals]:
        """Report ``day``'s totals."""
        ...


# ------------------------------------------------------------------------------------------------ memory


class MemoryBackend:
    """Counters in this process. Its synchronous methods are the budget's critical sections: nothing awaits
    between the check and the update, so no other task can interleave.

    .. versionadded:: 0.1
    """

    __slots__ = ("_days",)

    def __init__(self) -> None:
        # day -> [spent, reserved]; a day stays while it has holds or until the budget prunes it
        self._days: dict[str, list[int]] = {}

    def _get(self, day: str) -> list[int]:
        d = self._days.get(day)
        if d is None:
            d = self._days[day] = [0, 0]
        return d

    def counters(self, day: str) -> list[int]:
        """The live ``[spent, reserved]`` of ``day``. The budget updates today's in place on its hot path."""
        return self._get(day)

    def try_reserve(self, day: str, amount: int, limit: int | None) -> LedgerTotals:
        """Synchronous :meth:`reserve`."""
        d = self._get(day)
        spent, reserved = d
        if limit is not None and spent + reserved + amount > limit:
            return LedgerTotals(False, spent, reserved)
        d[1] = reserved = reserved + amount
        return LedgerTotals(True, spent, reserved)

    def settle_now(self, day: str, reserved_day: str, amount: int, actual: int) -> LedgerTotals:
        """Synchronous :meth:`settle`."""
        if reserved_day != day:
            old = self._get(reserved_day)
            old[1] = max(0, old[1] - amount)
            amount = 0
        d = self._get(day)
        d[0] += actual
        d[1] = max(0, d[1] - amount)
        return LedgerTotals(True, d[0], d[1])

    def release_now(self, day: str, amount: int) -> LedgerTotals:
        """Synchronous :meth:`release`."""
        d = self._get(day)
        d[1] = max(0, d[1] - amount)
        return LedgerTotals(True, d[0], d[1])

    def totals_now(self, day: str) -> LedgerTotals:
        """Synchronous :meth:`totals`."""
        d = self._days.get(day)
        return LedgerTotals(True, d[0], d[1]) if d is not None else LedgerTotals(True, 0, 0)

    def seed(self, day: str, spent: int) -> None:
        """Set ``day``'s spend (the ``sqlite`` backend's rebuild at open)."""
        self._get(day)[0] = spent

    def prune(self, *, keep: str) -> None:
        """Forget days other than ``keep`` that hold no reservations."""
        for day in [d for d, (_, reserved) in self._days.items() if d != keep and reserved == 0]:
            del self._days[day]

    async def aopen(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def reserve(self, *, day: str, amount: int, limit: int | None, day_ends_in: float) -> LedgerTotals:
        return self.try_reserve(day, amount, limit)

    async def settle(
        self, *, day: str, reserved_day: str, amount: int, actual: int, day_ends_in: float
    ) -> LedgerTotals:
        return self.settle_now(day, reserved_day, amount, actual)

    async def release(self, *, day: str, amount: int) -> LedgerTotals:
        return self.release_now(day, amount)

    async def totals(self, *, day: str) -> LedgerTotals:
        return self.totals_now(day)


# ------------------------------------------------------------------------------------------------- redis

# One Lua call applies a whole batch of operations, in order, atomically. Batching is what lets one process
# reach tens of thousands of operations per second over a single connection; each operation keeps the exact
# semantics it would have alone. The operations travel as one text argument and the answers come back as one
# string: encoding and parsing thousands of separate arguments and integers is what costs most in redis-py.
# Counter values are passed on as the decimal strings Redis stores, never through Lua's tostring (which
# switches to exponent notation above 1e14).
#
# KEYS: the distinct counters this batch touches.
# ARGV[1]: one TTL (seconds) per key, space-separated: set after the batch on keys that exist, 0 for none.
# ARGV[2]: one operation per line, "kind spent_key reserved_key other_key amount extra" (key indexes into KEYS):
#   r: reserve `amount` if extra < 0 (no cap) or spent + reserved + amount <= extra
#   s: release `amount` from the other reserved key, add `extra` (the actual cost) to spent
#   l: release `amount` from the reserved key
#   t: read only
# Reply: "granted spent reserved" for each operation, all space-separated.
_BATCH_LUA: Final = """
local function release(k, amount)
  if tonumber(amount) > 0 and redis.call('EXISTS', k) == 1 then
    if redis.call('DECRBY', k, amount) < 0 then redis.call('SET', k, '0', 'KEEPTTL') end
  end
end
local out = {}
for kind, s, r, x, amount, extra in string.gmatch(ARGV[2], '(%a) (%d+) (%d+) (%d+) (%d+) (%-?%d+)') do
  local ks, kr = KEYS[tonumber(s)], KEYS[tonumber(r)]
  local granted = '1'
  if kind == 'r' then
    local limit = tonumber(extra)
    if limit >= 0 and tonumber(redis.call('GET', ks) or '0') + tonumber(redis.call('GET', kr) or '0')
        + tonumber(amount) > limit then
      granted = '0'
    elseif tonumber(amount) > 0 then
      redis.call('INCRBY', kr, amount)
    end
  elseif kind == 's' then
    release(KEYS[tonumber(x)], amount)
    if tonumber(extra) > 0 then redis.call('INCRBY', ks, extra) end
  elseif kind == 'l' then
    release(kr, amount)
  end
  out[#out + 1] = granted
  out[#out + 1] = redis.call('GET', ks) or '0'
  out[#out + 1] = redis.call('GET', kr) or '0'
end
local i = 0
for ttl in string.gmatch(ARGV[1], '%d+') do
  i = i + 1
  if ttl ~= '0' and redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return table.concat(out, ' ')
"""


class _Op(NamedTuple):
    kind: str
    spent_key: str
    reserved_key: str
    other_key: str
    amount: int
    extra: int
    ttl: int  # for the keys this operation increments
    future: asyncio.Future[LedgerTotals] | None  # None: an undo nobody waits for


def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ConfigError(
            "backend redis needs the redis package: pip install 'asyncrouter[redis]'", path="budget.backend"
        ) from exc
    return redis.asyncio


def _safe_url(url: str) -> str:
    # Error messages name the server, never the credentials in the URL.
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"


class RedisBackend:
    """Budget counters in Redis, shared exactly by every process that uses the same URL and prefix.

    Operations from all tasks of this process are queued and sent together, in order, as one Lua call per
    round trip over one connection; each operation is atomic and applied exactly once, whether or not its caller
    is still waiting. A reservation whose caller is cancelled is not sent if it has not left yet, and is given
    back if Redis granted it after the caller left. Keys are ``{prefix}:budget:{YYYY-MM-DD}:spent`` and
    ``...:reserved``; they expire ``key_margin`` seconds after their day ends.

    Args:
        url: a ``redis://`` or ``rediss://`` URL.
        prefix: key prefix, so several routers can share one Redis.
        timeout: seconds to wait for a connection or a reply.
        key_margin: seconds the counters outlive their day.
        max_batch: most operations per Lua call.

    Raises:
        ConfigError: the ``redis`` package is not installed.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "asyncrouter",
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        key_margin: float = DEFAULT_REDIS_KEY_MARGIN,
        max_batch: int = DEFAULT_REDIS_MAX_BATCH,
    ) -> None:
        self._redis_mod = _import_redis()
        self._url = url
        self._prefix = prefix
        self._timeout = timeout
        self._key_margin = key_margin
        self._max_batch = max(1, max_batch)
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._queue: list[_Op] = []
        self._wakeup: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        #: Round trips and operations sent, and holds given back because their caller left: diagnostics.
        self.batches = 0
        self.operations = 0
        self.undone = 0

    def key(self, day: str, counter: Literal["spent", "reserved"]) -> str:
        """The Redis key of one day's counter."""
        return f"{self._prefix}:budget:{day}:{counter}"

    async def aopen(self) -> None:
        if self._client is not None:
            raise RuntimeError("RedisBackend is already open")
        client: Redis = self._redis_mod.Redis.from_url(
            self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
        )
        try:
            await client.ping()
        except self._redis_mod.RedisError as exc:
            await client.aclose()
            raise RouterError(f"budget backend redis at {_safe_url(self._url)} is unreachable: {exc}") from exc
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        # register_script sends EVALSHA and reloads the script by itself if the server lost it (restart, FLUSH).
        self._script = client.register_script(_BATCH_LUA)
        self._wakeup = asyncio.Event()
        self._closing = False
        self._flusher = asyncio.create_task(self._flush_loop(), name="asyncrouter-budget-redis")

    async def aclose(self) -> None:
        """Send every queued operation, then close the connection."""
        client, flusher = self._client, self._flusher
        if client is None:
            return
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        with anyio.CancelScope(shield=True):
            try:
                if flusher is not None:
                    await flusher
            finally:
                self._client = self._script = self._flusher = None
                await client.aclose()

    def reserve(self, *, day: str, amount: int, limit: int | None, day_ends_in: float) -> Awaitable[LedgerTotals]:
        r = self.key(day, "reserved")
        return self._submit("r", self.key(day, "spent"), r, r, amount, -1 if limit is None else limit, day_ends_in)

    def settle(
        self, *, day: str, reserved_day: str, amount: int, actual: int, day_ends_in: float
    ) -> Awaitable[LedgerTotals]:
        return self._submit(
            "s",
            self.key(day, "spent"),
            self.key(day, "reserved"),
            self.key(reserved_day, "reserved"),
            amount,
            actual,
            day_ends_in,
        )

    def release(self, *, day: str, amount: int) -> Awaitable[LedgerTotals]:
        r = self.key(day, "reserved")
        return self._submit("l", self.key(day, "spent"), r, r, amount, 0, None)

    def totals(self, *, day: str) -> Awaitable[LedgerTotals]:
        r = self.key(day, "reserved")
        return self._submit("t", self.key(day, "spent"), r, r, 0, 0, None)

    def _submit(
        self,
        kind: str,
        spent_key: str,
        reserved_key: str,
        other_key: str,
        amount: int,
        extra: int,
        day_ends_in: float | None,
    ) -> asyncio.Future[LedgerTotals]:
        fut: asyncio.Future[LedgerTotals] = asyncio.get_running_loop().create_future()
        if self._client is None or self._closing or self._wakeup is None:
            fut.set_exception(RouterError("the redis budget backend is not open"))
            return fut
        ttl = 0 if day_ends_in is None else max(1, math.ceil(day_ends_in + self._key_margin))
        self._queue.append(_Op(kind, spent_key, reserved_key, other_key, amount, extra, ttl, fut))
        self._wakeup.set()
        return fut

    async def _flush_loop(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._next_batch()
            if batch:
                await self._send(batch)

    def _next_batch(self) -> list[_Op]:
        queue = self._queue
        batch: list[_Op] = []
        taken = 0
        reserving = False
        for op in queue:
            if len(batch) >= self._max_batch:
                break
            if op.kind == "t" and reserving:
                # A read waits for the next round trip, so it sees the undo of any hold in this one whose
                # caller has gone (refresh() promises the effect of everything before it).
                break
            taken += 1
            if op.kind == "r":
                if op.future is not None and op.future.cancelled():
                    continue  # its caller left before it was sent: never held, nothing to undo
                reserving = True
            batch.append(op)
        del queue[:taken]
        return batch

    async def _send(self, batch: list[_Op]) -> None:
        keys: dict[str, int] = {}
        ttls: list[int] = []

        def index(key: str, ttl: int) -> int:
            i = keys.get(key)
            if i is None:
                i = keys[key] = len(keys) + 1  # Lua indexes from 1
                ttls.append(ttl)
            elif ttl > ttls[i - 1]:
                ttls[i - 1] = ttl
            return i

        lines: list[str] = []
        for op in batch:
            # Only the counters an operation increments need their expiry pushed forward.
            s = index(op.spent_key, op.ttl if op.kind == "s" else 0)
            r = index(op.reserved_key, op.ttl if op.kind == "r" else 0)
            x = index(op.other_key, 0)
            lines.append(f"{op.kind} {s} {r} {x} {op.amount} {op.extra}")
        assert self._script is not None
        try:
            reply = await self._script(keys=list(keys), args=[" ".join(map(str, ttls)), "\n".join(lines)])
        except BaseException as exc:
            if isinstance(exc, self._redis_mod.RedisError):
                err: BaseException = RouterError(f"budget backend redis at {_safe_url(self._url)} failed: {exc}")
                err.__cause__ = exc
            elif isinstance(exc, Exception):
                err = exc
            else:
                err = RouterError("budget backend redis was closed with operations in flight")
            for op in batch:
                if op.future is None:
                    _log.warning("budget backend redis could not give back a cancelled hold: %s", err)
                elif not op.future.done():
                    op.future.set_exception(err)
            if not isinstance(exc, Exception):
                raise
            return
        # bytes, unless the URL asked for decode_responses
        values = (reply if isinstance(reply, bytes) else str(reply).encode()).split()
        self.batches += 1
        self.operations += len(batch)
        undo: list[_Op] = []
        for i, op in enumerate(batch):
            fut = op.future
            j = 3 * i
            if fut is None:
                continue
            if fut.done():
                # The caller cancelled its wait. The operation was applied anyway; a hold nobody will ever
                # settle is given back before anything queued since.
                if op.kind == "r" and op.amount and values[j] == b"1":
                    undo.append(op._replace(kind="l", extra=0, ttl=0, future=None))
                continue
            fut.set_result(LedgerTotals(values[j] == b"1", int(values[j + 1]), int(values[j + 2])))
        if undo:
            self.undone += len(undo)
            self._queue[:0] = undo

    def __repr__(self) -> str:
        return f"RedisBackend({_safe_url(self._url)!r}, prefix={self._prefix!r})"


# ------------------------------------------------------------------------------------------------ budget


class Budget:
    """The daily spending cap, with reservations for calls in flight.

    States follow what was *spent* today (holds come and go with every call; counting them would make the
    state flap), so within a day they only move forward:

    * ``normal`` below ``warn_at × limit``;
    * ``warn`` from ``warn_at × limit``;
    * ``downgrade`` from ``downgrade_at × limit`` (the planner drops one tier);
    * ``exhausted`` once the rest of the cap cannot cover ``min_reservation_usd`` (at the latest when
      ``spent >= limit``). Whether that rejects requests or sends them to the cheapest model is
      :attr:`on_exhausted`, applied by the engine.

    A new day starts ``normal`` again. Subscribers hear every change (:meth:`subscribe`).

    Args:
        config: the ``budget`` section of the configuration.
        clock: the only source of time (the day boundary).
        backend: shared counters to use instead of the one ``config.backend`` names.
        spent_source: what the ``sqlite`` backend rebuilds today's spend from (the tracker).
        min_reservation_usd: the smallest reservation a request can need (the cheapest model's); the budget is
            ``exhausted`` when less than this remains.

    Raises:
        ConfigError: the ``sqlite`` backend without a spent source, the ``redis`` backend without the
            ``redis`` package, or a limit beyond what the counters hold exactly.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        config: BudgetConfig,
        *,
        clock: Clock,
        backend: BudgetBackend | None = None,
        spent_source: SpentSource | None = None,
        min_reservation_usd: float = 0.0,
    ) -> None:
        self._config = config
        self._clock = clock
        self._tz = ZoneInfo(config.timezone)
        self._source: SpentSource | None = None
        if config.daily_limit_usd is not None and config.daily_limit_usd > _MAX_USD:
            raise ConfigError(f"must be at most {_MAX_USD:.0f}", path="budget.daily_limit_usd")
        self._limit: int | None = None if config.daily_limit_usd is None else _nano(config.daily_limit_usd, "limit")
        if backend is None:
            if config.backend == "redis":
                assert config.redis_url is not None  # BudgetConfig validates it
                backend = RedisBackend(config.redis_url, prefix=config.redis_prefix)
            else:
                backend = MemoryBackend()
                if config.backend == "sqlite":
                    if spent_source is None:
                        raise ConfigError(
                            "backend sqlite rebuilds today's spend from the tracker; enable tracker.path "
                            "or use backend memory",
                            path="budget.backend",
                        )
                    self._source = spent_source
        self._backend: BudgetBackend = backend
        # The in-process backend is driven through its synchronous methods: no await, no task switch.
        self._mem: MemoryBackend | None = backend if isinstance(backend, MemoryBackend) else None
        self._pending: set[asyncio.Future[Any]] = set()
        self._listeners: list[BudgetListener] = []
        self._opened = False
        self._closed = False
        self._usable = False  # open and not closed: one attribute test on the hot path

        floor = _nano(min_reservation_usd, "min_reservation_usd")
        self._warn_at: int | None = None
        self._downgrade_at: int | None = None
        self._exhausted_at: int | None = None
        if self._limit is not None:
            # Thresholds as integer spends, compared on every observation.
            self._warn_at = math.ceil(config.warn_at * self._limit)
            self._downgrade_at = math.ceil(config.downgrade_at * self._limit)
            self._exhausted_at = self._limit - max(floor, 1) + 1
        self._state: BudgetState = "normal"
        # The spend at which the state must be recomputed: the next threshold up.
        self._next_at: float = math.inf if self._warn_at is None else self._warn_at
        self._day = ""
        self._day_start = self._day_end = 0.0
        # Today's [spent, reserved]: the memory backend's live counters, or the last totals a shared backend
        # reported.
        self._counters: list[int] = [0, 0]
        self._enter_day(clock.time())

    # -------------------------------------------------------------------------------------------- lifecycle

    async def aopen(self) -> None:
        """Connect the backend; the ``sqlite`` backend rebuilds today's spend from its spent source."""
        if self._opened:
            raise RuntimeError("the budget is already open")
        await self._backend.aopen()
        self._opened = self._usable = True
        try:
            now = self._clock.time()
            day = self._current_day(now)
            if self._source is not None and self._mem is not None:
                spent = await self._source.spent_between(self._day_start, self._day_end)
                self._mem.seed(day, _nano(min(max(0.0, spent), _MAX_USD), "spent"))
            await self.refresh()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Finish every budget operation still in flight, then close the backend. Safe to call twice."""
        if not self._opened or self._closed:
            return
        self._closed = True
        self._usable = False
        # Shielded: an anyio cancel scope re-delivers cancellation at every await, and half a close would leak
        # the connection and the holds still in flight.
        with anyio.CancelScope(shield=True):
            try:
                await self._drain()
            finally:
                await self._backend.aclose()

    async def __aenter__(self) -> Budget:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_opened", False) and not getattr(self, "_closed", True):
            _warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=2)

    # ----------------------------------------------------------------------------------------- accounting

    async def reserve(self, amount_usd: float, *, model: str = "", force: bool = False) -> Reservation:
        """Hold ``amount_usd`` of today's budget for one call.

        Args:
            amount_usd: the call's worst-case cost (see :meth:`worst_case_cost`).
            model: the model alias, for messages.
            force: grant even past the cap. Only for ``on_exhausted: cheapest``, where the engine knowingly
                lets the cheapest model run over it.

        Returns:
            The reservation; pass it to :meth:`settle` or :meth:`release` exactly once.

        Raises:
            BudgetExceeded: ``spent + reserved + amount_usd`` would exceed the daily limit.
            RouterError: the budget is not open, or the shared backend failed.
        """
        # The hot path is written out by hand (no helper calls): it runs twice per provider call.
        if not 0.0 <= amount_usd <= _MAX_USD:  # also rejects NaN
            raise ValueError(f"amount_usd must be between 0 and {_MAX_USD:.0f} USD, got {amount_usd!r}")
        amount = round(amount_usd * NANO_PER_USD)
        if not self._usable:
            self._require_open()
        now = self._clock.time()
        day = self._day if self._day_start <= now < self._day_end else self._enter_day(now)
        limit = None if force else self._limit
        if self._mem is not None:
            # The critical section: no await between the check and the update.
            c = self._counters
            spent, reserved = c
            if limit is not None and spent + reserved + amount > limit:
                raise self._exceeded(amount, spent, reserved, model, day)
            c[1] = reserved + amount
            return Reservation(amount_usd, model, day, amount)
        aw = self._backend.reserve(day=day, amount=amount, limit=limit, day_ends_in=self._day_end - now)
        fut = aw if isinstance(aw, asyncio.Future) else self._track(aw)
        try:
            t = await (fut if fut is aw else asyncio.shield(fut))
        except asyncio.CancelledError:
            if fut is not aw or fut.done():
                # Granted, or about to be, after our caller stopped waiting: give it back once known. (A future
                # cancelled while pending is the backend's to undo; one answered just before our cancellation
                # is ours.)
                if not fut.cancelled():
                    self._track(self._undo_reserve(fut, day, amount))
            raise
        self._observe(day, t)
        if not t.granted:
            raise self._exceeded(amount, t.spent, t.reserved, model, day)
        return Reservation(amount_usd, model, day, amount)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Free the reservation's hold and count the call's actual cost today.

        ``actual_usd`` above the reservation (a provider that overran) is recorded in full. A second call, or a
        call after :meth:`release`, does nothing. Once called, the update happens even if the caller is
        cancelled while it travels to a shared backend.

        Raises:
            RouterError: the budget is not open, or the shared backend failed.
        """
        if not 0.0 <= actual_usd <= _MAX_USD:
            raise ValueError(f"actual_usd must be between 0 and {_MAX_USD:.0f} USD, got {actual_usd!r}")
        actual = round(actual_usd * NANO_PER_USD)
        if not reservation._open:
            return
        if not self._usable:
            self._require_open()
        reservation._open = False
        now = self._clock.time()
        day = self._day if self._day_start <= now < self._day_end else self._enter_day(now)
        if self._mem is not None:
            c = self._counters
            if reservation.day == day:
                reserved = c[1] - reservation._nano
                c[1] = reserved if reserved > 0 else 0
            else:  # reserved before midnight: free yesterday's hold
                self._mem.release_now(reservation.day, reservation._nano)
            c[0] = spent = c[0] + actual
            if spent >= self._next_at:
                self._update_state(spent)
            return
        aw = self._backend.settle(
            day=day,
            reserved_day=reservation.day,
            amount=reservation._nano,
            actual=actual,
            day_ends_in=self._day_end - now,
        )
        self._observe(day, await (aw if isinstance(aw, asyncio.Future) else asyncio.shield(self._track(aw))))

    async def release(self, reservation: Reservation) -> None:
        """Give back the hold of a call that failed or was cancelled. Idempotent; no-op after :meth:`settle`.

        Shared backends apply it even if the caller is cancelled meanwhile, so it is safe in ``finally``.

        Raises:
            RouterError: the budget is not open, or the shared backend failed.
        """
        if not reservation._open:
            return
        if not self._usable:
            self._require_open()
        reservation._open = False
        if self._mem is not None:
            self._mem.release_now(reservation.day, reservation._nano)
            return
        aw = self._backend.release(day=reservation.day, amount=reservation._nano)
        self._observe(
            reservation.day, await (aw if isinstance(aw, asyncio.Future) else asyncio.shield(self._track(aw)))
        )

    @asynccontextmanager
    async def hold(self, amount_usd: float, *, model: str = "", force: bool = False) -> AsyncIterator[Reservation]:
        """Reserve for the duration of a block; released on exit unless settled inside it.

        Example::

            async with budget.hold(worst_case, model=alias) as reservation:
                reply = await provider.send(request)
                await budget.settle(reservation, cost_usd(price, reply.usage.input_tokens, ...))
        """
        reservation = await self.reserve(amount_usd, model=model, force=force)
        try:
            yield reservation
        finally:
            await self.release(reservation)

    async def refresh(self) -> BudgetStatus:
        """Wait for this process's budget operations in flight, then read the shared counters."""
        self._require_open()
        await self._drain()
        day = self._current_day(self._clock.time())
        if self._mem is not None:
            self._update_state(self._counters[0])
        else:
            aw = self._backend.totals(day=day)
            self._observe(day, await (aw if isinstance(aw, asyncio.Future) else asyncio.shield(self._track(aw))))
        return self.status()

    # ---------------------------------------------------------------------------------------------- reading

    def status(self) -> BudgetStatus:
        """Today's budget. With Redis these are the counters as of the last operation or :meth:`refresh`."""
        self._current_day(self._clock.time())
        limit = self._limit
        spent, reserved = self._counters
        if limit is None:
            remaining, limit_usd, fraction = None, None, 0.0
        else:
            remaining = _usd(max(0, limit - spent - reserved))
            limit_usd = _usd(limit)
            fraction = spent / limit if limit else 1.0
        return BudgetStatus(
            spent=_usd(spent),
            reserved=_usd(reserved),
            remaining=remaining,
            limit=limit_usd,
            state=self._state,
            day=self._day,
            fraction=fraction,
            timezone=self._config.timezone,
        )

    @property
    def state(self) -> BudgetState:
        """Today's state (``normal``, ``warn``, ``downgrade`` or ``exhausted``)."""
        if self._limit is None:
            return "normal"  # without a cap the state never moves (and the engine asks on every request)
        self._current_day(self._clock.time())
        return self._state

    @property
    def on_exhausted(self) -> Literal["reject", "cheapest"]:
        """What the engine does once the budget is exhausted: reject requests or use the cheapest model."""
        return self._config.on_exhausted

    @property
    def limit_usd(self) -> float | None:
        """The daily cap in USD, or ``None``."""
        return None if self._limit is None else _usd(self._limit)

    @property
    def backend(self) -> BudgetBackend:
        """The counters this budget uses."""
        return self._backend

    def subscribe(self, callback: BudgetListener) -> Callable[[], None]:
        """Call ``callback(event)`` on every state change; returns a function that unsubscribes.

        Callbacks run synchronously inside the budget operation that noticed the change, so keep them short.
        One that raises is logged and otherwise ignored: it never breaks routing.
        """
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def worst_case_cost(
        self,
        *,
        input_tokens: int,
        max_output_tokens: int | None,
        cost_per_1k_input: float,
        cost_per_1k_output: float,
    ) -> float:
        """The most a call can cost: every input token plus the whole output allowance.

        ``max_output_tokens=None`` (neither ``max_tokens`` nor the model's cap is known) assumes
        ``default_max_output_tokens`` from the configuration.
        """
        out = self._config.default_max_output_tokens if max_output_tokens is None else max_output_tokens
        return max(0, input_tokens) / 1000 * cost_per_1k_input + max(0, out) / 1000 * cost_per_1k_output

    # ------------------------------------------------------------------------------------------- internals

    def _require_open(self) -> None:
        if not self._usable:
            raise RouterError("the budget is not open: use `async with budget:` (the Router opens its own)")

    def _track(self, aw: Awaitable[Any]) -> asyncio.Future[Any]:
        # Every operation handed to a shared backend is kept until done, so aclose() and refresh() can wait
        # for the ones whose callers were cancelled.
        fut = asyncio.ensure_future(aw)
        self._pending.add(fut)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        if not fut.cancelled() and (exc := fut.exception()) is not None:
            # Marks the error retrieved; a caller still waiting gets it through its shield.
            _log.debug("budget backend operation failed: %r", exc)

    async def _undo_reserve(self, fut: asyncio.Future[LedgerTotals], day: str, amount: int) -> None:
        try:
            t = await fut
        except Exception:
            return  # not granted, or unknown (a failed backend); nothing we can give back
        if t.granted and amount:
            try:
                await self._backend.release(day=day, amount=amount)
            except Exception:
                _log.warning("could not release a cancelled reservation of %s USD", _usd(amount), exc_info=True)

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.wait(list(self._pending))

    def _current_day(self, now: float) -> str:
        return self._day if self._day_start <= now < self._day_end else self._enter_day(now)

    def _enter_day(self, now: float) -> str:
        tz = self._tz
        d = datetime.fromtimestamp(now, tz).date()
        nxt = d + timedelta(days=1)
        # Midnight to midnight in local time: 23 or 25 hours on DST days.
        self._day_start = datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()
        self._day_end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
        day = d.isoformat()
        if day != self._day:
            first = not self._day
            self._day = day
            if self._mem is not None:
                self._mem.prune(keep=day)
                self._counters = self._mem.counters(day)
            else:
                # Unknown until the shared backend answers for the new day.
                self._counters = [0, 0]
            if not first:
                _log.info("budget day %s started (%s)", day, self._config.timezone)
            self._set_state(self._state_for(self._counters[0]), new_day=True)
        return day

    def _observe(self, day: str, t: LedgerTotals) -> None:
        if day != self._day:
            return  # a late answer about another day says nothing about today
        c = self._counters
        c[0], c[1] = t.spent, t.reserved
        if t.spent >= self._next_at:
            self._update_state(t.spent)

    def _update_state(self, spent: int) -> None:
        state = self._state_for(spent)
        if state != self._state:
            self._set_state(state)

    def _state_for(self, spent: int) -> BudgetState:
        if self._exhausted_at is None or self._warn_at is None or self._downgrade_at is None:
            return "normal"
        if spent >= self._exhausted_at:
            return "exhausted"
        if spent >= self._downgrade_at:
            return "downgrade"
        if spent >= self._warn_at:
            return "warn"
        return "normal"

    def _set_state(self, state: BudgetState, *, new_day: bool = False) -> None:
        previous = self._state
        if state == previous:
            return
        if not new_day and _STATE_RANK[state] < _STATE_RANK[previous]:
            return  # within a day the state only moves forward (a stale answer may report less)
        self._state = state
        # The next spend worth recomputing the state at: the threshold of the state above this one.
        thresholds = {"normal": self._warn_at, "warn": self._downgrade_at, "downgrade": self._exhausted_at}
        nxt = thresholds.get(state)
        self._next_at = math.inf if nxt is None else nxt
        status = self.status()
        if state != "normal":
            _log.warning(
                "budget %s: spent %.4f of %.2f USD today (%s)", state, status.spent, status.limit or 0.0, status.day
            )
        event = BudgetEvent(state=state, previous=previous, status=status)
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                _log.exception("budget subscriber %r raised; ignored", callback)

    def _exceeded(self, amount: int, spent: int, reserved: int, model: str, day: str) -> BudgetExceeded:
        limit = self._limit or 0
        who = f" for {model}" if model else ""
        return BudgetExceeded(
            f"daily budget exceeded: a call{who} needs up to {_usd(amount):.6f} USD but {day} "
            f"({self._config.timezone}) has spent {_usd(spent):.6f} + reserved {_usd(reserved):.6f} "
            f"of the {_usd(limit):.2f} USD limit",
            spent=_usd(spent),
            reserved=_usd(reserved),
            limit=_usd(limit),
        )

    def __repr__(self) -> str:
        limit = "no cap" if self._limit is None else f"{_usd(self._limit):.2f} USD"
        return f"<Budget {self._config.backend} {limit} {self._day} {self._state}>"
