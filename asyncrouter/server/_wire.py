"""OpenAI's Chat Completions format on the server side: parse a request body, render replies and stream chunks.

Pure: no I/O, no clock (callers pass ``created``). Everything here runs once per request, so it is plain
dict work with one :func:`json.dumps` per body or chunk (with its defaults, which take CPython's cached C
encoder: non-ASCII text goes out as ``\\u`` escapes, which is valid JSON and faster); stream content deltas reuse a
pre-encoded chunk prefix and suffix and encode only the text.

Request fields fall in three groups:

* routed: ``model``, ``messages``, ``max_tokens`` / ``max_completion_tokens`` (the latter wins when both are
  sent), ``temperature``, ``top_p``, ``stop``, ``tools``, ``tool_choice``, ``response_format``, ``seed``,
  ``user``, ``stream``, ``stream_options``; and ``n``, which must be 1;
* passed through: any other field the operator names in ``passthrough_fields`` goes to the provider unchanged
  (``extra_body``). None does by default: one request may reach models of several providers, and a field one
  accepts (``frequency_penalty``) another rejects (Anthropic), which would turn a good request into a failed
  cascade;
* ignored: everything else (``store``, ``metadata``, ``logprobs``, ...). The reply lists their names in the
  ``X-AsyncRouter-Ignored-Params`` header so nothing is dropped silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._config import Config
from .._models import Attempt, Response, ResponseMeta
from .._planner import BUILTIN_PROFILES
from ._errors import ApiError

__all__ = [
    "PROFILE_PREFIXES",
    "ROUTED_FIELDS",
    "ChatCall",
    "ChunkEncoder",
    "ModelTable",
    "completion_body",
    "finish_reason_of",
    "ignored_header",
    "meta_headers",
    "meta_summary",
    "parse_chat",
    "usage_of",
]

#: Prefixes clients of other routers use for routing profiles (``smart/auto``, ``smart/eco``, ...).
PROFILE_PREFIXES: Final = ("smart/", "asyncrouter/")
ROUTED_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "seed",
        "user",
        "stream",
        "stream_options",
        "n",
    }
)
_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_CONTENT_REQUIRED: Final = frozenset({"system", "developer", "user", "tool"})
_TOOL_CHOICES: Final = frozenset({"none", "auto", "required"})
_RESPONSE_FORMATS: Final = frozenset({"text", "json_object", "json_schema"})
_FINISH_REASONS: Final = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
#: Ignored field names echoed in a header: header-safe characters only, and not too many of them.
_HEADER_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MAX_IGNORED_LISTED: Final = 16
_OWNER: Final = "asyncrouter"


# ------------------------------------------------------------------------------------------------- models


class ModelTable:
    """Every ``model`` string the server accepts, resolved once to what :meth:`Router.aroute` takes.

    Accepted, in this order of precedence: ``"auto"``, a profile (built-in ``eco``, ``premium``, ``free``,
    ``agentic`` or one from the config) or a configured alias (pinned); any of those behind a
    :data:`PROFILE_PREFIXES` prefix (``smart/auto``, ``smart/premium``, ``asyncrouter/mini``); a provider's
    model id (``gpt-4o-mini``) or ``provider/model_id`` (``openai/gpt-4o-mini``) when exactly one configured
    model has it. A request without ``model`` (or with ``null``) is routed as ``"auto"``.
    """

    __slots__ = ("_table", "aliases", "profiles", "providers")

    def __init__(self, config: Config) -> None:
        self.aliases: tuple[str, ...] = tuple(m.name for m in config.models)
        self.providers: dict[str, str] = {m.name: m.provider for m in config.models}
        custom = [p for p in config.profiles if p not in BUILTIN_PROFILES]
        self.profiles: tuple[str, ...] = ("auto", *sorted(BUILTIN_PROFILES - {"auto"}), *custom)
        table: dict[str, str] = {}
        for name in (*self.profiles, *self.aliases):  # names the router takes as they are
            table[name] = name
        for prefix in PROFILE_PREFIXES:
            for name in (*self.profiles, *self.aliases):
                table.setdefault(prefix + name, name)
        by_id: dict[str, list[str]] = {}
        for m in config.models:
            by_id.setdefault(m.model_id, []).append(m.name)
            by_id.setdefault(f"{m.provider}/{m.model_id}", []).append(m.name)
        for key, names in by_id.items():
            if len(names) == 1:
                table.setdefault(key, names[0])
        table[""] = "auto"
        self._table = table

    def resolve(self, name: str) -> str:
        """The ``model=`` value for the router. Raises :class:`ApiError` 404 ``model_not_found``."""
        try:
            return self._table[name]
        except KeyError:
            raise ApiError(
                404,
                f"The model {name[:200]!r} does not exist: use 'auto', a profile "
                f"({', '.join(self.profiles[1:])}) or a model alias ({', '.join(self.aliases)}); GET /v1/models "
                "lists them.",
                code="model_not_found",
                param="model",
            ) from None

    def listing(self, *, created: int) -> dict[str, Any]:
        """OpenAI's ``GET /v1/models`` body: ``auto``, the profiles, then the aliases (``owned_by`` = provider)."""
        data = [{"id": p, "object": "model", "created": created, "owned_by": _OWNER} for p in self.profiles]
        data += [{"id": a, "object": "model", "created": created, "owned_by": self.providers[a]} for a in self.aliases]
        return {"object": "list", "data": data}


