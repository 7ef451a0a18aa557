"""Anthropic's Messages API on the server side: parse ``POST /v1/messages``, render replies, stream events, errors.

This is what lets Claude Code (``ANTHROPIC_BASE_URL=http://127.0.0.1:8080``) and the official ``anthropic``
SDKs use the router. A request is translated into the router's OpenAI-style arguments, and the reply back:

==============================  =========================================================================
Anthropic request               router argument
==============================  =========================================================================
``system`` (string or blocks)   a leading ``{"role": "system"}`` message
``messages`` text blocks        ``content`` (several text blocks of one message joined by a blank line)
``tool_use`` blocks             the assistant message's ``tool_calls`` (``input`` JSON-encoded)
``tool_result`` blocks          ``{"role": "tool", "tool_call_id": ...}`` messages, before the turn's text
``thinking`` blocks             dropped: a model's private reasoning means nothing to another model
``image`` / ``document``        rejected (400): the router routes text
``max_tokens`` (required)       ``max_tokens``
``temperature``, ``top_p``      the same
``stop_sequences``              ``stop``
``tools`` (``input_schema``)    function tools (``parameters``); Anthropic's server tools are rejected
``tool_choice``                 auto -> ``"auto"``, any -> ``"required"``, tool -> the named function,
                                none -> ``"none"``
``metadata.user_id``            ``user``
==============================  =========================================================================

Other fields (``top_k``, ``thinking``, ``service_tier``, ...) are ignored and named in the
``X-AsyncRouter-Ignored-Params`` header, or forwarded unchanged when the operator lists them in
``passthrough_fields``, exactly as for Chat Completions.

Replies: ``stop_reason`` is ``end_turn`` (stop), ``max_tokens`` (length), ``tool_use`` (tool calls),
``stop_sequence`` (when the provider said so) or ``refusal`` (content filter); ``usage`` is the accepted
attempt's tokens. Streams send ``message_start``, ``ping``, one text block (``text_delta`` events) as the model
writes, then a ``tool_use`` block per tool call (its ``input`` as one ``input_json_delta``), ``message_delta``
(``stop_reason``, final ``usage`` and the router's ``x_asyncrouter`` summary) and ``message_stop``.

Errors use Anthropic's shape, ``{"type": "error", "error": {"type": ..., "message": ...}}``, with its statuses:
400 ``invalid_request_error``, 401 ``authentication_error``, 404 ``not_found_error``, 413
``request_too_large``, 429 ``rate_limit_error`` (a spent budget; ``x-should-retry: false``), 5xx ``api_error``,
and 529 ``overloaded_error`` where the OpenAI endpoint says 503 (open breakers, no route; ``Retry-After`` kept).

Pure: no I/O and no clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._models import Response
from .._tokens import estimate_messages_tokens, estimate_tokens
from ._errors import ApiError
from ._wire import ModelTable, meta_summary, take_extra_fields, usage_of

__all__ = [
    "ANTHROPIC_FIELDS",
    "OVERLOADED_REASON",
    "OVERLOADED_STATUS",
    "MessageEventEncoder",
    "MessagesCall",
    "anthropic_error",
    "count_tokens",
    "message_body",
    "parse_messages",
    "stop_reason_of",
]

#: The request fields the router understands on ``POST /v1/messages``.
ANTHROPIC_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
        "stream",
    }
)
_STOP_REASONS: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
}
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
#: Anthropic's own "overloaded" status; aiohttp needs its reason phrase spelled out (not in http.HTTPStatus).
OVERLOADED_STATUS: Final = 529
OVERLOADED_REASON: Final = "Overloaded"
_TEXT_JOIN: Final = "\n\n"
_UNSUPPORTED_MEDIA: Final = frozenset({"image", "document", "file", "container_upload"})
_DROPPED_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})
_TOOL_CHOICES: Final = {"auto": "auto", "any": "required", "none": "none"}


# ------------------------------------------------------------------------------------------------ request


@dataclass(slots=True)
class MessagesCall:
    """One parsed ``POST /v1/messages``: what to pass to the router and how to answer."""

    model: str
    requested: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    stream: bool
    ignored: tuple[str, ...] = ()
    stop_sequences: tuple[str, ...] = ()


def _bad(message: str) -> ApiError:
    # Anthropic names the field at the head of the message ("max_tokens: Field required"), not in a param.
    return ApiError(400, message)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _unit_interval(body: Mapping[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if not _is_number(v) or not 0.0 <= v <= 1.0:
        raise _bad(f"{key}: Input should be a number between 0 and 1")
    return float(v)


def _text_blocks(raw: Any, where: str) -> str | list[dict[str, Any]]:
    """A string, or a list of text blocks joined by a blank line.

    Blocks that carry ``cache_control`` (Claude Code marks its system prompt and history so) stay separate
    text parts that keep it, so an Anthropic model behind the router still caches that prefix.
    """
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise _bad(f"{where}: Input should be a valid string or a list of text blocks")
    parts: list[str] = []
    marks: list[Any] = []
    for j, block in enumerate(raw):
        if not isinstance(block, dict):
            raise _bad(f"{where}.{j}: Input should be an object")
        kind = block.get("type")
        if kind in _UNSUPPORTED_MEDIA:
            raise _bad(f"{where}.{j}: {kind} blocks are not supported: asyncrouter routes text only")
        if kind != "text" or not isinstance(block.get("text"), str):
            raise _bad(f"{where}.{j}: expected a text block {{'type': 'text', 'text': '...'}}")
        parts.append(block["text"])
        marks.append(block.get("cache_control"))
    if any(isinstance(mark, dict) for mark in marks):
        return _marked_parts(parts, marks)
    return _TEXT_JOIN.join(parts)


def _marked_parts(texts: list[str], marks: list[Any]) -> list[dict[str, Any]]:
    """OpenAI-style text parts, each keeping its block's ``cache_control``."""
    out: list[dict[str, Any]] = []
    for text, mark in zip(texts, marks, strict=True):
        part: dict[str, Any] = {"type": "text", "text": text}
        if isinstance(mark, dict):
            part["cache_control"] = dict(mark)
        out.append(part)
    return out


