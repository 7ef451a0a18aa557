"""The wire formats the fake server speaks: request parsing, reply bodies, stream frames and error bodies.

One class per format family:

* :class:`OpenAIFormat` - OpenAI Chat Completions (also what the HuggingFace router and Ollama's ``/v1`` speak):
  ``data: {...}`` SSE chunks, the ``stream_options.include_usage`` usage chunk with empty ``choices``,
  ``data: [DONE]``, streamed ``tool_calls`` deltas, ``{"error": {...}}`` bodies.
* :class:`OpenRouterFormat` - the OpenAI format as OpenRouter sends it: ``gen-`` ids, a ``provider`` field,
  ``: OPENROUTER PROCESSING`` comment lines, numeric ``error.code``, mid-stream errors as a chunk with an
  ``error`` field and ``finish_reason: "error"``.
* :class:`AnthropicFormat` - the Messages API: ``x-api-key`` and ``anthropic-version`` headers, required
  ``max_tokens``, top-level ``system``, content blocks, named SSE events, ``{"type": "error", ...}`` bodies,
  and prompt caching: ``cache_control`` breakpoints (:func:`anthropic_cache_plan`) and the usage that reports
  cache writes and reads (:class:`CacheUsage`).
* :class:`OllamaFormat` - Ollama's native ``/api/chat``: NDJSON streaming (on by default), a final object with
  ``done: true``, ``done_reason``, ``prompt_eval_count`` and ``eval_count``; errors as ``{"error": "..."}``.

Everything here is pure: it builds bytes from a :class:`~._behaviour.Reply`, and never touches a socket.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, ClassVar, Final

from asyncrouter._tokens import estimate_tokens, message_text

from ._behaviour import FakeModel, FakeRequest, Reply, ToolSpec, WireFormat

__all__ = [
    "AnthropicFormat",
    "CachePlan",
    "CacheUsage",
    "ErrorContext",
    "ErrorOut",
    "Format",
    "OllamaFormat",
    "OpenAIFormat",
    "OpenRouterFormat",
    "anthropic_cache_plan",
]

JSON_CONTENT_TYPE: Final = "application/json"
SSE_CONTENT_TYPE: Final = "text/event-stream; charset=utf-8"
NDJSON_CONTENT_TYPE: Final = "application/x-ndjson"
OPENROUTER_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"
DEFAULT_ERROR_WINDOW: Final = 4096
_MODEL_CREATED: Final = 1_735_689_600  # 2025-01-01, a stable "created" for model listings
#: Anthropic refuses more cache_control blocks than this in one request.
MAX_CACHE_BREAKPOINTS: Final = 4


# The C-accelerated JSON string quoter: splicing quoted pieces into a prebuilt chunk is the stream hot path.
_quote: Callable[[str], str] = encode_basestring


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sse(data: Any) -> bytes:
    return f"data: {_dumps(data)}\n\n".encode()


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {_dumps(data)}\n\n".encode()


def _ratelimit_headers(seconds: float) -> dict[str, str]:
    # Both spellings: Retry-After (seconds, the standard) and retry-after-ms (OpenAI's, finer grained).
    return {"Retry-After": f"{seconds:g}", "retry-after-ms": str(round(seconds * 1000))}


def _mask_key(key: str | None) -> str:
    if not key:
        return ""
    return key[:3] + "*" * 8 + key[-4:] if len(key) > 8 else "*" * len(key)


@lru_cache(maxsize=256)
def _fingerprint(model: str) -> str:
    return "fp_" + hashlib.blake2b(model.encode(), digest_size=5).hexdigest()


@dataclass(frozen=True, slots=True)
class ErrorOut:
    """An error reply: status, body bytes and extra headers."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE

    @property
    def reason(self) -> str | None:
        # 529 is not in http.HTTPStatus; aiohttp needs the phrase spelled out.
        return "Overloaded" if self.status == 529 else None


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What an error body may mention."""

    model: str | None = None
    retry_after: float = 1.0
    prompt_tokens: int = 0
    context_window: int | None = None
    api_key: str | None = None
    request_token: str = "0" * 24
    message: str = ""
    param: str | None = None


class Invalid(Exception):
    """Raised by a parser: the request is invalid the way the real API would say."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.message = message
        self.param = param
        super().__init__(message)


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization") or headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _text_messages(messages: Sequence[Any], *, system: str | None = None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        if isinstance(m, Mapping):
            out.append({"role": str(m.get("role", "user")), "content": _content_text(m)})
    return out


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        # Anthropic tool_result blocks nest their text one level deeper.
        parts = []
        for block in content:
            if isinstance(block, Mapping) and block.get("type") == "tool_result":
                inner = block.get("content")
                parts.append(inner if isinstance(inner, str) else message_text({"content": inner}))
            elif isinstance(block, Mapping) and block.get("type") == "tool_use":
                parts.append(_dumps(block.get("input", {})))
            else:
                parts.append(message_text({"content": [block]}))
        return "\n".join(p for p in parts if p)
    return message_text(message)


