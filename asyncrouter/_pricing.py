"""What each model costs: the configured price, else a maintained price library, else a loud default.

Resolution order for each of a model's two prices (input and output, USD per 1,000 tokens):

1. ``cost_per_1k_input`` / ``cost_per_1k_output`` from the model's configuration. ``0.0`` is a real price
   (local models are free) and is used as given.
2. The `genai-prices <https://github.com/pydantic/genai-prices>`_ library's bundled snapshot, looked up by
   provider and ``model_id`` (``pricing.use_price_library``). It is imported lazily, only for a model whose
   config lacks a price, and never fetches anything over the network.
3. ``pricing.default_cost_per_1k_input`` / ``..._output``: deliberately high, so an unknown model is never
   treated as free. Falling back to them warns (:class:`UserWarning` and a log record) naming the model alias.

This module is the only one that knows the library exists.

.. versionadded:: 0.1
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from ._config import ModelConfig, PricingConfig

__all__ = ["Price", "PriceSource", "cost_usd", "library_price", "resolve_price", "resolve_prices"]

_log = logging.getLogger("asyncrouter.pricing")

PriceSource: TypeAlias = Literal["config", "library", "default"]

# Our provider names -> the library's provider ids. Providers missing here are looked up by base_url only
# (openai_compatible) or not at all (ollama: local models have no list price).
_LIBRARY_PROVIDER: dict[str, str] = {"openai": "openai", "anthropic": "anthropic", "openrouter": "openrouter"}
_PROBE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price in USD per 1,000 tokens.

    Attributes:
        input_per_1k: price of 1,000 prompt tokens.
        output_per_1k: price of 1,000 completion tokens.
        source: ``"config"`` when both prices were configured; otherwise where the missing one came from,
            ``"library"`` or ``"default"`` (the conservative fallback; a warning was issued).

    .. versionadded:: 0.1
    """

    input_per_1k: float
    output_per_1k: float
    source: PriceSource


def cost_usd(price: Price, input_tokens: int, output_tokens: int) -> float:
    """The cost in USD of a call with these token counts.

    .. versionadded:: 0.1
    """
    return max(0, input_tokens) * price.input_per_1k / 1000 + max(0, output_tokens) * price.output_per_1k / 1000


def library_price(
    provider: str, model_id: str, *, base_url: str | None = None, now: float | None = None
) -> tuple[float, float] | None:
    """Look a model up in the bundled genai-prices snapshot.

    Args:
        provider: our provider name (``openai``, ``anthropic``, ``openrouter``, ``huggingface``, ...).
        model_id: the provider's model string.
        base_url: the endpoint, which identifies the vendor behind ``openai_compatible`` and ``huggingface``.
        now: seconds since the epoch (from the router's clock) for prices that change over time; ``None``
            lets the library use today's price.

    Returns:
        ``(input_per_1k, output_per_1k)``, or ``None`` when the library is not installed or does not know the
        model.

    .. versionadded:: 0.1
    """
    try:
        import genai_prices
    except ImportError:
        _log.debug("genai-prices is not installed; no library prices")
        return None

    provider_id: str | None = None
    api_url: str | None = None
    if provider in _LIBRARY_PROVIDER:
        provider_id = _LIBRARY_PROVIDER[provider]
    elif provider == "huggingface" and ":" in model_id:
        # The Hugging Face router names the serving provider as a suffix: "meta-llama/Llama-3.1-8B:cerebras".
        model_id, _, served_by = model_id.rpartition(":")
        provider_id = f"huggingface_{served_by}"
    elif provider in ("openai_compatible", "huggingface") and base_url:
        api_url = base_url
    else:
        return None
    usage = genai_prices.Usage(input_tokens=_PROBE_TOKENS, output_tokens=_PROBE_TOKENS)
    when = datetime.fromtimestamp(now, UTC) if now is not None else None
    try:
        if provider_id is not None:
            calc = genai_prices.calc_price(usage, model_id, provider_id=provider_id, genai_request_timestamp=when)
        else:
            calc = genai_prices.calc_price(usage, model_id, provider_api_url=api_url, genai_request_timestamp=when)
    except LookupError:
        return None
    except Exception:  # the price data is third-party: a bad entry must not stop the router from loading
        _log.debug("genai-prices failed on %s/%s", provider, model_id, exc_info=True)
        return None
    return float(calc.input_price), float(calc.output_price)


def resolve_price(model: ModelConfig, pricing: PricingConfig, *, now: float | None = None) -> Price:
    """The price the router charges a model's calls at.

    Args:
        model: the model's configuration.
        pricing: the ``pricing`` section of the configuration.
        now: seconds since the epoch, from the router's clock (see :func:`library_price`).

    Returns:
        The price and where it came from. A price that falls back to the configured default issues a
        :class:`UserWarning` and logs a warning naming the model alias.

    .. versionadded:: 0.1
    """
    cin, cout = model.cost_per_1k_input, model.cost_per_1k_output
    if cin is not None and cout is not None:
        return Price(cin, cout, "config")
    if pricing.use_price_library:
        found = library_price(model.provider, model.model_id, base_url=model.base_url, now=now)
        if found is not None:
            return Price(found[0] if cin is None else cin, found[1] if cout is None else cout, "library")
    missing = [name for name, value in (("cost_per_1k_input", cin), ("cost_per_1k_output", cout)) if value is None]
    din = pricing.default_cost_per_1k_input if cin is None else cin
    dout = pricing.default_cost_per_1k_output if cout is None else cout
    message = (
        f"model {model.name!r} ({model.provider}/{model.model_id}) has no known price "
        f"({' and '.join(missing)} not configured{', not in the price library' if pricing.use_price_library else ''});"
        f" charging the conservative default of {din} USD per 1k input and {dout} USD per 1k output tokens. "
        f"Set {' and '.join(missing)} for this model (0.0 for a free local model)."
    )
    _log.warning(message)
    warnings.warn(message, UserWarning, stacklevel=2)
    return Price(din, dout, "default")


def resolve_prices(
    models: Iterable[ModelConfig], pricing: PricingConfig, *, now: float | None = None
) -> dict[str, Price]:
    """:func:`resolve_price` for every model, keyed by alias (what a router does once at load).

    .. versionadded:: 0.1
    """
    return {m.name: resolve_price(m, pricing, now=now) for m in models}
