"""Google's Gemini API on the server side: parse ``generateContent`` requests, render replies, stream chunks, errors.

This is what lets the ``google-genai`` SDKs (``http_options={"base_url": "http://127.0.0.1:8080"}``) and the
Gemini CLI (``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8080``) use the router. The routes, under ``/v1beta`` and
``/v1``::

    POST /v1beta/models/{model}:generateContent          one reply
    POST /v1beta/models/{model}:streamGenerateContent    SSE with ``?alt=sse`` (what the SDKs ask for), else
                                                         Google's streamed JSON array
    POST /v1beta/models/{model}:countTokens              ``{"totalTokens": N}``, the router's estimate
    GET  /v1beta/models[/{model}]                         auto, the profiles and the aliases, in Gemini's shape

``{model}`` is any name the other endpoints take (``auto``, a profile, an alias, ``smart/auto``, ...). A request
is translated into the router's OpenAI-style arguments, and the reply back:

==========================================  ==============================================================
Gemini request                              router argument
==========================================  ==============================================================
``systemInstruction`` (parts)               a leading ``{"role": "system"}`` message
``contents`` (role ``user`` / ``model``)    ``user`` / ``assistant`` messages (text parts joined by a blank line)
``functionCall`` parts (model turns)        the assistant message's ``tool_calls`` (``args`` JSON-encoded)
``functionResponse`` parts (user turns)     ``{"role": "tool"}`` messages, matched to the calls by id or name
``thought`` parts                           dropped: a model's private reasoning means nothing to another model
``inlineData`` / ``fileData`` / code parts  rejected (400): the router routes text
``generationConfig.maxOutputTokens``        ``max_tokens``
``temperature``, ``topP``, ``seed``         ``temperature``, ``top_p``, ``seed``
``stopSequences``                           ``stop``
``responseMimeType: application/json``      ``response_format`` ``json_object``; with ``responseSchema`` (or
                                            ``responseJsonSchema``) ``json_schema``
``tools[].functionDeclarations``            function tools (OpenAPI type names lower-cased); Google's own
                                            tools (search, code execution, ...) are rejected
``toolConfig.functionCallingConfig``        AUTO -> ``"auto"``, ANY -> ``"required"`` (or the one allowed
                                            function), NONE -> ``"none"``; ``allowedFunctionNames``
                                            narrows the tools sent
==========================================  ==============================================================

Other fields (``safetySettings``, ``generationConfig.topK``, ``thinkingConfig``, ...) are ignored and named in
the ``X-AsyncRouter-Ignored-Params`` header (``generationConfig.topK``), or forwarded unchanged when the
operator lists a top-level one in ``passthrough_fields``. Field names are accepted in camelCase or snake_case,
as Google's JSON parser accepts both.

Replies: ``candidates[0].content`` has the text and ``functionCall`` parts, ``finishReason`` is ``STOP``,
``MAX_TOKENS`` (length) or ``SAFETY`` (content filter), ``usageMetadata`` the accepted attempt's tokens and
``modelVersion`` the alias that answered. Stream chunks carry text parts; the last one carries the function
calls, ``finishReason``, ``usageMetadata``, the final ``modelVersion`` and the router's ``x_asyncrouter``
summary.

Errors use Google's shape, ``{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT",
"details": [...]}}``, keeping the status the OpenAI endpoint would send (``details`` carries its code).

Pure: no I/O and no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._models import Response
from .._tokens import estimate_messages_tokens, estimate_tokens
from ._errors import ApiError
from ._wire import ModelTable, meta_summary, take_extra_fields, usage_of

__all__ = [
    "GEMINI_FIELDS",
    "GEMINI_METHODS",
    "GeminiCall",
    "GenerateStreamEncoder",
    "count_tokens",
    "finish_reason_of",
    "gemini_error",
    "generate_body",
    "model_entry",
    "models_listing",
    "parse_generate",
]

#: The ``:method`` suffixes served under ``models/{model}``.
GEMINI_METHODS: Final = frozenset({"generateContent", "streamGenerateContent", "countTokens"})
#: The request fields the router understands (camelCase; snake_case spellings are accepted too).
GEMINI_FIELDS: Final = frozenset({"contents", "systemInstruction", "generationConfig", "tools", "toolConfig"})
_GENERATION_FIELDS: Final = frozenset(
    {
        "temperature",
        "topP",
        "maxOutputTokens",
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "candidateCount",
        "seed",
    }
)
_FINISH_REASONS: Final = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "tool_calls": "STOP"}
_STATUSES: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_SNAKE_RE: Final = re.compile(r"(?<!^)(?=[A-Z])")
_UNSUPPORTED_PARTS: Final = frozenset(
    {"inlineData", "fileData", "executableCode", "codeExecutionResult", "videoMetadata"}
)
_UNSUPPORTED_PART_KEYS: Final = _UNSUPPORTED_PARTS | {_SNAKE_RE.sub("_", k).lower() for k in _UNSUPPORTED_PARTS}
_TOOL_MODES: Final = {"AUTO": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}
_JSON_MIME: Final = "application/json"
_TEXT_MIMES: Final = frozenset({"text/plain", ""})
_TEXT_JOIN: Final = "\n\n"
_ROLES: Final = {"user": "user", "model": "assistant", "function": "user"}
#: Schema keys kept when a Gemini (OpenAPI subset) schema becomes a JSON schema; any other key makes it
#: "not simple" and JSON mode falls back to ``json_object``.
_SCHEMA_KEYS: Final = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "title",
        "propertyOrdering",
        "default",
        "example",
    }
)
_GENERATION_METHODS: Final = ("generateContent", "streamGenerateContent", "countTokens")
#: What the model listing says about input and output sizes when the configuration does not say.
DEFAULT_OUTPUT_TOKEN_LIMIT: Final = 8192


# ------------------------------------------------------------------------------------------------ request


@dataclass(slots=True)
class GeminiCall:
    """One parsed ``generateContent`` / ``streamGenerateContent`` / ``countTokens`` body."""

    model: str
    requested: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    ignored: tuple[str, ...] = ()


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _snake(name: str) -> str:
    return _SNAKE_RE.sub("_", name).lower()


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling (Google's JSON parser takes both)."""
    value = obj.get(name)
    return obj.get(_snake(name)) if value is None else value


