"""Anthropic's Messages API: ``x-api-key`` + ``anthropic-version`` headers, a required ``max_tokens``, the
system prompt split out of the messages, content blocks, and its SSE event types."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._config import ModelConfig
from .._exceptions import MalformedResponse, StreamInterrupted
from .._http import error_from_payload
from .._models import ChatDelta, ChatRequest, ChatResponse, StreamEvent
from .._sse import SSEParser
from ._base import normalise_finish_reason, text_of, usage_or_estimate

__all__ = ["DEFAULT_ANTHROPIC_MAX_TOKENS", "AnthropicFormat"]

#: Anthropic requires max_tokens; used when neither the request nor the model config gives one.
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096
_JSON_INSTRUCTION = "Respond with a single valid JSON value and nothing else."


def _convert_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """OpenAI-style messages -> (system, Anthropic messages). Tool calls and results become blocks."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(text_of(m.get("content")))
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.get("tool_call_id", ""),
                "content": text_of(m.get("content")),
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        content = m.get("content")
        if role == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            text = text_of(content)
            if text:
                blocks.append({"type": "text", "text": text})
            for tc in m["tool_calls"]:
                fn = tc.get("function") or {}
                args = fn.get("arguments") or "{}"
                try:
                    parsed = json.loads(args) if isinstance(args, str) else args
                except ValueError:
                    parsed = {"_raw": args}
                blocks.append({"type": "tool_use", "id": tc.get("id", ""), "name": fn.get("name", ""), "input": parsed})
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": "assistant" if role == "assistant" else "user", "content": content if content else ""})
    return ("\n\n".join(s for s in system if s) or None), out


