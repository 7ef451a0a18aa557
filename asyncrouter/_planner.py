"""From a classification and snapshots of breaker and budget state to an ordered chain of models.

Pure: no I/O, no clock. The routing layers are routeforge's four, plus ``pinned``:

1. ``task_classifier``: the classifier found the task (code, reasoning, ...) and models are tagged for it,
   or an mmrouter-style ``routes`` table names the models for the (complexity, category) cell;
2. ``complexity``: no task match, the complexity score is clearly low (cheap models) or high (strong models);
3. ``meta_router``: the score is in the ambiguous band and a ``meta_router_model`` is configured: the engine
   asks it (the one async step) and calls :meth:`Planner.plan_meta` with its answer;
4. ``default``: ``default_model``, which always takes the request.

The prompt's tier is the classifier's (simple, medium, complex, reasoning), unless the config sets routeforge's
``complexity_threshold``: then a score below it asks for the cheap tier and one at or above it for at least the
complex (strong) tier; a prompt the classifier found to need reasoning keeps that tier either way. With
mmrouter's ``classifier.threshold`` set, a classification less confident than it asks for one tier more (the
budget's downgrade and the ``eco`` profile then apply on top).

Within a layer the chain holds the *capable* models (whose strength covers the prompt's tier), cheapest first
when the cascade is on (strongest-suitable first when it is off), then the default model as a last resort.
Models whose breaker is open, whose context window cannot hold the prompt plus ``max_tokens``, or that the
budget rules out are skipped, and every skip carries a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._classifier import Classification
from ._config import Config, ModelConfig
from ._exceptions import ConfigError

__all__ = ["BUILTIN_PROFILES", "Plan", "Planner", "RoutingDecision", "model_strength"]

BUILTIN_PROFILES = frozenset({"auto", "eco", "premium", "free", "agentic"})
_TIER_RANK = {"simple": 0, "medium": 1, "complex": 2, "reasoning": 3}
_RANK_TIER = {v: k for k, v in _TIER_RANK.items()}
_STRONG_TAGS = frozenset({"strong", "complex", "premium"})
_REASONING_TAGS = frozenset({"reasoning"})
_CHEAP_TAGS = frozenset({"cheap", "simple", "fast", "eco"})
_MEDIUM_TAGS = frozenset({"medium", "balanced"})
_AGENTIC_TAGS = frozenset({"agentic", "tools", "tool_use", "function_calling"})
#: what a model of unknown price is assumed to cost per 1k tokens (PricingConfig's defaults)
DEFAULT_UNKNOWN_IN = 0.01
DEFAULT_UNKNOWN_OUT = 0.03
#: decisions memoised per Planner (cleared when full)
PLAN_MEMO_SIZE = 4096


def _blended(price_in: float, price_out: float) -> float:
    # replies are usually longer than prompts: weight output prices as three times the input price
    return price_in + 3.0 * price_out


def _price(m: ModelConfig) -> float:
    """A model's blended price from its config; an unknown price counts as the conservative default."""
    cin = m.cost_per_1k_input if m.cost_per_1k_input is not None else DEFAULT_UNKNOWN_IN
    cout = m.cost_per_1k_output if m.cost_per_1k_output is not None else DEFAULT_UNKNOWN_OUT
    return _blended(cin, cout)


def model_strength(m: ModelConfig, rank_by_price: Mapping[str, int]) -> int:
    """The highest tier rank (0 simple .. 3 reasoning) a model is trusted with.

    Tags decide when present (``strong``/``complex`` -> 2 and 3 if also ``reasoning``; ``medium`` -> 1;
    ``cheap``/``simple`` -> 0); otherwise the model's price rank among the configured models does.
    """
    tags = set(m.tags)
    if tags & _STRONG_TAGS:
        return 3 if (tags & _REASONING_TAGS or "strong" in tags) else 2
    if tags & _MEDIUM_TAGS:
        return 1
    if tags & _CHEAP_TAGS:
        return 0
    return rank_by_price.get(m.name, 1)


