"""What a fake model does: its scripted behaviour, the requests it sees and the replies it composes.

Everything here is pure and format-neutral. :mod:`._formats` turns a :class:`Reply` into the bytes of one wire
format; :mod:`._server` decides which fault (if any) a request gets and when the bytes go out.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final, Literal, TypeAlias, get_args

from asyncrouter._tokens import estimate_messages_tokens, estimate_tokens

__all__ = [
    "FAULT_KINDS",
    "FakeModel",
    "FakeRequest",
    "FaultKind",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "WireFormat",
]

FaultKind: TypeAlias = Literal[
    "500",
    "502",
    "503",
    "529",
    "overloaded",
    "429",
    "quota",
    "401",
    "400",
    "context_length",
    "content_policy",
    "timeout",
    "reset",
    "malformed_json",
    "mid_stream_error",
    "truncated_stream",
    "empty",
    "truncated",
]
#: Every fault kind the fake server can inject, in a stable order.
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)

#: The wire format of the endpoint a request hit.
WireFormat: TypeAlias = Literal["openai", "openrouter", "anthropic", "ollama"]

DEFAULT_REPLY_WORDS: Final = 30
DEFAULT_RETRY_AFTER: Final = 1.0
#: Dimensions of the vectors a fake model returns from ``/v1/embeddings`` unless told otherwise.
DEFAULT_EMBEDDING_DIM: Final = 256
HEDGE_PREFIX: Final = "I'm not sure, but"
REFUSAL_TEXT: Final = "I can't help with that."

# A fixed vocabulary and sentence templates keep replies plausible and cheap: a handful of rng.choice() calls
# per sentence, no per-request setup.
_NOUNS: Final = tuple(
    """
    system service request response model answer approach method result value client server cache queue worker
    task event stream buffer budget token context prompt reply score signal layer router chain fallback retry
    backoff breaker timeout deadline limit error failure state record log metric trace step pattern design test
    check option default connection session pool batch index schema handler endpoint config policy
    """.split()
)
_VERBS: Final = tuple(
    """
    uses handles returns reads writes sends receives checks measures keeps builds runs starts stops routes tracks
    limits caches splits merges sorts filters validates parses compares protects retries reduces improves
    """.split()
)
_ADJECTIVES: Final = tuple(
    """
    small large simple complex fast slow cheap careful robust clean clear stable concurrent local remote shared
    strict lazy bounded partial complete precise useful practical correct efficient consistent predictable modest
    """.split()
)
_ADVERBS: Final = tuple("quickly safely reliably early later again carefully together automatically".split())
_CONNECTORS: Final = ("First,", "Next,", "Then,", "Also,", "However,", "Finally,", "Meanwhile,", "Overall,")
# Slot markers in the templates; each fills exactly one word, so a template's word count is fixed.
_ADJ, _NOUN, _VERB, _ADV, _CONN, _TOPIC = range(6)
_SLOTS: Final = {"{a}": _ADJ, "{n}": _NOUN, "{v}": _VERB, "{d}": _ADV, "{c}": _CONN, "{t}": _TOPIC}
_TEMPLATES: Final[tuple[tuple[str | int, ...], ...]] = tuple(
    tuple(_SLOTS.get(w, w) for w in t.split())
    for t in (
        "the {a} {n} {v} the {n} {d}",
        "{c} the {n} {v} each {a} {n}",
        "a {a} {n} {v} the {t} {n}",
        "{c} {t} {v} the {n} when the {n} is {a}",
        "this {v} the {n} without a {a} {n}",
        "the {t} {n} {v} a {a} {n} {d}",
        "keep the {n} {a} so the {t} {n} stays {a}",
    )
)
_STOPWORDS: Final = frozenset(
    """
    about above after again against also because been before being below between both could does doing down
    during each from further have having here hers herself himself into itself just more most myself once only
    other ours ourselves over own same should some such than that their theirs them themselves then there these
    they this those through under until very what when where which while whom will with would your yours
    yourself please explain write give tell show make using want need like know help what's
    """.split()
)
_KEYWORD_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{3,}")
_PIECE_RE: Final = re.compile(r"\s*\S+")
_OPENERS: Final = (
    "Here is a short answer about {k}.",
    "Regarding {k}, the key points follow.",
    "Good question about {k}.",
    "In short, on {k}:",
)
_JSON_PIECE_CHARS: Final = 12
_MAX_SCHEMA_DEPTH: Final = 6


@dataclass(frozen=True, slots=True)
class FakeModel:
    """The scripted behaviour of one fake model.

    Rates and fault probabilities are per request and drawn from a random generator derived from the server's
    ``seed``, the model and the request, so a given request gets the same reply (and the same fault) on every
    run.

    Args:
        name: the model id clients send (``"model"`` in the request body).
        latency: mean seconds before the first byte of a successful reply.
        latency_jitter: the latency varies uniformly by up to this many seconds either way.
        token_interval: seconds between streamed chunks.
        reply_words: reply length in words, fixed or an inclusive ``(low, high)`` range.
        hedge_rate: share of replies that start with "I'm not sure, but ...".
        refusal_rate: share of replies that are "I can't help with that."
        tool_call_rate: share of requests offering tools (with ``tool_choice`` auto or absent) that get a tool
            call back. ``tool_choice`` "required"/"any" or a named function always get one.
        faults: fault kind -> probability per request (see :data:`FAULT_KINDS`); at most one fault applies.
        reply: scripted content: a fixed string, or a callable given the :class:`FakeRequest`.
        usage: ``False`` omits token usage from every reply, so clients must estimate.
        context_window: a prompt of more estimated tokens than this gets the provider's context-length error.
        retry_after: seconds sent in ``Retry-After`` (and ``retry-after-ms``) with a 429.
        cost_per_1k_input: price hint used by :meth:`FakeProviderServer.config_dict`; the server ignores it.
        cost_per_1k_output: price hint used by :meth:`FakeProviderServer.config_dict`.
        tags: tags copied into :meth:`FakeProviderServer.config_dict`.
        embedding_dim: dimensions of the vectors the model returns from ``POST /v1/embeddings`` (a request's
            ``dimensions`` may ask for fewer).

    Raises:
        ValueError: a rate outside [0, 1], an unknown fault kind, fault probabilities summing above 1, a
            negative duration, or a non-positive ``embedding_dim``.

    .. versionadded:: 0.1
    """

    name: str
    _: KW_ONLY
    latency: float = 0.0
    latency_jitter: float = 0.0
    token_interval: float = 0.0
    reply_words: int | tuple[int, int] = DEFAULT_REPLY_WORDS
    hedge_rate: float = 0.0
    refusal_rate: float = 0.0
    tool_call_rate: float = 0.0
    faults: Mapping[str, float] = field(default_factory=dict)
    reply: Callable[[FakeRequest], str] | str | None = None
    usage: bool = True
    context_window: int | None = None
    retry_after: float = DEFAULT_RETRY_AFTER
    cost_per_1k_input: float | None = None
    cost_per_1k_output: float | None = None
    tags: tuple[str, ...] = ()
    embedding_dim: int = DEFAULT_EMBEDDING_DIM

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a fake model needs a name")
        for attr in ("latency", "latency_jitter", "token_interval", "retry_after"):
            if getattr(self, attr) < 0:
                raise ValueError(f"{attr} must not be negative")
        for attr in ("hedge_rate", "refusal_rate", "tool_call_rate"):
            if not 0.0 <= getattr(self, attr) <= 1.0:
                raise ValueError(f"{attr} must be between 0 and 1")
        faults = dict(self.faults)
        for kind, p in faults.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"probability of fault {kind!r} must be between 0 and 1")
        if sum(faults.values()) > 1.0 + 1e-9:
            raise ValueError("fault probabilities sum to more than 1")
        # A private copy: a caller mutating the dict they passed must not change a running server.
        object.__setattr__(self, "faults", faults)
        lo, hi = self.word_range
        if lo < 0 or hi < lo:
            raise ValueError("reply_words must be >= 0 (and low <= high for a range)")
        if self.context_window is not None and self.context_window <= 0:
            raise ValueError("context_window must be positive")
        if self.embedding_dim < 1:
            raise ValueError("embedding_dim must be positive")

    @property
    def word_range(self) -> tuple[int, int]:
        """``reply_words`` as an inclusive ``(low, high)`` range."""
        if isinstance(self.reply_words, int):
            return (self.reply_words, self.reply_words)
        return (int(self.reply_words[0]), int(self.reply_words[1]))

    def pick_fault(self, u: float) -> FaultKind | None:
        """The fault for a uniform draw *u* in [0, 1), or ``None``: cumulative over ``faults`` in order."""
        acc = 0.0
        for kind, p in self.faults.items():
            acc += p
            if u < acc:
                return kind  # type: ignore[return-value]  # validated in __post_init__
        return None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the client offered: its name and JSON-schema parameters."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """A chat request as the fake model sees it, whatever wire format carried it.

    A ``reply`` callable on :class:`FakeModel` receives one of these.

    Attributes:
        model: the model id that was asked for.
        format: the wire format of the endpoint: ``"openai"``, ``"openrouter"``, ``"anthropic"`` or ``"ollama"``.
        messages: the chat as ``{"role", "content"}`` dicts with text content; a top-level system prompt is
            the first message.
        prompt: the text of the last user message.
        max_tokens: the output cap the client asked for, if any.
        stream: whether the client asked for a stream.
        json_mode: the client asked for JSON output (``response_format`` / ``format``).
        json_schema: the schema it asked for, when it gave one.
        tools: the tools offered.
        tool_choice: ``"auto"``, ``"none"``, ``"required"`` or the name of a forced function.
        include_usage: OpenAI ``stream_options.include_usage``.
        stop: the stop sequences asked for (OpenAI ``stop``, Anthropic ``stop_sequences``, Ollama
            ``options.stop``): the reply ends before the first one it contains.
        api_key: the key the client sent, if any.
        repeat: how many identical requests (same model and chat) came before this one.
        body: the raw JSON body.

    .. versionadded:: 0.1
    """

    model: str
    format: WireFormat
    messages: Sequence[Mapping[str, str]]
    prompt: str
    _: KW_ONLY
    max_tokens: int | None = None
    stream: bool = False
    json_mode: bool = False
    json_schema: Mapping[str, Any] | None = None
    tools: Sequence[ToolSpec] = ()
    tool_choice: str = "auto"
    include_usage: bool = False
    stop: Sequence[str] = ()
    api_key: str | None = None
    repeat: int = 0
    body: Mapping[str, Any] = field(default_factory=dict)
    #: the last message answers a tool call, so an "auto" tool choice replies with text
    after_tool_result: bool = False


@dataclass(slots=True)
class RecordedRequest:
    """One request the fake server received, as the test needs to see it.

    Headers are recorded as sent, secrets included: tests assert on them (key rotation, ``anthropic-version``).

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        path: the URL path, e.g. ``"/v1/chat/completions"``.
        headers: request headers (the last value wins for repeated names).
        json: the parsed JSON body, or ``None`` (no body, or not JSON).
        model: the ``model`` field of the body, if any.
        format: the wire format of the endpoint.
        timestamp: wall-clock seconds since the epoch when the request arrived.
        api_key: the key sent (``Authorization: Bearer`` or ``x-api-key``), if any.
        stream: whether the body asked for a stream.
        status: the HTTP status answered (``None`` while undecided, and for ``timeout``/``reset``).
        fault: the fault injected into this request, if any.

    .. versionadded:: 0.1
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    model: str | None
    format: WireFormat
    timestamp: float
    api_key: str | None = None
    stream: bool = False
    status: int | None = None
    fault: FaultKind | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the fake model makes. ``token`` seeds the provider-specific id."""

    name: str
    arguments: Mapping[str, Any]
    token: str

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(slots=True)
class Reply:
    """One composed answer, before any wire format.

    ``finish`` is canonical (``"stop"``, ``"length"``, ``"tool_calls"``); each format renames it.
    ``pieces`` is ``text`` cut into stream chunks (joined they give ``text`` back).
    """

    model: str
    token: str
    request_token: str
    created: float
    text: str
    pieces: list[str]
    finish: Literal["stop", "length", "tool_calls"]
    prompt_tokens: int
    completion_tokens: int
    usage: bool
    include_usage: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: the stop sequence the reply ended on (its text stops just before it), when one did
    stop_sequence: str | None = None


def request_rng(seed: int, model: str, chat_key: str, repeat: int) -> random.Random:
    """The random generator of one request: a function of the seed, the model, the chat and its repeat count.

    Deriving it per request (not from one shared stream) keeps a given request's reply and fault the same
    however many other requests run concurrently.
    """
    digest = hashlib.blake2b(chat_key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return random.Random(f"{seed}\x1f{model}\x1f{repeat}\x1f{digest.hex()}")


def keywords(text: str, *, limit: int = 3) -> list[str]:
    """Up to *limit* distinctive words of *text*, lower-cased, in order of first appearance."""
    out: list[str] = []
    for match in _KEYWORD_RE.finditer(text):
        word = match.group(0).lower()
        if word in _STOPWORDS or word in out:
            continue
        out.append(word)
        if len(out) == limit:
            break
    return out


def _join_keywords(words: Sequence[str]) -> str:
    if not words:
        return "this"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def compose_text(rng: random.Random, n_words: int, topic: Sequence[str]) -> str:
    """Plausible prose of exactly *n_words* words that opens by naming the *topic* keywords."""
    if n_words <= 0:
        return ""
    words = rng.choice(_OPENERS).format(k=_join_keywords(topic)).split()[:n_words]
    # int(random() * len) instead of rng.choice(): this loop is the server's hottest pure-Python code.
    rand = rng.random
    pools = (_ADJECTIVES, _NOUNS, _VERBS, _ADVERBS, _CONNECTORS, tuple(topic) or _NOUNS)
    while len(words) < n_words:
        template = _TEMPLATES[int(rand() * len(_TEMPLATES))][: n_words - len(words)]
        sentence = [w if isinstance(w, str) else pools[w][int(rand() * len(pools[w]))] for w in template]
        sentence[0] = sentence[0][0].upper() + sentence[0][1:]
        sentence[-1] = sentence[-1].rstrip(",") + "."
        words.extend(sentence)
    text = " ".join(words)
    if text[-1] not in ".:":
        text += "."
    return text


def fake_json(schema: Any, rng: random.Random, topic: Sequence[str], *, depth: int = 0) -> Any:
    """A value that satisfies the common subset of JSON Schema (types, properties, items, enum, const)."""
    if not isinstance(schema, Mapping) or depth > _MAX_SCHEMA_DEPTH:
        return topic[0] if topic else "value"
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return rng.choice(enum)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return fake_json(options[0], rng, topic, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {str(k): fake_json(v, rng, topic, depth=depth + 1) for k, v in props.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        count = min(count + rng.randint(0, 1), int(schema.get("maxItems", count + 1)))
        return [fake_json(schema.get("items"), rng, topic, depth=depth + 1) for _ in range(count)]
    if kind == "integer":
        lo = int(schema.get("minimum", 1))
        return rng.randint(lo, max(lo, int(schema.get("maximum", lo + 99))))
    if kind == "number":
        low = float(schema.get("minimum", 0.0))
        return round(rng.uniform(low, max(low, float(schema.get("maximum", low + 100.0)))), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date":
        return "2026-01-01"
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    return rng.choice(topic) if topic else rng.choice(_NOUNS)


def split_pieces(text: str, *, json_mode: bool = False) -> list[str]:
    """Cut *text* into stream chunks: a word (with its leading whitespace) each, or fixed slices of JSON."""
    if not text:
        return []
    if json_mode:
        return [text[i : i + _JSON_PIECE_CHARS] for i in range(0, len(text), _JSON_PIECE_CHARS)]
    return _PIECE_RE.findall(text) or [text]


def _truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest word-prefix of *text* whose estimated token count fits *max_tokens*."""
    if max_tokens <= 0:
        return ""
    cut = text[: max_tokens * 4]
    while cut and estimate_tokens(cut) > max_tokens:
        cut = cut[:-1]
    if len(cut) < len(text) and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut


