"""Circuit breakers: one per model alias and one per provider endpoint, on pybreaker's state machine.

The engine drives a :class:`BreakerBoard` from async code without ever awaiting inside pybreaker::

    admission = board.admit(alias)            # sync: an Admission, or a Rejection naming why
    if isinstance(admission, Rejection):
        ...                                   # skip this model, try the next one
    try:
        reply = await provider_call(...)
    except BaseException as exc:
        board.record(admission, exc, final=...)  # final: no retry of this model follows
        raise                                 # cancellation passes through untouched
    else:
        board.record(admission, None)         # also for a reply that failed a quality gate: the call worked

Outcomes (:func:`classify_outcome`):

* ``"success"``: no exception. Resets the model's and its endpoint's failure streaks; a half-open trial's success
  closes the breaker.
* ``"failure"``: a :class:`~asyncrouter.ProviderError` whose ``counts_as_failure`` is true, i.e.
  ``ProviderServerError`` (5xx, ``ProviderOverloaded``, ``MalformedResponse``), ``ProviderTimeout`` and
  ``ProviderConnectionError`` (``StreamInterrupted``), and ``RateLimited`` only when the caller passes
  ``final=True`` (its retries on this model are exhausted).
* ``"ignored"``: everything else: ``ProviderRejected`` and its subclasses (the provider answered; the request
  was at fault), a ``RateLimited`` that will still be retried, cancellation (``CancelledError``,
  ``KeyboardInterrupt``, ``GeneratorExit``, ``SystemExit``) and any exception that is not a ``ProviderError``
  (``_http`` translates every transport failure into one, so anything else is the caller's own deadline or a bug
  in our code, and neither says the provider is down). An ignored outcome changes nothing: it does not count
  as a failure and, unlike pybreaker's excluded exceptions, it does not count as a success either; it only
  gives back a half-open trial slot so another caller may try.

Why pybreaker is driven this way (its three hazards in 1.4.1):

* ``call_async`` needs Tornado: never used.
* ``CircuitBreaker.open()`` stores ``datetime.now(UTC)`` and the open state compares against ``datetime.now``:
  :class:`ClockedMemoryStorage` ignores the value it is given and reads the injected Clock instead, and the
  open -> half-open transition is evaluated here, lazily, from that clock on ``admit()``, ``snapshot()`` and
  ``status()``. pybreaker's ``call()`` is never entered while a breaker is open.
* ``calling()`` around an ``await`` would count a cancellation as a failure and, at the threshold, replace it
  with ``CircuitBreakerError``, breaking the cancel scope. Outcomes are classified here after the call, and only
  a counted failure or a success is replayed into pybreaker as a synchronous ``call()`` of a stub that raises a
  private marker exception or returns. The caller's exception never enters pybreaker, so its traceback is not
  touched.

Half-open admits exactly one trial at a time: ``admit()`` checks and claims the trial slot with no ``await`` in
between, so it is atomic on the event loop. A trial that is never recorded (a stream abandoned without being
closed) gives its slot up after ``trial_lease`` seconds.

Outcomes are applied only to the breaker state they were admitted under: every transition starts a new epoch,
and a call admitted before it (say, still running when the breaker opened) is ignored when it ends, so a late
success cannot close a half-open breaker behind its trial's back and a late failure cannot re-open it.

Provider endpoints (:func:`endpoint_key`: provider kind + base URL) are shared by several aliases. The provider
breaker opens when the endpoint as a whole fails, not when one of its models is sick: it counts consecutive
counted failures across all of the endpoint's models (a success on any of them resets the streak), and opens at
``breakers.provider.fail_max`` only once the streak's failures come from at least ``min(provider_min_models,
models on the endpoint)`` distinct models (2 by default). One sick model of a 3-model endpoint therefore never
opens it; failures from two or more of its models do. A single-model endpoint opens on its one model's
failures. In half-open the one trial decides, whichever model carries it. While the provider breaker is open,
every model it hosts is rejected with a reason that names the provider.

Transitions are reported as :class:`BreakerEvent` to :meth:`BreakerBoard.subscribe` callbacks, synchronously,
before the ``admit``/``record``/``snapshot``/``status`` call that caused them returns. They are queued while
pybreaker is mid-transition (its storage is updated only after its listeners ran) and delivered once the
board is consistent again, so a callback may itself call ``status()``. A callback that raises is logged on the
``asyncrouter.breaker`` logger and does not disturb routing.

Sharing state across processes (issue #5) plugs in through ``storage_factory``: a shared storage subclasses
:class:`ClockedMemoryStorage` and overrides the state, counters, ``opened_at``, the streak's models and the trial
slot.

:class:`~asyncrouter._breaker_sync.BreakerSync` shares state the lighter way: it publishes local transitions and
applies other processes' with :meth:`BreakerBoard.force_open` / :meth:`BreakerBoard.force_close`. Only the open
state travels (with its remaining time); counting and the half-open trial stay local to each process.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypeAlias

import pybreaker

from ._config import BreakerConfig, BreakersConfig, Config
from ._exceptions import CircuitOpen, ConfigError, ProviderError, RateLimited
from ._types import Clock

__all__ = [
    "DEFAULT_PROVIDER_MIN_MODELS",
    "DEFAULT_TRIAL_LEASE",
    "Admission",
    "BreakerBoard",
    "BreakerEvent",
    "BreakerKind",
    "BreakerState",
    "BreakerStatus",
    "ClockedMemoryStorage",
    "Outcome",
    "Rejection",
    "StorageFactory",
    "classify_outcome",
    "endpoint_key",
]

logger = logging.getLogger("asyncrouter.breaker")

BreakerKind: TypeAlias = Literal["model", "provider"]
BreakerState: TypeAlias = Literal["closed", "open", "half_open"]
Outcome: TypeAlias = Literal["success", "failure", "ignored"]

#: Seconds after which a half-open trial that was never recorded gives up its slot. Far above any sane request
#: timeout, so a slow trial is never doubled; it only rescues a breaker from a lost admission.
DEFAULT_TRIAL_LEASE: Final = 600.0
#: How many distinct models of an endpoint must fail in one streak before its provider breaker may open.
DEFAULT_PROVIDER_MIN_MODELS: Final = 2

_CLOSED: Final = pybreaker.STATE_CLOSED
_OPEN: Final = pybreaker.STATE_OPEN
_HALF_OPEN: Final = pybreaker.STATE_HALF_OPEN
_STATE_NAMES: Final[Mapping[str, BreakerState]] = {_CLOSED: "closed", _OPEN: "open", _HALF_OPEN: "half_open"}
_NOTHING_BLOCKED: Final[Mapping[str, str]] = MappingProxyType({})
# A threshold no streak reaches: the provider breaker's fail_max until its streak spans enough models.
_NEVER: Final = 2**62


def endpoint_key(provider: str, base_url: str) -> str:
    """The provider breaker's name for an endpoint: ``"openai:https://api.openai.com/v1"``.

    Args:
        provider: the provider kind from the config, e.g. ``"openai"``.
        base_url: the endpoint's base URL; a trailing slash is ignored.

    .. versionadded:: 0.1
    """
    return f"{provider}:{base_url.rstrip('/')}"


def classify_outcome(exc: BaseException | None, *, final: bool = False) -> Outcome:
    """Say what a finished provider call means for its breakers.

    Args:
        exc: the exception the call ended with, or ``None`` if it returned (a reply that then failed a quality
            gate is still ``None``: the provider worked).
        final: true when the engine will not retry this model again (retries exhausted); only then does
            :class:`~asyncrouter.RateLimited` count as a failure.

    Returns:
        ``"success"``, ``"failure"`` (counts towards opening) or ``"ignored"`` (changes nothing). See the
        module docstring for the full table.

    .. versionadded:: 0.1
    """
    if exc is None:
        return "success"
    if isinstance(exc, ProviderError):
        if not exc.counts_as_failure:
            return "ignored"
        if isinstance(exc, RateLimited) and not final:
            return "ignored"
        return "failure"
    # Cancellation, KeyboardInterrupt, GeneratorExit, the caller's own deadline, bugs: none says the provider
    # is down, and counting cancellation would let a cancelled batch open breakers.
    return "ignored"


class ClockedMemoryStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-memory storage, with time taken from the injected Clock, plus what the board needs.

    pybreaker hard-codes ``datetime.now(UTC)`` when it opens a breaker; the ``opened_at`` setter here ignores the
    value it is given and stamps the clock's monotonic and wall time instead. It also keeps the set of models
    in the current failure streak (for the provider spread rule) and the half-open trial slot. A storage shared
    between processes (issue #5) subclasses this and overrides all of it.

    Args:
        clock: where ``opened_at`` comes from.

    .. versionadded:: 0.1
    """

    def __init__(self, *, clock: Clock) -> None:
        super().__init__(_CLOSED)
        self._clock = clock
        self._opened_wall: float | None = None
        self._opened_mono: float | None = None
        self._streak_models: set[str] = set()
        self._trial_token = 0  # 0: no trial in flight
        self._trial_since = 0.0

    @property
    def opened_at(self) -> datetime | None:
        """When the breaker last opened, as pybreaker's UTC datetime (from the clock's wall time)."""
        if self._opened_wall is None:
            return None
        return datetime.fromtimestamp(self._opened_wall, UTC)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        # pybreaker passes datetime.now(UTC); ignoring it is what puts the breaker on the injected clock.
        self._opened_wall = self._clock.time()
        self._opened_mono = self._clock.monotonic()

    @property
    def opened_at_wall(self) -> float | None:
        """Clock wall time (epoch seconds) of the last opening."""
        return self._opened_wall

    @property
    def opened_at_monotonic(self) -> float | None:
        """Clock monotonic time of the last opening; the reset timeout runs from here."""
        return self._opened_mono

    def reset_counter(self) -> None:
        """Zero the failure counter; the streak's models go with it."""
        super().reset_counter()
        self._streak_models.clear()

    def note_failure(self, model: str) -> None:
        """Remember that *model* failed in the current streak (called just before the counter is increased)."""
        self._streak_models.add(model)

    @property
    def streak_models(self) -> frozenset[str]:
        """The distinct models whose counted failures make up the current streak."""
        return frozenset(self._streak_models)

    @property
    def streak_model_count(self) -> int:
        """``len(streak_models)`` without building a set."""
        return len(self._streak_models)

    def claim_trial(self, *, token: int, now: float, lease: float) -> bool:
        """Take the half-open trial slot for *token* unless a live trial holds it."""
        if self._trial_token and now - self._trial_since < lease:
            return False
        self._trial_token = token
        self._trial_since = now
        return True

    def release_trial(self, token: int) -> None:
        """Give the trial slot back, if *token* still holds it (a lease may have handed it on)."""
        if self._trial_token == token:
            self._trial_token = 0

    def clear_trial(self) -> None:
        """Free the trial slot whoever holds it (the breaker left half-open)."""
        self._trial_token = 0

    def trial_in_flight(self, *, now: float, lease: float) -> bool:
        """Whether a live trial holds the slot."""
        return bool(self._trial_token) and now - self._trial_since < lease

    def set_opened_at(self, *, wall: float, monotonic: float) -> None:
        """Stamp the opening explicitly: the reset timeout then runs from *monotonic* (used by ``force_open``)."""
        self._opened_wall = wall
        self._opened_mono = monotonic


