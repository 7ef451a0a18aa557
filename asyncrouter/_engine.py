"""The Router: classify -> plan -> cascade (breaker -> budget -> provider -> gates) -> track.

Ownership: this module composes the lower layers and owns nothing external itself. Time comes from the
injected clock (latency, backoff, cool-downs); a request's deadline is real monotonic time (``deadline_now``),
turned into relative timeouts: aiohttp's per-call timeout, or an anyio cancel scope where one is needed anyway.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import random
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio
import anyio.from_thread

from ._alerts import Alerts
from ._batch import DEFAULT_BATCH_CONCURRENCY, BatchItem, ProgressCallback, iter_batch
from ._breaker import BreakerBoard
from ._breaker_sync import BreakerSync
from ._budget import Budget, Reservation
from ._classifier import Classification, Classifier
from ._clock import AnyioClock, deadline_now
from ._config import Config, load_config, load_yaml
from ._exceptions import (
    AllProvidersFailed,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ContextLengthExceeded,
    NoRouteError,
    ProviderError,
    ProviderTimeout,
    QualityGateFailed,
    RateLimited,
    RouterError,
)
from ._http import HTTPClient
from ._meta import MetaRouterCache, TTLCache, build_meta_messages, looks_like_injection, parse_meta_reply, prompt_key
from ._models import Attempt, ChatDelta, ChatRequest, ChatResponse, RequestRecord, Response, ResponseMeta
from ._planner import Plan, Planner, RoutingDecision
from ._pricing import Price, cost_usd, resolve_price, usage_cost_usd
from ._quality import GateInput, GateResult, QualityGate, QualityGates
from ._ratelimit import RateLimiter
from ._store import FeedbackRecord, Stats, Tracker
from ._strategies import Label, build_label_messages, parse_label_reply, relabel
from ._tokens import estimate_messages_tokens, estimate_tokens, message_text
from ._types import Clock
from .providers import KeyCheck, ModelClient
from .providers._base import EmbeddingReply

__all__ = ["BatchStream", "LogQuery", "RouteStream", "Router"]

logger = logging.getLogger("asyncrouter")

if TYPE_CHECKING:
    from ._embeddings import EmbeddingIndex, TrainReport
    from ._eval import EvalExample

_T = TypeVar("_T")

#: output tokens assumed when estimating the cost of a decision without max_tokens
ESTIMATE_OUTPUT_TOKENS = 500
_META_MAX_TOKENS = 200
#: the llm classifier's answer is one short JSON object
_LABEL_MAX_TOKENS = 60
#: tokens the llm classifier's instructions add to the prompt (for its budget reservation)
_LABEL_PROMPT_TOKENS = 250
#: input and output tokens of the smallest call worth making (sets when the budget counts as exhausted)
MIN_CALL_TOKENS = 50


def _normalise_messages(prompt: str | None, messages: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if messages is not None:
        if prompt is not None:
            raise TypeError("pass either a prompt or messages=, not both")
        out = [dict(m) for m in messages]
        if not out:
            raise ValueError("messages must not be empty")
        for i, m in enumerate(out):
            if "role" not in m:
                raise ValueError(f"messages[{i}] has no 'role'")
        return out
    if prompt is None:
        raise TypeError("aroute() needs a prompt or messages=")
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, not {type(prompt).__name__}")
    return [{"role": "user", "content": prompt}]


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return message_text(m)
    return message_text(messages[-1]) if messages else ""


def _system_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    parts = [message_text(m) for m in messages if m.get("role") in ("system", "developer")]
    return "\n".join(parts) if parts else None


def _stopped(exc: BaseException) -> bool:
    """Cancelled, or a stream whose consumer stopped reading (GeneratorExit): not a failure of the request."""
    return isinstance(exc, anyio.get_cancelled_exc_class() | GeneratorExit)


def _tools_expected(tools: Any, tool_choice: Any) -> bool:
    if not tools:
        return False
    return tool_choice == "required" or (isinstance(tool_choice, Mapping) and bool(tool_choice))


@dataclass(slots=True)
class _Params:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def chat_request(self, model_id: str, messages: list[dict[str, Any]]) -> ChatRequest:
        # positional, in ChatRequest's field order (once per provider call)
        return ChatRequest(
            model_id,
            messages,
            self.max_tokens,
            self.temperature,
            self.top_p,
            self.stop,
            self.tools,
            self.tool_choice,
            self.response_format,
            self.seed,
            self.user,
            dict(self.extra) if self.extra else {},
        )


#: the parameters of a call that passed none; shared, so never mutated (``Router._params`` builds fresh ones)
_NO_PARAMS = _Params()


@dataclass(slots=True)
class _Ctx:
    """Everything one request carries through the cascade."""

    request_id: str
    messages: list[dict[str, Any]]
    prompt: str  # the last user turn's text (what the gates judge against and the tracker previews)
    system: str | None  # the system prompt(s), for the gates
    params: _Params
    classification: Classification
    plan: Plan
    started: float
    deadline: float  # on deadline_now()
    task_type: str
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    meta_cost: float = 0.0
    meta_in: int = 0
    meta_out: int = 0
    #: the llm / embeddings classifier's call, when one was made
    label_cost: float = 0.0

    def remaining(self) -> float:
        return self.deadline - deadline_now()


@dataclass(slots=True)
class _Labelled:
    """What the llm / embeddings classifier made of a prompt, and what it cost."""

    classification: Classification
    note: str
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class _RouterEmbedder:
    """One model's embeddings through :meth:`Router.aembed` (budget, breakers, tracker), for ``train_index``."""

    __slots__ = ("_alias", "_router")

    def __init__(self, router: Router, alias: str) -> None:
        self._router = router
        self._alias = alias

    @property
    def model_id(self) -> str:
        return self._router._clients[self._alias].config.model_id

    async def embed(self, texts: Sequence[str]) -> EmbeddingReply:
        return await self._router.aembed(texts, model=self._alias)


def _label_note(label: Label) -> str:
    return f"{label.source} classifier: {label.complexity}/{label.category} (confidence {label.confidence:.2f})"


def _proxy_secrets(proxy: Any) -> list[str]:
    """The credentials in a proxy URL (``http://user:pass@host``), to keep out of records and logs."""
    if proxy is None:
        return []
    value: str = proxy.get_secret_value()
    userinfo = value.split("://", 1)[-1].rsplit("@", 1)[0] if "@" in value else ""
    return [part for part in (userinfo, *userinfo.split(":", 1)) if len(part) >= 4]


def _decision_params(
    max_tokens: int | None, tools: list[dict[str, Any]] | None, response_format: dict[str, Any] | None
) -> _Params:
    if max_tokens is None and tools is None and response_format is None:
        return _NO_PARAMS
    return _Params(max_tokens=max_tokens, tools=tools, response_format=response_format)


class _SyncLoop:
    """The event loop behind the synchronous API: a thread of its own, with the router open in one task there.

    The router stays open across calls (one HTTP session, one tracker writer) until :meth:`Router.close`, or
    until the interpreter exits: an ``atexit`` hook closes it then, so the tracker's last records are written.
    """

    def __init__(self, router: Router) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal(name="asyncrouter-sync")
        self.portal = self._portal_cm.__enter__()
        try:
            self.thread_id: int = self.portal.call(threading.get_ident)
            # aopen and aclose run in the same task, as the tracker's writer requires
            self._router_cm = self.portal.wrap_async_context_manager(router)
            self._router_cm.__enter__()
        except BaseException as exc:
            self._portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def close(self) -> None:
        try:
            self._router_cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)