def _last_user_text(messages: Sequence[Mapping[str, str]]) -> str:
    for m in reversed(messages):
        if m["role"] == "user":
            return m["content"]
    return messages[-1]["content"] if messages else ""


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"Invalid '{name}': integer below minimum value. Expected a value >= 1.", param=name)
    return value


def _openai_tools(body: Mapping[str, Any]) -> tuple[list[ToolSpec], str]:
    tools: list[ToolSpec] = []
    raw = body.get("tools")
    if isinstance(raw, list):
        for t in raw:
            fn = t.get("function") if isinstance(t, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
                params = fn.get("parameters")
                tools.append(ToolSpec(name=fn["name"], parameters=params if isinstance(params, Mapping) else {}))
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else None
        return tools, str(name) if name else "required"
    return tools, choice if choice in ("auto", "none", "required") else "auto"


class Format(abc.ABC):
    """The parts every wire format shares; subclasses fill in the bytes."""

    name: ClassVar[WireFormat]
    stream_content_type: ClassVar[str] = SSE_CONTENT_TYPE
    #: whether a request without any key is refused even when the server accepts any key
    key_required: ClassVar[bool] = True

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return _bearer(headers)

    def request_id(self, request_token: str) -> str:
        return f"req_{request_token}"

    def response_headers(self, request_token: str) -> dict[str, str]:
        return {"x-request-id": self.request_id(request_token)}

    @abc.abstractmethod
    def parse(self, body: Any, headers: Mapping[str, str]) -> FakeRequest: ...

    @abc.abstractmethod
    def error(self, kind: str, ctx: ErrorContext) -> ErrorOut: ...

    @abc.abstractmethod
    def body(self, reply: Reply) -> bytes: ...

    def malformed_body(self, reply: Reply) -> bytes:
        """A 200 body that is cut off mid-JSON."""
        full = self.body(reply)
        return full[: max(1, len(full) // 2)]

    def stream_preamble(self) -> bytes:
        """Bytes sent as soon as the stream opens, before the model's latency (OpenRouter's comment)."""
        return b""

    @abc.abstractmethod
    def stream_open(self, reply: Reply) -> list[bytes]: ...

    @abc.abstractmethod
    def stream_pieces(self, reply: Reply) -> list[bytes]: ...

    @abc.abstractmethod
    def stream_close(self, reply: Reply) -> list[bytes]: ...

    @abc.abstractmethod
    def stream_error(self, reply: Reply) -> bytes: ...

    @abc.abstractmethod
    def stream_malformed(self, reply: Reply) -> bytes: ...

    @abc.abstractmethod
    def listing(self, models: Sequence[FakeModel]) -> Any: ...


# --------------------------------------------------------------------------------------------------- OpenAI

_OPENAI_ERRORS: Final[dict[str, tuple[int, str, str | None, str]]] = {
    "500": (500, "server_error", None, "The server had an error while processing your request. Sorry about that!"),
    "502": (502, "server_error", None, "Bad gateway."),
    "503": (503, "server_error", None, "Service Unavailable."),
    "overloaded": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
    "quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    ),
    "missing_key": (
        401,
        "invalid_request_error",
        None,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using "
        "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    ),
    "400": (400, "invalid_request_error", None, "Invalid request: the fake provider was scripted to reject it."),
    "content_policy": (
        400,
        "invalid_request_error",
        "content_policy_violation",
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
        "allowed by our safety system.",
    ),
}


class OpenAIFormat(Format):
    """OpenAI Chat Completions, as served at ``/v1/chat/completions``."""

    name: ClassVar[WireFormat] = "openai"
    key_required: ClassVar[bool] = False  # Ollama's and other OpenAI-compatible servers share this path
    id_prefix: ClassVar[str] = "chatcmpl-"

    def response_headers(self, request_token: str) -> dict[str, str]:
        return {
            "x-request-id": self.request_id(request_token),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-limit-tokens": "10000000",
            "x-ratelimit-remaining-tokens": "9999000",
        }

    def completion_id(self, reply: Reply) -> str:
        return self.id_prefix + reply.token

    # -- requests

    def parse(self, body: Any, headers: Mapping[str, str]) -> FakeRequest:
        if not isinstance(body, Mapping):
            raise Invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
                "valid JSON.)"
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise Invalid("you must provide a model parameter", param="model")
        raw = body.get("messages")
        if not isinstance(raw, list):
            raise Invalid("Missing required parameter: 'messages'.", param="messages")
        if not raw:
            raise Invalid("Invalid 'messages': empty array. Expected an array with minimum length 1.", param="messages")
        messages = _text_messages(raw)
        stream = body.get("stream") is True
        options = body.get("stream_options")
        include_usage = stream and isinstance(options, Mapping) and options.get("include_usage") is True
        max_tokens = _int_or_none(body.get("max_completion_tokens"), "max_completion_tokens")
        if max_tokens is None:
            max_tokens = _int_or_none(body.get("max_tokens"), "max_tokens")
        json_mode, schema = False, None
        fmt = body.get("response_format")
        if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
            json_mode = True
            spec = fmt.get("json_schema")
            if isinstance(spec, Mapping) and isinstance(spec.get("schema"), Mapping):
                schema = spec["schema"]
        tools, choice = _openai_tools(body)
        last = raw[-1]
        return FakeRequest(
            model=model,
            format=self.name,
            messages=messages,
            prompt=_last_user_text(messages),
            max_tokens=max_tokens,
            stream=stream,
            json_mode=json_mode,
            json_schema=schema,
            tools=tools,
            tool_choice=choice,
            include_usage=include_usage,
            stop=_stops(body.get("stop")),
            api_key=self.api_key(headers),
            body=body,
            after_tool_result=isinstance(last, Mapping) and last.get("role") == "tool",
        )

    # -- errors

    def error_body(self, message: str, etype: str, code: str | None, param: str | None, status: int) -> Any:
        return {"error": {"message": message, "type": etype, "param": param, "code": code}}

    def error(self, kind: str, ctx: ErrorContext) -> ErrorOut:
        headers = self.response_headers(ctx.request_token)
        param: str | None = None
        if kind in ("529", "overloaded"):
            status, etype, code, message = _OPENAI_ERRORS["overloaded"]
        elif kind in _OPENAI_ERRORS:
            status, etype, code, message = _OPENAI_ERRORS[kind]
        elif kind == "429":
            status, etype, code = 429, "requests", "rate_limit_exceeded"
            message = (
                f"Rate limit reached for {ctx.model} in organization org-fake on requests per min (RPM): "
                f"Limit 500, Used 500, Requested 1. Please try again in {ctx.retry_after:g}s."
            )
            headers.update(_ratelimit_headers(ctx.retry_after))
        elif kind in ("401", "bad_key"):
            status, etype, code = 401, "invalid_request_error", "invalid_api_key"
            message = (
                f"Incorrect API key provided: {_mask_key(ctx.api_key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
        elif kind == "context_length":
            window = ctx.context_window or DEFAULT_ERROR_WINDOW
            status, etype, code, param = 400, "invalid_request_error", "context_length_exceeded", "messages"
            message = (
                f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                f"{max(ctx.prompt_tokens, window + 1)} tokens. Please reduce the length of the messages."
            )
        elif kind == "not_found":
            status, etype, code = 404, "invalid_request_error", "model_not_found"
            message = f"The model `{ctx.model}` does not exist or you do not have access to it."
        else:  # "invalid" and anything unforeseen: a plain 400
            status, etype, code, param, message = 400, "invalid_request_error", None, ctx.param, ctx.message
        body = self.error_body(message, etype, code, param, status)
        return ErrorOut(status=status, body=_dumps(body).encode(), headers=headers)

    # -- complete bodies

    def usage_object(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def tool_call_objects(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{c.token}",
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json},
            }
            for c in reply.tool_calls
        ]

    def envelope(self, reply: Reply, obj: str) -> dict[str, Any]:
        return {
            "id": self.completion_id(reply),
            "object": obj,
            "created": int(reply.created),
            "model": reply.model,
            "service_tier": "default",
            "system_fingerprint": _fingerprint(reply.model),
        }

    def body(self, reply: Reply) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = self.tool_call_objects(reply)
        out = self.envelope(reply, "chat.completion")
        out["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}]
        if reply.usage:
            out["usage"] = self.usage_object(reply)
        return _dumps(out).encode()

    # -- streams

    def sends_stream_usage(self, reply: Reply) -> bool:
        return reply.usage and reply.include_usage

    def _chunk(self, reply: Reply, delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = self.envelope(reply, "chat.completion.chunk")
        out["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if reply.include_usage:
            out["usage"] = None
        return out

    def stream_open(self, reply: Reply) -> list[bytes]:
        if reply.tool_calls:
            return []  # the first tool-call delta carries the role
        return [_sse(self._chunk(reply, {"role": "assistant", "content": "", "refusal": None}))]

    def stream_pieces(self, reply: Reply) -> list[bytes]:
        if reply.tool_calls:
            return self._tool_pieces(reply)
        # The bulk of a stream: build the chunk's JSON once and splice each piece in, instead of a full
        # json.dumps per word.
        sample = _dumps(self._chunk(reply, {"content": "\x00"}))
        head, _, tail = sample.partition('"\\u0000"')
        return [f"data: {head}{_quote(piece)}{tail}\n\n".encode() for piece in reply.pieces]

    def _tool_pieces(self, reply: Reply) -> list[bytes]:
        frames: list[bytes] = []
        for index, call in enumerate(reply.tool_calls):
            first = {
                "index": index,
                "id": f"call_{call.token}",
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [first]}
            if index == 0:
                delta = {"role": "assistant", "content": None, **delta, "refusal": None}
            frames.append(_sse(self._chunk(reply, delta)))
            args = call.arguments_json
            for i in range(0, len(args), 8):
                part = {"index": index, "function": {"arguments": args[i : i + 8]}}
                frames.append(_sse(self._chunk(reply, {"tool_calls": [part]})))
        return frames

    def stream_close(self, reply: Reply) -> list[bytes]:
        frames = [_sse(self._chunk(reply, {}, reply.finish))]
        if self.sends_stream_usage(reply):
            final = self.envelope(reply, "chat.completion.chunk")
            final["choices"] = []
            final["usage"] = self.usage_object(reply)
            frames.append(_sse(final))
        frames.append(b"data: [DONE]\n\n")
        return frames

    def stream_error(self, reply: Reply) -> bytes:
        return _sse(
            {
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )

    def stream_malformed(self, reply: Reply) -> bytes:
        good = _dumps(self._chunk(reply, {"content": " truncated"}))
        return f"data: {good[: len(good) // 2]}\n\n".encode()

    def listing(self, models: Sequence[FakeModel]) -> Any:
        return {
            "object": "list",
            "data": [
                {"id": m.name, "object": "model", "created": _MODEL_CREATED, "owned_by": "asyncrouter-fake"}
                for m in models
            ],
        }


# ----------------------------------------------------------------------------------------------- OpenRouter

_OPENROUTER_ERRORS: Final[dict[str, tuple[int, str]]] = {
    "500": (500, "Internal Server Error"),
    "502": (502, "Provider returned error"),
    "503": (503, "Service Unavailable"),
    "overloaded": (503, "Provider returned error: overloaded"),
    "quota": (402, "Insufficient credits. Add more using https://openrouter.ai/settings/credits"),
    "missing_key": (401, "No auth credentials found"),
    "401": (401, "User not found."),
    "bad_key": (401, "User not found."),
    "400": (400, "Invalid request: the fake provider was scripted to reject it."),
}


class OpenRouterFormat(OpenAIFormat):
    """The OpenAI format as OpenRouter serves it at ``/api/v1/chat/completions``.

    Differences that matter to a client: a quota error is HTTP 402, a moderation refusal is HTTP 403 with
    ``metadata.reasons``, an unknown model is HTTP 400, ``error.code`` is the numeric status, streams carry
    ``: OPENROUTER PROCESSING`` comments and always end with usage, and a failure after HTTP 200 arrives as a
    chunk with an ``error`` field and ``finish_reason: "error"``.
    """

    name: ClassVar[WireFormat] = "openrouter"
    key_required: ClassVar[bool] = True
    provider_name: ClassVar[str] = "Fake"

    def completion_id(self, reply: Reply) -> str:
        return f"gen-{int(reply.created)}-{reply.token[:20]}"

    def response_headers(self, request_token: str) -> dict[str, str]:
        return {"x-generation-id": f"gen-{request_token[:20]}", "x-request-id": self.request_id(request_token)}

    def envelope(self, reply: Reply, obj: str) -> dict[str, Any]:
        return {
            "id": self.completion_id(reply),
            "provider": self.provider_name,
            "model": reply.model,
            "object": obj,
            "created": int(reply.created),
            "system_fingerprint": _fingerprint(reply.model),
        }

    def sends_stream_usage(self, reply: Reply) -> bool:
        return reply.usage

    def usage_object(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "cost": 0,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def error(self, kind: str, ctx: ErrorContext) -> ErrorOut:
        headers = self.response_headers(ctx.request_token)
        metadata: dict[str, Any] | None = None
        if kind in ("529", "overloaded"):
            status, message = _OPENROUTER_ERRORS["overloaded"]
            metadata = {
                "provider_name": self.provider_name,
                "raw": '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            }
        elif kind in _OPENROUTER_ERRORS:
            status, message = _OPENROUTER_ERRORS[kind]
        elif kind == "429":
            status, message = 429, f"Rate limit exceeded: {ctx.model} is temporarily rate-limited upstream."
            headers.update(_ratelimit_headers(ctx.retry_after))
        elif kind == "context_length":
            window = ctx.context_window or DEFAULT_ERROR_WINDOW
            status = 400
            message = (
                f"This endpoint's maximum context length is {window} tokens. However, you requested about "
                f"{max(ctx.prompt_tokens, window + 1)} tokens. Please reduce the length of either one, or use "
                'the "middle-out" transform to compress your prompt automatically.'
            )
        elif kind == "content_policy":
            status = 403
            message = f'{ctx.model} requires moderation on OpenRouter. Your input was flagged for "harassment".'
            metadata = {
                "reasons": ["harassment"],
                "flagged_input": "...",
                "provider_name": self.provider_name,
                "model_slug": ctx.model,
            }
        elif kind == "not_found":
            status, message = 400, f"{ctx.model} is not a valid model ID"
        else:
            status, message = 400, ctx.message
        error: dict[str, Any] = {"code": status, "message": message}
        if metadata is not None:
            error["metadata"] = metadata
        return ErrorOut(status=status, body=_dumps({"error": error}).encode(), headers=headers)

    def stream_preamble(self) -> bytes:
        return OPENROUTER_COMMENT

    def stream_error(self, reply: Reply) -> bytes:
        out = self.envelope(reply, "chat.completion.chunk")
        out["error"] = {"code": "server_error", "message": "Provider disconnected unexpectedly"}
        out["choices"] = [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
        return _sse(out)

    def listing(self, models: Sequence[FakeModel]) -> Any:
        def price(per_1k: float | None) -> str:
            return f"{(per_1k or 0.0) / 1000:.10f}".rstrip("0").rstrip(".") or "0"

        return {
            "data": [
                {
                    "id": m.name,
                    "name": m.name,
                    "created": _MODEL_CREATED,
                    "description": "A fake model served by asyncrouter.testing.",
                    "context_length": m.context_window or 128_000,
                    "architecture": {"modality": "text->text", "tokenizer": "Other", "instruct_type": None},
                    "pricing": {"prompt": price(m.cost_per_1k_input), "completion": price(m.cost_per_1k_output)},
                    "top_provider": {
                        "context_length": m.context_window or 128_000,
                        "max_completion_tokens": None,
                        "is_moderated": False,
                    },
                }
                for m in models
            ]
        }


# ------------------------------------------------------------------------------------------------ Anthropic

_ANTHROPIC_STOP: Final = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _stops(raw: Any) -> tuple[str, ...]:
    """Stop sequences from a body field: a string or a list of strings (anything else: none)."""
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list):
        return tuple(s for s in raw if isinstance(s, str) and s)
    return ()


def _anthropic_stop(reply: Reply) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for a reply."""
    if reply.stop_sequence is not None:
        return "stop_sequence", reply.stop_sequence
    return _ANTHROPIC_STOP[reply.finish], None
_ANTHROPIC_ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "500": (500, "api_error", "Internal server error"),
    "502": (502, "api_error", "Bad gateway"),
    "503": (503, "api_error", "Service unavailable"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "quota": (
        402,
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
        "or purchase credits.",
    ),
    "missing_key": (401, "authentication_error", "x-api-key header is required"),
    "401": (401, "authentication_error", "invalid x-api-key"),
    "bad_key": (401, "authentication_error", "invalid x-api-key"),
    "400": (400, "invalid_request_error", "Invalid request: the fake provider was scripted to reject it."),
    "content_policy": (400, "invalid_request_error", "Output blocked by content filtering policy"),
}


@dataclass(frozen=True, slots=True)
class CachePlan:
    """The prompt-cache breakpoints of one Anthropic request.

    Attributes:
        breakpoints: for each block carrying ``cache_control``, in prompt order (tools, then system, then
            messages): a key of the whole prefix up to and including that block, and the prefix's estimated
            tokens.
        tools_tokens: the estimated tokens of the tool definitions, which the prompt's message estimate leaves
            out.

    .. versionadded:: 0.1
    """

    breakpoints: tuple[tuple[str, int], ...]
    tools_tokens: int


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """The prompt part of an Anthropic usage object for a request with ``cache_control``.

    Attributes:
        input_tokens: prompt tokens neither written to nor read from the cache (Anthropic's ``input_tokens``).
        cache_creation_input_tokens: prompt tokens written to the cache by this request.
        cache_read_input_tokens: prompt tokens served from the cache.

    .. versionadded:: 0.1
    """

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


def _prompt_blocks(body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The cacheable prompt's blocks in Anthropic's order (tools, system, messages), each with its kind."""
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        yield "tool", tool
    system = body.get("system")
    for block in system if isinstance(system, list) else [system] if system else ():
        yield "system", block
    messages = body.get("messages")
    for m in messages if isinstance(messages, list) else ():
        if isinstance(m, Mapping):
            content = m.get("content")
            role = str(m.get("role"))
            for block in content if isinstance(content, list) else [content]:
                yield role, block


def _cache_marks(body: Mapping[str, Any]) -> list[Any]:
    # A cheap scan (no serialising): most requests carry no cache_control and must not pay for the plan.
    return [b["cache_control"] for _, b in _prompt_blocks(body) if isinstance(b, Mapping) and "cache_control" in b]


def _block_key_and_tokens(kind: str, block: Any) -> tuple[bytes, int]:
    if isinstance(block, Mapping):
        plain = {k: v for k, v in block.items() if k != "cache_control"}
        canonical = _dumps([kind, plain])
        text = block.get("text")
        if not isinstance(text, str):
            content = block.get("content")  # a tool_result with plain content
            text = content if isinstance(content, str) else _dumps(plain)
        return canonical.encode("utf-8", "surrogatepass"), estimate_tokens(text)
    text = block if isinstance(block, str) else ""
    return _dumps([kind, text]).encode("utf-8", "surrogatepass"), estimate_tokens(text)


def anthropic_cache_plan(body: Any) -> CachePlan | None:
    """The cache breakpoints of an Anthropic request body, or ``None`` when no block carries ``cache_control``.

    A prefix's key is a hash of every block up to the breakpoint with their ``cache_control`` left out, so the
    same prefix marked differently is the same cache entry, and a change anywhere before a breakpoint is a miss.

    .. versionadded:: 0.1
    """
    if not isinstance(body, Mapping) or not _cache_marks(body):
        return None
    digest = hashlib.blake2b(digest_size=16)
    total = 0
    tools_tokens = 0
    breakpoints: list[tuple[str, int]] = []
    for kind, block in _prompt_blocks(body):
        key, tokens = _block_key_and_tokens(kind, block)
        digest.update(key + b"\x1e")
        total += tokens
        if kind == "tool":
            tools_tokens += tokens
        if isinstance(block, Mapping) and "cache_control" in block:
            breakpoints.append((digest.copy().hexdigest(), total))
    return CachePlan(breakpoints=tuple(breakpoints), tools_tokens=tools_tokens)


def _check_cache_control(body: Mapping[str, Any]) -> None:
    marks = _cache_marks(body)
    for cc in marks:
        if not isinstance(cc, Mapping) or cc.get("type") != "ephemeral":
            raise Invalid("cache_control.type: Input should be 'ephemeral'")
        if cc.get("ttl", "5m") not in ("5m", "1h"):
            raise Invalid("cache_control.ttl: Input should be '5m' or '1h'")
    if len(marks) > MAX_CACHE_BREAKPOINTS:
        raise Invalid(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}."
        )


class AnthropicFormat(Format):
    """The Anthropic Messages API, as served at ``/v1/messages``."""

    name: ClassVar[WireFormat] = "anthropic"

    def __init__(self, *, cache: CacheUsage | None = None) -> None:
        self._cache = cache

    def with_cache(self, cache: CacheUsage) -> AnthropicFormat:
        """This format for one request whose usage reports *cache* (the server's cache decided it)."""
        return AnthropicFormat(cache=cache)

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or headers.get("X-Api-Key") or None

    def request_id(self, request_token: str) -> str:
        return f"req_011{request_token[:21]}"

    def response_headers(self, request_token: str) -> dict[str, str]:
        return {
            "request-id": self.request_id(request_token),
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
        }

    def parse(self, body: Any, headers: Mapping[str, str]) -> FakeRequest:
        if not (headers.get("anthropic-version") or headers.get("Anthropic-Version")):
            raise Invalid("anthropic-version: header is required")
        if not isinstance(body, Mapping):
            raise Invalid("There was an issue with your request body: expected a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise Invalid("model: Field required")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise Invalid("max_tokens: Field required")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise Invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
        raw = body.get("messages")
        if raw is None:
            raise Invalid("messages: Field required")
        if not isinstance(raw, list):
            raise Invalid("messages: Input should be a valid list")
        if not raw:
            raise Invalid("messages: at least one message is required")
        for i, m in enumerate(raw):
            role = m.get("role") if isinstance(m, Mapping) else None
            if role not in ("user", "assistant"):
                raise Invalid(
                    f'messages.{i}.role: Unexpected role "{role}". The Messages API accepts a top-level `system` '
                    'parameter, not "system" as an input message role.'
                    if role == "system"
                    else f"messages.{i}.role: Input should be 'user' or 'assistant'"
                )
        system = body.get("system")
        if isinstance(system, list):
            system = message_text({"content": system})
        elif system is not None and not isinstance(system, str):
            raise Invalid("system: Input should be a valid string or a list of text blocks")
        _check_cache_control(body)
        messages = _text_messages(raw, system=system)
        tools: list[ToolSpec] = []
        if isinstance(body.get("tools"), list):
            for t in body["tools"]:
                if isinstance(t, Mapping) and isinstance(t.get("name"), str):
                    schema = t.get("input_schema")
                    tools.append(ToolSpec(name=t["name"], parameters=schema if isinstance(schema, Mapping) else {}))
        choice = "auto"
        raw_choice = body.get("tool_choice")
        if isinstance(raw_choice, Mapping):
            kind = raw_choice.get("type")
            if kind == "any":
                choice = "required"
            elif kind == "tool" and isinstance(raw_choice.get("name"), str):
                choice = raw_choice["name"]
            elif kind == "none":
                choice = "none"
        last_content = raw[-1].get("content")
        after_tool = isinstance(last_content, list) and any(
            isinstance(b, Mapping) and b.get("type") == "tool_result" for b in last_content
        )
        return FakeRequest(
            model=model,
            format=self.name,
            messages=messages,
            prompt=_last_user_text(messages),
            max_tokens=max_tokens,
            stream=body.get("stream") is True,
            tools=tools,
            tool_choice=choice,
            stop=_stops(body.get("stop_sequences")),
            api_key=self.api_key(headers),
            body=body,
            after_tool_result=after_tool,
        )

    def error(self, kind: str, ctx: ErrorContext) -> ErrorOut:
        headers = self.response_headers(ctx.request_token)
        if kind in ("529", "overloaded"):
            status, etype, message = _ANTHROPIC_ERRORS["overloaded"]
        elif kind in _ANTHROPIC_ERRORS:
            status, etype, message = _ANTHROPIC_ERRORS[kind]
        elif kind == "429":
            status, etype = 429, "rate_limit_error"
            message = (
                "This request would exceed the rate limit for your organization of 50 requests per minute. "
                "Please try again later."
            )
            headers.update(_ratelimit_headers(ctx.retry_after))
        elif kind == "context_length":
            window = ctx.context_window or DEFAULT_ERROR_WINDOW
            status, etype = 400, "invalid_request_error"
            message = f"prompt is too long: {max(ctx.prompt_tokens, window + 1)} tokens > {window} maximum"
        elif kind == "not_found":
            status, etype, message = 404, "not_found_error", f"model: {ctx.model}"
        else:
            status, etype, message = 400, "invalid_request_error", ctx.message
        body = {
            "type": "error",
            "error": {"type": etype, "message": message},
            "request_id": self.request_id(ctx.request_token),
        }
        return ErrorOut(status=status, body=_dumps(body).encode(), headers=headers)

    def message_id(self, reply: Reply) -> str:
        return f"msg_01{reply.token[:22]}"

    def _usage(self, reply: Reply, *, output_tokens: int) -> dict[str, Any]:
        cache = self._cache
        return {
            "input_tokens": reply.prompt_tokens if cache is None else cache.input_tokens,
            "cache_creation_input_tokens": 0 if cache is None else cache.cache_creation_input_tokens,
            "cache_read_input_tokens": 0 if cache is None else cache.cache_read_input_tokens,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _content(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        blocks.extend(
            {"type": "tool_use", "id": f"toolu_01{c.token[:22]}", "name": c.name, "input": dict(c.arguments)}
            for c in reply.tool_calls
        )
        return blocks

    def body(self, reply: Reply) -> bytes:
        stop_reason, stop_sequence = _anthropic_stop(reply)
        out: dict[str, Any] = {
            "id": self.message_id(reply),
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": self._content(reply),
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
        }
        if reply.usage:
            out["usage"] = self._usage(reply, output_tokens=reply.completion_tokens)
        return _dumps(out).encode()

    def stream_open(self, reply: Reply) -> list[bytes]:
        message: dict[str, Any] = {
            "id": self.message_id(reply),
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if reply.usage:
            message["usage"] = self._usage(reply, output_tokens=1)
        frames = [_event("message_start", {"type": "message_start", "message": message})]
        if not reply.tool_calls:
            block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            frames.append(_event("content_block_start", block))
        frames.append(_event("ping", {"type": "ping"}))
        return frames

    def stream_pieces(self, reply: Reply) -> list[bytes]:
        if reply.tool_calls:
            frames: list[bytes] = []
            for index, call in enumerate(reply.tool_calls):
                start = {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": f"toolu_01{call.token[:22]}",
                        "name": call.name,
                        "input": {},
                    },
                }
                frames.append(_event("content_block_start", start))
                args = call.arguments_json
                for i in range(0, len(args), 8):
                    delta = {"type": "input_json_delta", "partial_json": args[i : i + 8]}
                    frames.append(
                        _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                    )
                frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            return frames
        sample = _dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "\x00"}})
        head, _, tail = sample.partition('"\\u0000"')
        return [f"event: content_block_delta\ndata: {head}{_quote(p)}{tail}\n\n".encode() for p in reply.pieces]

    def stream_close(self, reply: Reply) -> list[bytes]:
        frames = []
        if not reply.tool_calls:
            frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        stop_reason, stop_sequence = _anthropic_stop(reply)
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        }
        if reply.usage:
            if self._cache is None:
                delta["usage"] = {"output_tokens": reply.completion_tokens}
            else:
                # As the current API does: message_delta repeats the (cumulative) prompt counts.
                usage = self._usage(reply, output_tokens=reply.completion_tokens)
                delta["usage"] = {k: v for k, v in usage.items() if k != "service_tier"}
        frames.append(_event("message_delta", delta))
        frames.append(_event("message_stop", {"type": "message_stop"}))
        return frames

    def stream_error(self, reply: Reply) -> bytes:
        return _event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def stream_malformed(self, reply: Reply) -> bytes:
        good = _dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " x"}})
        return f"event: content_block_delta\ndata: {good[: len(good) // 2]}\n\n".encode()

    def listing(self, models: Sequence[FakeModel]) -> Any:
        data = [
            {"type": "model", "id": m.name, "display_name": m.name, "created_at": "2025-01-01T00:00:00Z"}
            for m in models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }


# --------------------------------------------------------------------------------------------------- Ollama

_OLLAMA_ERRORS: Final[dict[str, tuple[int, str]]] = {
    "500": (500, "llama runner process has terminated: signal: killed"),
    "502": (502, "bad gateway"),
    "503": (503, "service unavailable"),
    "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
    "quota": (429, "you have exceeded your usage quota, please upgrade or wait for the limit to reset"),
    "missing_key": (401, "unauthorized"),
    "401": (401, "unauthorized"),
    "bad_key": (401, "unauthorized"),
    "400": (400, "invalid request: the fake provider was scripted to reject it"),
    "context_length": (400, "the input length exceeds the context length"),
    "content_policy": (400, "the request was rejected by a content policy"),
}
_OLLAMA_NS_PER_TOKEN: Final = 20_000_000


def _ollama_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OllamaFormat(Format):
    """Ollama's native chat API, as served at ``/api/chat``. Ollama asks for no key."""

    name: ClassVar[WireFormat] = "ollama"
    stream_content_type: ClassVar[str] = NDJSON_CONTENT_TYPE
    key_required: ClassVar[bool] = False

    def response_headers(self, request_token: str) -> dict[str, str]:
        return {}

    def parse(self, body: Any, headers: Mapping[str, str]) -> FakeRequest:
        if not isinstance(body, Mapping):
            raise Invalid("invalid request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise Invalid("model is required")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise Invalid("messages are required")
        messages = _text_messages(raw)
        options = body.get("options")
        num_predict = options.get("num_predict") if isinstance(options, Mapping) else None
        max_tokens = num_predict if isinstance(num_predict, int) and num_predict > 0 else None
        fmt = body.get("format")
        json_mode = fmt == "json" or isinstance(fmt, Mapping)
        tools, _ = _openai_tools(body)
        last = raw[-1]
        return FakeRequest(
            model=model,
            format=self.name,
            messages=messages,
            prompt=_last_user_text(messages),
            max_tokens=max_tokens,
            stream=body.get("stream", True) is not False,  # Ollama streams unless told not to
            json_mode=json_mode,
            json_schema=fmt if isinstance(fmt, Mapping) else None,
            tools=tools,
            stop=_stops(options.get("stop") if isinstance(options, Mapping) else None),
            api_key=self.api_key(headers),
            body=body,
            after_tool_result=isinstance(last, Mapping) and last.get("role") == "tool",
        )

    def error(self, kind: str, ctx: ErrorContext) -> ErrorOut:
        headers: dict[str, str] = {}
        if kind in ("529", "overloaded"):
            status, message = _OLLAMA_ERRORS["overloaded"]
        elif kind in _OLLAMA_ERRORS:
            status, message = _OLLAMA_ERRORS[kind]
        elif kind == "429":
            status, message = 429, "too many requests"
            headers.update(_ratelimit_headers(ctx.retry_after))
        elif kind == "not_found":
            status, message = 404, f'model "{ctx.model}" not found, try pulling it first'
        else:
            status, message = 400, ctx.message
        return ErrorOut(status=status, body=_dumps({"error": message}).encode(), headers=headers)

    def _final(self, reply: Reply, content: str, *, with_tools: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if with_tools and reply.tool_calls:
            message["tool_calls"] = [
                {"function": {"index": i, "name": c.name, "arguments": dict(c.arguments)}}
                for i, c in enumerate(reply.tool_calls)
            ]
        out: dict[str, Any] = {
            "model": reply.model,
            "created_at": _ollama_time(reply.created),
            "message": message,
            "done": True,
            "done_reason": "length" if reply.finish == "length" else "stop",
        }
        if reply.usage:
            eval_ns = reply.completion_tokens * _OLLAMA_NS_PER_TOKEN
            prompt_ns = reply.prompt_tokens * _OLLAMA_NS_PER_TOKEN // 10
            out.update(
                total_duration=eval_ns + prompt_ns + 1_000_000,
                load_duration=1_000_000,
                prompt_eval_count=reply.prompt_tokens,
                prompt_eval_duration=prompt_ns,
                eval_count=reply.completion_tokens,
                eval_duration=eval_ns,
            )
        return out

    def body(self, reply: Reply) -> bytes:
        return _dumps(self._final(reply, reply.text, with_tools=True)).encode()

    def _line(self, reply: Reply, message: Mapping[str, Any]) -> bytes:
        obj = {"model": reply.model, "created_at": _ollama_time(reply.created), "message": message, "done": False}
        return (_dumps(obj) + "\n").encode()

    def stream_open(self, reply: Reply) -> list[bytes]:
        return []

    def stream_pieces(self, reply: Reply) -> list[bytes]:
        if reply.tool_calls:
            final = self._final(reply, "", with_tools=True)
            return [self._line(reply, final["message"])]
        when = _ollama_time(reply.created)
        sample = _dumps(
            {
                "model": reply.model,
                "created_at": when,
                "message": {"role": "assistant", "content": "\x00"},
                "done": False,
            }
        )
        head, _, tail = sample.partition('"\\u0000"')
        return [f"{head}{_quote(p)}{tail}\n".encode() for p in reply.pieces]

    def stream_close(self, reply: Reply) -> list[bytes]:
        return [(_dumps(self._final(reply, "", with_tools=False)) + "\n").encode()]

    def stream_error(self, reply: Reply) -> bytes:
        return b'{"error":"an error was encountered while running the model: unexpected EOF"}\n'

    def stream_malformed(self, reply: Reply) -> bytes:
        good = self._line(reply, {"role": "assistant", "content": " x"})
        return good[: len(good) // 2] + b"\n"

    def listing(self, models: Sequence[FakeModel]) -> Any:
        return {
            "models": [
                {
                    "name": m.name,
                    "model": m.name,
                    "modified_at": "2025-01-01T00:00:00Z",
                    "size": 1_000_000,
                    "digest": hashlib.sha256(m.name.encode()).hexdigest(),
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "fake",
                        "families": ["fake"],
                        "parameter_size": "1B",
                        "quantization_level": "Q4_0",
                    },
                }
                for m in models
            ]
        }