def _tool_result(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise _bad(f"{where}.tool_use_id: Field required")
    raw = block.get("content")
    content = "" if raw is None else _text_blocks(raw, where + ".content")
    mark = block.get("cache_control")
    if isinstance(content, list):  # marked parts: one text, the (last) mark on the message
        marks = [p["cache_control"] for p in content if "cache_control" in p]
        mark = mark if isinstance(mark, dict) else marks[-1]
        content = _TEXT_JOIN.join(p["text"] for p in content)
    if block.get("is_error") is True:
        # OpenAI-style tool messages have no error flag: say it in the text so any model sees it.
        content = "Error: " + content
    message: dict[str, Any] = {"role": "tool", "tool_call_id": tool_use_id, "content": content}
    if isinstance(mark, dict):
        message["cache_control"] = dict(mark)  # the Anthropic format puts it back on the tool_result block
    return message


def _tool_use(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    tool_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(tool_id, str) or not tool_id:
        raise _bad(f"{where}.id: Field required")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.name: Field required")
    if not isinstance(tool_input, dict):
        raise _bad(f"{where}.input: Input should be an object")
    return {"id": tool_id, "type": "function", "function": {"name": name, "arguments": json.dumps(tool_input)}}


def _convert_message(m: Any, i: int) -> list[dict[str, Any]]:
    """One Anthropic message -> the router's OpenAI-style messages (a user turn may become several)."""
    where = f"messages.{i}"
    if not isinstance(m, dict):
        raise _bad(f"{where}: Input should be an object")
    role = m.get("role")
    if role == "system":
        raise _bad(
            f'{where}.role: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
            'not "system" as an input message role.'
        )
    if role not in ("user", "assistant"):
        raise _bad(f"{where}.role: Input should be 'user' or 'assistant'")
    content = m.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}.content: Input should be a valid string or a list of content blocks")
    texts: list[str] = []
    marks: list[Any] = []
    tool_calls: list[dict[str, Any]] = []
    tool_results: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        bwhere = f"{where}.content.{j}"
        if not isinstance(block, dict):
            raise _bad(f"{bwhere}: Input should be an object")
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise _bad(f"{bwhere}.text: Input should be a valid string")
            texts.append(block["text"])
            marks.append(block.get("cache_control"))
        elif kind == "tool_use" and role == "assistant":
            tool_calls.append(_tool_use(block, bwhere))
        elif kind == "tool_result" and role == "user":
            tool_results.append(_tool_result(block, bwhere))
        elif kind in _DROPPED_BLOCKS:
            continue
        elif kind in _UNSUPPORTED_MEDIA:
            raise _bad(f"{bwhere}: {kind} blocks are not supported: asyncrouter routes text only")
        else:
            raise _bad(f"{bwhere}: {role} messages cannot carry {kind!r} blocks here")
    text = _TEXT_JOIN.join(texts)
    if role == "assistant":
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return [message]
    # Tool results answer the previous assistant turn's calls, so they come first (OpenAI wants them right after).
    out = tool_results
    if texts or not tool_results:
        marked = any(isinstance(mark, dict) for mark in marks)
        out.append({"role": "user", "content": _marked_parts(texts, marks) if marked else text})
    return out


def _messages(raw: Any, system: Any) -> list[dict[str, Any]]:
    if raw is None:
        raise _bad("messages: Field required")
    if not isinstance(raw, list):
        raise _bad("messages: Input should be a valid list")
    if not raw:
        raise _bad("messages: at least one message is required")
    out: list[dict[str, Any]] = []
    if system is not None:
        text = _text_blocks(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    for i, m in enumerate(raw):
        out.extend(_convert_message(m, i))
    return out


def _tools(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _bad("tools: Input should be a valid list")
    out: list[dict[str, Any]] = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise _bad(f"tools.{i}: Input should be an object")
        kind = t.get("type")
        if kind not in (None, "custom"):
            raise _bad(
                f"tools.{i}: Anthropic server tool {kind!r} is not supported: asyncrouter forwards client tools "
                "(name, description, input_schema) to whichever model it picks"
            )
        name, schema, description = t.get("name"), t.get("input_schema"), t.get("description")
        if not isinstance(name, str) or not name:
            raise _bad(f"tools.{i}.name: Field required")
        if not isinstance(schema, dict):
            raise _bad(f"tools.{i}.input_schema: Field required")
        fn: dict[str, Any] = {"name": name}
        if description is not None:
            if not isinstance(description, str):
                raise _bad(f"tools.{i}.description: Input should be a valid string")
            fn["description"] = description
        fn["parameters"] = schema
        out.append({"type": "function", "function": fn})
    return out or None


def _tool_choice(raw: Any) -> Any:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in _TOOL_CHOICES:
        return _TOOL_CHOICES[kind]
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("tool_choice.name: Field required")
        return {"type": "function", "function": {"name": name}}
    raise _bad("tool_choice: Input should be an object with type 'auto', 'any', 'tool' or 'none'")


def _stop_sequences(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise _bad("stop_sequences: Input should be a valid list of strings")
    return list(raw) or None


def parse_messages(
    body: Any, *, models: ModelTable, passthrough: Collection[str] = (), count_only: bool = False
) -> MessagesCall:
    """Validate an Anthropic Messages request body and turn it into router arguments.

    Args:
        body: the decoded JSON body.
        models: the accepted ``model`` strings (as for Chat Completions; none or ``null`` routes as ``auto``).
        passthrough: names of extra fields forwarded to the provider unchanged (``extra_body``).
        count_only: parse a ``/v1/messages/count_tokens`` body, which has no ``max_tokens``.

    Raises:
        ApiError: 400 naming the bad field at the head of its message, or 404 for an unknown model.
    """
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    requested = body.get("model")
    if requested is not None and not isinstance(requested, str):
        raise _bad("model: Input should be a valid string")
    requested = requested or ""
    model = models.resolve(requested)
    messages = _messages(body.get("messages"), body.get("system"))
    params: dict[str, Any] = {}
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        if not count_only:
            raise _bad("max_tokens: Field required")
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _bad("max_tokens: Input should be a valid integer greater than or equal to 1")
    elif not count_only:
        params["max_tokens"] = max_tokens
    stop = _stop_sequences(body.get("stop_sequences"))
    for key, value in (
        ("temperature", _unit_interval(body, "temperature")),
        ("top_p", _unit_interval(body, "top_p")),
        ("stop", stop),
        ("tools", _tools(body.get("tools"))),
        ("tool_choice", _tool_choice(body.get("tool_choice"))),
    ):
        if value is not None:
            params[key] = value
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad("metadata: Input should be an object")
        user = metadata.get("user_id")
        if user is not None:
            if not isinstance(user, str):
                raise _bad("metadata.user_id: Input should be a valid string")
            params["user"] = user
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream: Input should be a valid boolean")
    ignored = take_extra_fields(body, ANTHROPIC_FIELDS, passthrough, params)
    return MessagesCall(model, requested or "auto", messages, params, bool(stream), tuple(ignored), tuple(stop or ()))


def count_tokens(call: MessagesCall) -> int:
    """The ``input_tokens`` of ``/v1/messages/count_tokens``: the project's estimate of the messages, plus the
    tool definitions (which a provider also counts as input)."""
    n = estimate_messages_tokens(call.messages)
    tools = call.params.get("tools")
    if tools:
        n += estimate_tokens(json.dumps(tools))
    return n


# ----------------------------------------------------------------------------------------------- response


def stop_reason_of(response: Response) -> str:
    """Anthropic's ``stop_reason`` for the router's (OpenAI-vocabulary) finish reason."""
    reason = response.meta.finish_reason
    if response.tool_calls and reason in (None, "stop", "tool_calls"):
        return "tool_use"
    if reason == "stop" and response.meta.stop_sequence is not None:
        return "stop_sequence"
    if reason == "tool_calls" or reason is None:
        return "end_turn"  # a tool-call finish without calls left: nothing for the client to run
    return _STOP_REASONS.get(reason, "end_turn")


def _stop_sequence(stop_reason: str, call: MessagesCall, response: Response) -> str | None:
    """Which stop sequence ended the reply: the provider's word (Anthropic says), else the only one asked for."""
    if stop_reason != "stop_sequence":
        return None
    if response.meta.stop_sequence is not None:
        return response.meta.stop_sequence
    return call.stop_sequences[0] if len(call.stop_sequences) == 1 else None


def _tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        parsed = None
    # Anthropic's input is always an object: keep anything else rather than drop what the model wrote
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def _tool_blocks(calls: Sequence[Mapping[str, Any]], message_id: str) -> list[dict[str, Any]]:
    blocks = []
    for i, c in enumerate(calls):
        fn = c.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": c.get("id") or f"toolu_{message_id.removeprefix('msg_')}_{i}",
                "name": fn.get("name", ""),
                "input": _tool_input(fn.get("arguments")),
            }
        )
    return blocks


def _usage(response: Response) -> dict[str, int]:
    u = usage_of(response.meta)
    return {
        "input_tokens": u["prompt_tokens"],
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": u["completion_tokens"],
    }


def message_body(response: Response, *, message_id: str, call: MessagesCall) -> bytes:
    """The Anthropic ``message`` object for a finished reply, encoded. ``model`` is the alias that answered."""
    content: list[dict[str, Any]] = [{"type": "text", "text": response.content}] if response.content else []
    content.extend(_tool_blocks(response.tool_calls, message_id))
    stop_reason = stop_reason_of(response)
    body = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": response.meta.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": _stop_sequence(stop_reason, call, response),
        "usage": _usage(response),
    }
    return json.dumps(body).encode()


def _event(name: str, obj: Mapping[str, Any]) -> bytes:
    # Named events: the Anthropic SDKs skip an event without an ``event:`` line.
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(obj).encode() + b"\n\n"


class MessageEventEncoder:
    """Encodes the SSE events of one streamed ``/v1/messages`` reply.

    The router streams text first and hands over tool calls with the final response, so a reply is one text
    block (index 0, opened with the first text) followed by one ``tool_use`` block per call.
    """

    __slots__ = ("_call", "_id", "_input_tokens", "_model", "_text_open")

    PING: Final = _event("ping", {"type": "ping"})
    _DELTA_HEAD: Final = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": '

    def __init__(self, *, message_id: str, model: str, call: MessagesCall) -> None:
        self._id = message_id
        self._model = model
        self._call = call
        self._input_tokens = estimate_messages_tokens(call.messages)
        self._text_open = False

    def open(self, first: str | None) -> bytes:
        """``message_start`` (its ``usage.input_tokens`` an estimate, made exact by ``message_delta``), a ping,
        and the text block with the first delta when there is one."""
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self._input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        out = [_event("message_start", {"type": "message_start", "message": message}), self.PING]
        if first:
            out.append(self.delta(first))
        return b"".join(out)

    def delta(self, text: str) -> bytes:
        head = b""
        if not self._text_open:
            self._text_open = True
            start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            head = _event("content_block_start", start)
        payload = json.dumps({"type": "text_delta", "text": text}).encode()
        return head + self._DELTA_HEAD + payload + b"}\n\n"

    def close(self, final: Response) -> bytes:
        """Close the text block, send the tool calls, ``message_delta`` and ``message_stop``."""
        out: list[bytes] = []
        index = 0
        if self._text_open:
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        for block in _tool_blocks(final.tool_calls, self._id):
            tool_input = block.pop("input")
            block["input"] = {}
            out.append(
                _event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(tool_input)}
            out.append(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        stop_reason = stop_reason_of(final)
        usage = _usage(final)
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": _stop_sequence(stop_reason, self._call, final)},
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]},
            "x_asyncrouter": meta_summary(final.meta),
        }
        out.append(_event("message_delta", message_delta))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, error: ApiError) -> bytes:
        """An ``error`` event, for a failure after the first byte went out."""
        _, payload, _ = anthropic_error(error)
        return _event("error", payload)


# ------------------------------------------------------------------------------------------------- errors


def anthropic_error(error: ApiError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, Anthropic error object and headers for an :class:`ApiError` built for the OpenAI endpoint.

    The status is kept except for 503 (open breakers, no route, router not open), which becomes Anthropic's
    529 ``overloaded_error``, the status Anthropic clients know to wait on; 5xx otherwise are ``api_error``.
    """
    status = OVERLOADED_STATUS if error.status == 503 else error.status
    kind = _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    payload = {"type": "error", "error": {"type": kind, "message": error.message}}
    return status, payload, dict(error.headers)
