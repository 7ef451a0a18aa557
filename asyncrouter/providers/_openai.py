"""The OpenAI Chat Completions wire format and its family: OpenAI, OpenRouter, HuggingFace, Ollama's /v1
endpoint and any OpenAI-compatible server (vLLM, Together, Groq, ...).

The family's embeddings endpoint, ``POST {base_url}/embeddings``, is here too (:meth:`OpenAIFormat.
build_embeddings_request` and :meth:`OpenAIFormat.parse_embeddings_response`): OpenAI, Ollama's /v1, Gemini's
OpenAI-compatible endpoint, vLLM and most OpenAI-compatible servers speak it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from .._config import ModelConfig
from .._exceptions import MalformedResponse, StreamInterrupted
from .._http import error_from_payload
from .._models import ChatDelta, ChatRequest, ChatResponse, StreamEvent, Usage
from .._sse import SSEParser
from .._tokens import estimate_tokens
from ._base import EmbeddingReply, normalise_finish_reason, text_of, usage_or_estimate

__all__ = ["OpenAIFormat"]


def _usage(data: Any, request: ChatRequest, content: str) -> Usage:
    if isinstance(data, Mapping):
        return usage_or_estimate(data.get("prompt_tokens"), data.get("completion_tokens"), request, content)
    return usage_or_estimate(None, None, request, content)


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(raw, list):
        for tc in raw:
            if not isinstance(tc, Mapping):
                continue
            fn = tc.get("function") or {}
            args = fn.get("arguments", "")
            out.append(
                {
                    "id": tc.get("id") or "",
                    "type": "function",
                    "function": {
                        "name": fn.get("name") or "",
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
    return out


def _has_cache_marks(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        if "cache_control" in m:
            return True
        content = m.get("content")
        if type(content) is list and any(isinstance(p, dict) and "cache_control" in p for p in content):
            return True
    return False


def _without_cache_marks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of *messages* without ``cache_control`` on them or their content parts (the caller's are kept)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        copy = {k: v for k, v in m.items() if k != "cache_control"}
        content = copy.get("content")
        if type(content) is list:
            copy["content"] = [
                {k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, dict) else p for p in content
            ]
        out.append(copy)
    return out


def _embedding_vector(raw: Any) -> list[float] | None:
    """One ``embedding`` value as floats: a JSON array of numbers, or base64 of little-endian float32 (what a
    server sends that ignored ``encoding_format: "float"``). ``None`` when it is neither, or not finite."""
    values: array[float]
    if isinstance(raw, list):
        try:
            values = array("d", raw)  # C speed; rejects strings, None and nested lists
        except (TypeError, OverflowError):
            return None
    elif isinstance(raw, str):
        try:
            packed = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(packed) % 4:
            return None
        values = array("f")
        values.frombytes(packed)
        if sys.byteorder == "big":
            values.byteswap()
    else:
        return None
    # one sum finds any NaN or infinity (they survive addition); a cosine over them would be meaningless
    if not values or not math.isfinite(sum(values)):
        return None
    return values.tolist()


class OpenAIFormat:
    """Chat Completions. One instance per provider kind (they differ only in URLs and headers)."""

    def __init__(self, kind: str = "openai") -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"OpenAIFormat({self.kind!r})"

    def url(self, model: ModelConfig, *, stream: bool) -> str:
        base = model.resolved_base_url
        if self.kind == "ollama" and not base.endswith("/v1"):
            base += "/v1"
        return base + "/chat/completions"

    def models_url(self, model: ModelConfig) -> str:
        if self.kind == "ollama":  # Ollama's own listing: no key, whichever API the model is called through
            return model.resolved_base_url.removesuffix("/v1") + "/api/tags"
        return self.url(model, stream=False).removesuffix("/chat/completions") + "/models"

    def headers(self, model: ModelConfig, key: str | None) -> dict[str, str]:
        h = dict(model.headers)
        if key:
            h["Authorization"] = f"Bearer {key}"
        if self.kind == "openrouter":
            if model.http_referer:
                h["HTTP-Referer"] = model.http_referer
            if model.app_title:
                h["X-Title"] = model.app_title
        return h

    def build_request(self, request: ChatRequest, model: ModelConfig) -> dict[str, Any]:
        messages = request.messages
        if self.kind != "openrouter" and _has_cache_marks(messages):
            # Anthropic's prompt-cache marks (from the Anthropic ingress or a LiteLLM-style caller): OpenRouter
            # forwards them to the models that cache; for the rest of the family they are unknown fields.
            messages = _without_cache_marks(messages)
        body: dict[str, Any] = {"model": request.model_id, "messages": messages}
        if request.max_tokens is not None:
            # OpenAI itself deprecated max_tokens (reasoning models reject it); the rest of the family expects it.
            body["max_completion_tokens" if self.kind == "openai" else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = request.stop
        if request.tools:
            body["tools"] = request.tools
            if request.tool_choice is not None:
                body["tool_choice"] = request.tool_choice
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if request.seed is not None:
            body["seed"] = request.seed
        if request.user is not None:
            body["user"] = request.user
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if request.extra:
            body.update(request.extra)
        return body

    def parse_response(self, data: Any, *, model: ModelConfig, request: ChatRequest) -> ChatResponse:
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise MalformedResponse("reply has no choices[0].message", provider=self.kind, model=model.name) from None
        content = text_of(message.get("content"))
        return ChatResponse(
            content=content,
            usage=_usage(data.get("usage"), request, content),
            finish_reason=normalise_finish_reason(choice.get("finish_reason")),
            tool_calls=_tool_calls(message.get("tool_calls")),
            provider_model=data.get("model"),
        )

    def stream_decoder(self, *, model: ModelConfig, request: ChatRequest, secrets: Sequence[str]) -> _OpenAIStream:
        return _OpenAIStream(self.kind, model.name, request, secrets)

    # -------------------------------------------------------------------------------------------- embeddings

    def embeddings_url(self, model: ModelConfig) -> str:
        """The embeddings endpoint of *model*: ``{base_url}/embeddings`` (Ollama: ``{base_url}/v1/embeddings``)."""
        base = model.resolved_base_url
        if self.kind == "ollama" and not base.endswith("/v1"):
            base += "/v1"
        return base + "/embeddings"

    def build_embeddings_request(
        self, texts: Sequence[str], model: ModelConfig, *, dimensions: int | None = None
    ) -> dict[str, Any]:
        """The JSON body embedding *texts*: always a list ``input`` and float vectors.

        ``dimensions`` (OpenAI's text-embedding-3 models, some compatible servers) asks for shorter vectors.
        """
        body: dict[str, Any] = {"model": model.model_id, "input": list(texts), "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        return body

    def parse_embeddings_response(self, data: Any, *, model: ModelConfig, texts: Sequence[str]) -> EmbeddingReply:
        """An embeddings reply as an :class:`EmbeddingReply`, vectors in the order of *texts*.

        ``data[i].embedding`` is placed by ``data[i].index`` (positions are used when no item has an index);
        usage missing from the reply is estimated and marked.

        Raises:
            MalformedResponse: no ``data`` list, an item without a numeric vector, indexes that are not each
                input's exactly once, vectors of different lengths, or a count that does not match *texts*.
        """

        def bad(message: str) -> MalformedResponse:
            return MalformedResponse(message, provider=self.kind, model=model.name)

        items = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(data, Mapping) or not isinstance(items, list):
            raise bad("embeddings reply has no data list")
        n = len(texts)
        if len(items) != n:
            raise bad(f"embeddings reply has {len(items)} vectors for {n} inputs")
        vectors: list[list[float] | None] = [None] * n
        positional = all(isinstance(item, Mapping) and "index" not in item for item in items)
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise bad(f"embeddings reply data[{position}] is not an object")
            index = position if positional else item.get("index")
            if type(index) is not int or not 0 <= index < n or vectors[index] is not None:
                raise bad(f"embeddings reply data[{position}] has a missing, repeated or out-of-range index")
            vector = _embedding_vector(item.get("embedding"))
            if vector is None:
                raise bad(f"embeddings reply data[{position}].embedding is not a vector of finite numbers")
            vectors[index] = vector
        ordered = [v for v in vectors if v is not None]  # all set: n distinct indexes in range(n)
        if ordered and any(len(v) != len(ordered[0]) for v in ordered):
            raise bad("embeddings reply vectors differ in length")
        usage = data.get("usage")
        tokens = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
        provider_model = data.get("model")
        reply = EmbeddingReply(ordered, 0, provider_model=provider_model if isinstance(provider_model, str) else None)
        if type(tokens) is int and tokens >= 0:
            reply.input_tokens = tokens
        else:
            reply.input_tokens = sum(estimate_tokens(text) for text in texts)
            reply.estimated = True
        return reply


class _OpenAIStream:
    __slots__ = (
        "_done",
        "_finish",
        "_kind",
        "_model",
        "_parser",
        "_parts",
        "_provider_model",
        "_request",
        "_secrets",
        "_tools",
        "_usage",
    )

    def __init__(self, kind: str, model: str, request: ChatRequest, secrets: Sequence[str]) -> None:
        self._kind = kind
        self._model = model
        self._request = request
        self._secrets = secrets
        self._parser = SSEParser()
        self._parts: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: Any = None
        self._done = False
        self._provider_model: str | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for ev in self._parser.feed(chunk):
            data = ev.data
            if not data:
                continue
            if data == "[DONE]":
                self._done = True
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                raise MalformedResponse(
                    "stream event is not valid JSON", provider=self._kind, model=self._model
                ) from None
            if not isinstance(obj, Mapping):
                raise MalformedResponse("stream event is not a JSON object", provider=self._kind, model=self._model)
            if obj.get("error"):
                raise error_from_payload(None, obj, provider=self._kind, model=self._model, secrets=self._secrets)
            if self._provider_model is None and isinstance(obj.get("model"), str):
                self._provider_model = obj["model"]
            if obj.get("usage"):
                self._usage = obj["usage"]
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content")
                if text:
                    self._parts.append(text)
                    out.append(ChatDelta(text))
                for tc in delta.get("tool_calls") or ():
                    slot = self._tools.setdefault(
                        int(tc.get("index", len(self._tools))),
                        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                    )
                    if tc.get("id"):
                        slot["id"] = tc["id"]
                    fn = tc.get("function") or {}
                    if fn.get("name"):
                        slot["function"]["name"] += fn["name"]
                    if fn.get("arguments"):
                        slot["function"]["arguments"] += fn["arguments"]
                if choice.get("finish_reason"):
                    self._finish = normalise_finish_reason(choice["finish_reason"])
        return out

    def close(self) -> ChatResponse:
        self._parser.close()
        if not self._done and self._finish is None:
            raise StreamInterrupted("stream ended before its final event", provider=self._kind, model=self._model)
        content = "".join(self._parts)
        return ChatResponse(
            content=content,
            usage=_usage(self._usage, self._request, content),
            finish_reason=self._finish,
            tool_calls=[self._tools[i] for i in sorted(self._tools)],
            provider_model=self._provider_model,
        )