#: Builds the storage of one breaker: ``factory(name, kind)``. The default makes a :class:`ClockedMemoryStorage`.
StorageFactory: TypeAlias = Callable[[str, BreakerKind], ClockedMemoryStorage]


@dataclass(slots=True, frozen=True)
class BreakerEvent:
    """A breaker changed state.

    Attributes:
        name: the model alias, or the endpoint key for a provider breaker.
        kind: ``"model"`` or ``"provider"``.
        old_state: the state it left.
        new_state: the state it entered.
        at: the clock's wall time of the transition (epoch seconds).
        reason: why, e.g. ``"5 consecutive failures (last: ProviderServerError)"``.
        origin: ``None`` when this process caused the transition; otherwise who did (another process, via
            :meth:`BreakerBoard.force_open` / :meth:`BreakerBoard.force_close`), so listeners can tell a shared
            breaker's echo from a local trip.

    .. versionadded:: 0.1
    """

    name: str
    kind: BreakerKind
    old_state: BreakerState
    new_state: BreakerState
    at: float
    reason: str
    origin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return dataclasses.asdict(self)


@dataclass(slots=True, frozen=True)
class BreakerStatus:
    """One breaker as it is right now.

    Attributes:
        name: the model alias, or the endpoint key for a provider breaker.
        kind: ``"model"`` or ``"provider"``.
        state: ``"closed"``, ``"open"`` or ``"half_open"``.
        fail_count: consecutive counted failures in the current streak.
        fail_max: failures that open it (for a provider, once the streak spans enough models).
        reset_timeout: seconds it stays open before a trial.
        opened_at: clock wall time it opened (epoch seconds); ``None`` while closed.
        opened_at_monotonic: the same on the clock's monotonic line; ``None`` while closed.
        retry_in: seconds until it goes half-open (``0.0`` when half-open, ``None`` when closed).
        trial_in_flight: whether a half-open trial request is running.
        models: the aliases it guards (one for a model breaker, every hosted alias for a provider breaker).
        streak_models: the models whose failures make up the current streak.

    .. versionadded:: 0.1
    """

    name: str
    kind: BreakerKind
    state: BreakerState
    fail_count: int
    fail_max: int
    reset_timeout: float
    opened_at: float | None
    opened_at_monotonic: float | None
    retry_in: float | None
    trial_in_flight: bool
    models: tuple[str, ...]
    streak_models: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["models"] = list(self.models)
        data["streak_models"] = list(self.streak_models)
        return data


