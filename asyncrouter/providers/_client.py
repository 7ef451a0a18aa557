"""One configured model, ready to call: its wire format, its keys and the shared HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._config import ModelConfig
from .._exceptions import ProviderError
from .._http import HTTPClient
from .._models import ChatRequest, ChatResponse, StreamEvent
from .._types import Clock
from ._anthropic import AnthropicFormat
from ._base import Provider
from ._keys import KeyPool
from ._ollama import OllamaNativeFormat
from ._openai import OpenAIFormat

__all__ = ["ModelClient", "provider_for"]

_ANTHROPIC = AnthropicFormat()
_OLLAMA_NATIVE = OllamaNativeFormat()
_OPENAI_KINDS = ("openai", "openrouter", "huggingface", "ollama", "google", "openai_compatible")
_OPENAI_FAMILY = {kind: OpenAIFormat(kind) for kind in _OPENAI_KINDS}


def provider_for(model: ModelConfig) -> Provider:
    """The wire format a model speaks."""
    if model.provider == "anthropic":
        return _ANTHROPIC
    if model.provider == "ollama" and model.api == "native":
        return _OLLAMA_NATIVE
    return _OPENAI_FAMILY[model.provider]


class ModelClient:
    """Calls one model: picks a key, sends through the shared session, feeds errors back to the key pool.

    Retries, breakers and budgets are the engine's business; this class makes exactly one HTTP request per
    call, so the engine sees every failure.
    """

    __slots__ = ("_http", "_stream_url", "_url", "config", "endpoint", "format", "keys")

    def __init__(self, config: ModelConfig, *, http: HTTPClient, clock: Clock) -> None:
        self.config = config
        self.format = provider_for(config)
        self.keys = KeyPool(config.key_values(), clock=clock, provider=config.provider, model=config.name)
        self._http = http
        self._url = self.format.url(config, stream=False)
        self._stream_url = self.format.url(config, stream=True)
        #: breaker key for the provider endpoint this model lives on
        self.endpoint = f"{config.provider}:{config.resolved_base_url}"

    def __repr__(self) -> str:
        return f"ModelClient({self.config.name!r}, provider={self.config.provider!r})"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def provider(self) -> str:
        return self.config.provider

    async def complete(self, request: ChatRequest, *, timeout: float | None = None) -> ChatResponse:
        """One non-streamed call. Raises a :class:`~asyncrouter.ProviderError` subclass on failure."""
        request.stream = False
        key = self.keys.acquire()
        cfg = self.config
        try:
            reply = await self._http.post_json(
                self._url,
                headers=self.format.headers(cfg, key),
                body=self.format.build_request(request, cfg),
                timeout=timeout or cfg.timeout,
                provider=cfg.provider,
                model=cfg.name,
                secrets=self.keys.secrets,
            )
        except ProviderError as exc:
            self.keys.report(key, exc)
            raise
        response = self.format.parse_response(reply.data, model=cfg, request=request)
        response.request_id = reply.request_id
        return response

    async def stream(self, request: ChatRequest, *, timeout: float | None = None) -> AsyncIterator[StreamEvent]:
        """One streamed call: text deltas, then exactly one final :class:`ChatResponse`."""
        request.stream = True
        key = self.keys.acquire()
        cfg = self.config
        accept = "application/x-ndjson" if self.format is _OLLAMA_NATIVE else "text/event-stream"
        try:
            async with self._http.stream(
                self._stream_url,
                headers=self.format.headers(cfg, key),
                body=self.format.build_request(request, cfg),
                timeout=timeout or cfg.timeout,
                provider=cfg.provider,
                model=cfg.name,
                secrets=self.keys.secrets,
                accept=accept,
            ) as body:
                decoder = self.format.stream_decoder(model=cfg, request=request, secrets=self.keys.secrets)
                async for chunk in body.chunks():
                    for event in decoder.feed(chunk):
                        yield event
                final = decoder.close()
                final.request_id = body.request_id
                yield final
        except ProviderError as exc:
            self.keys.report(key, exc)
            raise
