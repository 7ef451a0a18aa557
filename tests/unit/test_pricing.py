"""Prices: configured, from the genai-prices library, or a loud conservative default; never $0 by accident."""

from __future__ import annotations

import logging
import sys
from typing import Any

import genai_prices
import pytest

from asyncrouter._config import ModelConfig, PricingConfig
from asyncrouter._pricing import Price, cost_usd, library_price, resolve_price, resolve_prices


def model(**kw: Any) -> ModelConfig:
    kw.setdefault("name", "m")
    if kw.get("provider") not in ("ollama", "openai_compatible"):
        kw.setdefault("api_keys", ["sk-test-key"])
    return ModelConfig(**kw)


def per_1k(model_id: str, **where: str) -> tuple[float, float]:
    """The library's own answer for 1,000 input and 1,000 output tokens: the oracle for our lookup."""
    calc = genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=1000), model_id, **where)  # type: ignore[call-overload]
    return float(calc.input_price), float(calc.output_price)


PRICING = PricingConfig()


def test_configured_prices_win_over_the_library() -> None:
    m = model(model_id="gpt-4o-mini", provider="openai", cost_per_1k_input=1.0, cost_per_1k_output=2.0)
    assert resolve_price(m, PRICING) == Price(1.0, 2.0, "config")


def test_an_explicit_zero_is_a_real_price() -> None:
    # no warning either: pytest turns any warning into an error
    m = model(model_id="llama3.2", provider="ollama", cost_per_1k_input=0.0, cost_per_1k_output=0.0)
    assert resolve_price(m, PRICING) == Price(0.0, 0.0, "config")


@pytest.mark.parametrize(
    ("kw", "oracle"),
    [
        pytest.param({"provider": "openai", "model_id": "gpt-4o-mini"}, ("gpt-4o-mini", {"provider_id": "openai"}),
                     id="openai"),
        pytest.param({"provider": "anthropic", "model_id": "claude-3-5-haiku-latest"},
                     ("claude-3-5-haiku-latest", {"provider_id": "anthropic"}), id="anthropic"),
        pytest.param({"provider": "openrouter", "model_id": "anthropic/claude-3.5-sonnet"},
                     ("anthropic/claude-3.5-sonnet", {"provider_id": "openrouter"}), id="openrouter"),
        pytest.param({"provider": "openai_compatible", "model_id": "llama-3.1-8b-instant",
                      "base_url": "https://api.groq.com/openai/v1"},
                     ("llama-3.1-8b-instant", {"provider_id": "groq"}), id="openai_compatible-by-url"),
        pytest.param({"provider": "huggingface", "model_id": "meta-llama/Llama-3.1-8B-Instruct:cerebras"},
                     ("meta-llama/Llama-3.1-8B-Instruct", {"provider_id": "huggingface_cerebras"}),
                     id="huggingface-router-suffix"),
        pytest.param({"provider": "google", "model_id": "gemini-2.5-flash-lite"},
                     ("gemini-2.5-flash-lite", {"provider_id": "google"}), id="google"),
    ],
)
def test_library_prices(kw: dict[str, Any], oracle: tuple[str, dict[str, str]]) -> None:
    price = resolve_price(model(**kw), PRICING)
    expected = per_1k(oracle[0], **oracle[1])
    assert price == Price(*expected, "library")
    assert price.input_per_1k > 0
    assert price.output_per_1k > 0


def test_a_partly_configured_price_is_completed_from_the_library() -> None:
    m = model(model_id="gpt-4o", provider="openai", cost_per_1k_input=0.5)
    _, out = per_1k("gpt-4o", provider_id="openai")
    assert resolve_price(m, PRICING) == Price(0.5, out, "library")


def test_an_unknown_model_warns_and_uses_the_conservative_default(caplog: pytest.LogCaptureFixture) -> None:
    m = model(name="mystery", model_id="llama3.2", provider="ollama")
    pricing = PricingConfig(default_cost_per_1k_input=0.02, default_cost_per_1k_output=0.06)
    with caplog.at_level(logging.WARNING, logger="asyncrouter.pricing"), pytest.warns(UserWarning, match="'mystery'"):
        price = resolve_price(m, pricing)
    assert price == Price(0.02, 0.06, "default")
    assert "'mystery'" in caplog.text
    assert "cost_per_1k_input" in caplog.text


def test_unknown_model_id_at_a_known_provider() -> None:
    m = model(name="typo", model_id="gpt-4o-minnnni", provider="openai")
    with pytest.warns(UserWarning, match="'typo'.*not in the price library"):
        price = resolve_price(m, PRICING)
    assert (price.input_per_1k, price.output_per_1k) == (0.01, 0.03)  # never $0


def test_library_can_be_turned_off() -> None:
    m = model(name="mini", model_id="gpt-4o-mini", provider="openai")
    with pytest.warns(UserWarning, match="'mini'"):
        price = resolve_price(m, PricingConfig(use_price_library=False))
    assert price.source == "default"


def test_a_missing_library_falls_back_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # as if not installed
    assert library_price("openai", "gpt-4o-mini") is None
    with pytest.warns(UserWarning, match="'mini'"):
        price = resolve_price(model(name="mini", model_id="gpt-4o-mini", provider="openai"), PRICING)
    assert price.source == "default"


def test_local_endpoints_are_not_guessed() -> None:
    # an openai-compatible server on loopback could serve anything: no library price for it
    assert library_price("openai_compatible", "gpt-4o-mini", base_url="http://127.0.0.1:8000/v1") is None
    assert library_price("ollama", "llama3.2") is None


def test_resolve_prices_for_a_whole_config() -> None:
    models = [
        model(name="a", model_id="gpt-4o-mini", provider="openai"),
        model(name="b", model_id="local", provider="ollama", cost_per_1k_input=0.0, cost_per_1k_output=0.0),
    ]
    prices = resolve_prices(models, PRICING, now=1_767_225_600.0)
    assert set(prices) == {"a", "b"}
    assert prices["a"].source == "library"
    assert prices["b"] == Price(0.0, 0.0, "config")


def test_cost_usd() -> None:
    price = Price(0.5, 2.0, "config")
    assert cost_usd(price, 1000, 500) == pytest.approx(1.5)
    assert cost_usd(price, 0, 0) == 0.0
    assert cost_usd(price, -5, 1000) == pytest.approx(2.0)  # nonsense negative counts cost nothing
