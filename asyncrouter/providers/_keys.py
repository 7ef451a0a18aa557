"""API key rotation: round-robin over a model's keys, with eviction on 401/403 and cool-down on 429.

Every method is synchronous, so on one event loop each call is atomic: thousands of concurrent tasks rotate
the keys evenly without a lock, and no task can observe a half-updated pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import AuthenticationError, ProviderError, RateLimited
from .._types import Clock

__all__ = ["DEFAULT_KEY_COOLDOWN", "KeyPool"]

#: cool-down for a key that got 429 without a Retry-After header
DEFAULT_KEY_COOLDOWN = 1.0


class KeyPool:
    """The API keys of one model.

    Args:
        keys: the secret values, in rotation order. Empty for keyless providers (``acquire`` returns None).
        clock: the router's clock, for cool-downs.
        provider, model: named in the errors raised when no key is usable.
    """

    __slots__ = ("_clock", "_cool_until", "_dead", "_i", "_keys", "_model", "_provider")

    def __init__(self, keys: Sequence[str], *, clock: Clock, provider: str = "", model: str = "") -> None:
        self._keys = tuple(keys)
        self._clock = clock
        self._i = 0
        self._dead: set[int] = set()
        self._cool_until: dict[int, float] = {}
        self._provider = provider
        self._model = model

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyPool(model={self._model!r}, keys={len(self._keys)}, usable={self.usable})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._keys

    @property
    def usable(self) -> int:
        now = self._clock.monotonic()
        return sum(1 for i in range(len(self._keys)) if i not in self._dead and self._cool_until.get(i, 0.0) <= now)

    def acquire(self) -> str | None:
        """The next usable key, round-robin.

        Raises:
            AuthenticationError: every key was rejected with 401/403.
            RateLimited: every remaining key is cooling down; ``retry_after`` is the shortest wait.
        """
        n = len(self._keys)
        if n == 0:
            return None
        if n == 1 and not self._dead and not self._cool_until:
            return self._keys[0]
        now = self._clock.monotonic()
        soonest: float | None = None
        for step in range(n):
            i = (self._i + step) % n
            if i in self._dead:
                continue
            until = self._cool_until.get(i)
            if until is not None:
                if until > now:
                    soonest = until if soonest is None else min(soonest, until)
                    continue
                del self._cool_until[i]
            self._i = (i + 1) % n
            return self._keys[i]
        if soonest is None:
            raise AuthenticationError(
                "every API key of this model was rejected (401/403)", provider=self._provider, model=self._model
            )
        err = RateLimited(
            "every API key of this model is cooling down after 429",
            retry_after=max(0.0, soonest - now),
            provider=self._provider,
            model=self._model,
        )
        # raised here, before any call: the provider said "wait", it did not fail again
        err.counts_as_failure = False
        raise err

    def report(self, key: str | None, error: ProviderError | None) -> None:
        """Feed back the outcome of a call made with *key*: evict on auth errors, cool down on 429."""
        if key is None or error is None:
            return
        try:
            i = self._keys.index(key)
        except ValueError:
            return
        if isinstance(error, AuthenticationError):
            self._dead.add(i)
            self._cool_until.pop(i, None)
        elif isinstance(error, RateLimited):
            wait = error.retry_after if error.retry_after is not None else DEFAULT_KEY_COOLDOWN
            self._cool_until[i] = max(self._cool_until.get(i, 0.0), self._clock.monotonic() + wait)