def _known(names: Collection[str]) -> frozenset[str]:
    return frozenset(names) | {_snake(n) for n in names}


_KNOWN_TOP: Final = _known(GEMINI_FIELDS)
_KNOWN_GENERATION: Final = _known(_GENERATION_FIELDS)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _number(config: Mapping[str, Any], key: str, lo: float, hi: float) -> float | None:
    v = _get(config, key)
    if v is None:
        return None
    if not _is_number(v) or not lo <= v <= hi:
        raise _bad(f"generationConfig.{key} must be a number between {lo:g} and {hi:g}")
    return float(v)


def _integer(config: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int | None:
    v = _get(config, key)
    if v is None:
        return None
    if isinstance(v, str) and v.lstrip("-").isdigit():
        v = int(v)  # int64 fields may arrive as JSON strings (proto3 JSON)
    if not isinstance(v, int) or isinstance(v, bool) or (minimum is not None and v < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise _bad(f"generationConfig.{key} must be an integer{bound}")
    return v


def _parts(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _bad(f"{where}.parts must be a list of parts")
    for j, part in enumerate(raw):
        if not isinstance(part, dict):
            raise _bad(f"{where}.parts[{j}] must be an object")
        for key in part:
            if key in _UNSUPPORTED_PART_KEYS:
                raise _bad(f"{where}.parts[{j}]: {key} parts are not supported: asyncrouter routes text only")
    return raw


def _system(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, dict):
        raise _bad("systemInstruction must be a Content object with text parts")
    texts = []
    for j, part in enumerate(_parts(raw.get("parts"), "systemInstruction")):
        text = part.get("text")
        if not isinstance(text, str):
            raise _bad(f"systemInstruction.parts[{j}] must be a text part")
        texts.append(text)
    return _TEXT_JOIN.join(texts) or None


class _CallIds:
    """Ids for function calls, so each ``functionResponse`` answers the call it belongs to.

    Gemini's calls may carry no ``id`` (the responses are matched by name); OpenAI-style providers need one on
    each call and each tool message. Calls without one get ``call_<turn>_<n>``; a response without one takes the
    oldest unanswered call of the same name.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[tuple[str, str]] = []  # (name, id) of calls not answered yet

    def call(self, name: str, given: Any, turn: int, n: int) -> str:
        call_id = given if isinstance(given, str) and given else f"call_{turn}_{n}"
        self._pending.append((name, call_id))
        return call_id

    def response(self, name: str, given: Any, turn: int, n: int) -> str:
        if isinstance(given, str) and given:
            self._pending = [p for p in self._pending if p[1] != given]
            return given
        for i, (pending_name, call_id) in enumerate(self._pending):
            if pending_name == name:
                del self._pending[i]
                return call_id
        return f"call_{turn}_{n}"


def _function_call(part: Mapping[str, Any], where: str) -> tuple[str, Any, str]:
    fc = _get(part, "functionCall")
    name = fc.get("name") if isinstance(fc, dict) else None
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.functionCall.name is required")
    args = fc.get("args")
    if args is not None and not isinstance(args, dict):
        raise _bad(f"{where}.functionCall.args must be an object")
    return name, fc.get("id"), json.dumps(args or {})


def _function_response(part: Mapping[str, Any], where: str) -> tuple[str, Any, str]:
    fr = _get(part, "functionResponse")
    name = fr.get("name") if isinstance(fr, dict) else None
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.functionResponse.name is required")
    response = fr.get("response")
    if response is not None and not isinstance(response, dict):
        raise _bad(f"{where}.functionResponse.response must be an object")
    return name, fr.get("id"), json.dumps(response if response is not None else {})


def _convert_content(content: Any, i: int, ids: _CallIds) -> list[dict[str, Any]]:
    where = f"contents[{i}]"
    if not isinstance(content, dict):
        raise _bad(f"{where} must be a Content object")
    role_raw = content.get("role") or "user"
    role = _ROLES.get(role_raw) if isinstance(role_raw, str) else None
    if role is None:
        raise _bad(f"{where}.role must be 'user' or 'model'")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    tool_results: list[dict[str, Any]] = []
    for j, part in enumerate(_parts(content.get("parts"), where)):
        pwhere = f"{where}.parts[{j}]"
        if part.get("thought") is True:
            continue
        text = part.get("text")
        if _get(part, "functionCall") is not None:
            if role != "assistant":
                raise _bad(f"{pwhere}: functionCall parts belong in 'model' turns")
            name, given, arguments = _function_call(part, pwhere)
            call_id = ids.call(name, given, i, len(tool_calls))
            tool_calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
        elif _get(part, "functionResponse") is not None:
            if role != "user":
                raise _bad(f"{pwhere}: functionResponse parts belong in 'user' turns")
            name, given, result = _function_response(part, pwhere)
            call_id = ids.response(name, given, i, len(tool_results))
            tool_results.append({"role": "tool", "tool_call_id": call_id, "content": result})
        elif isinstance(text, str):
            texts.append(text)
        else:
            raise _bad(f"{pwhere} must have text, functionCall or functionResponse")
    text = _TEXT_JOIN.join(texts)
    if role == "assistant":
        if not texts and not tool_calls:
            return []  # a turn that held only thoughts: an empty assistant message would trip some providers
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return [message]
    # Results answer the previous model turn's calls, so they come first (OpenAI wants them right after).
    out = tool_results
    if texts or not tool_results:
        out.append({"role": "user", "content": text})
    return out


def _messages(raw: Any, system: Any, *, count_only: bool) -> list[dict[str, Any]]:
    if raw is None:
        raise _bad("contents is required")
    if isinstance(raw, dict):  # countTokens and the SDKs accept one Content for a one-turn request
        raw = [raw]
    if not isinstance(raw, list):
        raise _bad("contents must be a list of Content objects")
    if not raw and not count_only:
        raise _bad("contents must not be empty")
    out: list[dict[str, Any]] = []
    text = _system(system)
    if text:
        out.append({"role": "system", "content": text})
    ids = _CallIds()
    for i, content in enumerate(raw):
        out.extend(_convert_content(content, i, ids))
    return out


def _schema(raw: Any) -> Any:
    """A Gemini (OpenAPI-subset) schema as a JSON schema: type names lower-cased, ``nullable`` folded into the
    type. Raises :class:`ValueError` on anything not simple enough to translate faithfully."""
    if not isinstance(raw, dict):
        raise ValueError("not a schema")
    out: dict[str, Any] = {}
    nullable = False
    for key, value in raw.items():
        if key not in _SCHEMA_KEYS:
            raise ValueError(key)
        if key == "type":
            if not isinstance(value, str):
                raise ValueError(key)
            out["type"] = value.lower()
        elif key == "nullable":
            nullable = value is True
        elif key == "properties":
            if not isinstance(value, dict):
                raise ValueError(key)
            out["properties"] = {name: _schema(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _schema(value)
        elif key == "anyOf":
            if not isinstance(value, list):
                raise ValueError(key)
            out["anyOf"] = [_schema(sub) for sub in value]
        elif key in ("propertyOrdering", "example"):
            continue  # Gemini-only hints, meaningless to other models
        else:
            out[key] = value
    if nullable and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _response_format(config: Mapping[str, Any]) -> dict[str, Any] | None:
    mime = _get(config, "responseMimeType")
    schema = _get(config, "responseJsonSchema")
    gemini_schema = _get(config, "responseSchema")
    if mime is None or mime in _TEXT_MIMES:
        if schema is not None or gemini_schema is not None:
            raise _bad("generationConfig.responseSchema needs responseMimeType 'application/json'")
        return None
    if mime != _JSON_MIME:
        raise _bad(
            f"generationConfig.responseMimeType {str(mime)[:80]!r} is not supported: use 'text/plain' or "
            "'application/json'"
        )
    if schema is None and gemini_schema is not None:
        try:
            schema = _schema(gemini_schema)
        except ValueError:
            schema = None  # not simple: plain JSON mode still gets JSON back
    if isinstance(schema, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    return {"type": "json_object"}


def _generation(raw: Any, params: dict[str, Any], ignored: list[str]) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise _bad("generationConfig must be an object")
    count = _integer(raw, "candidateCount", minimum=1)
    if count is not None and count != 1:
        raise _bad("generationConfig.candidateCount: only 1 candidate is supported")
    stop = _get(raw, "stopSequences")
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        raise _bad("generationConfig.stopSequences must be a list of strings")
    for key, value in (
        ("max_tokens", _integer(raw, "maxOutputTokens", minimum=1)),
        ("temperature", _number(raw, "temperature", 0.0, 2.0)),
        ("top_p", _number(raw, "topP", 0.0, 1.0)),
        ("stop", list(stop) if stop else None),
        ("seed", _integer(raw, "seed")),
        ("response_format", _response_format(raw)),
    ):
        if value is not None:
            params[key] = value
    ignored.extend(f"generationConfig.{k}" for k, v in raw.items() if k not in _KNOWN_GENERATION and v is not None)


def _parameters(decl: Mapping[str, Any], where: str) -> dict[str, Any]:
    schema = _get(decl, "parametersJsonSchema")
    if isinstance(schema, dict):
        return schema
    params = decl.get("parameters")
    if params is None:
        return {"type": "object", "properties": {}}
    try:
        converted = _schema(params)
    except ValueError as exc:
        raise _bad(f"{where}.parameters: unsupported schema field {str(exc)[:60]!r}") from None
    if not isinstance(converted, dict):  # pragma: no cover  (_schema returns an object or raises)
        raise _bad(f"{where}.parameters must be an object schema")
    return converted


def _tools(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _bad("tools must be a list")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{i}] must be an object")
        for key, value in tool.items():
            if value is None:
                continue
            if key not in ("functionDeclarations", "function_declarations"):
                raise _bad(
                    f"tools[{i}].{key}: Google's built-in tools are not supported: asyncrouter forwards "
                    "functionDeclarations to whichever model it picks"
                )
            if not isinstance(value, list):
                raise _bad(f"tools[{i}].functionDeclarations must be a list")
            for j, decl in enumerate(value):
                where = f"tools[{i}].functionDeclarations[{j}]"
                name = decl.get("name") if isinstance(decl, dict) else None
                if not isinstance(decl, dict) or not isinstance(name, str) or not name:
                    raise _bad(f"{where}.name is required")
                fn: dict[str, Any] = {"name": name}
                description = decl.get("description")
                if description is not None:
                    if not isinstance(description, str):
                        raise _bad(f"{where}.description must be a string")
                    fn["description"] = description
                fn["parameters"] = _parameters(decl, where)
                out.append({"type": "function", "function": fn})
    return out or None


def _tool_choice(raw: Any, tools: list[dict[str, Any]] | None) -> tuple[Any, list[dict[str, Any]] | None]:
    """The router's ``tool_choice`` and the tools to send, from ``toolConfig``."""
    if raw is None:
        return None, tools
    if not isinstance(raw, dict):
        raise _bad("toolConfig must be an object")
    config = _get(raw, "functionCallingConfig")
    if config is None:
        return None, tools
    if not isinstance(config, dict):
        raise _bad("toolConfig.functionCallingConfig must be an object")
    mode = config.get("mode") or "AUTO"
    if not isinstance(mode, str) or mode.upper() not in _TOOL_MODES:
        raise _bad("toolConfig.functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED")
    choice: Any = _TOOL_MODES[mode.upper()]
    allowed = _get(config, "allowedFunctionNames")
    if allowed:
        if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
            raise _bad("toolConfig.functionCallingConfig.allowedFunctionNames must be a list of strings")
        tools = [t for t in tools or () if t["function"]["name"] in allowed]
        if not tools:
            raise _bad("toolConfig.functionCallingConfig.allowedFunctionNames names no declared function")
        if choice == "required" and len(tools) == 1:
            choice = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
    return choice, tools


def parse_generate(
    body: Any, *, model: str, models: ModelTable, passthrough: Collection[str] = (), count_only: bool = False
) -> GeminiCall:
    """Validate a ``generateContent`` (or ``countTokens``) body and turn it into router arguments.

    Args:
        body: the decoded JSON body. For *count_only*, a ``generateContentRequest`` wrapper is unwrapped.
        model: the ``{model}`` of the path, without its ``models/`` prefix.
        models: the accepted model names (as for Chat Completions).
        passthrough: names of extra top-level fields forwarded to the provider unchanged (``extra_body``).
        count_only: parse a ``countTokens`` body (``contents`` may be empty).

    Raises:
        ApiError: 400 naming the bad field, or 404 for an unknown model.
    """
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    if count_only:
        wrapped = _get(body, "generateContentRequest")
        if isinstance(wrapped, dict):
            body = wrapped
    resolved = models.resolve(model)
    messages = _messages(_get(body, "contents"), _get(body, "systemInstruction"), count_only=count_only)
    params: dict[str, Any] = {}
    ignored: list[str] = []
    _generation(_get(body, "generationConfig"), params, ignored)
    choice, tools = _tool_choice(_get(body, "toolConfig"), _tools(_get(body, "tools")))
    if tools:
        params["tools"] = tools
    if choice is not None:
        params["tool_choice"] = choice
    # countTokens' wrapped form names the model in the body too
    known = _KNOWN_TOP | {"model"} if count_only else _KNOWN_TOP
    ignored += take_extra_fields(body, known, passthrough, params)
    return GeminiCall(resolved, model or "auto", messages, params, tuple(ignored))


def count_tokens(call: GeminiCall) -> int:
    """``totalTokens`` for ``countTokens``: the project's estimate of the messages plus the tool definitions."""
    n = estimate_messages_tokens(call.messages)
    tools = call.params.get("tools")
    if tools:
        n += estimate_tokens(json.dumps(tools))
    return n


# ----------------------------------------------------------------------------------------------- response


def finish_reason_of(response: Response) -> str:
    """Gemini's ``finishReason`` for the router's (OpenAI-vocabulary) finish reason."""
    return _FINISH_REASONS.get(response.meta.finish_reason or "stop", "OTHER")


def _call_args(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        parsed = None
    # Gemini's args are always an object: keep anything else rather than drop what the model wrote
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def _call_parts(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    parts = []
    for c in calls:
        fn = c.get("function") or {}
        call: dict[str, Any] = {"name": fn.get("name", ""), "args": _call_args(fn.get("arguments"))}
        if c.get("id"):
            call["id"] = c["id"]  # echoed back on the functionResponse, it pairs the result with its call
        parts.append({"functionCall": call})
    return parts


def _usage(response: Response) -> dict[str, int]:
    u = usage_of(response.meta)
    return {
        "promptTokenCount": u["prompt_tokens"],
        "candidatesTokenCount": u["completion_tokens"],
        "totalTokenCount": u["total_tokens"],
    }


def generate_body(response: Response, *, response_id: str) -> bytes:
    """The ``GenerateContentResponse`` for a finished reply, encoded; ``modelVersion`` is the alias that answered."""
    parts: list[dict[str, Any]] = [{"text": response.content}] if response.content else []
    parts.extend(_call_parts(response.tool_calls))
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason_of(response),
                "index": 0,
            }
        ],
        "usageMetadata": _usage(response),
        "modelVersion": response.meta.model,
        "responseId": response_id,
    }
    return json.dumps(body).encode()


class GenerateStreamEncoder:
    """Encodes the chunks of one ``streamGenerateContent`` reply: SSE ``data:`` events (``?alt=sse``) or the
    elements of Google's streamed JSON array.

    Each chunk is a ``GenerateContentResponse`` with one text part; the last carries the function calls,
    ``finishReason``, ``usageMetadata`` and the ``x_asyncrouter`` summary.
    """

    __slots__ = ("_elements", "_head", "_id", "_opened", "_sse", "_tail")

    def __init__(self, *, response_id: str, model: str, sse: bool) -> None:
        self._id = response_id
        self._sse = sse
        self._opened = False
        self._elements = 0
        head = json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "index": 0}]})
        # Pre-encoded around the text, so a delta costs one json.dumps of its string. ``modelVersion`` is the
        # requested name until the last chunk, which names the alias that answered.
        self._head = head.split('""', 1)[0].encode()
        tail = json.dumps({"modelVersion": model, "responseId": response_id})
        self._tail = b'}]}, "index": 0}], ' + tail[1:].encode()

    def _frame(self, payload: bytes) -> bytes:
        if self._sse:
            return b"data: " + payload + b"\n\n"
        lead = b"" if self._opened else b"["
        self._opened = True
        if self._elements:
            lead += b",\r\n"
        self._elements += 1
        return lead + payload

    def _text(self, text: str) -> bytes:
        return self._frame(self._head + json.dumps(text).encode() + self._tail)

    def open(self, first: str | None) -> bytes:
        if first:
            return self._text(first)
        if self._sse or self._opened:
            return b""
        self._opened = True
        return b"["

    def delta(self, text: str) -> bytes:
        return self._text(text)

    def close(self, final: Response) -> bytes:
        parts = _call_parts(final.tool_calls) or [{"text": ""}]
        chunk = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": finish_reason_of(final), "index": 0}
            ],
            "usageMetadata": _usage(final),
            "modelVersion": final.meta.model,
            "responseId": self._id,
            "x_asyncrouter": meta_summary(final.meta),
        }
        return self._end(json.dumps(chunk).encode())

    def error(self, error: ApiError) -> bytes:
        """An error chunk in Google's shape, for a failure after the first byte went out."""
        _, payload, _ = gemini_error(error)
        return self._end(json.dumps(payload).encode())

    def _end(self, payload: bytes) -> bytes:
        return self._frame(payload) + (b"" if self._sse else b"]")


