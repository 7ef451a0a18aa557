"""Anthropic's Messages API: ``x-api-key`` + ``anthropic-version`` headers, a required ``max_tokens``, the
system prompt split out of the messages, content blocks, and its SSE event types.

Prompt caching: a caller's ``cache_control`` survives the conversion wherever OpenAI-compatible clients and
LiteLLM put it (on a text part of a list ``content``, on a whole message, on a tool definition), and a model
with ``prompt_caching: true`` marks the system prompt and the tool definitions itself. Anthropic reports the
cache in its usage (``cache_creation_input_tokens``, ``cache_read_input_tokens``, both beside its uncached
``input_tokens``); :class:`~asyncrouter._models.Usage` carries all three, its ``input_tokens`` being their sum.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._config import ModelConfig
from .._exceptions import MalformedResponse, StreamInterrupted
from .._http import error_from_payload
from .._models import ChatDelta, ChatRequest, ChatResponse, StreamEvent, Usage
from .._sse import SSEParser
from ._base import normalise_finish_reason, text_of, usage_or_estimate

__all__ = ["DEFAULT_ANTHROPIC_MAX_TOKENS", "MAX_CACHE_BREAKPOINTS", "AnthropicFormat"]

#: Anthropic requires max_tokens; used when neither the request nor the model config gives one.
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096
#: Anthropic refuses a request with more ``cache_control`` blocks than this; ``prompt_caching`` adds its
#: marks only while the caller's own leave room.
MAX_CACHE_BREAKPOINTS = 4
_JSON_INSTRUCTION = "Respond with a single valid JSON value and nothing else."
_EPHEMERAL: Mapping[str, str] = {"type": "ephemeral"}


def _text_block(text: str, cache_control: Any = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if isinstance(cache_control, Mapping):
        block["cache_control"] = dict(cache_control)
    return block


def _blocks(content: Any, cache_control: Any = None) -> list[dict[str, Any]]:
    """A message's content as Anthropic blocks; a text part keeps its ``cache_control``.

    A string becomes one text block; a list of OpenAI-style parts keeps each part (bare strings become text
    blocks, other blocks pass as given). A message-level *cache_control* (LiteLLM's spelling) goes on the last
    block, unless that block has its own. Empty text is dropped: Anthropic rejects empty text blocks.
    """
    out: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            out.append(_text_block(content))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                if part:
                    out.append(_text_block(part))
            elif isinstance(part, Mapping):
                block = dict(part)
                if "type" not in block and isinstance(block.get("text"), str):
                    block["type"] = "text"
                if block.get("type") == "text" and not block.get("text"):
                    continue
                out.append(block)
    elif content is not None:
        text = text_of(content)
        if text:
            out.append(_text_block(text))
    if out and isinstance(cache_control, Mapping) and "cache_control" not in out[-1]:
        out[-1]["cache_control"] = dict(cache_control)
    return out


def _has_cache_mark(content: Any) -> bool:
    return isinstance(content, list) and any(isinstance(p, Mapping) and "cache_control" in p for p in content)


def _last_cache_control(content: Any) -> Any:
    if isinstance(content, list):
        for part in reversed(content):
            if isinstance(part, Mapping) and isinstance(part.get("cache_control"), Mapping):
                return part["cache_control"]
    return None


def _convert_messages(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[dict[str, Any]]]:
    """OpenAI-style messages -> (the system messages, Anthropic messages). Tool calls and results become blocks.

    Content stays a plain string where it was one and nothing asks for caching, so the wire is what it always
    was; ``cache_control`` (on a part or on the message) turns a message's content into blocks that keep it.
    """
    system: list[Mapping[str, Any]] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(m)
            continue
        content = m.get("content")
        message_cc = m.get("cache_control")
        if role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": m.get("tool_call_id", ""),
                "content": text_of(content),
            }
            # Anthropic takes cache_control on the tool_result block itself, so a part's mark moves up to it.
            cc = message_cc if isinstance(message_cc, Mapping) else _last_cache_control(content)
            if isinstance(cc, Mapping):
                block["cache_control"] = dict(cc)
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if role == "assistant" and m.get("tool_calls"):
            if _has_cache_mark(content) or isinstance(message_cc, Mapping):
                blocks = _blocks(content, message_cc)
            else:
                text = text_of(content)
                blocks = [{"type": "text", "text": text}] if text else []
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
        if isinstance(message_cc, Mapping) or isinstance(content, list):
            converted: Any = _blocks(content, message_cc) or ""
        else:
            converted = content if content else ""
        out.append({"role": "assistant" if role == "assistant" else "user", "content": converted})
    return system, out


def _system_blocks(system: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The system messages as text blocks (the only kind Anthropic's ``system`` takes)."""
    out: list[dict[str, Any]] = []
    for m in system:
        content = m.get("content")
        if isinstance(content, list):
            blocks = [b for b in _blocks(content) if b.get("type") == "text"]
            cc = m.get("cache_control")
            if blocks and isinstance(cc, Mapping) and "cache_control" not in blocks[-1]:
                blocks[-1]["cache_control"] = dict(cc)
        else:
            blocks = _blocks(text_of(content), m.get("cache_control"))
        out.extend(blocks)
    return out


def _system_text(system: Sequence[Mapping[str, Any]]) -> str | None:
    """The system messages as one string, as sent when nothing in them asks for caching."""
    return "\n\n".join(t for t in (text_of(m.get("content")) for m in system) if t) or None


def _convert_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fn = t.get("function", t)
        tool: dict[str, Any] = {
            "name": fn.get("name", ""),
            "description": fn.get("description", ""),
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        cc = t.get("cache_control", fn.get("cache_control"))
        if isinstance(cc, Mapping):
            tool["cache_control"] = dict(cc)
        out.append(tool)
    return out


def _count_cache_marks(
    tools: Sequence[Mapping[str, Any]], system: Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]]
) -> int:
    n = sum("cache_control" in t for t in tools) + sum("cache_control" in b for b in system)
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            n += sum(isinstance(b, Mapping) and "cache_control" in b for b in content)
    return n


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