# ------------------------------------------------------------------------------------------------ request


@dataclass(slots=True)
class ChatCall:
    """One parsed ``POST /v1/chat/completions``: what to pass to the router and how to answer."""

    model: str
    requested: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    stream: bool
    include_usage: bool
    ignored: tuple[str, ...] = ()


def _bad(message: str, param: str | None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _number(body: Mapping[str, Any], key: str, lo: float, hi: float) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if not _is_number(v) or not lo <= v <= hi:
        raise _bad(f"{key} must be a number between {lo:g} and {hi:g}", key)
    return float(v)


def _integer(body: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or (minimum is not None and v < minimum):
        raise _bad(f"{key} must be an integer" + (f" >= {minimum}" if minimum is not None else ""), key)
    return v


def _messages(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        raise _bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(raw, list) or not raw:
        raise _bad("messages must be a non-empty array of message objects", "messages")
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise _bad(f"messages[{i}] must be an object", f"messages[{i}]")
        role = m.get("role")
        if role not in _ROLES:
            raise _bad(f"messages[{i}].role must be one of {', '.join(sorted(_ROLES))}", f"messages[{i}].role")
        content = m.get("content")
        if content is None:
            if role in _CONTENT_REQUIRED:
                raise _bad(f"messages[{i}].content is required for role {role!r}", f"messages[{i}].content")
        elif not isinstance(content, str | list):
            raise _bad(f"messages[{i}].content must be a string or an array of parts", f"messages[{i}].content")
    return raw


def _stop(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return list(raw) or None
    raise _bad("stop must be a string or an array of strings", "stop")


def _tools(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _bad("tools must be an array", "tools")
    for i, t in enumerate(raw):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type", "function") != "function" or not isinstance(fn, dict):
            raise _bad(f"tools[{i}] must be a function tool: {{'type': 'function', 'function': {{...}}}}", "tools")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad(f"tools[{i}].function.name must be a non-empty string", f"tools[{i}].function.name")
    return raw or None


def _tool_choice(raw: Any) -> Any:
    if raw is None or raw in _TOOL_CHOICES:
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return raw
    raise _bad("tool_choice must be 'none', 'auto', 'required' or a tool object", "tool_choice")


def _response_format(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in _RESPONSE_FORMATS:
        raise _bad("response_format.type must be one of text, json_object, json_schema", "response_format")
    if raw["type"] == "json_schema" and not isinstance(raw.get("json_schema"), dict):
        raise _bad("response_format json_schema needs a json_schema object", "response_format.json_schema")
    return raw


def parse_chat(body: Any, *, models: ModelTable, passthrough: Collection[str] = ()) -> ChatCall:
    """Validate a Chat Completions request body and turn it into router arguments.

    Args:
        body: the decoded JSON body.
        models: the accepted ``model`` strings.
        passthrough: names of extra fields forwarded to the provider (``extra_body``).

    Raises:
        ApiError: 400 with ``param`` naming the bad field, or 404 for an unknown model.
    """
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None)
    requested = body.get("model")
    if requested is not None and not isinstance(requested, str):
        raise _bad("model must be a string", "model")
    requested = requested or ""
    model = models.resolve(requested)
    messages = _messages(body.get("messages"))
    n = _integer(body, "n", minimum=1)
    if n is not None and n != 1:
        raise _bad("only n=1 is supported", "n")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream must be a boolean", "stream")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("stream_options must be an object", "stream_options")
        include_usage = options.get("include_usage") is True
    max_tokens = _integer(body, "max_completion_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", minimum=1)
    params: dict[str, Any] = {}
    for key, value in (
        ("max_tokens", max_tokens),
        ("temperature", _number(body, "temperature", 0.0, 2.0)),
        ("top_p", _number(body, "top_p", 0.0, 1.0)),
        ("stop", _stop(body.get("stop"))),
        ("tools", _tools(body.get("tools"))),
        ("tool_choice", _tool_choice(body.get("tool_choice"))),
        ("response_format", _response_format(body.get("response_format"))),
        ("seed", _integer(body, "seed")),
    ):
        if value is not None:
            params[key] = value
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise _bad("user must be a string", "user")
        params["user"] = user
    ignored = take_extra_fields(body, ROUTED_FIELDS, passthrough, params)
    return ChatCall(model, requested or "auto", messages, params, bool(stream), include_usage, tuple(ignored))


def take_extra_fields(
    body: Mapping[str, Any], known: Container[str], passthrough: Container[str], params: dict[str, Any]
) -> list[str]:
    """The body's fields the router does not read: those in *passthrough* go to the provider as
    ``params["extra_body"]``; the names of the rest are returned, for ``X-AsyncRouter-Ignored-Params``."""
    extra: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in body.items():
        if key in known or value is None:
            continue
        if key in passthrough:
            extra[key] = value
        else:
            ignored.append(key)
    if extra:
        params["extra_body"] = extra
    return ignored


def ignored_header(names: Iterable[str]) -> str:
    """The ``X-AsyncRouter-Ignored-Params`` value: header-safe names only, at most a handful."""
    safe = sorted({n for n in names if _HEADER_NAME_RE.match(n)})
    return ",".join(safe[:_MAX_IGNORED_LISTED])


# ----------------------------------------------------------------------------------------------- response


def _accepted(meta: ResponseMeta) -> Attempt | None:
    for a in reversed(meta.attempts):
        if a.model == meta.model and a.outcome in ("ok", "gate_failed"):
            return a
    return None


def usage_of(meta: ResponseMeta) -> dict[str, int]:
    """OpenAI ``usage`` for the reply: the accepted attempt's tokens.

    A cascade's earlier attempts are not part of this completion; what they cost is in the
    ``X-AsyncRouter-Cost-USD`` header and the ``x_asyncrouter`` summary.
    """
    a = _accepted(meta)
    p, c = (a.input_tokens, a.output_tokens) if a is not None else (meta.input_tokens, meta.output_tokens)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def finish_reason_of(response: Response) -> str:
    reason = response.meta.finish_reason
    if response.tool_calls and reason in (None, "stop"):
        return "tool_calls"
    return reason if reason in _FINISH_REASONS else "stop"


def _tool_calls(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(calls):
        fn = c.get("function") or {}
        out.append(
            {
                "id": c.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": fn.get("name", ""), "arguments": fn.get("arguments", "")},
            }
        )
    return out


def completion_body(response: Response, *, completion_id: str, created: int) -> bytes:
    """The ``chat.completion`` object for a finished reply, encoded."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = _tool_calls(response.tool_calls)
        if not response.content:
            message["content"] = None
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": response.meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason_of(response)}],
        "usage": usage_of(response.meta),
        "system_fingerprint": None,
    }
    return json.dumps(body).encode()


def meta_headers(meta: ResponseMeta) -> dict[str, str]:
    """The ``X-AsyncRouter-*`` response headers (and ``x-request-id``, which the OpenAI SDKs expose).

    The classification: ``-Task-Type`` and ``-Tier``; ``-Complexity`` is the classifier's score (0.0-1.0, four
    decimals) and ``-Complexity-Label`` its label (``simple``, ``medium``, ``complex``); ``-Category`` is
    ``factual``, ``reasoning``, ``creative`` or ``code``; ``-Confidence`` (0.0-1.0, four decimals) says how
    clearly the classifier's evidence separated its choice from the runner-up. ``-Cost-USD`` covers every
    attempt of the request (escalations and the meta-router included), in USD with up to 12 decimals;
    ``-Profile`` is sent when a profile routed the request.
    """
    headers = {
        "X-AsyncRouter-Request-Id": meta.request_id,
        "x-request-id": meta.request_id,
        "X-AsyncRouter-Model": meta.model,
        "X-AsyncRouter-Provider": meta.provider,
        "X-AsyncRouter-Routing-Layer": meta.routing_layer,
        "X-AsyncRouter-Task-Type": meta.task_type,
        "X-AsyncRouter-Tier": meta.tier,
        "X-AsyncRouter-Complexity": f"{meta.complexity_score:.4f}",
        "X-AsyncRouter-Complexity-Label": meta.complexity,
        "X-AsyncRouter-Category": meta.category,
        "X-AsyncRouter-Confidence": f"{meta.confidence:.4f}",
        "X-AsyncRouter-Cost-USD": f"{meta.estimated_cost_usd:.12f}".rstrip("0").rstrip("."),
        "X-AsyncRouter-Escalations": str(meta.escalations),
        "X-AsyncRouter-Quality-Passed": "true" if meta.quality_passed else "false",
    }
    if meta.profile:
        headers["X-AsyncRouter-Profile"] = meta.profile
    return headers


def meta_summary(meta: ResponseMeta) -> dict[str, Any]:
    """The ``x_asyncrouter`` object of a stream's final chunk: the same facts as the headers, plus totals."""
    return {
        "request_id": meta.request_id,
        "model": meta.model,
        "provider": meta.provider,
        "routing_layer": meta.routing_layer,
        "routing_reason": meta.routing_reason,
        "task_type": meta.task_type,
        "tier": meta.tier,
        "complexity": round(meta.complexity_score, 4),
        "complexity_label": meta.complexity,
        "category": meta.category,
        "confidence": round(meta.confidence, 4),
        "profile": meta.profile,
        "cost_usd": meta.estimated_cost_usd,
        "escalations": meta.escalations,
        "quality_passed": meta.quality_passed,
        "input_tokens": meta.input_tokens,
        "output_tokens": meta.output_tokens,
        "latency_ms": round(meta.latency_ms, 3),
    }


class ChunkEncoder:
    """Encodes the ``data: {chat.completion.chunk}`` events of one streamed reply.

    The order OpenAI uses: a first delta with the role, content deltas, tool-call deltas, a chunk with the
    ``finish_reason`` (ours also carries ``x_asyncrouter``), a usage chunk with empty ``choices`` when the client
    asked for it, then ``data: [DONE]``.
    """

    __slots__ = ("_created", "_id", "_model", "_prefix", "_suffix")

    DONE: Final = b"data: [DONE]\n\n"

    def __init__(self, *, completion_id: str, created: int, model: str) -> None:
        self._id = completion_id
        self._created = created
        self._model = model
        head = json.dumps({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model})
        self._prefix = b"data: " + head[:-1].encode() + b',"system_fingerprint":null,"choices":[{"index":0,"delta":'
        self._suffix = b',"logprobs":null,"finish_reason":null}]}\n\n'

    def _event(self, obj: Mapping[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    def role(self) -> bytes:
        return self._prefix + b'{"role":"assistant","content":""}' + self._suffix

    def content(self, text: str) -> bytes:
        return self._prefix + json.dumps({"content": text}).encode() + self._suffix

    def tool_calls(self, calls: Sequence[Mapping[str, Any]]) -> bytes:
        deltas = [{"index": i, **c} for i, c in enumerate(_tool_calls(calls))]
        return self._prefix + json.dumps({"tool_calls": deltas}).encode() + self._suffix

    def _base(self, model: str) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": model,
            "system_fingerprint": None,
        }

    def finish(self, response: Response) -> bytes:
        """The chunk with ``finish_reason``; its ``model`` is the alias that answered."""
        obj = self._base(response.meta.model)
        obj["choices"] = [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason_of(response)}]
        obj["x_asyncrouter"] = meta_summary(response.meta)
        return self._event(obj)

    def usage(self, response: Response) -> bytes:
        obj = self._base(response.meta.model)
        obj["choices"] = []
        obj["usage"] = usage_of(response.meta)
        return self._event(obj)

    def error(self, error: ApiError) -> bytes:
        """An OpenAI-style error event, for a failure after the first byte went out."""
        return self._event(error.payload())
