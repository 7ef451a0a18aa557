"""One configured model, ready to call: its wire format, its keys and the shared HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from .._config import ModelConfig
from .._exceptions import ConfigError, ProviderError
from .._http import HTTPClient, JSONReply
from .._models import ChatRequest, ChatResponse, StreamEvent
from .._types import Clock
from ._anthropic import AnthropicFormat
from ._base import EmbeddingReply, KeyCheck, Provider, listed_model_ids
from ._keys import KeyPool
from ._ollama import OllamaNativeFormat
from ._openai import OpenAIFormat

__all__ = ["ModelClient", "embeddings_format", "provider_for"]

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


def embeddings_format(model: ModelConfig) -> OpenAIFormat | None:
    """The format that embeds texts for *model*, or ``None`` when its API has no embeddings endpoint.

    The OpenAI family has one (``POST {base_url}/embeddings``); Anthropic's Messages API and Ollama's native
    ``/api/chat`` configuration do not (Ollama with ``api: openai`` does).

    .. versionadded:: 0.1
    """
    fmt = provider_for(model)
    return fmt if isinstance(fmt, OpenAIFormat) else None


#: seconds a key check may take per key
DEFAULT_CHECK_TIMEOUT = 10.0
_EMBEDDING_KINDS = ", ".join(k for k in _OPENAI_KINDS if k != "ollama")


class ModelClient:
    """Calls one model: picks a key, sends through the shared session, feeds errors back to the key pool.

    Retries, breakers and budgets are the engine's business; this class makes exactly one HTTP request per
    call, so the engine sees every failure.
    """

    __slots__ = (
        "_embeddings",
        "_embeddings_url",
        "_http",
        "_stream_url",
        "_url",
        "config",
        "endpoint",
        "format",
        "keys",
    )

    def __init__(self, config: ModelConfig, *, http: HTTPClient, clock: Clock) -> None:
        self.config = config
        self.format = provider_for(config)
        self.keys = KeyPool(config.key_values(), clock=clock, provider=config.provider, model=config.name)
        self._http = http
        self._url = self.format.url(config, stream=False)
        self._stream_url = self.format.url(config, stream=True)
        self._embeddings = embeddings_format(config)
        self._embeddings_url = self._embeddings.embeddings_url(config) if self._embeddings is not None else None
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

    @property
    def model_id(self) -> str:
        """The provider's model string (``model_id`` in the config)."""
        return self.config.model_id

    @property
    def supports_embeddings(self) -> bool:
        """Whether :meth:`embed` can work: the model's API has an embeddings endpoint."""
        return self._embeddings is not None

    async def embed(
        self, texts: Sequence[str], *, timeout: float | None = None, dimensions: int | None = None
    ) -> EmbeddingReply:
        """Embed *texts* in one ``POST {base_url}/embeddings`` call (the OpenAI wire format).

        Keys rotate and failures are reported to the key pool as for :meth:`complete`. No texts, no call.

        Args:
            texts: the inputs; the provider's limits apply (OpenAI: 2,048 inputs and 300,000 tokens a call).
            timeout: seconds for the whole call; defaults to the model's ``timeout``.
            dimensions: ask for shorter vectors (OpenAI's text-embedding-3 models and some others).

        Returns:
            One vector per text, in order, with the provider's token count (estimated when it sent none).

        Raises:
            ConfigError: the model's provider has no embeddings endpoint (``anthropic``, or ``ollama`` with
                ``api: native``); no request is sent.
            ProviderError: the call failed; :class:`~asyncrouter.MalformedResponse` when the reply is not an
                embeddings reply for these texts.

        .. versionadded:: 0.1
        """
        cfg = self.config
        fmt, url = self._embeddings, self._embeddings_url
        if fmt is None or url is None:
            api = ", api: native" if cfg.provider == "ollama" else ""
            raise ConfigError(
                f"model {cfg.name!r} (provider {cfg.provider}{api}) has no embeddings endpoint; embeddings need an "
                f"OpenAI-compatible provider ({_EMBEDDING_KINDS}) or ollama with `api: openai`"
            )
        texts = list(texts)
        if not texts:
            return EmbeddingReply([], 0)
        reply = await self._post(url, fmt.build_embeddings_request(texts, cfg, dimensions=dimensions), timeout)
        result = fmt.parse_embeddings_response(reply.data, model=cfg, texts=texts)
        result.request_id = reply.request_id
        return result

    async def check_keys(
        self,
        *,
        timeout: float = DEFAULT_CHECK_TIMEOUT,
        seen: dict[tuple[str, str, str | None], list[str] | str] | None = None,
    ) -> list[KeyCheck]:
        """Ask the provider to list its models with each configured key (or none, for a keyless server).

        A diagnosis, not traffic: a refused key is reported here and not taken out of rotation. ``seen`` shares
        answers between models of one provider on the same endpoint and key: (provider, listing URL, key) -> model
        ids, or the error.
        """
        cfg = self.config
        keys: list[str | None] = list(self.keys.secrets) or [None]
        url = self.format.models_url(cfg)
        seen = {} if seen is None else seen
        out: list[KeyCheck] = []
        for i, key in enumerate(keys, 1):
            label = f"key {i} of {len(keys)}" if key is not None else "no key"
            answer = seen.get((cfg.provider, url, key))
            if answer is None:
                try:
                    reply = await self._http.get_json(
                        url,
                        headers=self.format.headers(cfg, key),
                        timeout=timeout,
                        provider=cfg.provider,
                        model=cfg.name,
                        secrets=self.keys.secrets,
                    )
                    answer = listed_model_ids(reply.data)
                except ProviderError as exc:
                    answer = f"{type(exc).__name__}: {exc.message}"
                seen[(cfg.provider, url, key)] = answer
            if isinstance(answer, str):
                out.append(KeyCheck(cfg.name, cfg.provider, label, False, answer))
            else:
                listed = cfg.model_id in answer if answer else None
                out.append(KeyCheck(cfg.name, cfg.provider, label, True, None, len(answer), listed))
        return out

    async def complete(self, request: ChatRequest, *, timeout: float | None = None) -> ChatResponse:
        """One non-streamed call. Raises a :class:`~asyncrouter.ProviderError` subclass on failure."""
        request.stream = False
        cfg = self.config
        reply = await self._post(self._url, self.format.build_request(request, cfg), timeout)
        response = self.format.parse_response(reply.data, model=cfg, request=request)
        response.request_id = reply.request_id
        return response

    async def _post(self, url: str, body: Mapping[str, Any], timeout: float | None) -> JSONReply:
        """One POST with the next key; a failure is reported to the key pool (401 evicts, 429 cools down)."""
        cfg = self.config
        key = self.keys.acquire()
        try:
            return await self._http.post_json(
                url,
                headers=self.format.headers(cfg, key),
                body=body,
                timeout=timeout or cfg.timeout,
                provider=cfg.provider,
                model=cfg.name,
                secrets=self.keys.secrets,
            )
        except ProviderError as exc:
            self.keys.report(key, exc)
            raise

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
