"""Request and response data.

Two families live here:

* the provider-neutral wire types (:class:`ChatRequest`, :class:`ChatResponse`, :class:`ChatDelta`,
  :class:`Usage`) that providers build from and parse into. They are slotted dataclasses: they are created
  several times per request on the hot path and never validated from user input.
* the public result types (:class:`Response`, :class:`ResponseMeta`, :class:`Attempt`) and the tracker's
  :class:`RequestRecord`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "ChatDelta",
    "ChatRequest",
    "ChatResponse",
    "RequestRecord",
    "Response",
    "ResponseMeta",
    "StreamEvent",
    "Usage",
]

AttemptOutcome: TypeAlias = Literal["ok", "gate_failed", "error", "skipped", "cancelled"]
#: outcomes of attempts that really called the model
_CALLED = frozenset({"ok", "gate_failed", "error", "cancelled"})


@dataclass(slots=True, frozen=True)
class Usage:
    """Token counts of one provider call. ``estimated`` is true when the provider sent no usage.

    ``input_tokens`` counts *every* prompt token, cached or not (OpenAI's ``prompt_tokens`` convention), so
    totals and context sizes mean the same for every provider. The two cache fields say how many of them were
    written to or read from a provider's prompt cache; they are priced differently (see
    :func:`asyncrouter._pricing.usage_cost_usd`). Anthropic reports the three parts separately, and its own
    ``input_tokens`` (the uncached part) is :attr:`uncached_input_tokens` here.

    Attributes:
        input_tokens: all prompt tokens, cache writes and cache reads included.
        output_tokens: completion tokens.
        estimated: the provider sent no (or incomplete) usage; the counts are estimates.
        cache_creation_input_tokens: prompt tokens written to the provider's cache (billed above the input
            price; Anthropic: 1.25x).
        cache_read_input_tokens: prompt tokens served from the provider's cache (billed below the input
            price; Anthropic: 0.1x).

    .. versionadded:: 0.1
    """

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens billed at the plain input price (neither written to nor read from a cache).

        .. versionadded:: 0.1
        """
        return max(0, self.input_tokens - self.cache_creation_input_tokens - self.cache_read_input_tokens)


@dataclass(slots=True)
class ChatRequest:
    """What a provider is asked to do, independent of any wire format."""

    model_id: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    user: str | None = None
    #: extra body fields passed through verbatim (provider-specific knobs)
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False


@dataclass(slots=True)
class ChatResponse:
    """A complete reply from one provider call."""

    content: str
    usage: Usage
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    request_id: str | None = None
    provider_model: str | None = None
    #: the stop sequence that ended the reply, when the provider says which (Anthropic); finish_reason is "stop"
    stop_sequence: str | None = None


@dataclass(slots=True, frozen=True)
class ChatDelta:
    """One streamed text fragment."""

    text: str


#: A provider stream yields text deltas and ends with exactly one complete :class:`ChatResponse`.
StreamEvent: TypeAlias = ChatDelta | ChatResponse


@dataclass(slots=True)
class Attempt:
    """One try of one model within a request.

    ``outcome`` is ``ok`` (accepted), ``gate_failed`` (a reply that failed a quality gate), ``error``,
    ``skipped`` (never called: breaker open, budget, context window) or ``cancelled``. ``reason`` says why the
    attempt was left, e.g. ``"gate too_short: 3 chars < 40"`` or ``"ProviderServerError: HTTP 503"``.
    """

    model: str
    provider: str
    outcome: AttemptOutcome
    reason: str = ""
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    tokens_estimated: bool = False
    error_type: str | None = None
    status_code: int | None = None
    retries: int = 0
    gate_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class ResponseMeta:
    """Everything the router knows about how a reply was produced.

    Token and cost figures are summed over **all** attempts, escalations, the meta-router and the llm or
    embeddings classifier included: a cascade never under-reports what it spent.
    """

    request_id: str
    model: str
    provider: str
    routing_layer: str
    routing_reason: str
    task_type: str = "general"
    complexity_score: float = 0.0
    tier: str = "simple"
    complexity: str = "simple"
    category: str = "factual"
    confidence: float = 0.0
    profile: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = False
    latency_ms: float = 0.0
    estimated_cost_usd: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    quality_passed: bool = True
    finish_reason: str | None = None
    provider_request_id: str | None = None
    meta_router_cost_usd: float = 0.0
    #: what the llm or embeddings classifier's call cost (``classifier.strategy``), included in the totals
    classifier_cost_usd: float = 0.0
    #: the stop sequence that ended the accepted reply, when its provider said which (Anthropic does)
    stop_sequence: str | None = None

    @property
    def escalations(self) -> int:
        """How many times the request moved on from a called model to the next (skipped models not counted)."""
        return max(0, sum(1 for a in self.attempts if a.outcome in _CALLED) - 1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["escalations"] = self.escalations
        return data


@dataclass(slots=True)
class Response:
    """The reply to :meth:`Router.aroute`: the accepted content plus :class:`ResponseMeta`."""

    content: str
    meta: ResponseMeta
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finish_reason(self) -> str | None:
        return self.meta.finish_reason

    def __str__(self) -> str:
        return self.content


@dataclass(slots=True)
class RequestRecord:
    """One tracker row: a finished request, successful or not. Never holds an API key."""

    request_id: str
    timestamp: float
    status: Literal["ok", "error", "cancelled"]
    prompt_preview: str
    prompt_hash: str
    task_type: str
    tier: str
    complexity: str
    category: str
    complexity_score: float
    routing_layer: str
    routing_reason: str
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float
    attempts: list[Attempt] = field(default_factory=list)
    error_type: str | None = None
    profile: str | None = None
    quality_passed: bool = True
    tokens_estimated: bool = False

    @property
    def escalated(self) -> bool:
        """Whether the request moved on from one called model to another."""
        return sum(1 for a in self.attempts if a.outcome in _CALLED) > 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["escalated"] = self.escalated
        return data

    @staticmethod
    def attempts_from(items: list[Mapping[str, Any]]) -> list[Attempt]:
        names = {f.name for f in dataclasses.fields(Attempt)}
        return [Attempt(**{k: v for k, v in item.items() if k in names}) for item in items]