@dataclass(slots=True, frozen=True)
class Rejection:
    """``admit()`` refused a model: its breaker or its provider's is open, or half-open with a trial running.

    Attributes:
        alias: the model that was refused.
        reason: human-readable, e.g. ``"breaker open for model 'mini' (5 consecutive failures, retry in 12.3 s)"``.
        breaker: the name of the breaker that refused (the alias, or the endpoint key).
        kind: ``"model"`` or ``"provider"``.
        state: ``"open"`` or ``"half_open"``.
        retry_in: seconds until the refusing breaker goes half-open (``0.0`` when half-open).

    .. versionadded:: 0.1
    """

    #: Always false: ``if not result.admitted`` narrows ``Admission | Rejection`` to ``Rejection``.
    admitted: ClassVar[Literal[False]] = False

    alias: str
    reason: str
    breaker: str
    kind: BreakerKind
    state: BreakerState
    retry_in: float

    def error(self) -> CircuitOpen:
        """The :class:`~asyncrouter.CircuitOpen` to raise when nothing else can take the request."""
        return CircuitOpen(self.reason, name=self.breaker)


class Admission:
    """Permission to call one model once; hand it back to :meth:`BreakerBoard.record` exactly once.

    Attributes:
        alias: the admitted model.
        endpoint: its provider endpoint key.

    .. versionadded:: 0.1
    """

    __slots__ = ("_done", "_model", "_model_epoch", "_provider", "_provider_epoch", "_token", "alias", "endpoint")

    #: Always true: ``if not result.admitted`` narrows ``Admission | Rejection`` to ``Rejection``.
    admitted: ClassVar[Literal[True]] = True

    def __init__(
        self,
        alias: str,
        endpoint: str,
        model: _Gate | None,
        provider: _Gate | None,
        token: int,
    ) -> None:
        self.alias = alias
        self.endpoint = endpoint
        self._model = model
        self._provider = provider
        # The epochs pin the outcome to the breaker states it was admitted under.
        self._model_epoch = model.epoch if model is not None else 0
        self._provider_epoch = provider.epoch if provider is not None else 0
        self._token = token
        self._done = False

    @property
    def trial(self) -> bool:
        """Whether this admission is a half-open trial (of the model's breaker, its provider's, or both)."""
        return self._token != 0

    @property
    def recorded(self) -> bool:
        """Whether its outcome was recorded."""
        return self._done

    def __repr__(self) -> str:
        return f"Admission(alias={self.alias!r}, trial={self.trial}, recorded={self._done})"


