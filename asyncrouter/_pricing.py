"""What each model costs: the configured price, else a maintained price library, else a loud default.

Resolution order for each of a model's two prices (input and output, USD per 1,000 tokens):

1. ``cost_per_1k_input`` / ``cost_per_1k_output`` from the model's configuration. ``0.0`` is a real price
   (local models are free) and is used as given.
2. The `genai-prices <https://github.com/pydantic/genai-prices>`_ library's bundled snapshot, looked up by
   provider and ``model_id`` (``pricing.use_price_library``). It is imported lazily, only for a model whose
   config lacks a price, and never fetches anything over the network.
3. ``pricing.default_cost_per_1k_input`` / ``..._output``: deliberately high, so an unknown model is never
   treated as free. Falling back to them warns (:class:`UserWarning` and a log record) naming the model alias.

Prompt-cache tokens (:attr:`Usage.cache_creation_input_tokens <asyncrouter._models.Usage>` and
``cache_read_input_tokens``) have prices of their own: ``cost_per_1k_cache_write`` / ``cost_per_1k_cache_read``
when configured, else a multiple of the input price, Anthropic's published rates: 1.25x for a (5-minute)
cache write and 0.1x for a cache read (:data:`DEFAULT_CACHE_WRITE_MULTIPLIER`,
:data:`DEFAULT_CACHE_READ_MULTIPLIER`). Anthropic is the provider whose usage reports cache tokens.
:func:`usage_cost_usd` prices a whole :class:`~asyncrouter._models.Usage`.

This module is the only one that knows the library exists.

.. versionadded:: 0.1
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from ._config import ModelConfig, PricingConfig
from ._models import Usage

__all__ = [
    "DEFAULT_CACHE_READ_MULTIPLIER",
    "DEFAULT_CACHE_WRITE_MULTIPLIER",
    "Price",
    "PriceSource",
    "cost_usd",
    "library_price",
    "resolve_price",
    "resolve_prices",
    "usage_cost_usd",
]

_log = logging.getLogger("asyncrouter.pricing")

PriceSource: TypeAlias = Literal["config", "library", "default"]

# Our provider names -> the library's provider ids. Providers missing here are looked up by base_url only
# (openai_compatible) or not at all (ollama: local models have no list price).
_LIBRARY_PROVIDER: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "openrouter": "openrouter",
    "google": "google",
}
_PROBE_TOKENS = 1000

#: Price of a prompt-cache write, as a multiple of the input price, when not configured (Anthropic's rate
#: for its default 5-minute cache; see docs.anthropic.com, "Prompt caching", Pricing).
DEFAULT_CACHE_WRITE_MULTIPLIER = 1.25
#: Price of a prompt-cache read, as a multiple of the input price, when not configured (Anthropic's rate).
DEFAULT_CACHE_READ_MULTIPLIER = 0.1


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price in USD per 1,000 tokens.

    Attributes:
        input_per_1k: price of 1,000 prompt tokens.
        output_per_1k: price of 1,000 completion tokens.
        source: ``"config"`` when both prices were configured; otherwise where the missing one came from,
            ``"library"`` or ``"default"`` (the conservative fallback; a warning was issued).
        cache_write_per_1k: price of 1,000 prompt tokens written to the provider's prompt cache, when
            configured; ``None`` charges ``input_per_1k`` times :data:`DEFAULT_CACHE_WRITE_MULTIPLIER`.
        cache_read_per_1k: price of 1,000 prompt tokens read from the provider's prompt cache, when
            configured; ``None`` charges ``input_per_1k`` times :data:`DEFAULT_CACHE_READ_MULTIPLIER`.

    .. versionadded:: 0.1
    """

    input_per_1k: float
    output_per_1k: float
    source: PriceSource
    cache_write_per_1k: float | None = None
    cache_read_per_1k: float | None = None


def cost_usd(
    price: Price,
    input_tokens: int,
    output_tokens: int,
    *,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> float:
    """The cost in USD of a call with these token counts.

    Args:
        price: the model's price.
        input_tokens: all prompt tokens, the cached ones included (:attr:`Usage.input_tokens
            <asyncrouter._models.Usage>`).
        output_tokens: completion tokens.
        cache_write_tokens: how many of *input_tokens* were written to the prompt cache.
        cache_read_tokens: how many of *input_tokens* were read from the prompt cache.

    Returns:
        The uncached prompt tokens at the input price, cache writes and reads at their own prices (see
        :class:`Price`), and the completion at the output price. Negative counts count as zero.

    .. versionadded:: 0.1
    """
    if cache_write_tokens <= 0 and cache_read_tokens <= 0:
        return max(0, input_tokens) * price.input_per_1k / 1000 + max(0, output_tokens) * price.output_per_1k / 1000
    written, read = max(0, cache_write_tokens), max(0, cache_read_tokens)
    uncached = max(0, input_tokens - written - read)
    write_price = price.cache_write_per_1k
    if write_price is None:
        write_price = price.input_per_1k * DEFAULT_CACHE_WRITE_MULTIPLIER
    read_price = price.cache_read_per_1k
    if read_price is None:
        read_price = price.input_per_1k * DEFAULT_CACHE_READ_MULTIPLIER
    return (
        uncached * price.input_per_1k
        + written * write_price
        + read * read_price
        + max(0, output_tokens) * price.output_per_1k
    ) / 1000


def usage_cost_usd(price: Price, usage: Usage) -> float:
    """The cost in USD of one provider call's :class:`~asyncrouter._models.Usage`, prompt-cache tokens included.

    .. versionadded:: 0.1
    """
    return cost_usd(
        price,
        usage.input_tokens,
        usage.output_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
    )


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
        return _with_cache_prices(Price(cin, cout, "config"), model)
    if pricing.use_price_library:
        found = library_price(model.provider, model.model_id, base_url=model.base_url, now=now)
        if found is not None:
            price = Price(found[0] if cin is None else cin, found[1] if cout is None else cout, "library")
            return _with_cache_prices(price, model)
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
    return _with_cache_prices(Price(din, dout, "default"), model)


def _with_cache_prices(price: Price, model: ModelConfig) -> Price:
    """*price* with the model's configured prompt-cache prices (unset ones stay ``None``: the default rates)."""
    write, read = model.cost_per_1k_cache_write, model.cost_per_1k_cache_read
    if write is None and read is None:
        return price
    return replace(price, cache_write_per_1k=write, cache_read_per_1k=read)


def resolve_prices(
    models: Iterable[ModelConfig], pricing: PricingConfig, *, now: float | None = None
) -> dict[str, Price]:
    """:func:`resolve_price` for every model, keyed by alias (what a router does once at load).

    .. versionadded:: 0.1
    """
    return {m.name: resolve_price(m, pricing, now=now) for m in models}
