"""A/B tests of two routing configurations on live traffic (mmrouter's ``experiment``).

An :class:`Experiment` holds two open-able routers, *control* and *treatment*, and sends each request to one
of them by a hash of its prompt: the split is deterministic (the same prompt always meets the same variant,
across processes and restarts, for a given experiment name) and a request's variant never depends on load or
timing. Each variant's requests, errors, escalations, cost and latency are counted as they finish, so
:meth:`Experiment.status` compares the two at any moment; each router also tracks its own requests in its own
tracker, as usual.

.. versionadded:: 0.1
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Self

from ._exceptions import RouterError
from ._models import Response
from ._tokens import message_text

if TYPE_CHECKING:
    from ._engine import Router

__all__ = ["Experiment", "ExperimentStatus", "Variant", "VariantStats"]

Variant = Literal["control", "treatment"]
VARIANTS: Final[tuple[Variant, Variant]] = ("control", "treatment")
#: latencies kept per variant for the percentiles (a uniform sample of all of them beyond that)
LATENCY_SAMPLE: Final = 10_000
_SCALE: Final = float(1 << 64)


@dataclass(slots=True)
class VariantStats:
    """What one variant's requests did, counted as they finished.

    .. versionadded:: 0.1
    """

    requests: int = 0
    errors: int = 0
    escalations: int = 0
    cost_usd: float = 0.0
    #: a uniform sample of the latencies of successful requests, in milliseconds
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    _seen: int = field(default=0, repr=False)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def escalation_rate(self) -> float:
        ok = self.requests - self.errors
        return self.escalations / ok if ok else 0.0

    @property
    def avg_cost_usd(self) -> float:
        ok = self.requests - self.errors
        return self.cost_usd / ok if ok else 0.0

    def latency_ms(self, p: float) -> float:
        """The *p*-th percentile (nearest rank) of the sampled latencies; 0 when there are none."""
        s = sorted(self.latencies_ms)
        if not s:
            return 0.0
        return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "escalations": self.escalations,
            "escalation_rate": self.escalation_rate,
            "cost_usd": self.cost_usd,
            "avg_cost_usd": self.avg_cost_usd,
            "p50_latency_ms": self.latency_ms(50),
            "p95_latency_ms": self.latency_ms(95),
        }


@dataclass(frozen=True, slots=True)
class ExperimentStatus:
    """Both variants side by side, and how the treatment compares (``treatment / control`` ratios).

    .. versionadded:: 0.1
    """

    name: str
    split: float
    running: bool
    control: VariantStats
    treatment: VariantStats

    def ratios(self) -> dict[str, float | None]:
        """Treatment over control for average cost, error rate and p50/p95 latency (``None`` over a zero)."""

        def ratio(t: float, c: float) -> float | None:
            return t / c if c else None

        c, t = self.control, self.treatment
        return {
            "avg_cost_usd": ratio(t.avg_cost_usd, c.avg_cost_usd),
            "error_rate": ratio(t.error_rate, c.error_rate),
            "p50_latency_ms": ratio(t.latency_ms(50), c.latency_ms(50)),
            "p95_latency_ms": ratio(t.latency_ms(95), c.latency_ms(95)),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "split": self.split,
            "running": self.running,
            "control": self.control.to_dict(),
            "treatment": self.treatment.to_dict(),
            "treatment_over_control": self.ratios(),
        }


class Experiment:
    """Split traffic between two routers by a hash of each prompt, and compare them.

    Args:
        control: the router of the current configuration.
        treatment: the router of the configuration under test.
        split: the share of prompts that go to the treatment (0 to 1).
        name: the experiment's name; it salts the hash, so two experiments split the same prompts differently.
        seed: seeds the latency sample (the split does not depend on it).

    Use it like a router: ``async with Experiment(a, b, split=0.2, name="cascade-test") as exp:
    await exp.aroute(...)``; opening the experiment opens both routers (unless they are open already) and
    closing it closes what it opened.

    .. versionadded:: 0.1
    """

    def __init__(
        self, control: Router, treatment: Router, *, split: float = 0.5, name: str = "experiment", seed: int = 0
    ) -> None:
        if not 0.0 <= split <= 1.0 or math.isnan(split):
            raise ValueError(f"split must be between 0 and 1, got {split!r}")
        if control is treatment:
            raise ValueError("control and treatment must be two routers")
        self.name = name
        self.split = split
        self.routers: dict[Variant, Router] = {"control": control, "treatment": treatment}
        self._stats: dict[Variant, VariantStats] = {v: VariantStats() for v in VARIANTS}
        self._rng = random.Random(seed)
        self._running = True
        self._opened: list[Router] = []
        self._salt = hashlib.blake2b(name.encode(), digest_size=16).digest()

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, split={self.split}, running={self._running})"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            for router in self.routers.values():
                if not router.is_open:
                    await router.aopen()
                    self._opened.append(router)
        except BaseException:
            await self._close_opened()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close_opened()

    async def _close_opened(self) -> None:
        # In reverse order, and with no cancel scope around them: each router's tracker task group was entered
        # in this task and must be left in the reverse order (Router.aclose shields its own parts).
        opened, self._opened = self._opened, []
        await _close_all(opened)

    def stop(self) -> None:
        """End the experiment: every later request goes to the control. The counts stay readable."""
        self._running = False

    # -- routing -----------------------------------------------------------------------------------------------

    def variant_of(self, prompt: str | None = None, *, messages: Sequence[Mapping[str, Any]] | None = None) -> Variant:
        """The variant this prompt (or chat: its last user turn) goes to while the experiment runs."""
        if not self._running or self.split <= 0.0:
            return "control"
        if self.split >= 1.0:
            return "treatment"
        text = prompt if prompt is not None else _last_user_text(messages or ())
        digest = hashlib.blake2b(text.encode(), digest_size=8, key=self._salt).digest()
        return "treatment" if int.from_bytes(digest, "big") / _SCALE < self.split else "control"

    async def aroute(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        **params: Any,
    ) -> Response:
        """Route through the variant :meth:`variant_of` picks (see :meth:`Router.aroute` for the arguments)."""
        variant = self.variant_of(prompt, messages=messages)
        stats = self._stats[variant]
        stats.requests += 1
        try:
            response = await self.routers[variant].aroute(prompt, messages=messages, **params)
        except Exception:
            stats.errors += 1
            raise
        except BaseException:  # cancelled: not an outcome of the variant
            stats.requests -= 1
            raise
        meta = response.meta
        stats.cost_usd += meta.estimated_cost_usd
        if sum(1 for a in meta.attempts if a.outcome in ("ok", "gate_failed", "error")) > 1:
            stats.escalations += 1
        self._sample(stats, meta.latency_ms)
        return response

    def _sample(self, stats: VariantStats, latency_ms: float) -> None:
        stats._seen += 1
        if len(stats.latencies_ms) < LATENCY_SAMPLE:
            stats.latencies_ms.append(latency_ms)
        else:  # reservoir sampling: every latency so far is kept with the same probability
            j = self._rng.randrange(stats._seen)
            if j < LATENCY_SAMPLE:
                stats.latencies_ms[j] = latency_ms

    def status(self) -> ExperimentStatus:
        """Both variants' counts so far (copies: later requests do not change them)."""

        def copy(s: VariantStats) -> VariantStats:
            return VariantStats(s.requests, s.errors, s.escalations, s.cost_usd, list(s.latencies_ms), s._seen)

        return ExperimentStatus(
            self.name, self.split, self._running, copy(self._stats["control"]), copy(self._stats["treatment"])
        )


async def _close_all(routers: list[Router]) -> None:
    """Close the last one first; every one is closed even when one's close raises."""
    if routers:
        try:
            await routers[-1].aclose()
        finally:
            await _close_all(routers[:-1])


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return message_text(m)
    raise RouterError("the chat has no user message to split on")