def _convert_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fn = t.get("function", t)
        out.append(
            {
                "name": fn.get("name", ""),
                "description": fn.get("description", ""),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return out


def _convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name:
            return {"type": "tool", "name": name}
    return None


_usage = usage_or_estimate


class AnthropicFormat:
    kind = "anthropic"

    def __repr__(self) -> str:
        return "AnthropicFormat()"

    def url(self, model: ModelConfig, *, stream: bool) -> str:
        base = model.resolved_base_url
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def headers(self, model: ModelConfig, key: str | None) -> dict[str, str]:
        h = dict(model.headers)
        h["anthropic-version"] = model.anthropic_version
        if key:
            h["x-api-key"] = key
        return h

    def build_request(self, request: ChatRequest, model: ModelConfig) -> dict[str, Any]:
        system, messages = _convert_messages(request.messages)
        if request.response_format and request.response_format.get("type") in ("json_object", "json_schema"):
            # The Messages API has no JSON mode; ask for it in the system prompt so the JSON gate can judge it.
            schema = (request.response_format.get("json_schema") or {}).get("schema")
            extra = _JSON_INSTRUCTION + (f" It must match this JSON schema: {json.dumps(schema)}" if schema else "")
            system = f"{system}\n\n{extra}" if system else extra
        body: dict[str, Any] = {
            "model": request.model_id,
            "messages": messages,
            "max_tokens": request.max_tokens or model.max_output_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(1.0, request.temperature)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = request.stop
        if request.tools:
            body["tools"] = _convert_tools(request.tools)
            tc = _convert_tool_choice(request.tool_choice)
            if tc is not None:
                body["tool_choice"] = tc
        if request.user is not None:
            body["metadata"] = {"user_id": request.user}
        if request.stream:
            body["stream"] = True
        if request.extra:
            body.update(request.extra)
        return body

    def parse_response(self, data: Any, *, model: ModelConfig, request: ChatRequest) -> ChatResponse:
        if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
            raise MalformedResponse("reply has no content blocks", provider=self.kind, model=model.name)
        texts: list[str] = []
        tools: list[dict[str, Any]] = []
        for block in data["content"]:
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                tools.append(
                    {
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": json.dumps(block.get("input", {}))},
                    }
                )
        content = "".join(texts)
        usage = data.get("usage") or {}
        return ChatResponse(
            content=content,
            usage=_usage(usage.get("input_tokens"), usage.get("output_tokens"), request, content),
            finish_reason=normalise_finish_reason(data.get("stop_reason")),
            tool_calls=tools,
            provider_model=data.get("model"),
        )

    def stream_decoder(self, *, model: ModelConfig, request: ChatRequest, secrets: Sequence[str]) -> _AnthropicStream:
        return _AnthropicStream(model.name, request, secrets)


class _AnthropicStream:
    __slots__ = (
        "_blocks",
        "_finish",
        "_in",
        "_model",
        "_out",
        "_parser",
        "_parts",
        "_provider_model",
        "_request",
        "_secrets",
        "_stopped",
    )

    def __init__(self, model: str, request: ChatRequest, secrets: Sequence[str]) -> None:
        self._model = model
        self._request = request
        self._secrets = secrets
        self._parser = SSEParser()
        self._parts: list[str] = []
        self._blocks: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._in: Any = None
        self._out: Any = None
        self._stopped = False
        self._provider_model: str | None = None

    def _bad(self, what: str) -> MalformedResponse:
        return MalformedResponse(what, provider="anthropic", model=self._model)

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for ev in self._parser.feed(chunk):
            if not ev.data:
                continue
            try:
                obj = json.loads(ev.data)
            except ValueError:
                raise self._bad("stream event is not valid JSON") from None
            if not isinstance(obj, Mapping):
                raise self._bad("stream event is not a JSON object")
            etype = obj.get("type") or ev.event
            if etype == "content_block_delta":
                delta = obj.get("delta") or {}
                if delta.get("type") == "text_delta":
                    text = delta.get("text") or ""
                    if text:
                        self._parts.append(text)
                        out.append(ChatDelta(text))
                elif delta.get("type") == "input_json_delta":
                    slot = self._blocks.get(int(obj.get("index", -1)))
                    if slot is not None:
                        slot["function"]["arguments"] += delta.get("partial_json") or ""
            elif etype == "content_block_start":
                block = obj.get("content_block") or {}
                if block.get("type") == "tool_use":
                    self._blocks[int(obj.get("index", len(self._blocks)))] = {
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""},
                    }
                elif block.get("type") == "text" and block.get("text"):
                    self._parts.append(block["text"])
                    out.append(ChatDelta(block["text"]))
            elif etype == "message_start":
                msg = obj.get("message") or {}
                self._provider_model = msg.get("model")
                usage = msg.get("usage") or {}
                self._in = usage.get("input_tokens", self._in)
                if isinstance(usage.get("output_tokens"), int):
                    self._out = usage["output_tokens"]
            elif etype == "message_delta":
                delta = obj.get("delta") or {}
                if delta.get("stop_reason"):
                    self._finish = normalise_finish_reason(delta["stop_reason"])
                usage = obj.get("usage") or {}
                if isinstance(usage.get("output_tokens"), int):
                    self._out = usage["output_tokens"]
                if isinstance(usage.get("input_tokens"), int):
                    self._in = usage["input_tokens"]
            elif etype == "message_stop":
                self._stopped = True
            elif etype == "error":
                raise error_from_payload(None, obj, provider="anthropic", model=self._model, secrets=self._secrets)
        return out

    def close(self) -> ChatResponse:
        self._parser.close()
        if not self._stopped:
            raise StreamInterrupted("stream ended before message_stop", provider="anthropic", model=self._model)
        for slot in self._blocks.values():
            if not slot["function"]["arguments"]:
                slot["function"]["arguments"] = "{}"
        content = "".join(self._parts)
        return ChatResponse(
            content=content,
            usage=_usage(self._in, self._out, self._request, content),
            finish_reason=self._finish,
            tool_calls=[self._blocks[i] for i in sorted(self._blocks)],
            provider_model=self._provider_model,
        )
