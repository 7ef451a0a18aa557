"""Ollama's native ``/api/chat``: NDJSON streaming, ``prompt_eval_count`` / ``eval_count`` usage, options.

Select it per model with ``api: native``; ``provider: ollama`` alone uses Ollama's OpenAI-compatible ``/v1``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._config import ModelConfig
from .._exceptions import MalformedResponse, StreamInterrupted
from .._http import error_from_payload
from .._models import ChatDelta, ChatRequest, ChatResponse, StreamEvent, Usage
from .._sse import NDJSONParser
from ._base import normalise_finish_reason, text_of, usage_or_estimate

__all__ = ["OllamaNativeFormat"]


def _messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        item: dict[str, Any] = {"role": m.get("role", "user"), "content": text_of(m.get("content"))}
        if m.get("tool_calls"):
            calls = []
            for tc in m["tool_calls"]:
                fn = tc.get("function") or {}
                args = fn.get("arguments") or "{}"
                try:
                    parsed = json.loads(args) if isinstance(args, str) else args
                except ValueError:
                    parsed = {}
                calls.append({"function": {"name": fn.get("name", ""), "arguments": parsed}})
            item["tool_calls"] = calls
        out.append(item)
    return out


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    out = []
    for i, tc in enumerate(raw or ()):
        fn = tc.get("function") or {}
        args = fn.get("arguments", {})
        out.append(
            {
                "id": tc.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": fn.get("name", ""),
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


def _usage(obj: Mapping[str, Any], request: ChatRequest, content: str) -> Usage:
    return usage_or_estimate(obj.get("prompt_eval_count"), obj.get("eval_count"), request, content)


class OllamaNativeFormat:
    kind = "ollama"

    def __repr__(self) -> str:
        return "OllamaNativeFormat()"

    def url(self, model: ModelConfig, *, stream: bool) -> str:
        base = model.resolved_base_url.removesuffix("/v1")
        return base + "/api/chat"

    def models_url(self, model: ModelConfig) -> str:
        return model.resolved_base_url.removesuffix("/v1") + "/api/tags"

    def headers(self, model: ModelConfig, key: str | None) -> dict[str, str]:
        h = dict(model.headers)
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def build_request(self, request: ChatRequest, model: ModelConfig) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.stop:
            options["stop"] = request.stop
        if request.seed is not None:
            options["seed"] = request.seed
        body: dict[str, Any] = {
            "model": request.model_id,
            "messages": _messages(request.messages),
            "stream": request.stream,
        }
        if options:
            body["options"] = options
        if request.tools:
            body["tools"] = request.tools
        rf = request.response_format
        if rf and rf.get("type") == "json_object":
            body["format"] = "json"
        elif rf and rf.get("type") == "json_schema":
            body["format"] = (rf.get("json_schema") or {}).get("schema") or "json"
        if request.extra:
            body.update(request.extra)
        return body

    def parse_response(self, data: Any, *, model: ModelConfig, request: ChatRequest) -> ChatResponse:
        if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
            raise MalformedResponse("reply has no message", provider=self.kind, model=model.name)
        msg = data["message"]
        content = text_of(msg.get("content"))
        return ChatResponse(
            content=content,
            usage=_usage(data, request, content),
            finish_reason=normalise_finish_reason(data.get("done_reason") or ("stop" if data.get("done") else None)),
            tool_calls=_tool_calls(msg.get("tool_calls")),
            provider_model=data.get("model"),
        )

    def stream_decoder(self, *, model: ModelConfig, request: ChatRequest, secrets: Sequence[str]) -> _OllamaStream:
        return _OllamaStream(model.name, request, secrets)


class _OllamaStream:
    __slots__ = ("_final", "_model", "_parser", "_parts", "_request", "_secrets", "_tools")

    def __init__(self, model: str, request: ChatRequest, secrets: Sequence[str]) -> None:
        self._model = model
        self._request = request
        self._secrets = secrets
        self._parser = NDJSONParser()
        self._parts: list[str] = []
        self._tools: list[dict[str, Any]] = []
        self._final: Mapping[str, Any] | None = None

    def _objects(self, objs: list[Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for obj in objs:
            if not isinstance(obj, Mapping):
                raise MalformedResponse("stream line is not a JSON object", provider="ollama", model=self._model)
            if obj.get("error"):
                raise error_from_payload(None, obj, provider="ollama", model=self._model, secrets=self._secrets)
            msg = obj.get("message") or {}
            text = msg.get("content")
            if text:
                self._parts.append(text)
                out.append(ChatDelta(text))
            if msg.get("tool_calls"):
                self._tools.extend(_tool_calls(msg["tool_calls"]))
            if obj.get("done"):
                self._final = obj
        return out

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        try:
            objs = self._parser.feed(chunk)
        except ValueError:
            raise MalformedResponse("stream line is not valid JSON", provider="ollama", model=self._model) from None
        return self._objects(objs)

    def close(self) -> ChatResponse:
        try:
            objs = self._parser.close()
        except ValueError:
            raise MalformedResponse("stream line is not valid JSON", provider="ollama", model=self._model) from None
        self._objects(objs)
        if self._final is None:
            raise StreamInterrupted("stream ended before its done message", provider="ollama", model=self._model)
        content = "".join(self._parts)
        final = self._final
        return ChatResponse(
            content=content,
            usage=_usage(final, self._request, content),
            finish_reason=normalise_finish_reason(final.get("done_reason") or "stop"),
            tool_calls=self._tools,
            provider_model=final.get("model"),
        )