def _count(value: Any) -> int:
    # Anthropic sends null for a cache count it has nothing to say about (and older API versions omit it).
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage(
    input_tokens: Any, output_tokens: Any, request: ChatRequest, content: str, *, written: int = 0, read: int = 0
) -> Usage:
    """Anthropic's usage as a :class:`Usage`: its ``input_tokens`` leave out the cached prompt, ours add it in."""
    base = usage_or_estimate(input_tokens, output_tokens, request, content)
    if not (written or read):
        return base
    # An estimate covers the whole prompt already; a reported count is the uncached part only.
    total = (
        base.input_tokens + written + read if isinstance(input_tokens, int) else max(base.input_tokens, written + read)
    )
    return Usage(total, base.output_tokens, base.estimated, written, read)


class AnthropicFormat:
    kind = "anthropic"

    def __repr__(self) -> str:
        return "AnthropicFormat()"

    def url(self, model: ModelConfig, *, stream: bool) -> str:
        base = model.resolved_base_url
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def models_url(self, model: ModelConfig) -> str:
        return self.url(model, stream=False).removesuffix("/messages") + "/models"

    def headers(self, model: ModelConfig, key: str | None) -> dict[str, str]:
        h = dict(model.headers)
        h["anthropic-version"] = model.anthropic_version
        if key:
            h["x-api-key"] = key
        return h

    def build_request(self, request: ChatRequest, model: ModelConfig) -> dict[str, Any]:
        system_messages, messages = _convert_messages(request.messages)
        system_blocks = _system_blocks(system_messages)
        tools = _convert_tools(request.tools) if request.tools else []
        if model.prompt_caching:
            # The cached prefix runs tools -> system -> messages, so the system mark covers the tools too; the
            # tools' own mark still pays off when the system prompt changes and the tools do not.
            room = MAX_CACHE_BREAKPOINTS - _count_cache_marks(tools, system_blocks, messages)
            for blocks in (system_blocks, tools):
                if room > 0 and blocks and "cache_control" not in blocks[-1]:
                    blocks[-1]["cache_control"] = dict(_EPHEMERAL)
                    room -= 1
        system: str | list[dict[str, Any]] | None
        if any("cache_control" in b for b in system_blocks):
            system = system_blocks
        else:
            system = _system_text(system_messages)
        if request.response_format and request.response_format.get("type") in ("json_object", "json_schema"):
            # The Messages API has no JSON mode; ask for it in the system prompt so the JSON gate can judge it.
            schema = (request.response_format.get("json_schema") or {}).get("schema")
            extra = _JSON_INSTRUCTION + (f" It must match this JSON schema: {json.dumps(schema)}" if schema else "")
            if isinstance(system, list):
                system.append(_text_block(extra))  # after the cached prefix: a schema change keeps the cache
            else:
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
        if tools:
            body["tools"] = tools
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
            usage=_usage(
                usage.get("input_tokens"),
                usage.get("output_tokens"),
                request,
                content,
                written=_count(usage.get("cache_creation_input_tokens")),
                read=_count(usage.get("cache_read_input_tokens")),
            ),
            finish_reason=normalise_finish_reason(data.get("stop_reason")),
            tool_calls=tools,
            provider_model=data.get("model"),
            stop_sequence=_matched_stop(data),
        )

    def stream_decoder(self, *, model: ModelConfig, request: ChatRequest, secrets: Sequence[str]) -> _AnthropicStream:
        return _AnthropicStream(model.name, request, secrets)


