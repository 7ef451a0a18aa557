"""What every provider is: pure request building and response parsing, plus a streaming decoder.

A provider never does I/O itself. :class:`asyncrouter.providers.ModelClient` sends what the provider builds
through :class:`asyncrouter._http.HTTPClient`, so each wire format is tested without a server and the one
HTTP path is shared by all of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .._config import ModelConfig
from .._models import ChatRequest, ChatResponse, StreamEvent, Usage
from .._tokens import estimate_messages_tokens, estimate_tokens

__all__ = ["EmbeddingReply", "Provider", "StreamDecoder", "normalise_finish_reason", "usage_or_estimate"]

_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def normalise_finish_reason(value: Any) -> str | None:
    """Map every provider's stop reason onto OpenAI's vocabulary: stop, length, tool_calls, content_filter."""
    if value is None or value == "":
        return None
    text = str(value)
    return _FINISH.get(text, text)


class StreamDecoder(Protocol):
    """Turns the raw bytes of one streamed reply into :data:`~asyncrouter._models.StreamEvent` items.

    ``feed`` returns the events completed by a chunk; ``close`` is called at end of body and returns the
    final :class:`ChatResponse` (raising :class:`~asyncrouter.StreamInterrupted` if the stream ended early).
    Errors delivered inside the stream are raised from ``feed``.
    """

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def close(self) -> ChatResponse: ...


class Provider(Protocol):
    """A wire format. Pure: no I/O, no clock."""

    kind: str

    def url(self, model: ModelConfig, *, stream: bool) -> str:
        """The endpoint URL for a chat request to *model*."""
        ...

    def headers(self, model: ModelConfig, key: str | None) -> dict[str, str]:
        """Request headers, including authentication with *key* (``None`` for keyless providers)."""
        ...

    def build_request(self, request: ChatRequest, model: ModelConfig) -> dict[str, Any]:
        """The JSON body for *request*."""
        ...

    def parse_response(self, data: Any, *, model: ModelConfig, request: ChatRequest) -> ChatResponse:
        """A non-streamed JSON reply as a :class:`ChatResponse` (usage estimated and marked if absent)."""
        ...

    def stream_decoder(self, *, model: ModelConfig, request: ChatRequest, secrets: Sequence[str]) -> StreamDecoder:
        """A fresh decoder for one streamed reply."""
        ...

    def models_url(self, model: ModelConfig) -> str:
        """The endpoint that lists the models a key may use (what ``check_keys`` asks)."""
        ...


def listed_model_ids(data: Any) -> list[str]:
    """The model ids of a models listing: OpenAI's and Anthropic's ``data[].id``, Ollama's ``models[].name``."""
    if not isinstance(data, Mapping):
        return []
    items = data.get("data")
    key = "id"
    if not isinstance(items, list):
        items, key = data.get("models"), "name"
    if not isinstance(items, list):
        return []
    return [str(m[key]) for m in items if isinstance(m, Mapping) and m.get(key)]


@dataclass(slots=True)
class KeyCheck:
    """What asking a provider to list its models with one configured key found.

    Attributes:
        model: the model alias.
        provider: its provider.
        key: which of the model's keys: ``"key 1 of 2"``, or ``"no key"`` for a keyless server (never the key).
        ok: the provider accepted the key.
        error: why not (``"AuthenticationError: ..."``), when it did not.
        models: how many models the provider listed for it.
        listed: whether the model's ``model_id`` is among them (``None`` when the provider listed none).

    .. versionadded:: 0.1.0
    """

    model: str
    provider: str
    key: str
    ok: bool
    error: str | None = None
    models: int = 0
    listed: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class EmbeddingReply:
    """The reply to one embeddings call: one vector per input text, in input order.

    Attributes:
        vectors: the embeddings, ``vectors[i]`` for the i-th text, as the provider sent them (not normalised).
        input_tokens: the provider's ``usage.prompt_tokens``, or an estimate when it sent none.
        estimated: whether ``input_tokens`` is an estimate.
        request_id: the provider's request id, when it sent one.
        provider_model: the model the provider says answered, when it said.

    .. versionadded:: 0.1
    """

    vectors: list[list[float]]
    input_tokens: int
    estimated: bool = False
    request_id: str | None = None
    provider_model: str | None = None

    @property
    def dimensions(self) -> int:
        """The length of each vector (0 when there are none)."""
        return len(self.vectors[0]) if self.vectors else 0


def text_of(content: Any) -> str:
    """Join a content value that may be a string or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                t = part.get("text")
                if isinstance(t, str):
                    out.append(t)
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return str(content)


def usage_or_estimate(input_tokens: Any, output_tokens: Any, request: ChatRequest, content: str) -> Usage:
    """The provider's token counts; any count it did not send is estimated, and the usage marked so."""
    if isinstance(input_tokens, int) and isinstance(output_tokens, int):
        return Usage(input_tokens, output_tokens, False)
    return Usage(
        input_tokens if isinstance(input_tokens, int) else estimate_messages_tokens(request.messages),
        output_tokens if isinstance(output_tokens, int) else estimate_tokens(content),
        True,
    )