class LogQuery:
    """What :meth:`Router.logs` returns: ``await`` it in async code, or iterate it in a script.

    Iterating runs the query on the synchronous API's event loop (see :meth:`Router.route`), so routeforge's
    ``for run in router.logs(last_n=5): print(run)`` works as written.

    .. versionadded:: 0.1
    """

    __slots__ = ("_query", "_router")

    def __init__(self, router: Router, query: Callable[[], Awaitable[list[RequestRecord]]]) -> None:
        self._router = router
        self._query = query

    def __await__(self) -> Generator[Any, None, list[RequestRecord]]:
        return self._query().__await__()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self._router._run_sync(self._query))


def _demote(plan: Plan, demoted: frozenset[str], task_type: str) -> None:
    """Move the models users keep rejecting for this task type behind the others (the order is kept)."""
    moved = [a for a in plan.chain if a in demoted]
    kept = [a for a in plan.chain if a not in demoted]
    if moved and kept and plan.chain[: len(kept)] != kept:
        plan.chain = kept + moved
        plan.reason += f"; feedback: {', '.join(moved)} moved back (users rejected its {task_type} replies)"


def _rating(rating: str | int | bool) -> int:
    """+1 or -1 from ``"up"``/``"down"``, ``1``/``-1`` or ``True``/``False``."""
    if isinstance(rating, bool):
        return 1 if rating else -1
    if isinstance(rating, int) and rating in (1, -1):
        return rating
    if isinstance(rating, str) and rating.strip().lower() in ("up", "+1", "1", "good", "down", "-1", "bad"):
        return 1 if rating.strip().lower() in ("up", "+1", "1", "good") else -1
    raise ValueError(f"a rating is 'up' or 'down' (or 1 / -1), not {rating!r}")


def _close_at_exit(ref: weakref.ref[Router]) -> None:
    router = ref()
    if router is not None:
        router.close()