@dataclass(slots=True)
class Plan:
    """An ordered chain of model aliases, how it was chosen, and what was skipped and why."""

    chain: list[str]
    layer: str
    reason: str
    tier: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    profile: str | None = None
    #: set when layer 3 should run: the engine asks the meta-router, then calls Planner.plan_meta
    needs_meta: bool = False
    pinned: bool = False


@dataclass(slots=True)
class RoutingDecision:
    """What :meth:`Router.classify` returns: the decision, without calling any model."""

    task_type: str
    complexity_score: float
    tier: str
    complexity: str
    category: str
    confidence: float
    chain: list[str]
    routing_layer: str
    reason: str
    #: the classifier's full output (its ``signals`` and ``language`` are settled only when read)
    classification: Classification
    input_tokens: int
    model: str | None
    estimated_cost_usd: float
    max_cost_usd: float
    most_expensive_model: str | None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    profile: str | None = None

    @property
    def signals(self) -> tuple[str, ...]:
        """The human-readable signals that decided the classification."""
        return self.classification.signals

    @property
    def language(self) -> str:
        """The prompt's detected language (``""`` when unknown); routing never needs it, so it is read lazily."""
        return self.classification.language

    @property
    def savings_pct(self) -> float:
        """Estimated saving of the chosen model against the most expensive one, in percent."""
        if self.max_cost_usd <= 0:
            return 0.0
        return 100.0 * (1.0 - self.estimated_cost_usd / self.max_cost_usd)

    def to_dict(self) -> dict[str, object]:
        return {
            "task_type": self.task_type,
            "complexity_score": round(self.complexity_score, 4),
            "tier": self.tier,
            "complexity": self.complexity,
            "category": self.category,
            "confidence": round(self.confidence, 4),
            "model": self.model,
            "chain": list(self.chain),
            "routing_layer": self.routing_layer,
            "reason": self.reason,
            "signals": list(self.signals),
            "language": self.language,
            "input_tokens": self.input_tokens,
            "estimated_cost_usd": self.estimated_cost_usd,
            "max_cost_usd": self.max_cost_usd,
            "most_expensive_model": self.most_expensive_model,
            "savings_pct": round(self.savings_pct, 2),
            "skipped": [list(s) for s in self.skipped],
            "profile": self.profile,
        }


