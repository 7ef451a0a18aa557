"""The planner's routing layers, profiles, pins and skips, table-driven (pure: no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncrouter import ConfigError
from asyncrouter._classifier import Classification
from asyncrouter._config import load_config
from asyncrouter._planner import Planner


def cls(
    task: str = "general",
    *,
    matched: bool | None = None,
    score: float = 0.5,
    tier: str = "medium",
    complexity: str = "medium",
    category: str = "factual",
    tokens: int = 20,
) -> Classification:
    return Classification(
        task_type=task,  # type: ignore[arg-type]
        task_matched=(task != "general") if matched is None else matched,
        complexity_score=score,
        tier=tier,  # type: ignore[arg-type]
        complexity=complexity,  # type: ignore[arg-type]
        category=category,  # type: ignore[arg-type]
        confidence=0.8,
        signals=(),
        language="en",
        input_tokens=tokens,
    )


def m(name: str, cin: float, cout: float, tags: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model_id": name,
        "provider": "openai",
        "api_keys": ["sk-test-xxxxxxxx"],
        "cost_per_1k_input": cin,
        "cost_per_1k_output": cout,
        "tags": tags,
        **kw,
    }


def planner(**top: Any) -> Planner:
    data: dict[str, Any] = {
        "default_model": "mini",
        "models": [
            m("mini", 0.00015, 0.0006, ["cheap", "general", "summarisation", "translation"], context_window=16_000),
            m("mid", 0.003, 0.015, ["medium", "code", "creative"], context_window=128_000),
            m("big", 0.005, 0.02, ["strong", "reasoning", "code", "creative"], context_window=128_000),
            m("local", 0.0, 0.0, ["cheap", "agentic"]),
        ],
    }
    data.update(top)
    return Planner(load_config(data))


@pytest.mark.parametrize(
    ("c", "layer", "first", "reason_bits"),
    [
        pytest.param(
            cls("summarisation", score=0.2, tier="simple"),
            "task_classifier",
            "mini",
            ["summarisation"],
            id="task-summary",
        ),
        pytest.param(
            cls("code", score=0.7, tier="complex"),
            "task_classifier",
            "big",
            ["code", "tier complex"],
            id="task-code-complex",
        ),
        pytest.param(cls("code", score=0.4, tier="medium"), "task_classifier", "mid", ["code"], id="task-code-medium"),
        pytest.param(
            cls("reasoning", score=0.8, tier="reasoning"), "task_classifier", "big", ["reasoning"], id="task-reasoning"
        ),
        pytest.param(
            cls(score=0.1, tier="simple"), "complexity", "local", ["clearly low", "cheap"], id="complexity-low"
        ),
        pytest.param(
            cls(score=0.9, tier="complex"), "complexity", "big", ["clearly high", "strong"], id="complexity-high"
        ),
        pytest.param(cls(score=0.5), "default", "mini", ["ambiguous", "default model"], id="ambiguous-default"),
        pytest.param(
            cls("factual", score=0.5), "default", "mini", ["no model tagged 'factual'"], id="no-tagged-models"
        ),
    ],
)
def test_layers(c: Classification, layer: str, first: str, reason_bits: list[str]) -> None:
    plan = planner().plan(c)
    assert plan.layer == layer
    assert plan.chain[0] == first, plan.reason
    for bit in reason_bits:
        assert bit in plan.reason
    assert len(plan.chain) == len(set(plan.chain))


def test_cascade_orders_cheapest_capable_first_and_can_escalate() -> None:
    plan = planner().plan(cls("code", score=0.4, tier="medium"))
    assert plan.chain == ["mid", "big", "mini"]  # capable cheapest-first (mid before big by strength), default last
    assert "cascade" in plan.reason
    off = planner(cascade={"enabled": False}).plan(cls("code", score=0.4, tier="medium"))
    assert off.chain[0] == "mid"


def test_ambiguous_band_asks_the_meta_router_when_configured() -> None:
    plan = planner(meta_router_model="mini").plan(cls(score=0.5))
    assert plan.needs_meta
    assert plan.layer == "meta_router"
    blocked = planner(meta_router_model="mini").plan(cls(score=0.5), blocked={"mini": "breaker open"})
    assert not blocked.needs_meta  # the meta-router itself is down: layer 4


def test_pinned_model_and_its_fallbacks() -> None:
    p = planner(models=[*planner().config.model_dump()["models"][:3]])
    plan = p.plan(cls("code"), model="mid")
    assert (plan.layer, plan.chain, plan.pinned) == ("pinned", ["mid"], True)
    data = planner().config.model_dump(mode="json")
    data["models"][1]["fallbacks"] = ["big"]
    data["models"][1]["api_keys"] = ["sk-test-xxxxxxxx"]
    for x in data["models"]:
        x["api_keys"] = ["sk-test-xxxxxxxx"]
    p2 = Planner(load_config(data))
    assert p2.plan(cls(), model="mid").chain == ["mid", "big"]
    with pytest.raises(ConfigError, match="unknown model or profile 'nope'"):
        p2.plan(cls(), model="nope")


def test_open_breakers_and_context_windows_skip_with_reasons() -> None:
    p = planner()
    plan = p.plan(
        cls("summarisation", score=0.2, tier="simple", tokens=20_000), blocked={"mid": "breaker open for model 'mid'"}
    )
    assert "mini" not in plan.chain
    assert "mid" not in plan.chain
    reasons = dict(plan.skipped)
    assert "context window 16000" in reasons["mini"]
    assert "breaker open" in reasons["mid"]
    assert plan.chain


def test_max_tokens_counts_against_the_context_window() -> None:
    plan = planner().plan(cls("summarisation", score=0.2, tier="simple", tokens=15_000), max_tokens=2000)
    assert "mini" not in plan.chain


@pytest.mark.parametrize(
    ("profile", "check"),
    [
        pytest.param("free", lambda plan: plan.chain == ["local"], id="free"),
        pytest.param("premium", lambda plan: plan.chain[0] == "big", id="premium"),
        pytest.param("eco", lambda plan: plan.tier == "medium", id="eco-drops-a-tier"),
        pytest.param("agentic", lambda plan: plan.chain == ["local"] or plan.chain[0] == "local", id="agentic"),
    ],
)
def test_builtin_profiles(profile: str, check: Any) -> None:
    plan = planner().plan(cls("code", score=0.8, tier="complex"), model=profile)
    assert check(plan), plan
    assert plan.profile == profile


def test_tools_engage_the_agentic_profile_under_auto() -> None:
    plan = planner().plan(cls("general", score=0.5), tools=True)
    assert plan.chain[0] == "local"
    assert "agentic" in plan.reason


def test_user_profile() -> None:
    p = planner(profiles={"cheapskate": {"models": ["mini", "local"]}})
    plan = p.plan(cls("code", score=0.8, tier="complex"), model="cheapskate")
    assert set(plan.chain) <= {"mini", "local"}
    assert plan.profile == "cheapskate"


def test_budget_downgrade_and_exhausted_cheapest() -> None:
    p = planner(budget={"daily_limit_usd": 1.0, "on_exhausted": "cheapest"})
    normal = p.plan(cls("code", score=0.8, tier="complex"))
    down = p.plan(cls("code", score=0.8, tier="complex"), budget_state="downgrade")
    assert normal.tier == "complex"
    assert down.tier == "medium"
    assert "budget" in down.reason
    assert down.chain[0] == "mid"
    ex = p.plan(cls("code", score=0.8, tier="complex"), budget_state="exhausted")
    assert ex.chain == ["local"]
    assert "exhausted" in ex.reason


def test_routes_table_beats_tags() -> None:
    p = planner(routes={"complex": {"code": {"model": "mid", "fallbacks": ["big"]}}})
    plan = p.plan(cls("code", score=0.8, tier="complex", complexity="complex", category="code"))
    assert plan.chain == ["mid", "big"]
    assert "routes[complex][code]" in plan.reason
    other = p.plan(cls("code", score=0.8, tier="complex", complexity="complex", category="reasoning"))
    assert other.chain[0] == "big"


def test_unknown_prices_are_never_free_or_cheapest() -> None:
    data = planner().config.model_dump(mode="json")
    for x in data["models"]:
        x["api_keys"] = ["sk-test-xxxxxxxx"]
    data["models"].append({"name": "mystery", "model_id": "mystery", "provider": "ollama", "tags": ["cheap"]})
    p = Planner(load_config(data))
    assert "mystery" not in p.plan(cls(), model="free").chain
    assert p.cheapest_first[0] == "local"
    assert p.cheapest_first.index("mystery") > p.cheapest_first.index("mini")
    # resolved prices from the price library win over the config's silence
    p2 = Planner(load_config(data), prices={"mystery": (0.0, 0.0)})
    assert "mystery" in p2.plan(cls(), model="free").chain


# -- routeforge's complexity_threshold ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "tier", "first", "plan_tier", "note"),
    [
        pytest.param(0.30, "medium", "mid", "simple", "0.30 < complexity_threshold 0.45: cheap tier", id="below"),
        pytest.param(0.50, "medium", "big", "complex", "0.50 >= complexity_threshold 0.45: strong tier", id="above"),
        pytest.param(0.60, "complex", "big", "complex", None, id="already-strong"),
        pytest.param(0.20, "reasoning", "big", "reasoning", None, id="reasoning-kept"),
    ],
)
def test_complexity_threshold_picks_cheap_or_strong_within_the_task(
    score: float, tier: str, first: str, plan_tier: str, note: str | None
) -> None:
    # "code" is tagged on mid (medium) and big (strong): the threshold decides which tier the prompt needs
    plan = planner(complexity_threshold=0.45).plan(cls("code", score=score, tier=tier))
    assert plan.layer == "task_classifier"
    assert plan.tier == plan_tier
    # below: every code model is capable, cheapest first; above: only the strong one is, mid comes after it
    assert plan.chain[0] == first
    if note is None:
        assert "complexity_threshold" not in plan.reason
    else:
        assert note in plan.reason


def test_complexity_threshold_left_unset_keeps_the_classifier_tiers() -> None:
    # the same prompt as "above" without the setting: the classifier's medium tier, so mid (medium) is capable
    plan = planner().plan(cls("code", score=0.50, tier="medium"))
    assert plan.tier == "medium"
    assert plan.chain[0] == "mid"
    assert "complexity_threshold" not in plan.reason


def test_memoised_plans_do_not_straddle_a_threshold() -> None:
    # 0.349 and 0.351 round to the same two decimals; the band's lower edge (0.35) lies between them
    p = planner(complexity_band=[0.35, 0.65])
    low = p.plan(cls(score=0.349, tier="simple"))
    mid = p.plan(cls(score=0.351, tier="simple"))
    assert low.layer == "complexity"
    assert mid.layer == "default"  # ambiguous and no meta-router: layer 4
    assert p.plan(cls(score=0.349, tier="simple")).layer == "complexity"  # still right from the memo


def test_premium_puts_capable_models_before_a_weak_task_match() -> None:
    # "summarisation" is tagged only on mini (cheap); a complex summary under premium goes to the strongest first
    plan = planner().plan(cls("summarisation", score=0.8, tier="complex"), model="premium")
    assert plan.chain[0] == "big"
    assert plan.chain.index("big") < plan.chain.index("mini")
    assert "none of them handles tier complex: stronger models first" in plan.reason
    # under auto (cheapest first, then escalation) the task's own model still goes first
    assert planner().plan(cls("summarisation", score=0.8, tier="complex")).chain[0] == "mini"