class Router:
    """Routes each prompt to the right model.

    Args:
        config: a :class:`Config`, or a mapping validated into one (``${ENV}`` resolved).
        clock: the time source (``asyncrouter.testing.FakeClock`` in tests). Defaults to the real clock.
        quality_gates: extra async gates run after the built-in ones (see :class:`asyncrouter.QualityGate`).
        seed: seeds the backoff jitter, for reproducible tests.

    Use it as an async context manager: ``async with Router.from_yaml("asyncrouter.yaml") as router: ...``.
    Scripts without an event loop can call :meth:`route` instead (and :meth:`close`, or ``with router:``).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        config: Config | Mapping[str, Any],
        *,
        clock: Clock | None = None,
        quality_gates: Sequence[QualityGate | Callable[[GateInput], Awaitable[bool | str | None]]] = (),
        seed: int | None = None,
    ) -> None:
        self.config: Config = load_config(config)
        self.clock: Clock = clock if clock is not None else AnyioClock()
        self._rng = random.Random(seed)
        http = self.config.http
        self._http = HTTPClient(
            limit=http.connection_limit,
            limit_per_host=http.connection_limit_per_host,
            proxy=http.proxy.get_secret_value() if http.proxy is not None else None,
            trust_env=http.trust_env,
        )
        self._classifier = Classifier()
        self._gates = QualityGates(self.config.quality, custom=quality_gates)
        now = self.clock.time()
        self.prices: dict[str, Price] = {
            m.name: resolve_price(m, self.config.pricing, now=now) for m in self.config.models
        }
        self._planner = Planner(
            self.config, prices={a: (p.input_per_1k, p.output_per_1k) for a, p in self.prices.items()}
        )
        self._clients: dict[str, ModelClient] = {
            m.name: ModelClient(m, http=self._http, clock=self.clock) for m in self.config.models
        }
        self.breakers = BreakerBoard(
            self.config.breakers, clock=self.clock, models={a: c.endpoint for a, c in self._clients.items()}
        )
        self._tracker: Tracker | None = (
            Tracker(
                self.config.tracker,
                clock=self.clock,
                secrets=[*(k for m in self.config.models for k in m.key_values()), *_proxy_secrets(http.proxy)],
            )
            if self.config.tracker.path is not None
            else None
        )
        # the smallest call the cheapest model can take: below that, the day's budget is exhausted
        min_call = min(cost_usd(p, MIN_CALL_TOKENS, MIN_CALL_TOKENS) for p in self.prices.values())
        self.budget = Budget(
            self.config.budget,
            clock=self.clock,
            spent_source=self._tracker if self.config.budget.backend == "sqlite" else None,
            min_reservation_usd=min_call,
        )
        self.alerts = Alerts(self.config.alerts, clock=self.clock, http=self._http)
        self.alerts.attach(budget=self.budget, breakers=self.breakers)
        self._breaker_sync = BreakerSync.from_config(self.config, self.breakers, clock=self.clock)
        self._limiters: dict[str, anyio.CapacityLimiter] = {
            m.name: anyio.CapacityLimiter(m.max_concurrency) for m in self.config.models if m.max_concurrency
        }
        self._rate_limits: dict[str, RateLimiter] = {
            m.name: RateLimiter(
                requests_per_minute=m.requests_per_minute, tokens_per_minute=m.tokens_per_minute, clock=self.clock
            )
            for m in self.config.models
            if m.requests_per_minute or m.tokens_per_minute
        }
        self._meta_cache = MetaRouterCache(
            maxsize=self.config.meta_router_cache_size, ttl=self.config.meta_router_cache_ttl, clock=self.clock
        )
        classifier = self.config.classifier
        self._label_cache: TTLCache[Label] = TTLCache(
            maxsize=classifier.cache_size, ttl=classifier.cache_ttl, clock=self.clock
        )
        #: the llm / embeddings strategy's model (None: the rules alone)
        self._labeler: str | None = (
            classifier.model
            if classifier.strategy == "llm"
            else classifier.embedding_model
            if classifier.strategy == "embeddings"
            else None
        )
        self._index: EmbeddingIndex | None = None
        if classifier.strategy == "embeddings":
            from ._embeddings import EmbeddingIndex  # only the embeddings strategy needs it

            assert classifier.trained_model is not None
            assert self._labeler is not None
            embedder = self._clients[self._labeler]
            if not embedder.supports_embeddings:
                raise ConfigError(
                    f"{self._labeler!r} ({embedder.provider}) has no embeddings endpoint; use an OpenAI-format "
                    "provider (openai, google, ollama with api: openai, openai_compatible, ...)",
                    path="classifier.embedding_model",
                )
            # an index trained on another embeddings model would compare vectors of different spaces
            self._index = EmbeddingIndex.load(classifier.trained_model, model_id=embedder.config.model_id)
        self._preview_chars = self.config.tracker.prompt_preview_chars
        self._max_tries = self.config.retries.max_attempts
        self._open = False
        self._closed = False
        #: users' votes per task type and model: [up, down] (loaded from the tracker when it opens)
        self._votes: dict[str, dict[str, list[int]]] = {}
        #: per task type, the models the votes move to the back of chains (empty: nothing to do)
        self._demoted: dict[str, frozenset[str]] = {}
        self._sync: _SyncLoop | None = None  # the synchronous API's loop, started by the first route()
        self._sync_lock = threading.Lock()
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))

    # -- construction -----------------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | PathLike[str], **kwargs: Any) -> Self:
        """Build a router from a YAML file (a routeforge ``config.yaml`` loads unchanged)."""
        return cls(load_yaml(path), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> Self:
        """Build a router from a mapping with the same schema as the YAML file."""
        return cls(load_config(data), **kwargs)

    def __repr__(self) -> str:
        return f"Router(models={[m.name for m in self.config.models]}, open={self._open})"

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def aopen(self) -> None:
        """Open the HTTP session, the tracker and the budget backend. Idempotent.

        Open and close the router in the same task: the tracker's writer task belongs to it.

        Raises:
            RouterError: the router was closed (a Router is opened once), or the synchronous API
                (:meth:`route`) holds it open in its own event loop.
        """
        if self._closed:
            raise RouterError("this router was closed; a Router is opened once: build a new one")
        if self._open:
            sync = self._sync
            if sync is not None and threading.get_ident() != sync.thread_id:
                raise RouterError(
                    "the router is open in the event loop of the synchronous API (route()); "
                    "call router.close() before using it with `async with`"
                )
            return
        await self._http.aopen()
        try:
            if self._tracker is not None:
                await self._tracker.aopen()
                if self.config.feedback.rerank:
                    for task_type, model, up, down in await self._tracker.feedback_counts():
                        self._votes.setdefault(task_type, {})[model] = [up, down]
                    for task_type in self._votes:
                        self._update_demoted(task_type)
            await self.budget.aopen()
            await self.alerts.aopen()
            if self._breaker_sync is not None:
                await self._breaker_sync.aopen()
        except BaseException:
            await self._close_parts()
            raise
        self._open = True

    async def aclose(self) -> None:
        """Drain the tracker and close everything. Safe to call twice, and when the body raised or was cancelled."""
        if self._open:
            self._closed = True
        self._open = False
        await self._close_parts()

    async def _close_parts(self) -> None:
        # Each part finishes its own close even under cancellation (the tracker shields its drain itself; its
        # task group must not be wrapped in a new cancel scope here, or it would exit out of order).
        try:
            with anyio.CancelScope(shield=True):
                try:
                    if self._breaker_sync is not None:
                        await self._breaker_sync.aclose()
                finally:
                    try:
                        await self.alerts.aclose()
                    finally:
                        await self.budget.aclose()
        finally:
            try:
                if self._tracker is not None:
                    await self._tracker.aclose()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._http.aclose()

    async def __aenter__(self) -> Self:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_open", False):
            _warn(f"unclosed {self!r}: use `async with router:`", ResourceWarning, stacklevel=1)

    # -- inspection -----------------------------------------------------------------------------------------------

    def _classify(self, messages: Sequence[Mapping[str, Any]], params: _Params) -> Classification:
        return self._classifier.classify(messages, tools=bool(params.tools), response_format=params.response_format)

    def _plan(self, c: Classification, model: str, params: _Params) -> Plan:
        plan = self._planner.plan(
            c,
            model=model,
            blocked=self.breakers.snapshot(),
            budget_state=self.budget.state,
            max_tokens=params.max_tokens,
            tools=bool(params.tools),
        )
        if self._demoted and not plan.pinned:
            demoted = self._demoted.get(c.task_type)
            if demoted is not None:
                _demote(plan, demoted, c.task_type)
        return plan

    def classify(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        model: str = "auto",
        max_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> RoutingDecision:
        """Decide without calling any model: task, score, tier, chain, layer, reason and estimated costs.

        When the decision would ask the meta-router (layer 3), no call is made: the chain shown is the
        default fallback and the reason says so.
        """
        msgs = _normalise_messages(prompt, messages)
        params = _decision_params(max_tokens, tools, response_format)
        return self._decide(self._classify(msgs, params), model, params)

    async def aclassify(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        model: str = "auto",
        max_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> RoutingDecision:
        """:meth:`classify` with ``classifier.strategy`` applied, as :meth:`aroute` would route the prompt.

        With the ``llm`` or ``embeddings`` strategy this calls the classifier's model (charged to the budget,
        labels cached), never a model that would answer; with ``rules`` (the default) it is :meth:`classify`.

        .. versionadded:: 0.1.0
        """
        msgs = _normalise_messages(prompt, messages)
        params = _decision_params(max_tokens, tools, response_format)
        c = self._classify(msgs, params)
        if self._labeler is None or not (model in ("auto", "") or self._planner.is_profile(model)):
            return self._decide(c, model, params)
        if not self._open:
            raise RouterError("the router is not open: use `async with router:` (or `await router.aopen()`)")
        text = msgs[0]["content"] if messages is None else _last_user_text(msgs)
        labelled = await self._label(text, c, deadline_now() + self.config.request_timeout)
        return self._decide(labelled.classification, model, params, note=labelled.note)

    def _decide(self, c: Classification, model: str, params: _Params, *, note: str | None = None) -> RoutingDecision:
        max_tokens = params.max_tokens
        plan = self._plan(c, model, params)
        if note:
            plan.reason += f"; {note}"
        if plan.needs_meta:
            fallback = self._planner.plan_default(
                c, plan.reason, blocked=self.breakers.snapshot(), max_tokens=max_tokens, profile=plan.profile
            )
            plan = Plan(
                fallback.chain,
                "meta_router",
                plan.reason + f" (without a call: {fallback.reason})",
                plan.tier,
                fallback.skipped,
                plan.profile,
            )
        out_tokens = max_tokens or ESTIMATE_OUTPUT_TOKENS
        chosen = plan.chain[0] if plan.chain else None
        est = 0.0
        priciest, top = None, -1.0
        for alias, price in self.prices.items():
            cost = cost_usd(price, c.input_tokens, out_tokens)
            if alias == chosen:
                est = cost
            if cost > top:
                priciest, top = alias, cost
        # positional, in RoutingDecision's field order
        return RoutingDecision(
            c.task_type,
            c.complexity_score,
            plan.tier,
            c.complexity,
            c.category,
            c.confidence,
            plan.chain,
            plan.layer,
            plan.reason,
            c,
            c.input_tokens,
            chosen,
            est,
            max(top, 0.0),
            priciest,
            plan.skipped,
            plan.profile,
        )

    def logs(
        self,
        *,
        last_n: int = 20,
        model: str | None = None,
        since: Any = None,
        until: Any = None,
        status: str | None = None,
    ) -> LogQuery:
        """The newest tracker records, newest first: ``await router.logs(...)``, or iterate it in a script."""

        async def query() -> list[RequestRecord]:
            if self._tracker is None:
                return []
            await self._tracker.flush()  # read your own writes
            return await self._tracker.logs(last_n=last_n, model=model, since=since, until=until, status=status)

        return LogQuery(self, query)

    async def atrain_classifier(
        self,
        examples: Sequence[EvalExample],
        *,
        model: str | None = None,
        eval_split: float = 0.2,
        seed: int = 0,
        k: int | None = None,
    ) -> tuple[EmbeddingIndex, TrainReport]:
        """Fit the ``embeddings`` classifier strategy's index on labelled examples (mmrouter's ``train``).

        Every example with a complexity and a category is embedded once through ``model``'s embeddings
        endpoint (default ``classifier.embedding_model``), by :meth:`aembed`: charged to the budget, tracked and
        counted by the breakers like any call. ``eval_split`` of each (complexity, category) cell is
        held out and predicted, so the report's accuracy is measured on examples the index never saw. Save the
        index with ``index.save(directory)`` and set ``classifier.trained_model`` to it.

        Raises:
            ConfigError: no embeddings model given or configured, or an unknown alias.
            ProviderError: an embeddings call failed.

        .. versionadded:: 0.1.0
        """
        from ._embeddings import train_index

        alias = model or self.config.classifier.embedding_model
        if alias is None:
            raise ConfigError("no embeddings model: pass model= or set classifier.embedding_model")
        if alias not in self._clients:
            raise ConfigError(f"unknown model {alias!r}; known: {sorted(self._clients)}")
        if not self._open:
            raise RouterError("the router is not open: use `async with router:` (or `await router.aopen()`)")
        return await train_index(
            _RouterEmbedder(self, alias), examples, eval_split=eval_split, seed=seed, k=k or self.config.classifier.k
        )

    async def aembed(
        self,
        input: str | Sequence[str],
        *,
        model: str,
        dimensions: int | None = None,
        timeout: float | None = None,
    ) -> EmbeddingReply:
        """Embed texts with one configured model (no routing): its breakers, keys, budget and tracker apply.

        The call reserves its cost from the daily budget and settles it, counts for or against the model's
        breakers like a chat call, and is tracked as one request of task type ``embeddings``.

        Raises:
            ConfigError: an unknown alias, or a model whose provider has no embeddings endpoint.
            CircuitOpen: the model's breaker (or its provider's) is open.
            BudgetExceeded: the day's budget cannot cover it.
            ProviderError: the call failed.

        .. versionadded:: 0.1.0
        """
        if not self._open:
            raise RouterError("the router is not open: use `async with router:` (or `await router.aopen()`)")
        client = self._clients.get(model)
        if client is None:
            raise ConfigError(f"unknown model {model!r}; known: {sorted(self._clients)}")
        if not client.supports_embeddings:
            raise ConfigError(f"{model!r} ({client.provider}) has no embeddings endpoint")
        texts = [input] if isinstance(input, str) else list(input)
        price = self.prices[model]
        estimate = sum(estimate_tokens(t) for t in texts)
        admission = self.breakers.admit(model)
        if not admission.admitted:
            raise CircuitOpen(admission.reason)
        started = self.clock.monotonic()
        rid = os.urandom(16).hex()
        reply: EmbeddingReply | None = None
        error: BaseException | None = None
        cost = 0.0
        try:
            # a tenth over the estimate: tokenizers differ, and the reservation must cover the real count
            reservation = await self.budget.reserve(cost_usd(price, estimate + estimate // 10 + 8, 0), model=model)
        except BaseException as exc:
            self.breakers.record(admission, exc)  # the budget said no: ignored by the breakers, its trial freed
            raise
        try:
            reply = await client.embed(texts, timeout=timeout or client.config.timeout, dimensions=dimensions)
            cost = cost_usd(price, reply.input_tokens, 0)
        except BaseException as exc:
            error = exc
            self.breakers.record(admission, exc, final=True)  # no retry here: a 429 counts
            await self.budget.release(reservation)
            raise
        else:
            self.breakers.record(admission, None)
            await self.budget.settle(reservation, cost)
        finally:
            await self._track_embedding(rid, model, client.provider, texts, reply, cost, started, error)
        return reply

    async def _track_embedding(
        self,
        rid: str,
        alias: str,
        provider: str,
        texts: list[str],
        reply: EmbeddingReply | None,
        cost: float,
        started: float,
        error: BaseException | None,
    ) -> None:
        status = (
            "ok" if error is None else "cancelled" if isinstance(error, anyio.get_cancelled_exc_class()) else "error"
        )
        self.alerts.observe(status, cost_usd=cost)
        if self._tracker is None:
            return
        first = texts[0] if texts else ""
        n = self._preview_chars
        tokens = reply.input_tokens if reply is not None else 0
        record = RequestRecord(
            rid,
            self.clock.time(),
            status,  # type: ignore[arg-type]
            first[:n] if n > 0 else "",
            hashlib.blake2b("\x00".join(texts).encode(), digest_size=16).hexdigest(),
            "embeddings",
            "simple",
            "simple",
            "factual",
            0.0,
            "pinned",
            f"embeddings: {len(texts)} input(s)",
            alias if error is None else None,
            provider,
            tokens,
            0,
            (self.clock.monotonic() - started) * 1000,
            cost,
            [],
            type(error).__name__ if error is not None else None,
            None,
            True,
            bool(reply.estimated) if reply is not None else False,
        )
        try:
            await self._tracker.record(record)
        except Exception:  # tracking must never fail a request
            logger.exception("asyncrouter: could not record embeddings request %s", rid)

    async def acheck_keys(self, models: Sequence[str] | None = None) -> list[KeyCheck]:
        """Check every configured key (of ``models``, default all): each provider lists its models with it.

        Models on the same endpoint with the same key share one call. No chat request is sent, nothing is
        charged, and a refused key stays in rotation: this is a diagnosis (``asyncrouter models --check``,
        ``asyncrouter init --check``).

        Raises:
            ConfigError: an unknown alias in ``models``.

        .. versionadded:: 0.1.0
        """
        if not self._open:
            raise RouterError("the router is not open: use `async with router:` (or `await router.aopen()`)")
        aliases = list(models) if models is not None else list(self._clients)
        unknown = [a for a in aliases if a not in self._clients]
        if unknown:
            raise ConfigError(f"unknown model(s) {unknown}; known: {sorted(self._clients)}")
        seen: dict[tuple[str, str, str | None], list[str] | str] = {}
        out: list[KeyCheck] = []
        for alias in aliases:  # one at a time: a handful of calls, and answers shared through `seen`
            out.extend(await self._clients[alias].check_keys(seen=seen))
        return out

    async def afeedback(
        self, request_id: str, rating: str | int | bool, *, comment: str | None = None
    ) -> FeedbackRecord:
        """Record a user's thumbs up or down on a tracked reply (mmrouter's feedback).

        With ``feedback.rerank`` on, a model whose replies users keep rejecting for a task type (at least
        ``feedback.min_votes`` votes, a smoothed share of "up" below ``feedback.demote_below``) moves behind the
        other models of that task type's chains, here at once and after a restart (the votes are in the
        tracker). A model is only ever moved back, never ahead of a cheaper or a capable one.

        Args:
            request_id: the reply's ``meta.request_id``.
            rating: ``"up"`` / ``"down"``, ``1`` / ``-1``, or ``True`` / ``False``.
            comment: free text kept with the vote (secrets are scrubbed like every tracked text).

        Raises:
            ValueError: a rating that is neither up nor down.
            RouterError: tracking is off, or no tracked request has this id.
        """
        value = _rating(rating)
        if self._tracker is None:
            raise RouterError("feedback needs the tracker: set tracker.path")
        record = await self._tracker.add_feedback(request_id, value, comment=comment)
        if record.model:
            counts = self._votes.setdefault(record.task_type, {}).setdefault(record.model, [0, 0])
            counts[0 if value > 0 else 1] += 1
            self._update_demoted(record.task_type)
        return record

    def _update_demoted(self, task_type: str) -> None:
        fb = self.config.feedback
        if not fb.rerank:
            return
        demoted = frozenset(
            model
            for model, (up, down) in self._votes.get(task_type, {}).items()
            if up + down >= fb.min_votes and (up + 1) / (up + down + 2) < fb.demote_below
        )
        if demoted:
            self._demoted[task_type] = demoted
        else:
            self._demoted.pop(task_type, None)

    async def stats(self, *, since: Any = None, until: Any = None, baseline: str | None = None) -> Stats:
        """Totals, per-model/task/tier/layer breakdowns, latency percentiles and savings vs a baseline model.

        Args:
            baseline: the alias to compare against; defaults to the most expensive configured model.
        """
        if self._tracker is None:
            raise RouterError("tracking is disabled (tracker.path is null)")
        alias = baseline or max(self.prices, key=lambda a: self.prices[a].input_per_1k + self.prices[a].output_per_1k)
        if alias not in self.prices:
            raise RouterError(f"unknown baseline model {alias!r}")
        p = self.prices[alias]
        await self._tracker.flush()
        return await self._tracker.stats(since=since, until=until, baseline=(alias, p.input_per_1k, p.output_per_1k))

    @property
    def is_open(self) -> bool:
        """Whether the router is open (by ``async with``, :meth:`aopen` or the synchronous API)."""
        return self._open

    @property
    def model_strengths(self) -> Mapping[str, int]:
        """Each model's strength: the highest tier rank (0 simple .. 3 reasoning) the planner trusts it with."""
        return MappingProxyType(self._planner.strength)

    @property
    def tracker(self) -> Tracker | None:
        return self._tracker

    # -- the request path ----------------------------------------------------------------------------------------

    def _params(self, kw: dict[str, Any]) -> _Params:
        extra = dict(kw.pop("extra_body", None) or {})
        params = _Params(
            max_tokens=kw.pop("max_tokens", None),
            temperature=kw.pop("temperature", None),
            top_p=kw.pop("top_p", None),
            stop=kw.pop("stop", None),
            tools=kw.pop("tools", None),
            tool_choice=kw.pop("tool_choice", None),
            response_format=kw.pop("response_format", None),
            seed=kw.pop("seed", None),
            user=kw.pop("user", None),
            extra=extra,
        )
        if isinstance(params.stop, str):
            params.stop = [params.stop]  # type: ignore[unreachable]  # callers pass a bare string too
        if kw:
            raise TypeError(
                f"unexpected keyword argument(s): {', '.join(sorted(kw))} "
                "(use extra_body= for provider-specific fields)"
            )
        if params.max_tokens is not None and params.max_tokens <= 0:
            raise ValueError("max_tokens must be positive")
        return params

    async def _prepare(
        self,
        prompt: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        model: str,
        timeout: float | None,
        kw: dict[str, Any],
    ) -> _Ctx:
        if not self._open:
            raise RouterError("the router is not open: use `async with router:` (or `await router.aopen()`)")
        msgs = _normalise_messages(prompt, messages)
        if kw:
            request_id = kw.pop("request_id", None) or os.urandom(16).hex()
            params = self._params(kw)
        else:  # the common call: a prompt and nothing else
            request_id = os.urandom(16).hex()
            params = _NO_PARAMS
        c = self._classify(msgs, params)
        started = self.clock.monotonic()
        deadline = deadline_now() + (timeout if timeout is not None else self.config.request_timeout)
        self._reject_if_exhausted()
        if messages is None:  # a bare prompt: one user message, no system prompt
            text, system = msgs[0]["content"], None
        else:
            text, system = _last_user_text(msgs), _system_text(msgs)
        labelled: _Labelled | None = None
        if self._labeler is not None and (model in ("auto", "") or self._planner.is_profile(model)):
            # the llm / embeddings classifier relabels the prompt before it is planned
            labelled = await self._label(text, c, deadline)
            c = labelled.classification
        plan = self._plan(c, model, params)
        ctx = _Ctx(str(request_id), msgs, text, system, params, c, plan, started, deadline, c.task_type)
        if labelled is not None:
            plan.reason += f"; {labelled.note}"
            ctx.label_cost = labelled.cost
            ctx.meta_in += labelled.input_tokens
            ctx.meta_out += labelled.output_tokens
        if plan.needs_meta:
            ctx.plan = await self._meta_route(ctx)
        if ctx.plan.skipped:
            # models the planner left out (open breaker, context window) show up as skipped attempts
            ctx.plan.reason += "; skipped " + ", ".join(f"{a} ({r})" for a, r in ctx.plan.skipped)
            ctx.attempts.extend(Attempt(a, self._clients[a].provider, "skipped", r) for a, r in ctx.plan.skipped)
        return ctx

    def _reject_if_exhausted(self) -> None:
        if self.budget.state == "exhausted" and self.config.budget.on_exhausted == "reject":
            st = self.budget.status()
            raise BudgetExceeded(
                f"daily budget exhausted: spent ${st.spent:.4f} of ${st.limit:.2f}",
                spent=st.spent,
                reserved=st.reserved,
                limit=st.limit or 0.0,
            )

    async def _label(self, prompt: str, c: Classification, deadline: float) -> _Labelled:
        """Relabel ``c`` with the llm or embeddings strategy; on any failure the rules' labels stand.

        The call is charged to the budget (reserved, then settled at its real cost) and bounded by
        ``classifier.timeout`` and the request's deadline; a prompt that addresses the router is not sent.
        """
        cfg = self.config.classifier
        strategy = cfg.strategy
        alias = self._labeler
        assert alias is not None
        if looks_like_injection(prompt):
            return _Labelled(c, f"{strategy} classifier skipped: the prompt addresses the router (possible injection)")
        key = prompt_key(prompt, strategy)
        cached = self._label_cache.get(key)
        if cached is not None:
            return _Labelled(relabel(c, cached), f"{_label_note(cached)}, cached")
        blocked = self.breakers.snapshot().get(alias)
        if blocked is not None:
            return _Labelled(c, f"{strategy} classifier skipped: {alias} {blocked}; the rules' labels stand")
        client = self._clients[alias]
        price = self.prices[alias]
        llm = strategy == "llm"
        worst = cost_usd(price, c.input_tokens + (_LABEL_PROMPT_TOKENS if llm else 0), _LABEL_MAX_TOKENS if llm else 0)
        try:
            reservation = await self.budget.reserve(worst, model=alias)
        except BudgetExceeded as exc:
            return _Labelled(c, f"{strategy} classifier skipped (budget: {exc}); the rules' labels stand")
        out = _Labelled(c, "")
        try:
            with anyio.fail_after(max(0.001, min(cfg.timeout, deadline - deadline_now()))):
                if llm:
                    reply = await client.complete(
                        ChatRequest(
                            model_id=client.config.model_id,
                            messages=build_label_messages(prompt),
                            max_tokens=_LABEL_MAX_TOKENS,
                            temperature=0.0,
                            response_format={"type": "json_object"} if client.provider != "anthropic" else None,
                        )
                    )
                    out.input_tokens, out.output_tokens = reply.usage.input_tokens, reply.usage.output_tokens
                    out.cost = usage_cost_usd(price, reply.usage)
                    label = parse_label_reply(reply.content)
                else:
                    assert self._index is not None
                    embedded = await client.embed([prompt])
                    out.input_tokens = embedded.input_tokens
                    out.cost = cost_usd(price, embedded.input_tokens, 0)
                    vote = self._index.predict(embedded.vectors[0], k=cfg.k)
                    label = Label(vote.complexity, vote.category, vote.confidence, "embeddings")  # type: ignore[arg-type]
        except (ProviderError, ValueError, TimeoutError) as exc:
            await self.budget.settle(reservation, out.cost)
            why = "timed out" if isinstance(exc, TimeoutError) and not isinstance(exc, ProviderError) else str(exc)
            out.note = f"{strategy} classifier failed ({type(exc).__name__}: {why}); the rules' labels stand"
            return out
        except BaseException:
            await self.budget.release(reservation)
            raise
        await self.budget.settle(reservation, out.cost)
        self._label_cache.put(key, label)
        out.classification = relabel(c, label)
        out.note = _label_note(label)
        return out

    async def _meta_route(self, ctx: _Ctx) -> Plan:
        c, plan = ctx.classification, ctx.plan
        blocked = self.breakers.snapshot()
        prompt = ctx.prompt

        def default(why: str) -> Plan:
            return self._planner.plan_default(
                c, plan.reason + why, blocked=blocked, max_tokens=ctx.params.max_tokens, profile=plan.profile
            )

        def chosen(model: str, why: str) -> Plan:
            return self._planner.plan_meta(
                c, model, why, blocked=blocked, max_tokens=ctx.params.max_tokens, profile=plan.profile
            )

        if looks_like_injection(prompt):
            return default("; meta-router skipped: the prompt addresses the router (possible injection)")
        key = prompt_key(prompt, plan.profile)
        cached = self._meta_cache.get(key)
        if cached is not None:
            ctx.task_type = cached.task_type if cached.task_type != "general" else ctx.task_type
            return chosen(cached.model, f"{cached.reason} (cached)")
        alias = self.config.meta_router_model
        assert alias is not None
        client = self._clients[alias]
        request = ChatRequest(
            model_id=client.config.model_id,
            messages=build_meta_messages(prompt, self.config.models),
            max_tokens=_META_MAX_TOKENS,
            temperature=0.0,
            response_format={"type": "json_object"} if client.provider != "anthropic" else None,
        )
        price = self.prices[alias]
        # charged like any call: its worst case reserved first, its real cost settled
        worst = cost_usd(price, estimate_messages_tokens(request.messages), _META_MAX_TOKENS)
        try:
            reservation = await self.budget.reserve(worst, model=alias)
        except BudgetExceeded as exc:
            return default(f"; meta-router skipped (budget: {exc})")
        cost = 0.0
        try:
            with anyio.fail_after(max(0.01, min(client.config.timeout, ctx.remaining()))):
                reply = await client.complete(request)
            cost = usage_cost_usd(price, reply.usage)
            ctx.meta_cost += cost
            ctx.meta_in += reply.usage.input_tokens
            ctx.meta_out += reply.usage.output_tokens
            choice = parse_meta_reply(reply.content, self._planner.models)
        except (ProviderError, ValueError, TimeoutError) as exc:
            await self.budget.settle(reservation, cost)
            why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, TimeoutError) else "timed out"
            return default(f"; meta-router failed ({why})")
        except BaseException:
            await self.budget.release(reservation)
            raise
        await self.budget.settle(reservation, cost)
        self._meta_cache.put(key, choice)
        if choice.task_type != "general":
            ctx.task_type = choice.task_type
        return chosen(choice.model, choice.reason or "no reason given")

    def _worst_case(self, alias: str, ctx: _Ctx) -> float:
        m = self._clients[alias].config
        out = ctx.params.max_tokens or m.max_output_tokens or self.config.budget.default_max_output_tokens
        return cost_usd(self.prices[alias], ctx.classification.input_tokens, out)

    def _gate_input(self, ctx: _Ctx, reply: ChatResponse) -> GateInput:
        params = ctx.params
        return GateInput(
            ctx.prompt,
            ctx.task_type,
            reply.content,
            reply.finish_reason,
            reply.tool_calls,
            _tools_expected(params.tools, params.tool_choice) if params.tools else False,
            params.response_format,
            ctx.system,
        )

    def _backoff(self, retry: int, error: ProviderError) -> float:
        r = self.config.retries
        cap = min(r.backoff_max, r.backoff_base * (2**retry))
        wait = self._rng.uniform(0.0, cap)  # full jitter
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait

    async def _call_model(self, alias: str, ctx: _Ctx) -> tuple[ChatResponse | None, Attempt]:
        """Try one model with retries. Returns (reply, attempt); reply is None when every try failed."""
        client = self._clients[alias]
        cfg = client.config
        price = self.prices[alias]
        attempt = Attempt(alias, cfg.provider, "error")
        t0 = self.clock.monotonic()
        last_error: ProviderError | None = None
        max_tries = self._max_tries
        retry = 0
        for retry in range(max_tries):
            remaining = ctx.remaining()
            if remaining <= 0:
                last_error = ProviderTimeout("request deadline exceeded", provider=cfg.provider, model=alias)
                break
            reservation: Reservation | None = None
            try:
                reservation = await self.budget.reserve(self._worst_case(alias, ctx), model=alias)
            except BudgetExceeded as exc:
                attempt.outcome = "skipped"
                attempt.reason = f"budget: {exc}"
                attempt.latency_ms = (self.clock.monotonic() - t0) * 1000
                ctx.errors.append(exc)
                return None, attempt
            by_deadline = remaining < cfg.timeout
            try:
                request = ctx.params.chat_request(cfg.model_id, ctx.messages)
                rate = self._rate_limits.get(alias)
                if rate is not None:
                    with anyio.fail_after(max(0.001, remaining)):
                        await rate.acquire(ctx.classification.input_tokens + (ctx.params.max_tokens or 0))
                    remaining = ctx.remaining()
                    by_deadline = remaining < cfg.timeout
                attempt_timeout = max(0.001, min(cfg.timeout, remaining))
                limiter = self._limiters.get(alias)
                if limiter is None:
                    # aiohttp's own timeout bounds the call (and cancels it): no cancel scope on the hot path
                    reply = await client.complete(request, timeout=attempt_timeout)
                else:
                    with anyio.fail_after(attempt_timeout):
                        async with limiter:
                            reply = await client.complete(request, timeout=attempt_timeout)
            except TimeoutError as exc:
                # Budget.release completes even when the caller is being cancelled.
                await self.budget.release(reservation)
                if isinstance(exc, ProviderError):
                    last_error = exc
                else:
                    last_error = ProviderTimeout(
                        f"no reply within {attempt_timeout:.2f}s", provider=cfg.provider, model=alias
                    )
                if by_deadline:
                    # the caller's deadline says nothing about the provider's health: not a breaker failure
                    last_error.message += " (the request deadline)"
                    last_error.counts_as_failure = False
            except ProviderError as exc:
                await self.budget.release(reservation)
                last_error = exc
            except BaseException:
                await self.budget.release(reservation)
                raise
            else:
                usage = reply.usage
                cost = usage_cost_usd(price, usage)
                await self.budget.settle(reservation, cost)
                # failed tries left no usage behind, so the successful one's figures are the attempt's
                attempt.input_tokens = usage.input_tokens
                attempt.output_tokens = usage.output_tokens
                attempt.tokens_estimated = usage.estimated
                attempt.cost_usd = cost
                attempt.retries = retry
                attempt.outcome = "ok"
                attempt.latency_ms = (self.clock.monotonic() - t0) * 1000
                return reply, attempt
            # a failed try: retry when it can help and the deadline allows
            assert last_error is not None
            if not last_error.retryable or isinstance(last_error, ContextLengthExceeded) or retry == max_tries - 1:
                break
            wait = self._backoff(retry, last_error)
            if wait >= ctx.remaining():
                break
            await self.clock.sleep(wait)
        assert last_error is not None
        attempt.retries = max(0, min(max_tries - 1, retry))
        attempt.outcome = "error"
        attempt.error_type = type(last_error).__name__
        attempt.status_code = last_error.status_code
        attempt.reason = f"{type(last_error).__name__}: {last_error}"
        attempt.latency_ms = (self.clock.monotonic() - t0) * 1000
        ctx.errors.append(last_error)
        return None, attempt

    async def _cascade(self, ctx: _Ctx) -> tuple[ChatResponse, Attempt, GateResult]:
        cascade = self.config.cascade
        chain = ctx.plan.chain if cascade.max_models is None else ctx.plan.chain[: cascade.max_models]
        gate_escalates = cascade.enabled and not ctx.plan.pinned
        best: tuple[ChatResponse, Attempt, GateResult] | None = None
        min_context: int | None = None
        for alias in chain:
            cw = self._clients[alias].config.context_window
            if min_context is not None and cw is not None and cw <= min_context:
                ctx.attempts.append(
                    Attempt(
                        alias,
                        self._clients[alias].provider,
                        "skipped",
                        f"context window {cw} not larger than the one that overflowed",
                    )
                )
                continue
            admission = self.breakers.admit(alias)
            if not admission.admitted:
                ctx.attempts.append(Attempt(alias, self._clients[alias].provider, "skipped", admission.reason))
                continue
            try:
                reply, attempt = await self._call_model(alias, ctx)
            except BaseException as exc:
                self.breakers.record(admission, exc)
                raise
            ctx.attempts.append(attempt)
            if reply is None:
                err = ctx.errors[-1] if ctx.errors else None
                self.breakers.record(admission, err, final=True)
                if isinstance(err, ContextLengthExceeded):
                    min_context = cw or ctx.classification.input_tokens
                continue
            self.breakers.record(admission, None)
            result = await self._gates.acheck(self._gate_input(ctx, reply))
            attempt.gate_score = result.score
            if result.passed:
                return reply, attempt, result
            attempt.outcome = "gate_failed"
            attempt.reason = result.reason
            if best is None or result.score > best[2].score:
                best = (reply, attempt, result)
            if not gate_escalates:
                break
        if best is not None:
            if self.config.quality.on_all_failed == "raise":
                raise QualityGateFailed(
                    "every reply failed the quality gates: "
                    + "; ".join(f"{a.model}: {a.reason}" for a in ctx.attempts),
                    attempts=ctx.attempts,
                )
            return best
        raise self._no_reply_error(ctx)

    def _no_reply_error(self, ctx: _Ctx) -> RouterError:
        tried = [a for a in ctx.attempts if a.outcome == "error"]
        summary = "; ".join(f"{a.model}: {a.reason}" for a in ctx.attempts) or "; ".join(
            f"{a}: {r}" for a, r in ctx.plan.skipped
        )
        if tried:
            return AllProvidersFailed(f"every model failed ({summary})", errors=ctx.errors)
        if ctx.errors and all(isinstance(e, BudgetExceeded) for e in ctx.errors):
            first = ctx.errors[0]
            assert isinstance(first, BudgetExceeded)
            return BudgetExceeded(
                f"daily budget cannot cover this request ({summary})",
                spent=first.spent,
                reserved=first.reserved,
                limit=first.limit,
            )
        skipped_reasons = [a.reason for a in ctx.attempts] + [r for _, r in ctx.plan.skipped]
        if skipped_reasons and all("breaker" in r for r in skipped_reasons):
            return CircuitOpen(f"no model available: {summary}")
        return NoRouteError(f"no model can take this request: {summary or ctx.plan.reason}")

    def _meta(
        self, ctx: _Ctx, reply: ChatResponse | None, accepted: Attempt | None, gate: GateResult | None
    ) -> ResponseMeta:
        c = ctx.classification
        plan = ctx.plan
        attempts = ctx.attempts
        total_in, total_out, cost, estimated = ctx.meta_in, ctx.meta_out, ctx.meta_cost + ctx.label_cost, False
        for a in attempts:
            total_in += a.input_tokens
            total_out += a.output_tokens
            cost += a.cost_usd
            estimated = estimated or a.tokens_estimated
        # positional, in ResponseMeta's field order (the hot path: this runs once per request)
        return ResponseMeta(
            ctx.request_id,
            accepted.model if accepted else "",
            accepted.provider if accepted else "",
            plan.layer,
            plan.reason,
            ctx.task_type,
            c.complexity_score,
            plan.tier,
            c.complexity,
            c.category,
            c.confidence,
            plan.profile,
            total_in,
            total_out,
            estimated,
            (self.clock.monotonic() - ctx.started) * 1000,
            cost,
            attempts,
            gate.passed if gate is not None else False,
            reply.finish_reason if reply else None,
            reply.request_id if reply else None,
            ctx.meta_cost,
            ctx.label_cost,
            reply.stop_sequence if reply else None,
        )

    def _record(self, ctx: _Ctx, meta: ResponseMeta, status: str, error: BaseException | None) -> RequestRecord:
        prompt = ctx.prompt
        n = self._preview_chars
        # positional, in RequestRecord's field order (the hot path: this runs once per request)
        return RequestRecord(
            ctx.request_id,
            self.clock.time(),
            status,  # type: ignore[arg-type]
            prompt[:n] if n > 0 else "",
            hashlib.blake2b(prompt.encode(), digest_size=16).hexdigest(),
            meta.task_type,
            meta.tier,
            meta.complexity,
            meta.category,
            meta.complexity_score,
            meta.routing_layer,
            meta.routing_reason,
            meta.model or None,
            meta.provider or None,
            meta.input_tokens,
            meta.output_tokens,
            meta.latency_ms,
            meta.estimated_cost_usd,
            list(meta.attempts),
            type(error).__name__ if error is not None else None,
            meta.profile,
            meta.quality_passed,
            meta.tokens_estimated,
        )

    async def _track(self, ctx: _Ctx, meta: ResponseMeta, status: str, error: BaseException | None) -> None:
        self.alerts.observe(status, cost_usd=meta.estimated_cost_usd)
        if self._tracker is None:
            return
        # Tracker.record is cancellation-safe itself (it enqueues without suspending while the queue has room,
        # and shields the wait when it is full), so no cancel scope is needed here on the hot path.
        try:
            await self._tracker.record(self._record(ctx, meta, status, error))
        except Exception:  # tracking must never fail a request
            logger.exception("asyncrouter: could not record request %s", ctx.request_id)

    async def aroute(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        model: str = "auto",
        timeout: float | None = None,
        **params: Any,
    ) -> Response:
        """Route one prompt (or chat) and return the accepted reply with its :class:`ResponseMeta`.

        Args:
            prompt: the user's text; or pass ``messages=`` (OpenAI-style chat messages) instead.
            model: ``"auto"``, a profile (``eco``, ``premium``, ``free``, ``agentic`` or one from the config), or a
                model alias to pin (no routing, no cascade; the model's ``fallbacks`` still apply on errors).
            timeout: deadline for the whole request in seconds, backoff included (default:
                ``config.request_timeout``).
            **params: ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``tools``, ``tool_choice``,
                ``response_format``, ``seed``, ``user``, ``extra_body``; ``request_id`` sets the id used in
                ``meta.request_id`` and the tracker (default: a random UUID).

        Raises:
            AllProvidersFailed: every model in the chain errored (``.errors`` holds each error).
            QualityGateFailed: every reply failed the gates and ``quality.on_all_failed`` is ``raise``.
            BudgetExceeded: the daily cap cannot cover the request.
            CircuitOpen / NoRouteError: no model could be tried.
        """
        ctx = await self._prepare(prompt, messages, model, timeout, params)
        try:
            reply, accepted, gate = await self._cascade(ctx)
        except BaseException as exc:
            status = "cancelled" if _stopped(exc) else "error"
            await self._track(ctx, self._meta(ctx, None, None, None), status, exc)
            raise
        meta = self._meta(ctx, reply, accepted, gate)
        await self._track(ctx, meta, "ok", None)
        return Response(content=reply.content, meta=meta, tool_calls=reply.tool_calls)

    async def aroute_many(
        self,
        items: Iterable[BatchItem],
        *,
        concurrency: int = DEFAULT_BATCH_CONCURRENCY,
        return_exceptions: bool = True,
        on_progress: ProgressCallback | None = None,
        **defaults: Any,
    ) -> list[Response | BaseException]:
        """Route many prompts concurrently; results are aligned with *items*.

        Args:
            items: prompt strings, or mappings of :meth:`aroute` arguments (``{"prompt": ..., "max_tokens": 50}``).
            concurrency: requests in flight at once (each model's ``max_concurrency`` also applies).
            return_exceptions: a failed item holds its exception (default); with False the first failure
                cancels the rest and is raised.
            on_progress: ``on_progress(done, total)`` after each item (may be async).
            **defaults: :meth:`aroute` arguments applied to every item (an item's own keys win).
        """
        seq = list(items)
        results: list[Response | BaseException | None] = [None] * len(seq)
        async for index, result in self.astream_many(
            seq, concurrency=concurrency, return_exceptions=return_exceptions, on_progress=on_progress, **defaults
        ):
            results[index] = result
        return [r for r in results if r is not None]

    def astream_many(
        self,
        items: Iterable[BatchItem],
        *,
        concurrency: int = DEFAULT_BATCH_CONCURRENCY,
        return_exceptions: bool = True,
        on_progress: ProgressCallback | None = None,
        **defaults: Any,
    ) -> BatchStream:
        """Yield ``(index, result)`` as items finish, with bounded memory: items are pulled lazily, so a
        generator of 100k prompts never has more than *concurrency* requests or results alive at once.

        Use ``async with router.astream_many(...) as results: async for i, r in results: ...`` to cancel the
        rest cleanly when you stop early.
        """
        return BatchStream(
            iter_batch(
                self.aroute,
                items,
                concurrency=concurrency,
                return_exceptions=return_exceptions,
                on_progress=on_progress,
                defaults=defaults,
            )
        )

    def route(self, prompt: str | None = None, **kwargs: Any) -> Response:
        """Synchronous :meth:`aroute` for scripts and threads without an event loop.

        The first call opens the router in an event loop of its own, on a background thread; later calls
        (from any thread, concurrently too) reuse it, with its HTTP connections and tracker. :meth:`close`
        (or leaving ``with router:``) closes it and writes the tracker's last records; so does the
        interpreter's exit, for a script that never closes it.

        Raises:
            RuntimeError: called from inside a running event loop; use ``await router.aroute(...)`` there.
            RouterError: the router is open in another event loop (``async with router`` somewhere else).
        """
        return self._run_sync(functools.partial(self.aroute, prompt, **kwargs))

    def _run_sync(self, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            anyio.get_current_task()
        except RuntimeError:
            pass  # no event loop running here: the sync API is the right one
        else:
            raise RuntimeError(
                "this is the router's synchronous API; inside async code use `await router.aroute(...)` "
                "(or `await router.logs(...)`)"
            )
        return self._sync_loop().portal.call(call)

    def _sync_loop(self) -> _SyncLoop:
        with self._sync_lock:
            if self._sync is None:
                if self._open:
                    raise RouterError(
                        "the router is open in an event loop (`async with router`): "
                        "call `await router.aroute(...)` there, or close it before using route()"
                    )
                self._sync = _SyncLoop(self)
                atexit.register(self._at_exit)
            return self._sync

    def close(self) -> None:
        """Close what :meth:`route` opened: drain the tracker, close the HTTP session, stop the loop's thread.

        Safe to call twice, and when :meth:`route` was never called. Like ``async with``, it is final: a Router
        is opened once.
        """
        with self._sync_lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            atexit.unregister(self._at_exit)
            sync.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def astream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        model: str = "auto",
        timeout: float | None = None,
        buffer: bool | None = None,
        **params: Any,
    ) -> RouteStream:
        """Stream the reply as text deltas: ``async for delta in router.astream(...)``.

        The stream falls back to the next model if it fails before its first delta reaches you; an error after
        that raises a typed error and never replays text. ``stream.response`` (content + meta) is set when the
        stream ends. With ``buffer=True`` (or ``quality.buffer_streams``) the whole reply is gated before any
        text is released, so the cascade can escalate exactly as :meth:`aroute` does.
        """
        buffered = self.config.quality.buffer_streams if buffer is None else buffer
        return RouteStream(self._stream(prompt, messages, model, timeout, buffered, params))

    async def _stream(
        self,
        prompt: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        model: str,
        timeout: float | None,
        buffered: bool,
        params: dict[str, Any],
    ) -> AsyncIterator[str | Response]:
        ctx = await self._prepare(prompt, messages, model, timeout, params)
        if buffered:
            try:
                buffered_reply = await self._cascade(ctx)
            except BaseException as exc:
                status = "cancelled" if _stopped(exc) else "error"
                await self._track(ctx, self._meta(ctx, None, None, None), status, exc)
                raise
            meta = self._meta(ctx, *buffered_reply)
            await self._track(ctx, meta, "ok", None)
            content = buffered_reply[0].content
            if content:
                yield content
            yield Response(content=content, meta=meta, tool_calls=buffered_reply[0].tool_calls)
            return
        delivered = False
        final: ChatResponse | None = None
        accepted: Attempt | None = None
        gate: GateResult | None = None
        try:
            for alias in ctx.plan.chain:
                client = self._clients[alias]
                cfg = client.config
                admission = self.breakers.admit(alias)
                if not admission.admitted:
                    ctx.attempts.append(Attempt(alias, cfg.provider, "skipped", admission.reason))
                    continue
                attempt = Attempt(alias, cfg.provider, "error")
                t0 = self.clock.monotonic()
                try:
                    reservation = await self.budget.reserve(self._worst_case(alias, ctx), model=alias)
                except BudgetExceeded as exc:
                    self.breakers.record(admission, exc)
                    attempt.outcome, attempt.reason = "skipped", f"budget: {exc}"
                    ctx.attempts.append(attempt)
                    ctx.errors.append(exc)
                    continue
                ctx.attempts.append(attempt)
                try:
                    request = ctx.params.chat_request(cfg.model_id, ctx.messages)
                    # No cancel scope may stay open across a yield (the consumer's code runs in between, and a
                    # stream dropped without aclose() is finalised in another task): the deadline bounds each
                    # read through aiohttp's timeout and is checked between chunks instead.
                    remaining = ctx.remaining()
                    if remaining <= 0:
                        raise TimeoutError
                    async for event in client.stream(request, timeout=max(0.001, min(cfg.timeout, remaining))):
                        if isinstance(event, ChatDelta):
                            delivered = True
                            yield event.text
                            if ctx.remaining() <= 0:
                                raise TimeoutError
                        else:
                            final = event
                except BaseException as exc:
                    with anyio.CancelScope(shield=True):
                        await self.budget.release(reservation)
                    err = exc
                    if isinstance(exc, TimeoutError) and not isinstance(exc, ProviderError):
                        err = ProviderTimeout("request deadline exceeded", provider=cfg.provider, model=alias)
                        err.counts_as_failure = False
                    self.breakers.record(admission, err, final=True)
                    attempt.latency_ms = (self.clock.monotonic() - t0) * 1000
                    if isinstance(err, ProviderError) and not delivered:
                        attempt.error_type, attempt.status_code = type(err).__name__, err.status_code
                        attempt.reason = f"{type(err).__name__}: {err}"
                        ctx.errors.append(err)
                        continue  # nothing reached the caller yet: fall back to the next model
                    attempt.outcome = "cancelled" if _stopped(exc) else "error"
                    attempt.reason = f"{type(err).__name__}: {err}"
                    attempt.error_type = type(err).__name__
                    if err is not exc:
                        raise err from exc
                    raise
                assert final is not None
                cost = usage_cost_usd(self.prices[alias], final.usage)
                await self.budget.settle(reservation, cost)
                self.breakers.record(admission, None)
                attempt.input_tokens, attempt.output_tokens = final.usage.input_tokens, final.usage.output_tokens
                attempt.tokens_estimated = final.usage.estimated
                attempt.cost_usd = cost
                attempt.latency_ms = (self.clock.monotonic() - t0) * 1000
                gate = self._gates.check(self._gate_input(ctx, final))
                attempt.gate_score = gate.score
                attempt.outcome = "ok"
                if not gate.passed:
                    # already delivered, so it is the reply; the attempt still says it failed the gates
                    attempt.outcome = "gate_failed"
                    attempt.reason = gate.reason
                accepted = attempt
                break
            if final is None or accepted is None:
                raise self._no_reply_error(ctx)
        except BaseException as exc:
            status = "cancelled" if _stopped(exc) else "error"
            await self._track(ctx, self._meta(ctx, None, None, None), status, exc)
            raise
        meta = self._meta(ctx, final, accepted, gate)
        await self._track(ctx, meta, "ok", None)
        yield Response(content=final.content, meta=meta, tool_calls=final.tool_calls)