class _CountedFailure(Exception):
    """Stand-in replayed into pybreaker for a counted failure; never leaves this module."""


def _fail() -> None:
    raise _CountedFailure


def _succeed() -> None:
    return None


class _SpreadBreaker(pybreaker.CircuitBreaker):
    """A provider breaker: its threshold only applies once the failure streak spans enough distinct models."""

    def __init__(self, *, storage: ClockedMemoryStorage, min_models: int, **kwargs: Any) -> None:
        self._spread_storage = storage
        self.min_models = min_models
        super().__init__(state_storage=storage, **kwargs)

    @property
    def fail_max(self) -> int:
        # pybreaker's closed state opens when counter >= fail_max, so an unreachable threshold is how "not
        # spread enough yet" keeps it closed while the streak goes on counting.
        if self._spread_storage.streak_model_count < self.min_models:
            return _NEVER
        return self._fail_max

    @fail_max.setter
    def fail_max(self, number: int) -> None:
        self._fail_max = number


class _Gate(pybreaker.CircuitBreakerListener):
    """One pybreaker breaker plus what the board adds: clock-driven half-open, the trial slot, epochs, events."""

    def __init__(
        self,
        *,
        board: BreakerBoard,
        name: str,
        kind: BreakerKind,
        config: BreakerConfig,
        storage: ClockedMemoryStorage,
    ) -> None:
        self.board = board
        self.name = name
        self.kind = kind
        self.storage = storage
        self.reset_timeout = config.reset_timeout
        self.fail_max_config = config.fail_max
        self.models: list[str] = []
        self.epoch = 0
        self._reason = ""
        # pybreaker's state as last announced to us; when storage disagrees, someone else changed it.
        self._known = _CLOSED
        # (epoch, text) set by BreakerBoard.force_open: while the epoch matches, rejections quote the text.
        self.note: tuple[int, str] | None = None
        self.breaker: pybreaker.CircuitBreaker
        if kind == "provider":
            self.breaker = _SpreadBreaker(
                storage=storage,
                min_models=1,
                fail_max=config.fail_max,
                reset_timeout=config.reset_timeout,
                listeners=[self],
                name=name,
            )
        else:
            self.breaker = pybreaker.CircuitBreaker(
                fail_max=config.fail_max,
                reset_timeout=config.reset_timeout,
                listeners=[self],
                state_storage=storage,
                name=name,
            )

    # -- pybreaker listener -------------------------------------------------------------------------------

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        # Runs inside pybreaker's transition, before it updates its storage: only note it here; callbacks run
        # later from BreakerBoard._flush, when reading the board is safe again.
        self.epoch += 1
        self._known = new_state.name
        if old_state is not None and old_state.name == _HALF_OPEN:
            # Half-open is over, so no trial can still hold it (a lease-replaced trial that never reported).
            self.storage.clear_trial()
        old = _STATE_NAMES[old_state.name] if old_state is not None else "closed"
        new = _STATE_NAMES[new_state.name]
        reason = self._reason or "state changed in the breaker storage"
        self._reason = ""
        self.board._queue_event(BreakerEvent(self.name, self.kind, old, new, self.board._clock.time(), reason))

    # -- board side ----------------------------------------------------------------------------------------

    def current(self) -> str:
        """The pybreaker state (storage is the truth)."""
        state = self.storage.state
        if state != self._known:
            # Changed behind pybreaker's back (a shared storage, issue #5): its state property re-syncs and
            # announces the change, which moves our epoch on.
            state = self.breaker.state.name
        return state

    def state(self, now: float) -> str:
        """The pybreaker state, after moving open -> half-open if the reset timeout has passed."""
        state = self.current()
        if state == _OPEN:
            opened = self.storage.opened_at_monotonic
            if opened is None or now >= opened + self.reset_timeout:
                self._reason = f"reset timeout of {self.reset_timeout:g} s elapsed"
                self.breaker.half_open()
                return _HALF_OPEN
        return state

    def retry_in(self, now: float) -> float:
        opened = self.storage.opened_at_monotonic
        if opened is None:
            return 0.0
        return max(0.0, opened + self.reset_timeout - now)

    def _what(self) -> str:
        return f"{self.kind} {self.name!r}"

    def refusal(self, alias: str, state: str, now: float) -> Rejection | None:
        """Why *alias* may not be called through this breaker now, or ``None``. Claims nothing."""
        if state == _CLOSED:
            return None
        board = self.board
        if state == _HALF_OPEN:
            if not self.storage.trial_in_flight(now=now, lease=board._trial_lease):
                return None
            reason = f"breaker for {self._what()} is half-open: trial in flight"
            return Rejection(alias, reason, self.name, self.kind, "half_open", 0.0)
        retry = self.retry_in(now)
        note = self.note
        if note is not None and note[0] == self.epoch:
            reason = f"breaker open for {self._what()} ({note[1]}, retry in {retry:.1f} s)"
            return Rejection(alias, reason, self.name, self.kind, "open", retry)
        count = self.storage.counter
        across = ""
        if self.kind == "provider":
            models = ", ".join(repr(m) for m in sorted(self.storage.streak_models))
            across = f" across models {models}" if models else ""
        reason = f"breaker open for {self._what()} ({count} consecutive failures{across}, retry in {retry:.1f} s)"
        return Rejection(alias, reason, self.name, self.kind, "open", retry)

    def _settled(self, epoch: int) -> bool:
        """Closed, as it was at admission, with no failure counted: a success would change nothing."""
        storage = self.storage
        return epoch == self.epoch and storage.state == _CLOSED == self._known and storage.counter == 0

    def settle(self, outcome: Outcome, *, epoch: int, token: int, alias: str, exc: BaseException | None) -> None:
        """Apply one recorded outcome."""
        if token:
            self.storage.release_trial(token)
        if outcome == "ignored" or epoch != self.epoch:
            # Ignored outcomes change nothing; stale ones describe the endpoint before its last transition.
            return
        state = self.current()
        if state == _OPEN or (state == _HALF_OPEN and not token):
            return  # unreachable with matching epochs; kept so pybreaker's datetime-based open state never runs
        if outcome == "success":
            if state == _CLOSED and self.storage.counter == 0:
                return  # nothing to reset: keep pybreaker off the hot path
            self._reason = "trial request succeeded"
            self.breaker.call(_succeed)
            self._reason = ""
            return
        self.board._quiet = False
        self.storage.note_failure(alias)
        last = type(exc).__name__
        if state == _HALF_OPEN:
            self._reason = f"trial request failed ({last})"
        else:
            across = ""
            if self.kind == "provider":
                across = f" across models {', '.join(repr(m) for m in sorted(self.storage.streak_models))}"
            self._reason = f"{self.storage.counter + 1} consecutive failures{across} (last: {last})"
        try:
            self.breaker.call(_fail)
        except (_CountedFailure, pybreaker.CircuitBreakerError):
            pass  # the stand-in coming back, or pybreaker announcing the trip we just caused
        self._reason = ""

    def status(self, now: float) -> BreakerStatus:
        state = self.state(now)
        is_closed = state == _CLOSED
        return BreakerStatus(
            name=self.name,
            kind=self.kind,
            state=_STATE_NAMES[state],
            fail_count=self.storage.counter,
            fail_max=self.fail_max_config,
            reset_timeout=self.reset_timeout,
            opened_at=None if is_closed else self.storage.opened_at_wall,
            opened_at_monotonic=None if is_closed else self.storage.opened_at_monotonic,
            retry_in=None if is_closed else (self.retry_in(now) if state == _OPEN else 0.0),
            trial_in_flight=state == _HALF_OPEN
            and self.storage.trial_in_flight(now=now, lease=self.board._trial_lease),
            models=tuple(self.models),
            streak_models=tuple(sorted(self.storage.streak_models)),
        )