# ------------------------------------------------------------------------------------------------- models


def model_entry(name: str, *, description: str, input_limit: int | None = None) -> dict[str, Any]:
    """One ``Model`` of Gemini's ``models.list``."""
    return {
        "name": "models/" + name,
        "baseModelId": name,
        "version": "asyncrouter",
        "displayName": name,
        "description": description,
        "inputTokenLimit": input_limit or 0,
        "outputTokenLimit": DEFAULT_OUTPUT_TOKEN_LIMIT,
        "supportedGenerationMethods": list(_GENERATION_METHODS),
    }


def models_listing(models: ModelTable, *, context_windows: Mapping[str, int | None]) -> dict[str, Any]:
    """Gemini's ``GET /v1beta/models`` body: ``auto``, the profiles, then the aliases."""
    widest = max((w for w in context_windows.values() if w), default=None)
    entries = [
        model_entry(p, description=f"asyncrouter routing profile {p!r}", input_limit=widest) for p in models.profiles
    ]
    entries += [
        model_entry(
            a, description=f"{models.providers[a]} model behind asyncrouter", input_limit=context_windows.get(a)
        )
        for a in models.aliases
    ]
    return {"models": entries}


# ------------------------------------------------------------------------------------------------- errors


def gemini_error(error: ApiError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, Google error object and headers for an :class:`ApiError` built for the OpenAI endpoint.

    The HTTP status is kept; ``status`` is Google's canonical name for it (``INTERNAL`` for the 502s of a
    failed cascade) and ``details`` carries the router's error code (``budget_exceeded``, ``model_not_found``).
    """
    status = _STATUSES.get(error.status) or ("INTERNAL" if error.status >= 500 else "INVALID_ARGUMENT")
    inner: dict[str, Any] = {"code": error.status, "message": error.message, "status": status}
    if error.code:
        inner["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": error.code.upper(),
                "domain": "asyncrouter",
            }
        ]
    return error.status, {"error": inner}, dict(error.headers)