class Planner:
    """Builds chains from one frozen :class:`Config`; precomputes everything that does not depend on the prompt."""

    def __init__(self, config: Config, *, prices: Mapping[str, tuple[float, float]] | None = None) -> None:
        """
        Args:
            config: the router's configuration.
            prices: alias -> (input, output) USD per 1k tokens as resolved by the price library; models not in it
                use their configured prices (an unknown price counts as the conservative default, never free).
        """
        self.config = config
        self.models: dict[str, ModelConfig] = {m.name: m for m in config.models}
        given = dict(prices or {})
        self._prices = {m.name: (_blended(*given[m.name]) if m.name in given else _price(m)) for m in config.models}
        self._free = {
            m.name
            for m in config.models
            if (
                given[m.name] == (0.0, 0.0)
                if m.name in given
                else (m.cost_per_1k_input == 0.0 and m.cost_per_1k_output == 0.0)
            )
        }
        by_price = sorted(config.models, key=lambda m: self._prices[m.name])
        n = len(by_price)
        # price terciles stand in for strength when a model carries no tier tag
        self._rank_by_price = {m.name: (min(2, (3 * i) // n) if n > 1 else 1) for i, m in enumerate(by_price)}
        self.strength = {m.name: model_strength(m, self._rank_by_price) for m in config.models}
        self.cheapest_first = [m.name for m in by_price]
        self.default = config.default_alias
        windows = [m.context_window for m in config.models if m.context_window is not None]
        #: the smallest context window: a request needing more tokens than that is too big for some model
        self._smallest_window: int | None = min(windows) if windows else None
        self._memo: dict[tuple[object, ...], Plan] = {}
        #: routeforge's binary cheap/strong rule, only when the config sets it (else the classifier's tiers)
        self._threshold: float | None = (
            config.complexity_threshold if "complexity_threshold" in config.model_fields_set else None
        )
        #: mmrouter's confidence-based escalation: a less confident label asks for one tier more (unset: off)
        self._min_confidence: float | None = config.classifier.threshold
        self._tagged: dict[str, list[str]] = {}
        for m in by_price:
            for t in m.tags:
                self._tagged.setdefault(t, []).append(m.name)
        for name, profile in config.profiles.items():
            if not profile.models and not profile.tags and name not in BUILTIN_PROFILES:
                raise ConfigError("a profile needs models or tags", path=f"profiles.{name}")

    # -- helpers ------------------------------------------------------------------------------------------------

    def price(self, alias: str) -> float:
        return self._prices[alias]

    def is_profile(self, name: str) -> bool:
        return name in BUILTIN_PROFILES or name in self.config.profiles

    def _profile_pool(self, profile: str, *, tools: bool) -> tuple[list[str], str]:
        """Models a profile allows (cheapest first) and a note for the reason."""
        if profile in self.config.profiles:
            p = self.config.profiles[profile]
            pool = [a for a in self.cheapest_first if a in p.models or (set(p.tags) & set(self.models[a].tags))]
            if p.max_cost_per_1k_output is not None:
                pool = [a for a in pool if (self.models[a].cost_per_1k_output or 0.0) <= p.max_cost_per_1k_output]
            if p.prefer == "strongest":
                pool.reverse()
            return pool, f"profile {profile!r}"
        if profile == "free":
            pool = [a for a in self.cheapest_first if a in self._free]
            return pool, "profile 'free' (zero-price models only)"
        if profile == "agentic" or (profile == "auto" and tools):
            agentic = [a for a in self.cheapest_first if set(self.models[a].tags) & _AGENTIC_TAGS]
            if agentic:
                return agentic, "profile 'agentic' (tool-capable models)" + (
                    " engaged by tools" if profile == "auto" else ""
                )
        return list(self.cheapest_first), ""

    def _filter(
        self,
        aliases: Sequence[str],
        *,
        blocked: Mapping[str, str],
        needed_tokens: int,
        skipped: list[tuple[str, str]],
    ) -> list[str]:
        out: list[str] = []
        for a in aliases:
            if a in out:
                continue
            reason = blocked.get(a)
            if reason is not None:
                if (a, reason) not in skipped:
                    skipped.append((a, reason))
                continue
            cw = self.models[a].context_window
            if cw is not None and needed_tokens > cw:
                r = f"context window {cw} tokens < ~{needed_tokens} needed"
                if (a, r) not in skipped:
                    skipped.append((a, r))
                continue
            out.append(a)
        return out

    def _order(
        self, aliases: Sequence[str], tier_rank: int, *, cascade: bool, strongest: bool
    ) -> tuple[list[str], list[str]]:
        """(capable, weaker): capable ordered cheapest-first (cascade) or by suitability; weaker strongest-first."""
        capable = [a for a in aliases if self.strength[a] >= tier_rank]
        weaker = [a for a in aliases if self.strength[a] < tier_rank]
        weaker.sort(key=lambda a: (-self.strength[a], self._prices[a]))
        if strongest:
            capable.sort(key=lambda a: (-self.strength[a], -self._prices[a]))
        elif not cascade:
            # no cascade: the least-strong model that is still capable, then the next ones up
            capable.sort(key=lambda a: (self.strength[a], self._prices[a]))
        return capable, weaker

    # -- the decision --------------------------------------------------------------------------------------------

    def plan(
        self,
        c: Classification,
        *,
        model: str = "auto",
        blocked: Mapping[str, str] | None = None,
        budget_state: str = "normal",
        max_tokens: int | None = None,
        tools: bool = False,
    ) -> Plan:
        """Choose the chain for one request.

        Args:
            c: the classifier's output.
            model: ``"auto"``, a profile name, or a model alias (pinned).
            blocked: alias -> reason for models that must be skipped right now (open breakers).
            budget_state: ``normal``, ``warn``, ``downgrade`` (drop one tier) or ``exhausted``.
            max_tokens: the request's output cap, for the context-window check.
            tools: tools were passed (engages the agentic profile under ``auto``).

        Returns:
            A fresh :class:`Plan` (the caller may change it). Decisions are memoised on everything they depend
            on, so the common case costs a dictionary lookup and a copy.
        """
        needed = c.input_tokens + (max_tokens or 0)
        key = (
            c.task_type,
            c.task_matched,
            c.tier,
            c.complexity,
            c.category,
            # exact: the classifier keeps three decimals, and a rounded score could straddle a threshold
            c.complexity_score,
            model,
            budget_state,
            tools,
            # a confidence under classifier.threshold raises the tier (and the reason quotes it)
            self._min_confidence is not None and c.confidence < self._min_confidence and c.confidence,
            # which context windows are too small (and then the exact size, which the skip reason quotes)
            self._smallest_window is not None and needed > self._smallest_window and needed,
            tuple(sorted(blocked.items())) if blocked else (),
        )
        hit = self._memo.get(key)
        if hit is None:
            hit = self._plan(c, model=model, blocked=blocked, budget_state=budget_state, needed=needed, tools=tools)
            if len(self._memo) >= PLAN_MEMO_SIZE:
                self._memo.clear()  # bounded; repopulates in a few requests
            self._memo[key] = hit
        return Plan(
            list(hit.chain), hit.layer, hit.reason, hit.tier, list(hit.skipped), hit.profile, hit.needs_meta, hit.pinned
        )

    def _plan(
        self,
        c: Classification,
        *,
        model: str,
        blocked: Mapping[str, str] | None,
        budget_state: str,
        needed: int,
        tools: bool,
    ) -> Plan:
        max_tokens = needed - c.input_tokens
        blocked = blocked or {}
        skipped: list[tuple[str, str]] = []
        cfg = self.config
        tier_rank = _TIER_RANK[c.tier]
        notes: list[str] = []
        threshold = self._threshold
        if threshold is not None and c.tier != "reasoning":
            score = c.complexity_score
            rank = 2 if score >= threshold else 0
            if rank != tier_rank:
                tier_rank = rank
                relation = ">=" if rank else "<"
                notes.append(
                    f"complexity {score:.2f} {relation} complexity_threshold {threshold:.2f}: "
                    f"{'strong' if rank else 'cheap'} tier ({_RANK_TIER[rank]})"
                )
        floor = self._min_confidence
        if floor is not None and c.confidence < floor and tier_rank < 3:
            tier_rank += 1
            notes.append(
                f"classifier confidence {c.confidence:.2f} < classifier.threshold {floor:.2f}: "
                f"tier raised to {_RANK_TIER[tier_rank]}"
            )
        if budget_state == "downgrade" and tier_rank > 0:
            tier_rank -= 1
            notes.append(f"budget above {cfg.budget.downgrade_at:.0%}: tier lowered to {_RANK_TIER[tier_rank]}")
        tier = _RANK_TIER[tier_rank]
        cascade = cfg.cascade.enabled

        # -- pinned ------------------------------------------------------------------------------------------
        if model not in ("auto", "") and not self.is_profile(model):
            if model not in self.models:
                raise ConfigError(
                    f"unknown model or profile {model!r}; known models: {sorted(self.models)}, "
                    f"profiles: {sorted(BUILTIN_PROFILES | set(cfg.profiles))}",
                    path="model",
                )
            chain = self._filter(
                [model, *self.models[model].fallbacks], blocked=blocked, needed_tokens=needed, skipped=skipped
            )
            reason = f"pinned to {model!r}"
            if self.models[model].fallbacks:
                reason += f"; fallbacks on error: {list(self.models[model].fallbacks)}"
            return Plan(chain, "pinned", reason, tier, skipped, None, pinned=True)

        profile = None if model in ("auto", "") else model
        if budget_state == "exhausted" and cfg.budget.on_exhausted == "cheapest":
            chain = self._filter(self.cheapest_first[:1], blocked=blocked, needed_tokens=needed, skipped=skipped)
            return Plan(
                chain,
                "default",
                "daily budget exhausted: cheapest model only (on_exhausted: cheapest)",
                tier,
                skipped,
                profile,
            )

        pool, pool_note = self._profile_pool(profile or "auto", tools=tools)
        if pool_note:
            notes.append(pool_note)
        if not pool:
            return Plan(
                [], "default", f"{pool_note or 'profile'}: no configured model qualifies", tier, skipped, profile
            )
        pool_set = set(pool)
        strongest = profile == "premium" or (profile in cfg.profiles and cfg.profiles[profile].prefer == "strongest")
        if profile == "eco" and tier_rank > 0:
            tier_rank -= 1
            tier = _RANK_TIER[tier_rank]
            notes.append(f"profile 'eco': tier lowered to {tier}")

        def finish(candidates: Sequence[str], layer: str, reason: str) -> Plan:
            capable, weaker = self._order(
                [a for a in candidates if a in pool_set], tier_rank, cascade=cascade, strongest=strongest
            )
            ordered = capable or weaker
            if strongest and not capable and weaker:
                # premium asks for the strongest reply: when no chosen model can handle the tier, the pool's
                # capable models go first, strongest first, and the chosen ones follow
                stronger, _ = self._order(
                    [a for a in pool if a not in weaker], tier_rank, cascade=cascade, strongest=True
                )
                if stronger:
                    reason += f"; none of them handles tier {_RANK_TIER[tier_rank]}: stronger models first"
                    ordered = [*stronger, *weaker]
            # Escalation path beyond the chosen candidates: the pool's other models that are at least as strong
            # as the weakest chosen one and capable of the tier, cheapest first (strongest first for premium).
            floor = max(tier_rank, min((self.strength[a] for a in ordered), default=tier_rank))
            escalate = [a for a in pool if a not in ordered and self.strength[a] >= floor]
            if strongest:
                escalate.sort(key=lambda a: (-self.strength[a], -self._prices[a]))
            ordered = [*ordered, *escalate]
            if self.default in pool_set and self.default not in ordered:
                ordered.append(self.default)  # layer 4's model is the last resort of every chain
            chain = self._filter(ordered, blocked=blocked, needed_tokens=needed, skipped=skipped)
            if not chain:
                # every candidate was skipped: fall through to the rest of the pool, strongest first
                rest = [a for a in reversed(pool) if a not in ordered]
                chain = self._filter(rest, blocked=blocked, needed_tokens=needed, skipped=skipped)
                if chain:
                    reason += "; every chosen model was unavailable, using the remaining models"
            full = "; ".join([reason, *notes])
            if cascade and len(chain) > 1:
                full += f"; cascade {' -> '.join(chain)}"
            return Plan(chain, layer, full, tier, skipped, profile)

        # -- mmrouter-style routes table (an explicit decision beats tags) --------------------------------------
        row = cfg.routes.get(c.complexity)
        if row is not None:
            entry = row.get(c.category)
            if entry is not None:
                chain = [entry.model, *entry.fallbacks]
                reason = f"routes[{c.complexity}][{c.category}] -> {entry.model}"
                kept = self._filter(
                    [a for a in chain if a in pool_set], blocked=blocked, needed_tokens=needed, skipped=skipped
                )
                if kept:
                    return Plan(kept, "task_classifier", "; ".join([reason, *notes]), tier, skipped, profile)

        # -- layer 1: task classifier ----------------------------------------------------------------------------
        score = c.complexity_score
        if c.task_matched and c.task_type != "general":
            tagged = [a for a in self._tagged.get(c.task_type, ()) if a in pool_set]
            if tagged:
                reason = (
                    f"task detected as {c.task_type!r}; models tagged {c.task_type!r}: {tagged}; "
                    f"tier {tier} (complexity {score:.2f})"
                )
                return finish(tagged, "task_classifier", reason)

        # -- layer 2: complexity gate ------------------------------------------------------------------------------
        lo, hi = cfg.complexity_band
        no_task = "no task-specific match" if not c.task_matched else f"no model tagged {c.task_type!r}"
        if score < lo or score > hi or c.tier == "reasoning":
            side = "strong" if (score > hi or c.tier == "reasoning") else "cheap"
            side_tags = (_STRONG_TAGS | {"reasoning"}) if side == "strong" else _CHEAP_TAGS
            tagged = [a for a in pool if set(self.models[a].tags) & side_tags]
            if not tagged:
                tagged = [a for a in pool if (self.strength[a] >= 2) == (side == "strong")] or list(pool)
            reason = (
                f"{no_task}; complexity {score:.2f} is clearly {'high' if side == 'strong' else 'low'} "
                f"(band {lo:.2f}-{hi:.2f}): {side} models; tier {tier}"
            )
            return finish(tagged, "complexity", reason)

        # -- layer 3: meta-router (the engine performs the call) -----------------------------------------------------
        if cfg.meta_router_model is not None and cfg.meta_router_model not in blocked:
            reason = f"{no_task}; complexity {score:.2f} is ambiguous (band {lo:.2f}-{hi:.2f}): asking meta-router"
            return Plan([], "meta_router", reason, tier, skipped, profile, needs_meta=True)

        # -- layer 4: default ------------------------------------------------------------------------------------
        return self.plan_default(
            c,
            "; ".join(
                [f"{no_task}; complexity {score:.2f} is ambiguous and no meta_router_model is configured", *notes]
            ),
            blocked=blocked,
            max_tokens=max_tokens,
            profile=profile,
            tier=tier,
            skipped=skipped,
            tools=tools,
        )

    def plan_default(
        self,
        c: Classification,
        why: str,
        *,
        blocked: Mapping[str, str],
        max_tokens: int | None,
        profile: str | None,
        tier: str | None = None,
        skipped: list[tuple[str, str]] | None = None,
        tools: bool = False,
    ) -> Plan:
        """Layer 4: the default model, then (on errors) the other models cheapest-first.

        Under a profile that excludes the default model (``free``, ``agentic``...), the profile's cheapest model
        takes its place.
        """
        skipped = [] if skipped is None else skipped
        needed = c.input_tokens + (max_tokens or 0)
        pool, note = self._profile_pool(profile or "auto", tools=tools)
        if note:
            why = f"{why}; {note}"
        order = [self.default] if self.default in pool else []
        order += [a for a in pool if a != self.default]
        chain = self._filter(order, blocked=blocked, needed_tokens=needed, skipped=skipped)
        first = chain[0] if chain else self.default
        pick = (
            f"default model {first!r}"
            if first == self.default
            else f"{first!r} (the profile's stand-in for the default)"
        )
        return Plan(chain, "default", f"{why}: {pick}", tier or c.tier, skipped, profile)

    def plan_meta(
        self,
        c: Classification,
        chosen: str,
        why: str,
        *,
        blocked: Mapping[str, str],
        max_tokens: int | None,
        profile: str | None,
    ) -> Plan:
        """Layer 3: the meta-router's (validated) choice first, then the default as the fallback."""
        skipped: list[tuple[str, str]] = []
        needed = c.input_tokens + (max_tokens or 0)
        order = [chosen, *self.models[chosen].fallbacks]
        if self.default not in order:
            order.append(self.default)
        chain = self._filter(order, blocked=blocked, needed_tokens=needed, skipped=skipped)
        return Plan(chain, "meta_router", f"meta-router chose {chosen!r}: {why}", c.tier, skipped, profile)
