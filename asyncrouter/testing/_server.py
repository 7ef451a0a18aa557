"""The fake provider fleet: a real aiohttp.web server on loopback that speaks every provider's wire format.

Endpoints (one server, every format, told apart by path as the real services are)::

    POST /v1/chat/completions         OpenAI format (also HuggingFace router, Ollama's /v1, OpenAI-compatible)
    POST /api/v1/chat/completions     OpenRouter
    POST /v1/embeddings               OpenAI embeddings (float or base64 vectors; see ._vectors)
    POST /api/v1/embeddings           the same, with OpenRouter's error bodies
    POST /v1/messages                 Anthropic Messages API
    POST /api/chat                    Ollama native (NDJSON streaming)
    GET  /v1/models                   OpenAI listing (Anthropic's when an anthropic-version header is sent)
    GET  /api/v1/models               OpenRouter listing
    GET  /api/tags, /api/version, /   Ollama listing, version, "Ollama is running"

A chat request goes through the same steps as at a real provider: key check (401), request validation (400),
model lookup (404), context window (400), then at most one fault (per-key script, then the model's scripted
queue, then its random faults), then the model's latency and the reply, streamed or not.

An embeddings request goes through the same steps (key check, validation, model lookup, each input against
the context window, at most one fault), then gets one deterministic unit vector per input from
:func:`~._vectors.fake_embedding`, ``embedding_dim`` dimensions (or the request's smaller ``dimensions``).
Faults that need a stream act as they do on a non-streamed chat; ``"empty"`` answers with no embeddings and
``"truncated"`` with one fewer than asked for.

Anthropic prompt caching is played too: a request whose blocks carry ``cache_control`` writes each marked
prefix to a per-model cache that lives as long as the server (or until :meth:`FakeProviderServer.reset`), and
its usage reports ``cache_creation_input_tokens`` for the part newly written and ``cache_read_input_tokens``
for the longest marked prefix already cached; ``input_tokens`` is the rest. Unlike the real service it caches a
prefix of any length (no 1,024-token minimum) and never expires one. Requests without ``cache_control`` get
the usage they always got.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import random
import time
import warnings
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType, TracebackType
from typing import Any, Final, Literal, Self

from aiohttp import web

from asyncrouter._tokens import estimate_messages_tokens, estimate_tokens
from asyncrouter._types import ProviderName

from ._behaviour import (
    FAULT_KINDS,
    FakeModel,
    FaultKind,
    RecordedRequest,
    Reply,
    WireFormat,
    compose_reply,
    request_rng,
)
from ._formats import (
    JSON_CONTENT_TYPE,
    AnthropicFormat,
    CachePlan,
    CacheUsage,
    ErrorContext,
    ErrorOut,
    Format,
    Invalid,
    OllamaFormat,
    OpenAIFormat,
    OpenRouterFormat,
    anthropic_cache_plan,
)
from ._vectors import embeddings_body, fake_embedding, parse_embeddings_request

__all__ = ["ALL_PROVIDERS", "DEFAULT_HOST", "FakeProviderServer", "default_fleet"]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_SEED: Final = 0
#: The key config_dict() writes when the server accepts any key.
DEFAULT_FAKE_KEY: Final = "fake-key"
#: Anthropic's request size limit; prompts for context-window tests can be large.
DEFAULT_MAX_BODY_BYTES: Final = 32 * 1024 * 1024
#: How long aiohttp waits for in-flight handlers at shutdown. Ours wake on close at once, so this only bounds
#: a handler stuck in user code (a ``reply`` callable).
DEFAULT_SHUTDOWN_TIMEOUT: Final = 2.0
#: Stream deltas sent before a ``mid_stream_error`` / ``truncated_stream`` / ``malformed_json`` strikes.
DEFAULT_DELTAS_BEFORE_FAULT: Final = 3
ALL_PROVIDERS: Final[tuple[ProviderName, ...]] = (
    "openai",
    "anthropic",
    "openrouter",
    "huggingface",
    "ollama",
    "google",
    "openai_compatible",
)

# Faults answered with an error status before any model work.
_HTTP_FAULTS: Final = frozenset(
    {"500", "502", "503", "529", "overloaded", "429", "quota", "401", "400", "context_length", "content_policy"}
)
_OPENAI = OpenAIFormat()
_OPENROUTER = OpenRouterFormat()
_ANTHROPIC = AnthropicFormat()
_OLLAMA = OllamaFormat()


class _Closing(Exception):
    """The server is shutting down: a handler that was waiting gives up and drops its connection."""


class _Exchange:
    """One request in flight: the streamed response once it has been prepared."""

    __slots__ = ("request", "response")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None

    async def open(self, headers: Mapping[str, str], content_type: str) -> web.StreamResponse:
        if self.response is None:
            self.response = web.StreamResponse(
                status=200, headers={**headers, "Content-Type": content_type, "Cache-Control": "no-cache"}
            )
            await self.response.prepare(self.request)
        return self.response

    def drop(self) -> None:
        """Close the connection with whatever was already written, and no more."""
        transport = self.request.transport
        if transport is not None:
            transport.close()


def default_fleet(*, speed: float = 1.0, faults: bool = True) -> list[FakeModel]:
    """Three fake models with realistic behaviour: ``fake-cheap``, ``fake-medium`` and ``fake-strong``.

    The cheap model is fast and hedges or refuses now and then; the strong one is slow and reliable. Each has
    a small share of transient faults and prices that make a cascade worth it.

    Args:
        speed: multiplies every latency and token interval: ``1.0`` is realistic (about 40/120/300 ms to the
            first byte), ``0.1`` ten times faster, ``0.0`` instant (tests and throughput benchmarks).
        faults: ``False`` removes the random faults (scripted faults still work).

    Returns:
        A new list of :class:`FakeModel`, cheapest first.

    .. versionadded:: 0.1
    """
    if speed < 0:
        raise ValueError("speed must not be negative")
    return [
        FakeModel(
            "fake-cheap",
            latency=0.040 * speed,
            latency_jitter=0.015 * speed,
            token_interval=0.002 * speed,
            reply_words=(25, 70),
            hedge_rate=0.15,
            refusal_rate=0.02,
            tool_call_rate=0.5,
            faults={"500": 0.02, "429": 0.01} if faults else {},
            context_window=16_000,
            retry_after=0.2,
            cost_per_1k_input=0.00015,
            cost_per_1k_output=0.0006,
            tags=("cheap", "general", "summarisation", "translation", "factual"),
        ),
        FakeModel(
            "fake-medium",
            latency=0.120 * speed,
            latency_jitter=0.040 * speed,
            token_interval=0.004 * speed,
            reply_words=(50, 140),
            hedge_rate=0.04,
            tool_call_rate=0.8,
            faults={"503": 0.01, "429": 0.005} if faults else {},
            context_window=128_000,
            retry_after=0.5,
            cost_per_1k_input=0.003,
            cost_per_1k_output=0.015,
            tags=("general", "code", "creative", "reasoning"),
        ),
        FakeModel(
            "fake-strong",
            latency=0.300 * speed,
            latency_jitter=0.080 * speed,
            token_interval=0.008 * speed,
            reply_words=(90, 220),
            tool_call_rate=0.9,
            faults={"overloaded": 0.005} if faults else {},
            context_window=200_000,
            retry_after=1.0,
            cost_per_1k_input=0.015,
            cost_per_1k_output=0.075,
            tags=("strong", "code", "reasoning", "creative", "general"),
        ),
    ]


class FakeProviderServer:
    """A real HTTP server on loopback that plays OpenAI, Anthropic, OpenRouter, HuggingFace and Ollama.

    Use it as an async context manager; it binds a free port on 127.0.0.1 and shuts down cleanly (requests
    still waiting, e.g. a ``timeout`` fault, are dropped at once)::

        async with FakeProviderServer(models=[FakeModel("m", faults={"503": 0.1})], seed=1) as srv:
            client = openai.AsyncOpenAI(base_url=srv.openai_url, api_key="k")
            srv.script("m", ["429", None])       # the next request to "m" gets a 429, the one after succeeds
            ...
            assert srv.calls(model="m") == 2

    Replies and random faults are deterministic under ``seed``: each request draws from a generator derived
    from the seed, the model, the chat and how many identical requests came before, so concurrency does not
    change what a given request gets.

    Args:
        models: the fake models; ``None`` serves :func:`default_fleet` at realistic speed.
        seed: seed for every random draw.
        api_keys: keys accepted; ``None`` accepts any key. A key not accepted gets HTTP 401 in the format of
            the endpoint. (Anthropic and OpenRouter endpoints always require *some* key, as the real ones do;
            Ollama's native endpoint never checks.)
        key_faults: per-key fault applied to every request sent with that key, e.g. ``{"k2": "429"}``, so key
            rotation can be tested.
        host: interface to bind; keep the default loopback address in tests.
        port: port to bind; ``0`` picks a free one.
        record: ``False`` keeps no :attr:`requests` list (counters still count), for long benchmarks.

    Fault kinds (:data:`FAULT_KINDS`), each in the format of the endpoint hit:

    * ``"500"``, ``"502"``, ``"503"``: server errors. ``"529"``/``"overloaded"``: Anthropic 529
      ``overloaded_error``; 503 saying "overloaded" elsewhere.
    * ``"429"``: rate limited, with ``Retry-After`` and ``retry-after-ms`` from the model's ``retry_after``.
      ``"quota"``: OpenAI 429 ``insufficient_quota``; Anthropic 402 ``billing_error``; OpenRouter 402.
    * ``"401"``, ``"400"``; ``"context_length"`` (OpenAI ``context_length_exceeded``, Anthropic "prompt is too
      long"); ``"content_policy"`` (OpenAI ``content_policy_violation``, OpenRouter 403 moderation).
    * ``"timeout"``: never answers (until the client gives up or the server closes). ``"reset"``: the
      connection is aborted with no response.
    * ``"malformed_json"``: HTTP 200 with a cut-off JSON body, or one broken ``data:`` event in a stream.
    * ``"mid_stream_error"``: a few deltas, then the format's in-stream error (OpenAI/OpenRouter
      ``data: {"error": ...}``, Anthropic ``event: error``, Ollama ``{"error": ...}``); without a stream, a 500
      (OpenRouter: HTTP 200 with an error body).
    * ``"truncated_stream"``: a few deltas, then the connection closes before the final event (or halfway
      through a ``Content-Length`` body).
    * ``"empty"``: HTTP 200 with empty content. ``"truncated"``: half the reply with ``finish_reason``
      ``"length"`` / ``stop_reason`` ``"max_tokens"`` / ``done_reason`` ``"length"``.

    Error replies are immediate; the model's latency applies to successful replies (before the first byte).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        *,
        models: Iterable[FakeModel] | None = None,
        seed: int = DEFAULT_SEED,
        api_keys: Iterable[str] | None = None,
        key_faults: Mapping[str, FaultKind] | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        record: bool = True,
    ) -> None:
        fleet = default_fleet() if models is None else list(models)
        self._initial_models = {m.name: m for m in fleet}
        if len(self._initial_models) != len(fleet):
            raise ValueError("fake model names must be unique")
        self._models = dict(self._initial_models)
        self._seed = seed
        self._api_keys = frozenset(api_keys) if api_keys is not None else None
        self._initial_key_faults = dict(key_faults or {})
        for fault in self._initial_key_faults.values():
            _check_fault(fault)
        self._key_faults = dict(self._initial_key_faults)
        self._host = host
        self._port = port
        self._keep_records = record
        self._scripts: dict[str, deque[FaultKind | None]] = {}
        self._repeats: Counter[tuple[str, str]] = Counter()
        self._counts: Counter[tuple[str | None, str]] = Counter()
        self._serial = itertools.count()
        # (model, prefix key) of every Anthropic prompt prefix written to the fake prompt cache
        self._prompt_cache: set[tuple[str, str]] = set()
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Future[None] | None = None
        self._url: str | None = None

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind the port and start serving. :meth:`__aenter__` calls this."""
        if self._runner is not None:
            raise RuntimeError("the fake provider server is already running")
        app = web.Application(client_max_size=DEFAULT_MAX_BODY_BYTES)
        app.router.add_post("/v1/chat/completions", self._handle_openai)
        app.router.add_post("/api/v1/chat/completions", self._handle_openrouter)
        app.router.add_post("/v1/messages", self._handle_anthropic)
        app.router.add_post("/api/chat", self._handle_ollama)
        app.router.add_post("/v1/embeddings", self._handle_openai_embeddings)
        app.router.add_post("/api/v1/embeddings", self._handle_openrouter_embeddings)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/api/v1/models", self._handle_openrouter_models)
        app.router.add_get("/api/tags", self._handle_ollama_tags)
        app.router.add_get("/api/version", self._handle_ollama_version)
        app.router.add_get("/", self._handle_root)
        # handler_cancellation: a client that gives up (timeout) cancels its handler, so a "timeout" fault
        # does not keep a task alive until shutdown. access_log=None: logging each request costs throughput.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._closing = asyncio.get_running_loop().create_future()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def aclose(self) -> None:
        """Stop serving: waiting handlers drop their connections, then every socket is closed. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_runner", None) is not None:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)

    def __repr__(self) -> str:
        return f"FakeProviderServer(url={self._url!r}, models={list(self._models)!r})"

    # ---------------------------------------------------------------------------------------------- URLs

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._url is None or self._runner is None:
            raise RuntimeError("the fake provider server is not running; use `async with FakeProviderServer(...)`")
        return self._url

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI clients: ``url + "/v1"``."""
        return self.url + "/v1"

    @property
    def huggingface_url(self) -> str:
        """Base URL for the HuggingFace router format: ``url + "/v1"``."""
        return self.url + "/v1"

    @property
    def openrouter_url(self) -> str:
        """Base URL for OpenRouter clients: ``url + "/api/v1"``."""
        return self.url + "/api/v1"

    @property
    def anthropic_url(self) -> str:
        """Base URL for Anthropic clients (they append ``/v1/messages``): ``url``."""
        return self.url

    @property
    def ollama_url(self) -> str:
        """Base URL for Ollama clients (they append ``/api/chat`` or ``/v1``): ``url``."""
        return self.url

    def base_url(self, provider: ProviderName) -> str:
        """The base URL a model of *provider* kind should use, as in the config's ``base_url``."""
        if provider == "anthropic":
            return self.anthropic_url
        if provider == "ollama":
            return self.ollama_url
        if provider == "openrouter":
            return self.openrouter_url
        if provider == "huggingface":
            return self.huggingface_url
        return self.openai_url

    # ----------------------------------------------------------------------------------------- behaviour

    @property
    def models(self) -> Mapping[str, FakeModel]:
        """The current models by name (read-only; change them with :meth:`set_behaviour`)."""
        return MappingProxyType(self._models)

    def add_model(self, model: FakeModel) -> None:
        """Serve another model (or replace one of the same name) from now on; :meth:`reset` removes it."""
        self._models[model.name] = model

    def set_behaviour(self, model: str, **changes: Any) -> FakeModel:
        """Change fields of *model* at runtime, e.g. ``set_behaviour("m", latency=0.5, hedge_rate=1.0)``.

        Returns:
            The new :class:`FakeModel`.

        Raises:
            KeyError: no such model.
            ValueError: the changed model is invalid.
        """
        updated = replace(self._models[model], **changes)
        self._models[model] = updated
        return updated

    def set_faults(self, model: str, faults: Mapping[str, float]) -> FakeModel:
        """Replace the random faults of *model*, e.g. ``set_faults("m", {"503": 1.0})``; ``{}`` clears them."""
        return self.set_behaviour(model, faults=dict(faults))

    def script(self, model: str, faults: Iterable[FaultKind | None]) -> None:
        """Queue faults for the next requests to *model*, consumed one per request in order.

        ``None`` in the queue means "answer normally" (no random fault either). Queued entries come before
        random faults and are appended to any entries still queued.

        Raises:
            KeyError: no such model.
            ValueError: an unknown fault kind.
        """
        if model not in self._models:
            raise KeyError(model)
        entries = list(faults)
        for fault in entries:
            if fault is not None:
                _check_fault(fault)
        self._scripts.setdefault(model, deque()).extend(entries)

    def pending_script(self, model: str) -> list[FaultKind | None]:
        """The faults still queued for *model*."""
        return list(self._scripts.get(model, ()))

    def set_key_fault(self, key: str, fault: FaultKind | None) -> None:
        """Make every request sent with *key* get *fault* (``None`` clears it)."""
        if fault is None:
            self._key_faults.pop(key, None)
            return
        _check_fault(fault)
        self._key_faults[key] = fault

    def reset(self) -> None:
        """Forget recorded requests, counters, queued faults and repeat counts; restore the initial models.

        After a reset the server answers exactly as a fresh one with the same arguments would.
        """
        self.requests.clear()
        self._counts.clear()
        self._repeats.clear()
        self._scripts.clear()
        self._prompt_cache.clear()
        self._models = dict(self._initial_models)
        self._key_faults = dict(self._initial_key_faults)

    # ----------------------------------------------------------------------------------------- recording

    def calls(self, *, model: str | None = None, path: str | None = None) -> int:
        """How many requests arrived, optionally only those for *model* and/or at *path*.

        Counted at the server as requests arrive, whatever their outcome (errors and dropped connections too).
        """
        if model is None and path is None:
            return sum(self._counts.values())
        return sum(
            n for (m, p), n in self._counts.items() if (model is None or m == model) and (path is None or p == path)
        )

    def _record(
        self,
        request: web.Request,
        fmt: WireFormat,
        body: Any,
        model: str | None,
        api_key: str | None,
    ) -> RecordedRequest:
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            json=body,
            model=model,
            format=fmt,
            timestamp=time.time(),
            api_key=api_key,
            stream=_asks_stream(fmt, body),
        )
        self._counts[(model, request.path)] += 1
        if self._keep_records:
            self.requests.append(rec)
        return rec

    # ------------------------------------------------------------------------------------- config helpers

    def _keys_for(self, provider: ProviderName, ollama_api: str) -> list[str]:
        if provider == "ollama":
            # Native /api/chat takes no key; /v1 is shared with the OpenAI format, which checks keys when the
            # server has a key list.
            return sorted(self._api_keys) if ollama_api == "openai" and self._api_keys is not None else []
        if self._api_keys is None:
            return [DEFAULT_FAKE_KEY]
        return sorted(self._api_keys)

    def model_config(
        self,
        model: str,
        *,
        provider: ProviderName = "openai",
        alias: str | None = None,
        ollama_api: Literal["openai", "native"] = "native",
        **fields: Any,
    ) -> dict[str, Any]:
        """One ``models:`` entry of an asyncrouter config that points at this server.

        Args:
            model: the fake model's name (sent as ``model_id``).
            provider: the provider kind the entry uses; every kind is served.
            alias: the entry's ``name``; defaults to *model*.
            ollama_api: for ``provider="ollama"``: the native ``/api/chat`` or Ollama's ``/v1``.
            **fields: extra or overriding keys of the entry, e.g. ``timeout=2``.

        Raises:
            KeyError: no such model.
        """
        fake = self._models[model]
        entry: dict[str, Any] = {
            "name": alias or model,
            "model_id": model,
            "provider": provider,
            "base_url": self.base_url(provider),
        }
        keys = self._keys_for(provider, ollama_api)
        if keys:
            entry["api_keys"] = keys
        if provider == "ollama":
            entry["api"] = ollama_api
        if fake.cost_per_1k_input is not None:
            entry["cost_per_1k_input"] = fake.cost_per_1k_input
        if fake.cost_per_1k_output is not None:
            entry["cost_per_1k_output"] = fake.cost_per_1k_output
        if fake.context_window is not None:
            entry["context_window"] = fake.context_window
        if fake.tags:
            entry["tags"] = list(fake.tags)
        entry.update(fields)
        return entry

    def config_dict(
        self,
        *,
        provider: ProviderName | Mapping[str, ProviderName] | Sequence[ProviderName] = "openai",
        models: Iterable[str] | None = None,
        **top_level: Any,
    ) -> dict[str, Any]:
        """A whole asyncrouter config (as a dict for ``Router.from_dict``) whose models live on this server.

        Args:
            provider: one provider kind for every model; a mapping of model name to kind; or a sequence of
                kinds, which gives each model one entry per kind, named ``"{model}-{kind}"`` (all seven kinds:
                ``provider=ALL_PROVIDERS``).
            models: which fake models to include (default: all, in order).
            **top_level: top-level config keys to set or override, e.g. ``default_model="fake-cheap"``.
                The tracker defaults to ``{"path": ":memory:"}`` so nothing is written to disk.

        Returns:
            A plain dict; validate it with ``Router.from_dict`` (or ``asyncrouter._config.load_config``).
        """
        names = list(self._models) if models is None else list(models)
        entries: list[dict[str, Any]] = []
        for name in names:
            if isinstance(provider, str):
                entries.append(self.model_config(name, provider=provider))
            elif isinstance(provider, Mapping):
                entries.append(self.model_config(name, provider=provider.get(name, "openai")))
            else:
                entries.extend(self.model_config(name, provider=p, alias=f"{name}-{p}") for p in provider)
        config: dict[str, Any] = {"models": entries, "tracker": {"path": ":memory:"}}
        config.update(top_level)
        return config

    # ------------------------------------------------------------------------------------------- handlers

    async def _handle_openai(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _OPENAI)

    async def _handle_openrouter(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _OPENROUTER)

    async def _handle_anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _ANTHROPIC)

    async def _handle_ollama(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _OLLAMA)

    async def _handle_openai_embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._embeddings(request, _OPENAI)

    async def _handle_openrouter_embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._embeddings(request, _OPENROUTER)

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        fmt: Format = _ANTHROPIC if "anthropic-version" in request.headers else _OPENAI
        key = fmt.api_key(request.headers)
        rec = self._record(request, fmt.name, None, None, key)
        denied = self._auth(fmt, key, ErrorContext(api_key=key, request_token=self._token()))
        if denied is not None:
            return self._error_response(rec, denied)
        rec.status = 200
        return web.json_response(fmt.listing(list(self._models.values())))

    async def _handle_openrouter_models(self, request: web.Request) -> web.StreamResponse:
        rec = self._record(request, "openrouter", None, None, _OPENROUTER.api_key(request.headers))
        rec.status = 200
        return web.json_response(_OPENROUTER.listing(list(self._models.values())))

    async def _handle_ollama_tags(self, request: web.Request) -> web.StreamResponse:
        rec = self._record(request, "ollama", None, None, None)
        rec.status = 200
        return web.json_response(_OLLAMA.listing(list(self._models.values())))

    async def _handle_ollama_version(self, request: web.Request) -> web.StreamResponse:
        rec = self._record(request, "ollama", None, None, None)
        rec.status = 200
        return web.json_response({"version": "0.12.0"})

    async def _handle_root(self, request: web.Request) -> web.StreamResponse:
        rec = self._record(request, "ollama", None, None, None)
        rec.status = 200
        return web.Response(text="Ollama is running")

    # ---------------------------------------------------------------------------------------------- chat

    def _token(self) -> str:
        # Request ids for replies decided before the per-request generator exists (auth, validation).
        return f"{self._seed & 0xFFFFFFFF:08x}{next(self._serial):016x}"

    def _auth(self, fmt: Format, key: str | None, ctx: ErrorContext) -> ErrorOut | None:
        if key is None:
            if fmt.key_required or (self._api_keys is not None and fmt.name != "ollama"):
                return fmt.error("missing_key", ctx)
            return None
        if self._api_keys is not None and fmt.name != "ollama" and key not in self._api_keys:
            return fmt.error("bad_key", ctx)
        return None

    def _error_response(self, rec: RecordedRequest, err: ErrorOut, *, status: int | None = None) -> web.Response:
        rec.status = status or err.status
        return web.Response(
            status=rec.status,
            reason=err.reason if status is None else None,
            body=err.body,
            headers=err.headers,
            content_type=err.content_type,
        )

    async def _chat(self, request: web.Request, fmt: Format) -> web.StreamResponse:
        return await self._guarded(request, lambda exchange: self._chat_exchange(exchange, fmt))

    async def _guarded(
        self, request: web.Request, run: Callable[[_Exchange], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        exchange = _Exchange(request)
        try:
            return await run(exchange)
        except _Closing:
            # Shutting down: drop the connection; the response below never reaches the client.
            transport = request.transport
            if transport is not None:
                transport.abort()
            return exchange.response or web.Response(status=503)

    async def _admit(
        self, request: web.Request, fmt: Format
    ) -> tuple[Any, RecordedRequest, ErrorContext, str | None, web.Response | None]:
        """Read and record a request, check its key: (body, record, context, key, the refusal if any)."""
        raw = await request.read()
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        model_name = body.get("model") if isinstance(body, dict) else None
        model_name = model_name if isinstance(model_name, str) else None
        key = fmt.api_key(request.headers)
        rec = self._record(request, fmt.name, body, model_name, key)
        ctx = ErrorContext(model=model_name, api_key=key, request_token=self._token())
        denied = self._auth(fmt, key, ctx)
        return body, rec, ctx, key, (self._error_response(rec, denied) if denied is not None else None)

    def _draw(
        self, model: FakeModel, request_key: str, api_key: str | None, rec: RecordedRequest
    ) -> tuple[random.Random, int, FaultKind | None]:
        """The request's generator, how many identical requests came before it, and its fault (a key's fault,
        else the model's script, else a draw at its fault rates)."""
        repeat = self._repeats[(model.name, request_key)]
        self._repeats[(model.name, request_key)] = repeat + 1
        rng = request_rng(self._seed, model.name, request_key, repeat)
        fault_draw = rng.random()
        fault: FaultKind | None
        if api_key is not None and api_key in self._key_faults:
            fault = self._key_faults[api_key]
        elif self._scripts.get(model.name):
            fault = self._scripts[model.name].popleft()
        else:
            fault = model.pick_fault(fault_draw)
        rec.fault = fault
        return rng, repeat, fault

    async def _connection_fault(self, request: web.Request, fault: FaultKind | None) -> web.Response | None:
        """``timeout`` hangs until shutdown; ``reset`` drops the connection (the response is never sent)."""
        if fault == "timeout":
            await self._wait_closing()
        if fault == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=500)
        return None

    async def _chat_exchange(self, exchange: _Exchange, fmt: Format) -> web.StreamResponse:
        request = exchange.request
        body, rec, ctx, key, refused = await self._admit(request, fmt)
        if refused is not None:
            return refused
        try:
            freq = fmt.parse(body, request.headers)
        except Invalid as exc:
            return self._error_response(rec, fmt.error("invalid", replace(ctx, message=exc.message, param=exc.param)))
        model = self._models.get(freq.model)
        if model is None:
            return self._error_response(rec, fmt.error("not_found", ctx))
        prompt_tokens = estimate_messages_tokens(freq.messages)
        ctx = replace(
            ctx, retry_after=model.retry_after, prompt_tokens=prompt_tokens, context_window=model.context_window
        )
        if model.context_window is not None and prompt_tokens > model.context_window:
            return self._error_response(rec, fmt.error("context_length", ctx))

        chat_key = "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in freq.messages)
        rng, repeat, fault = self._draw(model, chat_key, key, rec)
        if fault in _HTTP_FAULTS:
            return self._error_response(rec, fmt.error(fault, ctx))
        dropped = await self._connection_fault(request, fault)
        if dropped is not None:
            return dropped

        if isinstance(fmt, AnthropicFormat):
            plan = anthropic_cache_plan(freq.body)
            if plan is not None:
                fmt = fmt.with_cache(self._use_prompt_cache(model.name, plan, prompt_tokens))

        jitter = rng.uniform(-model.latency_jitter, model.latency_jitter) if model.latency_jitter else 0.0
        delay = max(0.0, model.latency + jitter)
        reply = compose_reply(model, replace(freq, repeat=repeat), rng, created=time.time(), fault=fault)
        headers = fmt.response_headers(reply.request_token)
        if freq.stream:
            return await self._stream(exchange, fmt, model, reply, rec, fault, delay, headers)
        await self._pause(delay)
        return await self._complete(exchange, fmt, reply, rec, fault, ctx, headers)

    # ---------------------------------------------------------------------------------------- embeddings

    async def _embeddings(self, request: web.Request, fmt: OpenAIFormat) -> web.StreamResponse:
        return await self._guarded(request, lambda exchange: self._embeddings_exchange(exchange, fmt))

    async def _embeddings_exchange(self, exchange: _Exchange, fmt: OpenAIFormat) -> web.StreamResponse:
        request = exchange.request
        body, rec, ctx, key, refused = await self._admit(request, fmt)
        if refused is not None:
            return refused
        try:
            ereq = parse_embeddings_request(body)
        except Invalid as exc:
            return self._error_response(rec, fmt.error("invalid", replace(ctx, message=exc.message, param=exc.param)))
        model = self._models.get(ereq.model)
        if model is None:
            return self._error_response(rec, fmt.error("not_found", ctx))
        if ereq.dimensions is not None and ereq.dimensions > model.embedding_dim:
            message = f"This model's embeddings have {model.embedding_dim} dimensions; 'dimensions' must not exceed it."
            return self._error_response(rec, fmt.error("invalid", replace(ctx, message=message, param="dimensions")))
        tokens = [estimate_tokens(text) for text in ereq.inputs]
        ctx = replace(
            ctx, retry_after=model.retry_after, prompt_tokens=max(tokens), context_window=model.context_window
        )
        if model.context_window is not None and max(tokens) > model.context_window:
            return self._error_response(rec, fmt.error("context_length", ctx))

        dim = ereq.dimensions or model.embedding_dim
        request_key = f"embeddings\x1d{dim}\x1d" + "\x1e".join(ereq.inputs)
        rng, _, fault = self._draw(model, request_key, key, rec)
        if fault in _HTTP_FAULTS:
            return self._error_response(rec, fmt.error(fault, ctx))
        if fault == "mid_stream_error":
            if fmt.name == "openrouter":
                return self._error_response(rec, fmt.error("502", ctx), status=200)
            return self._error_response(rec, fmt.error("500", ctx))
        dropped = await self._connection_fault(request, fault)
        if dropped is not None:
            return dropped

        jitter = rng.uniform(-model.latency_jitter, model.latency_jitter) if model.latency_jitter else 0.0
        headers = fmt.response_headers(f"{rng.getrandbits(96):024x}")
        vectors: list[list[float]] = [list(_cached_embedding(text, dim)) for text in ereq.inputs]
        if fault == "empty":
            vectors = []
        elif fault == "truncated":
            vectors = vectors[:-1]
        payload = embeddings_body(ereq, vectors, prompt_tokens=sum(tokens), usage=model.usage)
        data = json.dumps(payload, separators=(",", ":")).encode()
        await self._pause(max(0.0, model.latency + jitter))
        rec.status = 200
        if fault == "malformed_json":
            return web.Response(body=data[: len(data) // 2], headers=headers, content_type=JSON_CONTENT_TYPE)
        if fault == "truncated_stream":
            response = web.StreamResponse(status=200, headers={**headers, "Content-Type": JSON_CONTENT_TYPE})
            response.content_length = len(data)
            exchange.response = response
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            exchange.drop()
            return response
        return web.Response(body=data, headers=headers, content_type=JSON_CONTENT_TYPE)

    def _use_prompt_cache(self, model: str, plan: CachePlan, prompt_tokens: int) -> CacheUsage:
        """Read the longest cached prefix of *plan*, write the rest of its marked prefixes, and say how much."""
        read = 0
        for key, tokens in plan.breakpoints:
            if (model, key) in self._prompt_cache:
                read = tokens
        written = max(0, plan.breakpoints[-1][1] - read)
        self._prompt_cache.update((model, key) for key, _ in plan.breakpoints)
        total = prompt_tokens + plan.tools_tokens
        return CacheUsage(
            input_tokens=max(0, total - written - read),
            cache_creation_input_tokens=written,
            cache_read_input_tokens=read,
        )

    async def _complete(
        self,
        exchange: _Exchange,
        fmt: Format,
        reply: Reply,
        rec: RecordedRequest,
        fault: FaultKind | None,
        ctx: ErrorContext,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        if fault == "mid_stream_error":
            if fmt.name == "openrouter":
                # OpenRouter reports a failure after it started processing as HTTP 200 with an error body.
                return self._error_response(rec, fmt.error("502", ctx), status=200)
            return self._error_response(rec, fmt.error("500", ctx))
        rec.status = 200
        if fault == "malformed_json":
            return web.Response(body=fmt.malformed_body(reply), headers=headers, content_type=JSON_CONTENT_TYPE)
        body = fmt.body(reply)
        if fault == "truncated_stream":
            # The connection drops halfway through a Content-Length body.
            response = web.StreamResponse(status=200, headers={**headers, "Content-Type": JSON_CONTENT_TYPE})
            response.content_length = len(body)
            exchange.response = response
            await response.prepare(exchange.request)
            await response.write(body[: len(body) // 2])
            exchange.drop()
            return response
        return web.Response(body=body, headers=headers, content_type=JSON_CONTENT_TYPE)

    async def _stream(
        self,
        exchange: _Exchange,
        fmt: Format,
        model: FakeModel,
        reply: Reply,
        rec: RecordedRequest,
        fault: FaultKind | None,
        delay: float,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        rec.status = 200
        preamble = fmt.stream_preamble()
        if preamble:
            # OpenRouter answers 200 at once and keeps the connection warm while the model thinks.
            response = await exchange.open(headers, fmt.stream_content_type)
            await response.write(preamble)
        await self._pause(delay)
        response = await exchange.open(headers, fmt.stream_content_type)
        opening = fmt.stream_open(reply)
        pieces = fmt.stream_pieces(reply)
        closing = fmt.stream_close(reply)
        split = min(DEFAULT_DELTAS_BEFORE_FAULT, len(pieces))
        tail: list[bytes]
        drop = False
        if fault == "mid_stream_error":
            pieces, tail = pieces[:split], [fmt.stream_error(reply)]
        elif fault == "truncated_stream":
            pieces, tail, drop = pieces[:split], [], True
        elif fault == "malformed_json":
            pieces = [*pieces[:split], fmt.stream_malformed(reply), *pieces[split:]]
            tail = closing
        else:
            tail = closing
        interval = model.token_interval
        if interval <= 0:
            # No pacing: one write is far cheaper than one per chunk, and the client parses the same events.
            await response.write(b"".join([*opening, *pieces, *tail]))
        else:
            if opening:
                await response.write(b"".join(opening))
            for frame in pieces:
                await self._pause(interval)
                await response.write(frame)
            await response.write(b"".join(tail))
        if drop:
            exchange.drop()
        return response

    async def _pause(self, seconds: float) -> None:
        """Sleep *seconds*, or raise :class:`_Closing` as soon as the server starts shutting down."""
        if seconds <= 0:
            return
        closing = self._closing
        assert closing is not None  # handlers run only while started
        # asyncio.wait on the shared future costs one timer, no task; it never cancels the future.
        done, _ = await asyncio.wait((closing,), timeout=seconds)
        if done:
            raise _Closing

    async def _wait_closing(self) -> None:
        closing = self._closing
        assert closing is not None
        await asyncio.wait((closing,))
        raise _Closing


@functools.lru_cache(maxsize=4096)
def _cached_embedding(text: str, dim: int) -> tuple[float, ...]:
    # training sets are embedded again and again (every eval run, every test): hash each text once
    return tuple(fake_embedding(text, dim=dim))


def _asks_stream(fmt: WireFormat, body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if fmt == "ollama":
        return body.get("stream", True) is not False  # Ollama streams unless told not to
    return body.get("stream") is True


def _check_fault(fault: str) -> None:
    if fault not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {fault!r}; known: {', '.join(FAULT_KINDS)}")