def _matched_stop(data: Mapping[str, Any]) -> str | None:
    """The stop sequence that ended a reply, when Anthropic says one did."""
    matched = data.get("stop_sequence")
    return matched if data.get("stop_reason") == "stop_sequence" and isinstance(matched, str) else None


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
        "_read",
        "_request",
        "_secrets",
        "_stop_sequence",
        "_stopped",
        "_written",
    )

    def __init__(self, model: str, request: ChatRequest, secrets: Sequence[str]) -> None:
        self._model = model
        self._request = request
        self._secrets = secrets
        self._parser = SSEParser()
        self._parts: list[str] = []
        self._blocks: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._stop_sequence: str | None = None
        self._in: Any = None
        self._out: Any = None
        self._stopped = False
        self._provider_model: str | None = None
        self._written = 0
        self._read = 0

    def _cache_counts(self, usage: Mapping[str, Any]) -> None:
        # message_start carries the cache counts; newer API versions repeat them (cumulative) in message_delta,
        # where a null means "nothing new", not zero.
        if usage.get("cache_creation_input_tokens") is not None:
            self._written = _count(usage["cache_creation_input_tokens"])
        if usage.get("cache_read_input_tokens") is not None:
            self._read = _count(usage["cache_read_input_tokens"])

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
                self._cache_counts(usage)
            elif etype == "message_delta":
                delta = obj.get("delta") or {}
                if delta.get("stop_reason"):
                    self._finish = normalise_finish_reason(delta["stop_reason"])
                    self._stop_sequence = _matched_stop(delta)
                usage = obj.get("usage") or {}
                if isinstance(usage.get("output_tokens"), int):
                    self._out = usage["output_tokens"]
                if isinstance(usage.get("input_tokens"), int):
                    self._in = usage["input_tokens"]
                self._cache_counts(usage)
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
            usage=_usage(self._in, self._out, self._request, content, written=self._written, read=self._read),
            finish_reason=self._finish,
            tool_calls=[self._blocks[i] for i in sorted(self._blocks)],
            provider_model=self._provider_model,
            stop_sequence=self._stop_sequence,
        )