class RouteStream:
    """The async iterator :meth:`Router.astream` returns: text deltas, then ``.response`` once it ends.

    Use ``async with router.astream(...) as stream: async for delta in stream: ...`` to release the connection
    promptly if you stop reading early.
    """

    __slots__ = ("_agen", "response")

    def __init__(self, agen: AsyncIterator[str | Response]) -> None:
        self._agen = agen
        self.response: Response | None = None

    @property
    def meta(self) -> ResponseMeta | None:
        return self.response.meta if self.response is not None else None

    def __aiter__(self) -> RouteStream:
        return self

    async def __anext__(self) -> str:
        while True:
            item = await self._agen.__anext__()
            if isinstance(item, Response):
                self.response = item
                continue
            return item

    async def aclose(self) -> None:
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> RouteStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def text(self) -> str:
        """Consume the whole stream and return the text."""
        return "".join([d async for d in self])


class BatchStream:
    """What :meth:`Router.astream_many` returns: an async iterator of ``(index, result)``."""

    __slots__ = ("_agen",)

    def __init__(self, agen: AsyncIterator[tuple[int, Response | BaseException]]) -> None:
        self._agen = agen

    def __aiter__(self) -> BatchStream:
        return self

    async def __anext__(self) -> tuple[int, Response | BaseException]:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> BatchStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