class _Entry:
    """A model alias and the two gates it passes through."""

    __slots__ = ("endpoint", "model", "provider")

    def __init__(self, endpoint: str, model: _Gate, provider: _Gate) -> None:
        self.endpoint = endpoint
        self.model = model
        self.provider = provider


class BreakerBoard:
    """Every circuit breaker of a router: one per model alias, one per provider endpoint.

    ``admit()`` and ``record()`` are synchronous and never await, so each is atomic on the event loop however
    many tasks call them. Time comes only from *clock*; the open -> half-open transition is evaluated lazily
    when the board is asked (no background task).

    Args:
        config: thresholds and timeouts (``breakers:`` in the config). With ``enabled: false`` every model is
            admitted and nothing is recorded.
        clock: the injected clock (``asyncrouter.testing.FakeClock`` in tests).
        models: alias -> provider endpoint key (see :func:`endpoint_key`); more with :meth:`add_model`.
        storage_factory: builds each breaker's storage; the seam for sharing state across processes.
        trial_lease: seconds after which an unrecorded half-open trial gives up its slot.
        provider_min_models: distinct failing models a provider streak needs (capped at the number of models on
            the endpoint) before the provider breaker may open.

    Raises:
        ConfigError: an alias is mapped to two endpoints, or a name is both an alias and an endpoint key.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        config: BreakersConfig,
        *,
        clock: Clock,
        models: Mapping[str, str] | None = None,
        storage_factory: StorageFactory | None = None,
        trial_lease: float = DEFAULT_TRIAL_LEASE,
        provider_min_models: int = DEFAULT_PROVIDER_MIN_MODELS,
    ) -> None:
        if trial_lease <= 0:
            raise ValueError("trial_lease must be positive")
        if provider_min_models < 1:
            raise ValueError("provider_min_models must be at least 1")
        self._config = config
        self._enabled = config.enabled
        self._clock = clock
        self._trial_lease = trial_lease
        self._provider_min_models = provider_min_models
        self._storage_factory: StorageFactory = storage_factory or self._memory_storage
        self._entries: dict[str, _Entry] = {}
        self._storages: tuple[ClockedMemoryStorage, ...] = ()
        self._providers: dict[str, _Gate] = {}
        self._tokens = itertools.count(1)
        self._subscribers: list[Callable[[BreakerEvent], object]] = []
        self._events: deque[BreakerEvent] = deque()
        self._flushing = False
        # Quiet: every breaker closed, no failure counted, no trial out, no event pending. Then admit(), record()
        # of a reply and snapshot() have nothing to look at, and answer at once. Any counted failure or
        # transition ends it; it is re-established by _recheck_quiet() after a success or a forced close. Only
        # for the board's own in-memory storages, which change only through this module: a custom storage (one
        # shared between processes) may change behind the board's back, so it always takes the full path.
        self._quiet_capable = self._enabled and storage_factory is None
        self._quiet = self._quiet_capable
        for alias, endpoint in (models or {}).items():
            self.add_model(alias, endpoint)

    @classmethod
    def from_config(cls, config: Config, *, clock: Clock, **kwargs: Any) -> BreakerBoard:
        """A board for every model of a router config, keyed by provider kind and resolved base URL.

        Args:
            config: the whole router config.
            clock: the injected clock.
            **kwargs: passed on to the constructor (``storage_factory``, ``trial_lease``, ...).
        """
        models = {m.name: endpoint_key(m.provider, m.resolved_base_url) for m in config.models}
        return cls(config.breakers, clock=clock, models=models, **kwargs)

    def _memory_storage(self, name: str, kind: BreakerKind) -> ClockedMemoryStorage:
        return ClockedMemoryStorage(clock=self._clock)

    @property
    def enabled(self) -> bool:
        """Whether breakers are on (``breakers.enabled``)."""
        return self._enabled

    @property
    def models(self) -> Mapping[str, str]:
        """alias -> endpoint key, read-only."""
        return MappingProxyType({alias: e.endpoint for alias, e in self._entries.items()})

    def add_model(self, alias: str, endpoint: str) -> None:
        """Give *alias* a breaker and put it behind *endpoint*'s provider breaker (created on first use).

        Adding the same alias to the same endpoint again does nothing.

        Raises:
            ConfigError: *alias* is already behind another endpoint, or a name would be used twice.
        """
        entry = self._entries.get(alias)
        if entry is not None:
            if entry.endpoint != endpoint:
                raise ConfigError(f"model {alias!r} is already behind endpoint {entry.endpoint!r}", path="breakers")
            return
        if alias in self._providers or endpoint in self._entries or alias == endpoint:
            raise ConfigError(f"{alias!r} / {endpoint!r}: a model alias may not equal an endpoint key", path="breakers")
        provider = self._providers.get(endpoint)
        if provider is None:
            provider = self._providers[endpoint] = _Gate(
                board=self,
                name=endpoint,
                kind="provider",
                config=self._config.provider,
                storage=self._storage_factory(endpoint, "provider"),
            )
        model = _Gate(
            board=self,
            name=alias,
            kind="model",
            config=self._config.model,
            storage=self._storage_factory(alias, "model"),
        )
        model.models.append(alias)
        provider.models.append(alias)
        breaker = provider.breaker
        if isinstance(breaker, _SpreadBreaker):
            breaker.min_models = min(self._provider_min_models, len(provider.models))
        self._entries[alias] = _Entry(endpoint, model, provider)
        self._storages = tuple(gate.storage for gate in self._gates())

    def _entry(self, alias: str) -> _Entry:
        try:
            return self._entries[alias]
        except KeyError:
            raise KeyError(f"no breaker for model {alias!r}; add it with add_model()") from None

    def admit(self, alias: str) -> Admission | Rejection:
        """Ask to call *alias* once.

        Returns:
            An :class:`Admission` to pass to :meth:`record` when the call ends, or a :class:`Rejection` when the
            model's breaker or its provider's is open, or half-open with its one trial already running. A
            half-open breaker with no trial running admits this call as its trial.

        Raises:
            KeyError: *alias* has no breaker.
        """
        if self._quiet:
            quiet_entry = self._entries.get(alias)
            if quiet_entry is not None:
                return Admission(alias, quiet_entry.endpoint, quiet_entry.model, quiet_entry.provider, 0)
        entry = self._entry(alias)
        if not self._enabled:
            return Admission(alias, entry.endpoint, None, None, 0)
        provider, model = entry.provider, entry.model
        now = self._clock.monotonic()
        p_state = provider.state(now)
        m_state = model.state(now)
        if p_state == _CLOSED and m_state == _CLOSED:
            if self._events:
                self._flush()
            return Admission(alias, entry.endpoint, model, provider, 0)
        # Check both before claiming either: a refused call must not hold a trial slot.
        refusal = provider.refusal(alias, p_state, now) or model.refusal(alias, m_state, now)
        if refusal is not None:
            self._flush()
            return refusal
        token = next(self._tokens)
        lease = self._trial_lease
        if p_state == _HALF_OPEN:
            provider.storage.claim_trial(token=token, now=now, lease=lease)
        if m_state == _HALF_OPEN:
            model.storage.claim_trial(token=token, now=now, lease=lease)
        self._flush()
        return Admission(alias, entry.endpoint, model, provider, token)

    def record(self, admission: Admission, exc: BaseException | None, /, *, final: bool = False) -> Outcome:
        """Report how an admitted call ended. Never raises for the call's own exception and never awaits.

        Recording the same admission twice does nothing the second time.

        Args:
            admission: what :meth:`admit` returned.
            exc: the exception the call ended with, or ``None`` for a reply (even one a quality gate rejects).
            final: the engine will not retry this model again: its retries are exhausted (makes ``RateLimited``
                count).

        Returns:
            How the outcome was classified (:func:`classify_outcome`).
        """
        if exc is None and self._quiet:
            admission._done = True  # a reply through a quiet board: closed breakers with nothing to forget
            return "success"
        outcome = classify_outcome(exc, final=final)
        if admission._done:
            return outcome
        admission._done = True
        model, provider = admission._model, admission._provider
        if model is None or provider is None:
            return outcome  # admitted while breakers were disabled
        token = admission._token
        if (
            outcome == "success"
            and not token
            and model._settled(admission._model_epoch)
            and provider._settled(admission._provider_epoch)
        ):
            # The hot path: a reply through two closed breakers with no failures to forget. Nothing changes.
            if self._events:
                self._flush()
            return outcome
        model.settle(outcome, epoch=admission._model_epoch, token=token, alias=admission.alias, exc=exc)
        provider.settle(outcome, epoch=admission._provider_epoch, token=token, alias=admission.alias, exc=exc)
        if self._events:
            self._flush()
        if outcome == "success" and self._quiet_capable:
            self._recheck_quiet()
        return outcome

    def _recheck_quiet(self) -> None:
        """Quiet again if every breaker is closed with no failure counted, no trial out and no event pending."""
        self._quiet = (
            self._quiet_capable
            and not self._events
            and all(s.state == _CLOSED and s.counter == 0 and not s._trial_token for s in self._storages)
        )

    def snapshot(self) -> Mapping[str, str]:
        """alias -> reason for every model :meth:`admit` would refuse right now. Claims no trial.

        Open breakers whose reset timeout has passed move to half-open here (and report the event), exactly as
        they would on the next ``admit()``.
        """
        if not self._enabled or self._quiet:
            return _NOTHING_BLOCKED
        # Fast path, taken by almost every request: every breaker closed in its storage means nothing to skip.
        for storage in self._storages:
            if storage.state != _CLOSED:
                break
        else:
            return _NOTHING_BLOCKED
        now = self._clock.monotonic()
        states = {gate: gate.state(now) for gate in self._gates()}
        out: dict[str, str] = {}
        for alias, entry in self._entries.items():
            refusal = entry.provider.refusal(alias, states[entry.provider], now) or entry.model.refusal(
                alias, states[entry.model], now
            )
            if refusal is not None:
                out[alias] = refusal.reason
        self._flush()
        return MappingProxyType(out)

    def status(self) -> dict[str, BreakerStatus]:
        """name -> :class:`BreakerStatus` for every breaker: model aliases first, then endpoint keys.

        Empty when breakers are disabled.
        """
        if not self._enabled:
            return {}
        now = self._clock.monotonic()
        out = {gate.name: gate.status(now) for gate in self._gates()}
        self._flush()
        return out

    def subscribe(self, callback: Callable[[BreakerEvent], object]) -> Callable[[], None]:
        """Call *callback* with a :class:`BreakerEvent` on every transition, synchronously.

        An exception from *callback* is logged on the ``asyncrouter.breaker`` logger and otherwise ignored.

        Returns:
            A function that unsubscribes *callback* (safe to call more than once).
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def force_open(self, name: str, *, duration: float, reason: str, origin: str | None = None) -> bool:
        """Open breaker *name* for *duration* seconds, as if it had tripped here (it tripped in another process).

        From then on the breaker behaves exactly as after a local trip: :meth:`admit` and :meth:`snapshot` reject
        with a reason quoting *reason*, it goes half-open once *duration* has passed, and its half-open trial
        runs locally. An open breaker is only ever kept open longer by this, never shorter; a half-open one is
        re-opened (a trial in flight then no longer counts).

        Args:
            name: a model alias or a provider endpoint key.
            duration: seconds from now until it may go half-open (the remote breaker's remaining open time;
                a duration, not a wall time, so clock skew between hosts does not matter).
            reason: why, e.g. ``"opened by host:1234: 5 consecutive failures"``.
            origin: who opened it; carried on the :class:`BreakerEvent` (``BreakerEvent.origin``).

        Returns:
            Whether anything changed: false when breakers are disabled, *duration* is not a positive finite
            number, or the breaker is already open at least that long.

        Raises:
            KeyError: no breaker has that name.

        .. versionadded:: 0.1
        """
        gate = self._gate_named(name)
        if not self._enabled or not 0.0 < duration < math.inf:  # also rejects NaN
            return False
        now = self._clock.monotonic()
        state = gate.state(now)
        if state == _OPEN and gate.retry_in(now) >= duration:
            self._flush()
            return False
        if state != _OPEN:
            queued = len(self._events)
            gate._reason = reason
            gate.breaker.open()
            gate._reason = ""
            self._stamp_origin(queued, name, origin)
        # The reset timeout runs from the monotonic opening time: place it so the timeout ends in *duration*.
        gate.storage.set_opened_at(wall=self._clock.time(), monotonic=now + duration - gate.reset_timeout)
        gate.note = (gate.epoch, reason)
        self._flush()
        return True

    def force_close(self, name: str, *, reason: str, origin: str | None = None) -> bool:
        """Close breaker *name* now, as if its half-open trial had succeeded here (it succeeded elsewhere).

        The failure streak is reset; a half-open trial in flight no longer counts.

        Args:
            name: a model alias or a provider endpoint key.
            reason: why, e.g. ``"closed by host:1234: trial request succeeded"``.
            origin: who closed it; carried on the :class:`BreakerEvent`.

        Returns:
            Whether anything changed (false when breakers are disabled or it is already closed).

        Raises:
            KeyError: no breaker has that name.

        .. versionadded:: 0.1
        """
        gate = self._gate_named(name)
        if not self._enabled or gate.current() == _CLOSED:
            return False
        queued = len(self._events)
        gate._reason = reason
        gate.breaker.close()
        gate._reason = ""
        self._stamp_origin(queued, name, origin)
        self._flush()
        if self._quiet_capable:
            self._recheck_quiet()
        return True

    def _gate_named(self, name: str) -> _Gate:
        entry = self._entries.get(name)
        if entry is not None:
            return entry.model
        gate = self._providers.get(name)
        if gate is None:
            raise KeyError(f"no breaker named {name!r}")
        return gate

    def _stamp_origin(self, start: int, name: str, origin: str | None) -> None:
        # The transition just queued its event without an origin; the events before *start* are not ours.
        if origin is None:
            return
        for i in range(start, len(self._events)):
            event = self._events[i]
            if event.name == name:
                self._events[i] = dataclasses.replace(event, origin=origin)

    def _gates(self) -> Iterator[_Gate]:
        for entry in self._entries.values():
            yield entry.model
        yield from self._providers.values()

    def _queue_event(self, event: BreakerEvent) -> None:
        self._quiet = False
        self._events.append(event)
        log = logger.warning if event.new_state == "open" else logger.info
        log("breaker %s %r: %s -> %s (%s)", event.kind, event.name, event.old_state, event.new_state, event.reason)

    def _flush(self) -> None:
        # A callback may call back into the board; the outer loop delivers what that queues, in order.
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._events:
                event = self._events.popleft()
                for callback in tuple(self._subscribers):
                    try:
                        callback(event)
                    except Exception:
                        logger.exception("breaker event subscriber %r failed on %s", callback, event)
        finally:
            self._flushing = False

    def __repr__(self) -> str:
        return f"BreakerBoard(models={len(self._entries)}, endpoints={len(self._providers)}, enabled={self._enabled})"