def compose_reply(
    model: FakeModel,
    request: FakeRequest,
    rng: random.Random,
    *,
    created: float,
    fault: FaultKind | None,
) -> Reply:
    """Compose the reply of *model* to *request*, honouring the content faults ``empty`` and ``truncated``.

    The draws from *rng* happen in a fixed order (tokens, tool call, hedging, refusal, length, words), so the
    reply is a function of the request's generator alone.
    """
    token = f"{rng.getrandbits(96):024x}"
    request_token = f"{rng.getrandbits(96):024x}"
    topic = keywords(request.prompt)
    prompt_tokens = estimate_messages_tokens(request.messages)
    tool_draw, hedge_draw, refusal_draw = rng.random(), rng.random(), rng.random()
    lo, hi = model.word_range
    n_words = rng.randint(lo, hi)

    tool = _choose_tool(model, request, tool_draw)
    if tool is not None and fault not in ("empty", "truncated"):
        args = fake_json(tool.parameters, rng, topic)
        if not isinstance(args, dict):
            args = {"input": args}
        call = ToolCall(name=tool.name, arguments=args, token=f"{rng.getrandbits(96):024x}")
        return Reply(
            model=request.model,
            token=token,
            request_token=request_token,
            created=created,
            text="",
            pieces=[],
            finish="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=estimate_tokens(call.name + call.arguments_json),
            usage=model.usage,
            include_usage=request.include_usage,
            tool_calls=[call],
        )

    finish: Literal["stop", "length"] = "stop"
    if fault == "empty":
        text = ""
    elif model.reply is not None:
        text = model.reply if isinstance(model.reply, str) else model.reply(request)
    elif request.json_mode:
        text = _json_reply(request, rng, topic, n_words)
    elif refusal_draw < model.refusal_rate:
        text = REFUSAL_TEXT
    else:
        text = compose_text(rng, n_words, topic)
        if hedge_draw < model.hedge_rate and text:
            text = f"{HEDGE_PREFIX} {text[0].lower()}{text[1:]}"
    if fault == "truncated" and text:
        words = text.split(" ")
        text = " ".join(words[: max(1, len(words) // 2)])
        finish = "length"
    stop_sequence = None
    if request.stop and text:
        hits = [(text.find(seq), seq) for seq in request.stop if seq and seq in text]
        if hits:
            at, stop_sequence = min(hits)
            text = text[:at]
    if request.max_tokens is not None and estimate_tokens(text) > request.max_tokens:
        text = _truncate_to_tokens(text, request.max_tokens)
        finish, stop_sequence = "length", None
    return Reply(
        model=request.model,
        token=token,
        request_token=request_token,
        created=created,
        text=text,
        pieces=split_pieces(text, json_mode=request.json_mode),
        finish=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=estimate_tokens(text),
        usage=model.usage,
        include_usage=request.include_usage,
        stop_sequence=stop_sequence,
    )


def _choose_tool(model: FakeModel, request: FakeRequest, draw: float) -> ToolSpec | None:
    if not request.tools or request.tool_choice == "none":
        return None
    if request.tool_choice == "required":
        return request.tools[0]
    if request.tool_choice != "auto":
        return next((t for t in request.tools if t.name == request.tool_choice), request.tools[0])
    if request.after_tool_result or draw >= model.tool_call_rate:
        return None
    return request.tools[0]


def _json_reply(request: FakeRequest, rng: random.Random, topic: Sequence[str], n_words: int) -> str:
    if request.json_schema is not None:
        value = fake_json(request.json_schema, rng, topic)
    else:
        value = {
            "answer": compose_text(rng, max(1, min(n_words, 40)), topic),
            "keywords": list(topic),
            "confidence": round(rng.uniform(0.5, 0.99), 2),
        }
    return json.dumps(value, ensure_ascii=False)
