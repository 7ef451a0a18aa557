"""Circuit breaker state shared by several router processes through Redis (``breakers.shared: true``).

When one process opens a breaker, every other process connected to the same Redis skips that model too, within
the time a pub/sub message takes (milliseconds), instead of each process paying ``fail_max`` failures of its own.

What travels, and how::

    process A: board event "mini: closed -> open"   process B: listener task
      -> publisher task (not on the request path)     <- {prefix}:breakers  {"op": "open", "ttl": 29.9, ...}
      -> SET {prefix}:breaker:mini {...} PX 29900     -> board.force_open("mini", duration=29.9, ...)
      -> PUBLISH {prefix}:breakers {...}              B's admit()/snapshot() now reject "mini", quoting A

* Only the *open* state is shared, with its remaining open time. Counting failures and the half-open trial stay
  local: when the time is up each process goes half-open and tries one request itself. A trial that succeeds
  publishes ``close`` (the others close too); one that fails re-opens and publishes ``open`` again.
* Times travel as durations (``ttl``, seconds left), never as wall-clock instants, so clock skew between hosts
  does not stretch or cut the open window. The key's Redis TTL is the same duration: a process that starts (or
  reconnects) while a breaker is open elsewhere reads the keys (``SCAN``) and applies what it finds, with the TTL
  the server reports.
* Transitions a process applied from Redis carry ``BreakerEvent.origin`` and are never re-published, so nothing
  echoes. Messages a process published itself are recognised by their ``origin`` and ignored.

Redis is never on the request path: :meth:`BreakerBoard.admit` stays synchronous and local. The board's
subscriber only records the latest transition per breaker (a dict: bounded by the number of breakers) and wakes
the publisher task. If Redis goes away, both tasks log one warning, retry with exponential backoff on the
injected clock and carry on when it is back: the publisher sends each breaker's latest state (an open whose time
ran out meanwhile is dropped), the listener re-subscribes and re-reads the keys. Routing never notices, beyond
losing the sharing for the outage.

Needs the ``asyncrouter[redis]`` extra (``redis>=5``), imported only when a :class:`BreakerSync` is built.

.. versionadded:: 0.1
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import socket
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

import anyio

from ._breaker import BreakerBoard, BreakerEvent, BreakerKind
from ._config import Config
from ._exceptions import ConfigError
from ._types import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_PREFIX",
    "DEFAULT_REDIS_TIMEOUT",
    "BreakerSync",
]

_log = logging.getLogger("asyncrouter.breaker_sync")

#: Key and channel prefix when none is given (``from_config`` uses ``budget.redis_prefix``, also this default).
DEFAULT_PREFIX: Final = "asyncrouter"
#: First retry delay after a Redis failure, in seconds; doubles on each further failure.
DEFAULT_BACKOFF_BASE: Final = 0.25
#: Longest retry delay, in seconds.
DEFAULT_BACKOFF_MAX: Final = 30.0
#: Seconds to wait for Redis to connect or answer one command.
DEFAULT_REDIS_TIMEOUT: Final = 5.0
#: How long one wait for a pub/sub message lasts before the listener checks the connection's health again.
DEFAULT_POLL_INTERVAL: Final = 1.0
#: ``aclose()`` gives the publisher this many seconds to send transitions still pending.
DEFAULT_CLOSE_TIMEOUT: Final = 2.0
# Wire format version; a message with another ``v`` is ignored.
_VERSION: Final = 1
# Seconds between cancellations of a task that has not stopped yet (see _stop).
_CANCEL_RETRY: Final = 0.05


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel *task* and wait for it, cancelling again until it ends.

    redis-py can swallow a cancellation that lands while it connects (its connect timeout eats it), after which
    the task would carry on; a cancellation repeated at the task's next await ends it.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=_CANCEL_RETRY)
    if not task.cancelled() and (exc := task.exception()) is not None:
        _log.error("breaker sync task %s failed", task.get_name(), exc_info=exc)


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
    except ImportError:
        raise ConfigError(
            "sharing breakers needs the redis package: pip install 'asyncrouter[redis]'", path="breakers.shared"
        ) from None
    return redis


def _safe_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + host).geturl()


def _default_origin() -> str:
    # Host and pid say which process it was; the random tail keeps two syncs in one process apart.
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(slots=True, frozen=True)
class _Pending:
    """The latest local transition of one breaker, waiting to be published."""

    op: Literal["open", "close"]
    kind: BreakerKind
    reason: str
    at: float  # clock wall time of the transition
    until: float  # clock monotonic time the open state ends (0.0 for close)


class BreakerSync:
    """Share a :class:`~asyncrouter._breaker.BreakerBoard`'s open breakers with other processes through Redis.

    Start it after the board exists and stop it before the event loop ends::

        sync = BreakerSync(board, redis_url="redis://127.0.0.1:6379/0", clock=clock)
        async with sync:              # subscribes to the board, starts the publisher and listener tasks
            ...                       # route as usual: admit()/record() never touch Redis

    :meth:`aopen` does not wait for Redis and never fails because Redis is down: sharing starts whenever the
    connection comes up (see :attr:`connected`), and routing works without it.

    Args:
        board: the local breakers.
        redis_url: a ``redis://`` or ``rediss://`` URL.
        clock: the injected clock: remaining open times and the retry backoff run on it.
        prefix: key and channel prefix: keys ``{prefix}:breaker:{name}``, channel ``{prefix}:breakers``.
            Processes share breakers exactly when they share the URL and prefix.
        origin: this process's name in messages and rejection reasons (default: ``host:pid:random``).
        backoff_base: first retry delay after a Redis failure (doubling up to *backoff_max*).
        backoff_max: longest retry delay.
        timeout: seconds to wait for Redis to connect or to answer one command.
        poll_interval: the listener waits this long for a message before it checks the connection again.
        close_timeout: what :meth:`aclose` gives the publisher to send transitions still pending.

    Raises:
        ConfigError: the ``redis`` package is not installed.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        board: BreakerBoard,
        *,
        redis_url: str,
        clock: Clock,
        prefix: str = DEFAULT_PREFIX,
        origin: str | None = None,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        if backoff_base <= 0 or backoff_max < backoff_base:
            raise ValueError("need 0 < backoff_base <= backoff_max")
        if timeout <= 0 or poll_interval <= 0 or close_timeout < 0:
            raise ValueError("timeout and poll_interval must be positive, close_timeout not negative")
        self._redis = _import_redis()
        self._board = board
        self._url = redis_url
        self._clock = clock
        self._prefix = prefix
        self.origin: str = origin or _default_origin()
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._timeout = timeout
        self._poll = poll_interval
        self._close_timeout = close_timeout
        self._channel = f"{prefix}:breakers"
        self._pending: dict[str, _Pending] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # set by the publisher whenever nothing is left to send
        self._client: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._listening = False
        self._publishing_ok = True
        self._opened = False
        self._closed = False
        self._stopping = False  # the loops' own exit condition, should a cancellation be swallowed
        #: Transitions written to Redis.
        self.published = 0
        #: Remote transitions received (pub/sub messages and keys read on (re)connect), own messages excluded.
        self.received = 0
        #: Remote transitions that changed the local board.
        self.applied = 0
        #: Redis failures (connecting, publishing, listening); each is followed by a backoff and a retry.
        self.errors = 0

    @classmethod
    def from_config(cls, config: Config, board: BreakerBoard, *, clock: Clock, **kwargs: Any) -> BreakerSync | None:
        """The sync a router config asks for, or ``None`` when ``breakers.shared`` is off.

        The URL is ``breakers.redis_url``, else ``budget.redis_url``; the prefix is ``budget.redis_prefix``.

        Args:
            config: the whole router config.
            board: the router's breakers.
            clock: the router's clock.
            **kwargs: passed on to the constructor.

        Raises:
            ConfigError: sharing is on but no Redis URL is configured, or the ``redis`` package is missing.

        .. versionadded:: 0.1
        """
        if not config.breakers.shared:
            return None
        url = config.breakers.redis_url or config.budget.redis_url
        if not url:
            raise ConfigError(
                "shared breakers need a Redis URL (breakers.redis_url or budget.redis_url)", path="breakers.redis_url"
            )
        kwargs.setdefault("prefix", config.budget.redis_prefix)
        return cls(board, redis_url=url, clock=clock, **kwargs)

    # ----------------------------------------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        """Whether the listener is subscribed and has read the keys: remote opens now arrive as they happen."""
        return self._listening

    def key(self, name: str) -> str:
        """The Redis key holding breaker *name*'s open state."""
        return f"{self._prefix}:breaker:{name}"

    @property
    def channel(self) -> str:
        """The pub/sub channel transitions are announced on."""
        return self._channel

    async def aopen(self) -> None:
        """Subscribe to the board and start the publisher and listener tasks. Does not wait for Redis.

        Raises:
            RuntimeError: it was already opened.
        """
        if self._opened:
            raise RuntimeError("BreakerSync can be opened once")
        self._opened = True
        r = self._redis
        # No retries inside redis-py (its backoff sleeps off our clock): the loops here retry, on the clock.
        self._client = r.asyncio.Redis.from_url(
            self._url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=r.asyncio.retry.Retry(r.backoff.NoBackoff(), 0),
        )
        self._unsubscribe = self._board.subscribe(self._on_event)
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="asyncrouter-breaker-sync-publish"),
            asyncio.create_task(self._listen_loop(), name="asyncrouter-breaker-sync-listen"),
        ]

    async def aclose(self) -> None:
        """Send pending transitions (for at most ``close_timeout`` seconds), stop both tasks, disconnect.

        Safe to call twice, and shielded from cancellation so the connection is never leaked.
        """
        if not self._opened or self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        with anyio.CancelScope(shield=True):
            try:
                if self._pending and self._close_timeout > 0:
                    with anyio.move_on_after(self._close_timeout):
                        await self.flush()
            finally:
                self._stopping = True
                for task in self._tasks:
                    await _stop(task)
                self._tasks = []
                self._listening = False
                client, self._client = self._client, None
                if client is not None:
                    await client.aclose()

    async def __aenter__(self) -> BreakerSync:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_opened", False) and not getattr(self, "_closed", True):
            _warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=2)

    async def flush(self) -> None:
        """Wait until every local transition seen so far is written to Redis (through outages: bound it yourself).

        Returns at once when nothing is pending or the sync is not running.
        """
        while self._pending and self._tasks and not self._tasks[0].done():
            self._idle.clear()
            self._wakeup.set()
            await self._idle.wait()

    # ------------------------------------------------------------------------------------------------ publish

    def _on_event(self, event: BreakerEvent) -> None:
        # Runs synchronously inside admit()/record(): remember and wake the publisher, nothing else.
        if event.origin is not None:
            return  # applied from Redis: publishing it again would echo
        if event.new_state == "open":
            status = self._board.status().get(event.name)
            retry_in = status.retry_in if status is not None and status.retry_in is not None else 0.0
            pending = _Pending("open", event.kind, event.reason, event.at, self._clock.monotonic() + retry_in)
        elif event.new_state == "closed":
            pending = _Pending("close", event.kind, event.reason, event.at, 0.0)
        else:
            return  # half-open is each process's own business
        self._pending.pop(event.name, None)  # keep insertion order = order of the latest transitions
        self._pending[event.name] = pending
        self._wakeup.set()

    def _message(self, name: str, p: _Pending, ttl: float) -> bytes:
        data = {
            "v": _VERSION,
            "op": p.op,
            "name": name,
            "kind": p.kind,
            "ttl": ttl,
            "reason": p.reason,
            "at": p.at,
            "origin": self.origin,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    async def _publish_loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                try:
                    await self._publish_pending()
                except Exception as exc:  # RedisError, OSError, timeouts: Redis is away
                    failures += 1
                    self.errors += 1
                    self._log_failure("publish", exc, first=self._publishing_ok)
                    self._publishing_ok = False
                    await self._clock.sleep(self._backoff(failures))
                else:
                    if not self._publishing_ok:
                        _log.info("breaker sync: publishing to %s again", _safe_url(self._url))
                    self._publishing_ok = True
                    failures = 0
            self._idle.set()

    async def _publish_pending(self) -> None:
        client = self._client
        assert client is not None
        for name, p in list(self._pending.items()):
            pipe = client.pipeline(transaction=True)
            if p.op == "open":
                ttl = p.until - self._clock.monotonic()
                if ttl <= 0:
                    # Its time ran out while Redis was away: the others would only open it for nothing now.
                    self._drop(name, p)
                    continue
                msg = self._message(name, p, ttl)
                pipe.set(self.key(name), msg, px=max(1, math.ceil(ttl * 1000)))
            else:
                msg = self._message(name, p, 0.0)
                pipe.delete(self.key(name))
            pipe.publish(self._channel, msg)
            await pipe.execute()
            self.published += 1
            self._drop(name, p)

    def _drop(self, name: str, p: _Pending) -> None:
        # A newer transition of the same breaker may have arrived while we awaited: keep that one.
        if self._pending.get(name) is p:
            del self._pending[name]

    # ------------------------------------------------------------------------------------------------- listen

    async def _listen_loop(self) -> None:
        client = self._client
        assert client is not None
        failures = 0
        while not self._stopping:
            pubsub: PubSub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                # Subscribed first, then read the keys: an open announced in between is seen one way or the other.
                await self._resync(client)
                if failures:
                    _log.info("breaker sync: listening on %s again", _safe_url(self._url))
                failures = 0
                self._listening = True
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self._poll)
                    if message is not None and message.get("type") == "message":
                        self._apply(message.get("data"))
            except Exception as exc:  # RedisError, OSError, timeouts: Redis is away
                self._listening = False
                failures += 1
                self.errors += 1
                self._log_failure("listen", exc, first=failures == 1)
            finally:
                self._listening = False
                with anyio.CancelScope(shield=True):
                    try:
                        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    except Exception:  # the connection is already gone; nothing left to release
                        _log.debug("breaker sync: closing the pub/sub connection failed", exc_info=True)
            await self._clock.sleep(self._backoff(failures))

    async def _resync(self, client: Redis) -> None:
        keys = [k async for k in client.scan_iter(match=f"{self._prefix}:breaker:*", count=500)]
        if not keys:
            return
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
            pipe.pttl(k)
        values = await pipe.execute()
        for i in range(len(keys)):
            raw, pttl = values[2 * i], values[2 * i + 1]
            if raw is None or not isinstance(pttl, int) or pttl <= 0:
                continue  # gone since the scan, or without expiry (not ours)
            self._apply(raw, ttl=pttl / 1000)

    def _apply(self, raw: object, *, ttl: float | None = None) -> None:
        """Apply one remote transition to the board. *ttl* (from the key's PTTL) overrides the message's."""
        try:
            data = json.loads(raw) if isinstance(raw, bytes | str) else None
        except ValueError:
            data = None
        if not isinstance(data, Mapping) or data.get("v") != _VERSION:
            _log.debug("breaker sync: ignored a malformed message %r", raw)
            return
        origin, name, op = data.get("origin"), data.get("name"), data.get("op")
        if origin == self.origin or not isinstance(origin, str) or not isinstance(name, str):
            return
        self.received += 1
        reason = str(data.get("reason") or "")
        try:
            if op == "open":
                seconds = ttl if ttl is not None else data.get("ttl")
                if not isinstance(seconds, int | float):
                    return
                changed = self._board.force_open(
                    name, duration=float(seconds), reason=f"opened by {origin}: {reason}", origin=origin
                )
            elif op == "close":
                changed = self._board.force_close(name, reason=f"closed by {origin}: {reason}", origin=origin)
            else:
                return
        except KeyError:
            return  # a breaker this process does not have (another config)
        if changed:
            self.applied += 1

    # ------------------------------------------------------------------------------------------------ helpers

    def _backoff(self, failures: int) -> float:
        return min(self._backoff_max, self._backoff_base * 2.0 ** max(0, failures - 1))

    def _log_failure(self, what: str, exc: BaseException, *, first: bool) -> None:
        # One warning per outage; the retries after it only at debug level.
        log = _log.warning if first else _log.debug
        log(
            "breaker sync: cannot %s via redis at %s (%s: %s); routing goes on with local breakers, retrying",
            what,
            _safe_url(self._url),
            type(exc).__name__,
            exc,
        )

    def __repr__(self) -> str:
        return f"BreakerSync({_safe_url(self._url)!r}, prefix={self._prefix!r}, origin={self.origin!r})"
