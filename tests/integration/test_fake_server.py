"""The fake provider fleet, driven over real sockets: raw aiohttp for every wire format, and the official
``openai`` SDK to prove the OpenAI format is the real thing."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from asyncrouter._config import load_config
from asyncrouter._tokens import estimate_messages_tokens, estimate_tokens
from asyncrouter._types import ProviderName
from asyncrouter.testing import (
    ALL_PROVIDERS,
    FAULT_KINDS,
    FakeModel,
    FakeProviderServer,
    FakeRequest,
    FaultKind,
    default_fleet,
)
from asyncrouter.testing._server import DEFAULT_SHUTDOWN_TIMEOUT

PROMPT = "Explain how a circuit breaker protects a FastAPI service from a failing database"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANTHROPIC_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
BEARER = {"Authorization": "Bearer test-key"}
WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "days"],
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER_PARAMS},
}
SDK_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
SDK_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": WEATHER_PARAMS},
}
CLOCK_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def fleet() -> list[FakeModel]:
    return [
        FakeModel("m", reply_words=(20, 40)),
        FakeModel("small", reply_words=12, context_window=60, retry_after=0.25),
    ]


@pytest.fixture
async def srv() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(models=fleet(), seed=7) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# ------------------------------------------------------------------------------------------------ helpers


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event, data) per SSE block; a comment-only block is ("comment", text)."""
    events: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            events.append((event, "\n".join(data)))
    return events


def openai_chunks(text: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON chunks of an OpenAI-format stream, and whether it ended with [DONE]."""
    chunks = []
    done = False
    for event, data in parse_sse(text):
        if event == "comment":
            continue
        if data == "[DONE]":
            done = True
            continue
        chunks.append(json.loads(data))
    return chunks, done


def openai_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Mapping[str, str], str]:
    async with http.post(url, json=body, headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.text()  # a copy keeps case-insensitive lookup


async def read_into(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str], sink: bytearray) -> None:
    """Stream a response body into *sink* chunk by chunk, so the caller keeps what arrived before a failure."""
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_any():
            sink.extend(chunk)


def chat(model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, **extra}


def anthropic_chat(model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1024, "messages": MESSAGES, **extra}


# ------------------------------------------------------------------------------------------- OpenAI format


async def test_openai_completion_shape_and_usage(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    status, headers, text = await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["x-request-id"].startswith("req_")
    body = json.loads(text)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "m"
    assert body["system_fingerprint"].startswith("fp_")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    content = choice["message"]["content"]
    assert choice["message"]["role"] == "assistant"
    assert 20 <= len(content.split()) <= 40
    # the reply is about the prompt
    assert "circuit" in content.lower()
    usage = body["usage"]
    assert usage["prompt_tokens"] == estimate_messages_tokens(MESSAGES)
    assert usage["completion_tokens"] == estimate_tokens(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_openai_stream_without_usage_then_with_include_usage(
    srv: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    url = srv.openai_url + "/chat/completions"
    status, headers, text = await post(http, url, chat(stream=True), BEARER)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    chunks, done = openai_chunks(text)
    assert done
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    plain = openai_text(chunks)
    assert 20 <= len(plain.split()) <= 40

    status, _, text = await post(http, url, chat(stream=True, stream_options={"include_usage": True}), BEARER)
    chunks, done = openai_chunks(text)
    assert done
    *body, last = chunks
    assert last["choices"] == []
    assert all(c["usage"] is None for c in body)
    content = openai_text(body)
    assert last["usage"]["completion_tokens"] == estimate_tokens(content)
    assert last["usage"]["prompt_tokens"] == estimate_messages_tokens(MESSAGES)


async def test_stream_and_completion_carry_the_same_reply(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.openai_url + "/chat/completions"
    _, _, text = await post(http, url, chat(), BEARER)
    whole = json.loads(text)["choices"][0]["message"]["content"]
    srv.reset()  # the same request, first time again
    _, _, text = await post(http, url, chat(stream=True), BEARER)
    assert openai_text(openai_chunks(text)[0]) == whole


async def test_openai_tool_call_required_and_named(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.openai_url + "/chat/completions"
    _, _, text = await post(http, url, chat(tools=[WEATHER_TOOL, CLOCK_TOOL], tool_choice="required"), BEARER)
    body = json.loads(text)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])  # a JSON string, as OpenAI sends it
    assert isinstance(args["city"], str)
    assert 1 <= args["days"] <= 7

    named = {"type": "function", "function": {"name": "get_time"}}
    _, _, text = await post(http, url, chat(tools=[WEATHER_TOOL, CLOCK_TOOL], tool_choice=named), BEARER)
    assert json.loads(text)["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"

    # "auto" with the default tool_call_rate of 0 answers in text; "none" never calls
    for choice_value in ("auto", "none"):
        _, _, text = await post(http, url, chat(tools=[WEATHER_TOOL], tool_choice=choice_value), BEARER)
        message = json.loads(text)["choices"][0]["message"]
        assert "tool_calls" not in message
        assert message["content"]


async def test_openai_streamed_tool_call_deltas(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    body = chat(tools=[WEATHER_TOOL], tool_choice="required", stream=True, stream_options={"include_usage": True})
    _, _, text = await post(http, srv.openai_url + "/chat/completions", body, BEARER)
    chunks, done = openai_chunks(text)
    assert done
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    first = deltas[0]["tool_calls"][0]
    assert first["id"].startswith("call_")
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d)
    assert len([d for d in deltas if "tool_calls" in d]) > 2  # really streamed in pieces
    assert set(json.loads(arguments)) == {"city", "days"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] > 0


async def test_tool_call_rate_and_tool_results(http: aiohttp.ClientSession) -> None:
    async with FakeProviderServer(models=[FakeModel("t", tool_call_rate=1.0)]) as srv:
        url = srv.openai_url + "/chat/completions"
        _, _, text = await post(http, url, chat("t", tools=[WEATHER_TOOL]), BEARER)
        call = json.loads(text)["choices"][0]["message"]["tool_calls"][0]
        # after the tool result comes back, "auto" answers in text
        followup = [
            *MESSAGES,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'},
        ]
        _, _, text = await post(http, url, {"model": "t", "messages": followup, "tools": [WEATHER_TOOL]}, BEARER)
        message = json.loads(text)["choices"][0]["message"]
        assert message["content"]
        assert "tool_calls" not in message


async def test_response_format_json(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.openai_url + "/chat/completions"
    _, _, text = await post(http, url, chat(response_format={"type": "json_object"}), BEARER)
    value = json.loads(json.loads(text)["choices"][0]["message"]["content"])
    assert isinstance(value, dict)
    assert value["answer"]

    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "level": {"enum": ["low", "high"]},
            "ok": {"type": "boolean"},
        },
        "required": ["title", "score", "tags", "level", "ok"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}}
    _, _, text = await post(http, url, chat(response_format=fmt, stream=True), BEARER)
    value = json.loads(openai_text(openai_chunks(text)[0]))
    assert set(value) == set(schema["properties"])
    assert isinstance(value["title"], str)
    assert 0 <= value["score"] <= 1
    assert len(value["tags"]) >= 2
    assert value["level"] in ("low", "high")
    assert isinstance(value["ok"], bool)


async def test_max_tokens_cuts_the_reply(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    _, _, text = await post(http, srv.openai_url + "/chat/completions", chat(max_tokens=5), BEARER)
    body = json.loads(text)
    assert body["choices"][0]["finish_reason"] == "length"
    assert 0 < body["usage"]["completion_tokens"] <= 5


async def test_openai_validation(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.openai_url + "/chat/completions"
    status, _, text = await post(http, url, {"model": "m"}, BEARER)
    assert status == 400
    assert json.loads(text)["error"]["type"] == "invalid_request_error"
    async with http.post(url, data=b"{not json", headers=BEARER) as resp:
        assert resp.status == 400
        assert "parse the JSON body" in (await resp.json())["error"]["message"]


# ---------------------------------------------------------------------------------------- Anthropic format


async def test_anthropic_message_shape(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    body = anthropic_chat(system="You are terse.")
    status, headers, text = await post(http, srv.anthropic_url + "/v1/messages", body, ANTHROPIC_HEADERS)
    assert status == 200
    assert headers["request-id"].startswith("req_")
    msg = json.loads(text)
    assert msg["id"].startswith("msg_")
    assert msg["type"] == "message"
    assert msg["role"] == "assistant"
    assert msg["stop_reason"] == "end_turn"
    assert msg["stop_sequence"] is None
    (block,) = msg["content"]
    assert block["type"] == "text"
    # the top-level system prompt counts toward the input
    system_and_chat = [{"role": "system", "content": "You are terse."}, *MESSAGES]
    assert msg["usage"]["input_tokens"] == estimate_messages_tokens(system_and_chat)
    assert msg["usage"]["output_tokens"] == estimate_tokens(block["text"])


async def test_anthropic_stream_events(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    body = anthropic_chat(stream=True, system=[{"type": "text", "text": "Be brief."}])
    status, headers, text = await post(http, srv.anthropic_url + "/v1/messages", body, ANTHROPIC_HEADERS)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    events = parse_sse(text)
    names = [e for e, _ in events]
    datas = [json.loads(d) for _, d in events]
    assert all(d["type"] == e for e, d in zip(names, datas, strict=True))  # event name mirrors data.type
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    streamed = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
    assert datas[0]["message"]["usage"]["input_tokens"] > 0
    delta = datas[-2]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == estimate_tokens(streamed)


@pytest.mark.parametrize(
    ("headers", "body", "status", "etype", "needle"),
    [
        pytest.param(
            {"x-api-key": "k"}, anthropic_chat(), 400, "invalid_request_error", "anthropic-version", id="no-version"
        ),
        pytest.param(
            {"anthropic-version": "2023-06-01"}, anthropic_chat(), 401, "authentication_error", "x-api-key", id="no-key"
        ),
        pytest.param(ANTHROPIC_HEADERS, chat(), 400, "invalid_request_error", "max_tokens", id="no-max-tokens"),
        pytest.param(
            ANTHROPIC_HEADERS,
            {"model": "m", "max_tokens": 5, "messages": "hi"},
            400,
            "invalid_request_error",
            "messages",
            id="messages-not-list",
        ),
        pytest.param(
            ANTHROPIC_HEADERS,
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}, *MESSAGES]},
            400,
            "invalid_request_error",
            "top-level `system`",
            id="system-role",
        ),
        pytest.param(ANTHROPIC_HEADERS, anthropic_chat("nope"), 404, "not_found_error", "nope", id="unknown-model"),
    ],
)
async def test_anthropic_validation(
    srv: FakeProviderServer,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    etype: str,
    needle: str,
) -> None:
    got, got_headers, text = await post(http, srv.anthropic_url + "/v1/messages", body, headers)
    assert got == status
    err = json.loads(text)
    assert err["type"] == "error"
    assert err["error"]["type"] == etype
    assert needle in err["error"]["message"]
    assert err["request_id"] == got_headers["request-id"]


async def test_anthropic_tool_use(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    tool = {"name": "get_weather", "input_schema": WEATHER_PARAMS}
    url = srv.anthropic_url + "/v1/messages"
    body = anthropic_chat(tools=[tool], tool_choice={"type": "any"})
    _, _, text = await post(http, url, body, ANTHROPIC_HEADERS)
    msg = json.loads(text)
    assert msg["stop_reason"] == "tool_use"
    (block,) = msg["content"]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")
    assert set(block["input"]) == {"city", "days"}  # an object, not a string

    _, _, text = await post(http, url, {**body, "stream": True}, ANTHROPIC_HEADERS)
    datas = [json.loads(d) for _, d in parse_sse(text)]
    start = next(d for d in datas if d["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    partial = "".join(
        d["delta"]["partial_json"]
        for d in datas
        if d["type"] == "content_block_delta"
        if d["delta"]["type"] == "input_json_delta"
    )
    assert set(json.loads(partial)) == {"city", "days"}
    assert next(d for d in datas if d["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"


# ------------------------------------------------------------------------------------------- Ollama native


async def test_ollama_native_stream_is_ndjson_by_default(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    status, headers, text = await post(http, srv.ollama_url + "/api/chat", chat())
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in text.splitlines()]
    *parts, final = lines
    assert all(p["done"] is False for p in parts)
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    content = "".join(p["message"]["content"] for p in parts)
    assert final["eval_count"] == estimate_tokens(content)
    assert final["prompt_eval_count"] == estimate_messages_tokens(MESSAGES)
    assert final["total_duration"] > 0


async def test_ollama_native_complete_json_and_tools(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.ollama_url + "/api/chat"
    _, _, text = await post(http, url, chat(stream=False, options={"num_predict": 4}))
    body = json.loads(text)
    assert body["done"] is True
    assert body["done_reason"] == "length"
    assert body["eval_count"] <= 4

    _, _, text = await post(http, url, chat(stream=False, format="json"))
    assert isinstance(json.loads(json.loads(text)["message"]["content"]), dict)

    async with FakeProviderServer(models=[FakeModel("t", tool_call_rate=1.0)]) as tools_srv:
        _, _, text = await post(http, tools_srv.ollama_url + "/api/chat", chat("t", stream=False, tools=[WEATHER_TOOL]))
    (call,) = json.loads(text)["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], dict)  # Ollama sends an object, not a string

    status, _, text = await post(http, url, chat("llama-nope", stream=False))
    assert status == 404
    assert json.loads(text) == {"error": 'model "llama-nope" not found, try pulling it first'}


async def test_ollama_openai_compatible_endpoint_needs_no_key(
    srv: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    status, _, text = await post(http, srv.ollama_url + "/v1/chat/completions", chat())
    assert status == 200
    assert json.loads(text)["object"] == "chat.completion"
    assert srv.huggingface_url == srv.openai_url == srv.url + "/v1"


# ---------------------------------------------------------------------------------------------- OpenRouter


async def test_openrouter_stream_comment_ids_and_usage(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    assert srv.openrouter_url == srv.url + "/api/v1"
    status, headers, text = await post(http, srv.openrouter_url + "/chat/completions", chat(stream=True), BEARER)
    assert status == 200
    assert text.startswith(": OPENROUTER PROCESSING\n\n")
    assert headers["x-generation-id"].startswith("gen-")
    chunks, done = openai_chunks(text)
    assert done
    assert chunks[0]["id"].startswith("gen-")
    assert chunks[0]["provider"] == "Fake"
    # OpenRouter ends every stream with usage, asked for or not
    assert chunks[-1]["usage"]["completion_tokens"] == estimate_tokens(openai_text(chunks))


async def test_openrouter_requires_a_key_and_rejects_unknown_models(
    srv: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    url = srv.openrouter_url + "/chat/completions"
    status, _, text = await post(http, url, chat())
    assert status == 401
    assert json.loads(text) == {"error": {"code": 401, "message": "No auth credentials found"}}
    status, _, text = await post(http, url, chat("openai/gpt-99"), BEARER)
    assert status == 400
    assert json.loads(text)["error"]["message"] == "openai/gpt-99 is not a valid model ID"


# ------------------------------------------------------------------------------------------------ listings


async def test_model_listings(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async with http.get(srv.openai_url + "/models", headers=BEARER) as resp:
        body = await resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["m", "small"]
    async with http.get(srv.anthropic_url + "/v1/models", headers=ANTHROPIC_HEADERS) as resp:
        body = await resp.json()
    assert body["data"][0]["type"] == "model"
    assert body["has_more"] is False
    async with http.get(srv.openrouter_url + "/models") as resp:
        body = await resp.json()
    assert body["data"][1]["context_length"] == 60
    async with http.get(srv.ollama_url + "/api/tags") as resp:
        body = await resp.json()
    assert [m["name"] for m in body["models"]] == ["m", "small"]
    assert srv.calls(path="/v1/models") == 2


# ------------------------------------------------------------------------------------------ error formats


def ollama_chat(model: str = "m") -> dict[str, Any]:
    return chat(model, stream=False)


ENDPOINTS: dict[str, tuple[str, dict[str, str], Callable[[], dict[str, Any]]]] = {
    "openai": ("/v1/chat/completions", BEARER, chat),
    "openrouter": ("/api/v1/chat/completions", BEARER, chat),
    "anthropic": ("/v1/messages", ANTHROPIC_HEADERS, anthropic_chat),
    "ollama": ("/api/chat", {}, ollama_chat),
}

# fault -> per format: (status, what identifies the error)
ERROR_TABLE: dict[str, dict[str, tuple[int, str]]] = {
    "500": {
        "openai": (500, "server_error"),
        "openrouter": (500, "500"),
        "anthropic": (500, "api_error"),
        "ollama": (500, "llama runner"),
    },
    "502": {
        "openai": (502, "server_error"),
        "openrouter": (502, "502"),
        "anthropic": (502, "api_error"),
        "ollama": (502, "bad gateway"),
    },
    "503": {
        "openai": (503, "server_error"),
        "openrouter": (503, "503"),
        "anthropic": (503, "api_error"),
        "ollama": (503, "unavailable"),
    },
    "529": {
        "openai": (503, "overloaded"),
        "openrouter": (503, "overloaded"),
        "anthropic": (529, "overloaded_error"),
        "ollama": (503, "server busy"),
    },
    "overloaded": {
        "openai": (503, "overloaded"),
        "openrouter": (503, "overloaded"),
        "anthropic": (529, "overloaded_error"),
        "ollama": (503, "server busy"),
    },
    "429": {
        "openai": (429, "rate_limit_exceeded"),
        "openrouter": (429, "429"),
        "anthropic": (429, "rate_limit_error"),
        "ollama": (429, "too many requests"),
    },
    "quota": {
        "openai": (429, "insufficient_quota"),
        "openrouter": (402, "402"),
        "anthropic": (402, "billing_error"),
        "ollama": (429, "usage quota"),
    },
    "401": {
        "openai": (401, "invalid_api_key"),
        "openrouter": (401, "401"),
        "anthropic": (401, "authentication_error"),
        "ollama": (401, "unauthorized"),
    },
    "400": {
        "openai": (400, "invalid_request_error"),
        "openrouter": (400, "400"),
        "anthropic": (400, "invalid_request_error"),
        "ollama": (400, "invalid request"),
    },
    "context_length": {
        "openai": (400, "context_length_exceeded"),
        "openrouter": (400, "maximum context length"),
        "anthropic": (400, "prompt is too long"),
        "ollama": (400, "exceeds the context length"),
    },
    "content_policy": {
        "openai": (400, "content_policy_violation"),
        "openrouter": (403, "moderation"),
        "anthropic": (400, "content filtering"),
        "ollama": (400, "content policy"),
    },
}


def error_marker(fmt: str, body: Any) -> str:
    """Everything in an error body that identifies it, as one string."""
    if fmt == "openai":
        err = body["error"]
        return f"{err['type']} {err['code']} {err['message']}"
    if fmt == "openrouter":
        err = body["error"]
        assert isinstance(err["code"], int)
        return f"{err['code']} {err['message']}"
    if fmt == "anthropic":
        assert body["type"] == "error"
        return f"{body['error']['type']} {body['error']['message']}"
    assert set(body) == {"error"}
    return str(body["error"])


@pytest.mark.parametrize("fmt", list(ENDPOINTS))
@pytest.mark.parametrize("fault", list(ERROR_TABLE))
async def test_http_faults_in_each_wire_format(
    srv: FakeProviderServer, http: aiohttp.ClientSession, fault: FaultKind, fmt: str
) -> None:
    path, headers, make = ENDPOINTS[fmt]
    srv.script("m", [fault])
    status, resp_headers, text = await post(http, srv.url + path, make(), headers)
    want_status, marker = ERROR_TABLE[fault][fmt]
    assert status == want_status
    assert marker in error_marker(fmt, json.loads(text))
    if fault == "429":
        assert resp_headers["Retry-After"] == "1"
        assert resp_headers["retry-after-ms"] == "1000"
    assert srv.requests[-1].fault == fault
    assert srv.requests[-1].status == want_status
    # the queue is used up: the next request succeeds
    status, _, _ = await post(http, srv.url + path, make(), headers)
    assert status == 200


def test_error_table_covers_every_http_fault() -> None:
    body_faults = {"timeout", "reset", "malformed_json", "mid_stream_error", "truncated_stream", "empty", "truncated"}
    assert set(ERROR_TABLE) | body_faults == set(FAULT_KINDS)


async def test_retry_after_is_configurable(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    srv.script("small", ["429"])
    _, headers, _ = await post(http, srv.openai_url + "/chat/completions", chat("small"), BEARER)
    assert (headers["Retry-After"], headers["retry-after-ms"]) == ("0.25", "250")


async def test_unknown_model_is_404_model_not_found(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    status, _, text = await post(http, srv.openai_url + "/chat/completions", chat("gpt-nope"), BEARER)
    assert status == 404
    assert json.loads(text)["error"]["code"] == "model_not_found"


async def test_context_window_is_enforced(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    long_chat = [{"role": "user", "content": "word " * 300}]
    status, _, text = await post(
        http, srv.openai_url + "/chat/completions", {"model": "small", "messages": long_chat}, BEARER
    )
    assert status == 400
    err = json.loads(text)["error"]
    assert err["code"] == "context_length_exceeded"
    assert "maximum context length is 60 tokens" in err["message"]
    status, _, text = await post(
        http,
        srv.anthropic_url + "/v1/messages",
        {"model": "small", "max_tokens": 10, "messages": long_chat},
        ANTHROPIC_HEADERS,
    )
    assert status == 400
    assert "> 60 maximum" in json.loads(text)["error"]["message"]
    assert srv.requests[-1].fault is None  # a real rejection, not an injected fault


# -------------------------------------------------------------------------------------- connection faults


async def test_timeout_fault_holds_until_the_client_gives_up(
    srv: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    srv.script("m", ["timeout"])
    with pytest.raises(TimeoutError):
        async with http.post(
            srv.openai_url + "/chat/completions", json=chat(), headers=BEARER, timeout=aiohttp.ClientTimeout(total=0.2)
        ):
            pass
    assert srv.requests[-1].status is None
    status, _, _ = await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)
    assert status == 200


async def test_close_drops_requests_still_waiting(http: aiohttp.ClientSession) -> None:
    models = [FakeModel("hang"), FakeModel("slow", latency=30.0), FakeModel("drip", token_interval=30.0)]
    errors: list[BaseException] = []

    async def call(srv: FakeProviderServer, model: str, stream: bool) -> None:
        try:
            async with http.post(srv.openai_url + "/chat/completions", json=chat(model, stream=stream)) as resp:
                await resp.read()
        except aiohttp.ClientError as exc:
            errors.append(exc)

    # A deadline, not a measurement: closing must wake the waiting handlers at once, well before both their
    # 30 s and aiohttp's own shutdown grace period (after which it would cancel them itself).
    with anyio.fail_after(DEFAULT_SHUTDOWN_TIMEOUT * 0.75):
        async with anyio.create_task_group() as tg:
            async with FakeProviderServer(models=models) as srv:
                srv.script("hang", ["timeout"])
                tg.start_soon(call, srv, "hang", False)
                tg.start_soon(call, srv, "slow", False)
                tg.start_soon(call, srv, "drip", True)
                while srv.calls() < 3:
                    await anyio.lowlevel.checkpoint()
    assert len(errors) == 3


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_reset_aborts_the_connection(srv: FakeProviderServer, http: aiohttp.ClientSession, stream: bool) -> None:
    srv.script("m", ["reset"])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, srv.openai_url + "/chat/completions", chat(stream=stream), BEARER)


async def test_malformed_json(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.openai_url + "/chat/completions"
    srv.script("m", ["malformed_json", "malformed_json"])
    status, headers, text = await post(http, url, chat(), BEARER)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    status, _, text = await post(http, url, chat(stream=True), BEARER)
    datas = [d for _, d in parse_sse(text)]
    assert datas[-1] == "[DONE]"
    broken = []
    for data in datas[:-1]:
        try:
            json.loads(data)
        except json.JSONDecodeError:
            broken.append(data)
    assert len(broken) == 1


async def test_mid_stream_error_in_each_format(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    srv.script("m", ["mid_stream_error"] * 4)
    # OpenAI: a few deltas, then a data: {"error": ...} event, no [DONE]
    _, _, text = await post(http, srv.openai_url + "/chat/completions", chat(stream=True), BEARER)
    datas = [json.loads(d) for _, d in parse_sse(text)]
    assert "[DONE]" not in text
    assert openai_text(datas[:-1])
    assert datas[-1]["error"]["type"] == "server_error"
    # OpenRouter: HTTP 200, then a chunk with an error field and finish_reason "error"
    status, _, text = await post(http, srv.openrouter_url + "/chat/completions", chat(stream=True), BEARER)
    assert status == 200
    chunks, done = openai_chunks(text)
    assert not done
    assert chunks[-1]["error"]["message"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "error"
    # Anthropic: event: error
    _, _, text = await post(http, srv.anthropic_url + "/v1/messages", anthropic_chat(stream=True), ANTHROPIC_HEADERS)
    events = parse_sse(text)
    assert events[-1][0] == "error"
    assert json.loads(events[-1][1])["error"]["type"] == "overloaded_error"
    assert "message_stop" not in [e for e, _ in events]
    # Ollama: an {"error": ...} line
    _, _, text = await post(http, srv.ollama_url + "/api/chat", chat())
    lines = [json.loads(line) for line in text.splitlines()]
    assert "error" in lines[-1]
    assert not any(line.get("done") for line in lines)


async def test_mid_stream_error_without_a_stream(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    srv.script("m", ["mid_stream_error", "mid_stream_error"])
    status, _, _ = await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)
    assert status == 500
    status, _, text = await post(http, srv.openrouter_url + "/chat/completions", chat(), BEARER)
    assert status == 200  # OpenRouter: the error arrives in a 200 body
    assert json.loads(text)["error"]["code"] == 502


@pytest.mark.parametrize("fmt", list(ENDPOINTS))
async def test_truncated_stream_closes_without_the_final_event(
    srv: FakeProviderServer, http: aiohttp.ClientSession, fmt: str
) -> None:
    path, headers, make = ENDPOINTS[fmt]
    srv.script("m", ["truncated_stream"])
    sink = bytearray()
    with pytest.raises(aiohttp.ClientPayloadError):
        await read_into(http, srv.url + path, {**make(), "stream": True}, headers, sink)
    received = bytes(sink)
    assert received  # some deltas arrived first
    assert b"[DONE]" not in received
    assert b"message_stop" not in received
    assert b'"done":true' not in received


async def test_truncated_body_without_a_stream(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    srv.script("m", ["truncated_stream"])
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)


async def test_empty_and_truncated_replies(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    srv.script("m", ["empty", "truncated", "truncated", "truncated"])
    _, _, text = await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)
    body = json.loads(text)
    assert body["choices"][0]["message"]["content"] == ""
    assert body["usage"]["completion_tokens"] == 0
    _, _, text = await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)
    assert json.loads(text)["choices"][0]["finish_reason"] == "length"
    _, _, text = await post(http, srv.anthropic_url + "/v1/messages", anthropic_chat(), ANTHROPIC_HEADERS)
    assert json.loads(text)["stop_reason"] == "max_tokens"
    _, _, text = await post(http, srv.ollama_url + "/api/chat", chat(stream=False))
    assert json.loads(text)["done_reason"] == "length"


# ------------------------------------------------------------------------------------- content behaviour


async def test_hedging_refusal_and_scripted_replies(http: aiohttp.ClientSession) -> None:
    seen: list[FakeRequest] = []

    def echo(request: FakeRequest) -> str:
        seen.append(request)
        return f"echo: {request.prompt}"

    models = [
        FakeModel("hedger", hedge_rate=1.0),
        FakeModel("refuser", refusal_rate=1.0),
        FakeModel("fixed", reply="Paris."),
        FakeModel("echo", reply=echo),
        FakeModel("exact", reply_words=17),
    ]
    async with FakeProviderServer(models=models) as srv:
        url = srv.openai_url + "/chat/completions"

        async def content(model: str) -> str:
            _, _, text = await post(http, url, chat(model), BEARER)
            return str(json.loads(text)["choices"][0]["message"]["content"])

        assert (await content("hedger")).startswith("I'm not sure, but ")
        assert await content("refuser") == "I can't help with that."
        assert await content("fixed") == "Paris."
        assert await content("echo") == f"echo: {PROMPT}"
        assert len((await content("exact")).split()) == 17
    (request,) = seen
    assert request.format == "openai"
    assert request.api_key == "test-key"
    assert request.repeat == 0


async def test_usage_can_be_omitted(http: aiohttp.ClientSession) -> None:
    async with FakeProviderServer(models=[FakeModel("quiet", usage=False)]) as srv:
        _, _, text = await post(http, srv.openai_url + "/chat/completions", chat("quiet"), BEARER)
        assert "usage" not in json.loads(text)
        body = chat("quiet", stream=True, stream_options={"include_usage": True})
        _, _, text = await post(http, srv.openai_url + "/chat/completions", body, BEARER)
        chunks, _ = openai_chunks(text)
        assert all(c.get("usage") is None for c in chunks)
        assert all(c["choices"] for c in chunks)  # no trailing usage chunk
        _, _, text = await post(http, srv.anthropic_url + "/v1/messages", anthropic_chat("quiet"), ANTHROPIC_HEADERS)
        assert "usage" not in json.loads(text)
        _, _, text = await post(http, srv.ollama_url + "/api/chat", chat("quiet", stream=False))
        assert "eval_count" not in json.loads(text)


# ------------------------------------------------------------------------------------------- determinism

PROMPTS = [
    f"Question {i}: compare {w} with queues and caches"
    for i, w in enumerate(
        ["redis", "kafka", "sqlite", "postgres", "rabbitmq", "nats", "zeromq", "memcached", "etcd", "consul"]
    )
]


async def run_batch(http: aiohttp.ClientSession, seed: int, *, concurrent: bool) -> dict[str, tuple[int, str]]:
    model = FakeModel("r", faults={"500": 0.3, "429": 0.2}, hedge_rate=0.5, reply_words=(5, 50))
    out: dict[str, tuple[int, str]] = {}
    async with FakeProviderServer(models=[model], seed=seed) as srv:

        async def one(prompt: str) -> None:
            body = {"model": "r", "messages": [{"role": "user", "content": prompt}]}
            status, _, text = await post(http, srv.openai_url + "/chat/completions", body, BEARER)
            payload = json.loads(text)
            out[prompt] = (status, payload["choices"][0]["message"]["content"] if status == 200 else "")

        if concurrent:
            async with anyio.create_task_group() as tg:
                for prompt in reversed(PROMPTS):
                    tg.start_soon(one, prompt)
        else:
            for prompt in PROMPTS:
                await one(prompt)
    return out


async def test_replies_and_faults_are_deterministic_under_a_seed(http: aiohttp.ClientSession) -> None:
    first = await run_batch(http, seed=11, concurrent=False)
    again = await run_batch(http, seed=11, concurrent=True)
    other = await run_batch(http, seed=12, concurrent=False)
    assert first == again  # same seed: same reply and same fault per request, whatever the order
    assert first != other
    statuses = [s for s, _ in first.values()]
    assert 200 in statuses
    assert {500, 429} & set(statuses)  # the random faults fire


async def test_identical_requests_differ_but_replay_after_reset(
    srv: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    url = srv.openai_url + "/chat/completions"
    replies = [
        json.loads((await post(http, url, chat(), BEARER))[2])["choices"][0]["message"]["content"] for _ in range(2)
    ]
    assert replies[0] != replies[1]  # a retry is a new draw, as at a real provider
    srv.reset()
    assert json.loads((await post(http, url, chat(), BEARER))[2])["choices"][0]["message"]["content"] == replies[0]


# ------------------------------------------------------------------------------- recording and scripting


async def test_requests_are_recorded_and_counted(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    await post(http, srv.openai_url + "/chat/completions", chat(), BEARER)
    await post(http, srv.openai_url + "/chat/completions", chat("small", stream=True), BEARER)
    await post(http, srv.anthropic_url + "/v1/messages", anthropic_chat(), ANTHROPIC_HEADERS)
    await post(http, srv.ollama_url + "/api/chat", chat("nope"))
    assert srv.calls() == 4
    assert srv.calls(model="m") == 2
    assert srv.calls(model="small") == 1
    assert srv.calls(path="/v1/chat/completions") == 2
    assert srv.calls(model="m", path="/v1/messages") == 1
    first, second, third, fourth = srv.requests
    assert (first.method, first.path, first.format, first.model) == ("POST", "/v1/chat/completions", "openai", "m")
    assert first.headers["Authorization"] == "Bearer test-key"
    assert first.api_key == "test-key"
    assert first.json == chat()
    assert (first.status, first.stream) == (200, False)
    assert second.stream is True
    assert third.format == "anthropic"
    assert third.headers["anthropic-version"] == "2023-06-01"
    assert third.api_key == "test-key"
    assert (fourth.format, fourth.status, fourth.stream) == ("ollama", 404, True)
    assert first.timestamp <= fourth.timestamp
    srv.reset()
    assert srv.calls() == 0
    assert srv.requests == []


async def test_scripted_queue_comes_before_random_faults(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    srv.set_faults("m", {"503": 1.0})
    srv.script("m", ["429", None, "500"])
    assert srv.pending_script("m") == ["429", None, "500"]
    url = srv.openai_url + "/chat/completions"
    statuses = [(await post(http, url, chat(), BEARER))[0] for _ in range(4)]
    assert statuses == [429, 200, 500, 503]  # None answers normally, then the random fault takes over
    assert srv.pending_script("m") == []
    # other models are untouched
    assert (await post(http, url, chat("small"), BEARER))[0] == 200
    with pytest.raises(ValueError, match="unknown fault kind"):
        srv.script("m", ["418"])  # type: ignore[list-item]
    with pytest.raises(KeyError):
        srv.script("nope", ["500"])


async def test_set_behaviour_and_reset(srv: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = srv.openai_url + "/chat/completions"
    updated = srv.set_behaviour("m", reply="changed", usage=False)
    assert updated.reply == "changed"
    body = json.loads((await post(http, url, chat(), BEARER))[2])
    assert body["choices"][0]["message"]["content"] == "changed"
    with pytest.raises(ValueError, match="hedge_rate"):
        srv.set_behaviour("m", hedge_rate=2.0)
    srv.add_model(FakeModel("extra"))
    assert (await post(http, url, chat("extra"), BEARER))[0] == 200
    srv.reset()
    assert "extra" not in srv.models
    body = json.loads((await post(http, url, chat(), BEARER))[2])
    assert body["choices"][0]["message"]["content"] != "changed"
    assert "usage" in body


# ----------------------------------------------------------------------------------------------- API keys


async def test_key_acceptance_and_per_key_faults(http: aiohttp.ClientSession) -> None:
    async with FakeProviderServer(models=fleet(), api_keys={"k1", "k2"}, key_faults={"k2": "429"}) as srv:
        url = srv.openai_url + "/chat/completions"

        async def status_with(key: str | None, target: str = url, body: Any = None) -> tuple[int, Any]:
            headers = {} if key is None else {"Authorization": f"Bearer {key}"}
            got, _, text = await post(http, target, body or chat(), headers)
            return got, json.loads(text)

        assert (await status_with("k1"))[0] == 200
        got, body = await status_with("sk-wrong-0123456789")
        assert got == 401
        assert body["error"]["code"] == "invalid_api_key"
        assert "sk-wrong-0123456789" not in body["error"]["message"]  # masked, as OpenAI does
        assert "sk-********6789" in body["error"]["message"]
        got, body = await status_with(None)
        assert got == 401
        assert "didn't provide an API key" in body["error"]["message"]
        for _ in range(3):
            assert (await status_with("k2"))[0] == 429  # always, so rotation can be tested
        srv.set_key_fault("k2", None)
        assert (await status_with("k2"))[0] == 200
        srv.set_key_fault("k1", "quota")
        got, body = await status_with("k1")
        assert (got, body["error"]["code"]) == (429, "insufficient_quota")
        # Anthropic's key header is checked the same way
        bad = {**ANTHROPIC_HEADERS, "x-api-key": "k9"}
        got, _, text = await post(http, srv.anthropic_url + "/v1/messages", anthropic_chat(), bad)
        assert (got, json.loads(text)["error"]["type"]) == (401, "authentication_error")
        # Ollama's native API asks for no key
        assert (await post(http, srv.ollama_url + "/api/chat", chat(stream=False)))[0] == 200
        # the listing is guarded too
        async with http.get(srv.openai_url + "/models", headers={"Authorization": "Bearer k3"}) as resp:
            assert resp.status == 401
        # a request refused for its key never reaches the model's fault queue
        srv.script("m", ["500"])
        assert (await status_with("k3"))[0] == 401
        assert srv.pending_script("m") == ["500"]


# --------------------------------------------------------------------------------------------- streaming


async def test_paced_stream_and_client_disconnect(http: aiohttp.ClientSession) -> None:
    async with FakeProviderServer(models=[FakeModel("drip", token_interval=0.005, reply_words=60)]) as srv:
        url = srv.openai_url + "/chat/completions"
        async with http.post(url, json=chat("drip", stream=True), headers=BEARER) as resp:
            first = await resp.content.readuntil(b"\n\n")
            assert first.startswith(b"data: ")
            # leave without reading the rest: the server must cope quietly
        status, _, text = await post(http, url, chat("drip", stream=True), BEARER)
        assert status == 200
        chunks, done = openai_chunks(text)
        assert done
        assert len(openai_text(chunks).split()) == 60


# -------------------------------------------------------------------------------------- fleet and config


def test_default_fleet_and_speed() -> None:
    cheap, medium, strong = default_fleet()
    assert [m.name for m in (cheap, medium, strong)] == ["fake-cheap", "fake-medium", "fake-strong"]
    assert cheap.latency < medium.latency < strong.latency
    assert cheap.hedge_rate > 0
    assert (cheap.cost_per_1k_output or 0) < (strong.cost_per_1k_output or 0)
    assert all(m.faults for m in (cheap, medium, strong))
    instant = default_fleet(speed=0.0, faults=False)
    assert all(m.latency == m.latency_jitter == m.token_interval == 0 for m in instant)
    assert not any(m.faults for m in instant)


def test_fake_model_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FakeModel("x", faults={"teapot": 0.1})
    with pytest.raises(ValueError, match="sum to more than 1"):
        FakeModel("x", faults={"500": 0.6, "503": 0.6})
    with pytest.raises(ValueError, match="refusal_rate"):
        FakeModel("x", refusal_rate=-0.1)
    with pytest.raises(ValueError, match="latency"):
        FakeModel("x", latency=-1)
    with pytest.raises(ValueError, match="reply_words"):
        FakeModel("x", reply_words=(10, 5))
    with pytest.raises(ValueError, match="unique"):
        FakeProviderServer(models=[FakeModel("x"), FakeModel("x")])


def test_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = FakeProviderServer(models=[]).url


@pytest.mark.parametrize("provider", ALL_PROVIDERS)
async def test_config_dict_for_each_provider_kind(
    srv: FakeProviderServer, http: aiohttp.ClientSession, provider: ProviderName
) -> None:
    config = load_config(srv.config_dict(provider=provider, default_model="m"))
    entry = config.model("m")
    assert entry.provider == provider
    assert entry.model_id == "m"
    assert config.model("small").context_window == 60
    assert config.tracker.path == ":memory:"
    # the base_url reaches the right endpoint of this server
    base = entry.resolved_base_url
    if provider == "anthropic":
        status, _, _ = await post(http, base + "/v1/messages", anthropic_chat(), ANTHROPIC_HEADERS)
    elif provider == "ollama":
        assert entry.api == "native"
        status, _, _ = await post(http, base + "/api/chat", chat(stream=False))
    else:
        headers = {"Authorization": f"Bearer {entry.key_values()[0]}"} if entry.key_values() else {}
        status, _, _ = await post(http, base + "/chat/completions", chat(), headers)
    assert status == 200


def test_config_dict_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        FakeProviderServer(models=default_fleet(speed=0)).config_dict()


async def test_config_dict_all_seven_kinds(http: aiohttp.ClientSession) -> None:
    async with FakeProviderServer(models=default_fleet(speed=0), api_keys=["b", "a"]) as srv:
        raw = srv.config_dict(provider=ALL_PROVIDERS, budget={"daily_limit_usd": 1.0})
        config = load_config(raw)
    assert len(config.models) == 3 * 7
    assert config.model("fake-cheap-google").provider == "google"
    entry = config.model("fake-strong-anthropic")
    assert entry.key_values() == ("a", "b")  # every accepted key, for rotation
    assert config.model("fake-cheap-ollama").key_values() == ()
    assert config.model("fake-cheap-openrouter").resolved_base_url.endswith("/api/v1")
    assert config.budget.daily_limit_usd == 1.0
    assert config.model("fake-medium-openai").cost_per_1k_output == 0.015
    # Ollama's /v1 shares the OpenAI path, which checks keys on a keyed server
    async with FakeProviderServer(models=[FakeModel("m")], api_keys=["a"]) as keyed:
        openai_entry = keyed.model_config("m", provider="ollama", ollama_api="openai")
        native_entry = keyed.model_config("m", provider="ollama")
        key = openai_entry["api_keys"][0]
        url = openai_entry["base_url"] + "/v1/chat/completions"
        status, _, _ = await post(http, url, chat(), {"Authorization": f"Bearer {key}"})
    assert status == 200
    assert "api_keys" not in native_entry  # native /api/chat needs none
    assert native_entry["api"] == "native"


async def test_unclosed_server_warns() -> None:
    srv = FakeProviderServer(models=[])
    srv.__del__()  # not started: nothing to warn about
    await srv.start()
    try:
        with pytest.warns(ResourceWarning, match="unclosed"):
            srv.__del__()  # what garbage collection would run if the server were dropped unclosed
    finally:
        await srv.aclose()
    await srv.aclose()  # idempotent


# ------------------------------------------------------------------------------------- the official SDK


@pytest.fixture
async def sdk(srv: FakeProviderServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=srv.openai_url, api_key="test-key", max_retries=0, timeout=5.0)
    try:
        yield client
    finally:
        await client.close()


async def test_sdk_completion_and_stream_with_usage(srv: FakeProviderServer, sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(model="m", messages=SDK_MESSAGES)
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == estimate_messages_tokens(MESSAGES)

    stream = await sdk.chat.completions.create(
        model="m", messages=SDK_MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert usage is not None
    assert usage.completion_tokens == estimate_tokens(text)
    assert srv.calls(model="m") == 2


async def test_sdk_tool_calls_streamed_and_not(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="m", messages=SDK_MESSAGES, tools=[SDK_TOOL], tool_choice="required"
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    call = calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}

    stream = await sdk.chat.completions.create(
        model="m",
        messages=SDK_MESSAGES,
        tools=[SDK_TOOL],
        tool_choice="required",
        stream=True,
    )
    arguments = ""
    finish = None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        for tc in delta.tool_calls or []:
            assert tc.function is not None
            arguments += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert set(json.loads(arguments)) == {"city", "days"}


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        pytest.param("429", openai.RateLimitError, 429, id="429"),
        pytest.param("quota", openai.RateLimitError, 429, id="quota"),
        pytest.param("500", openai.InternalServerError, 500, id="500"),
        pytest.param("502", openai.InternalServerError, 502, id="502"),
        pytest.param("503", openai.InternalServerError, 503, id="503"),
        pytest.param("overloaded", openai.InternalServerError, 503, id="overloaded"),
        pytest.param("401", openai.AuthenticationError, 401, id="401"),
        pytest.param("400", openai.BadRequestError, 400, id="400"),
        pytest.param("context_length", openai.BadRequestError, 400, id="context_length"),
        pytest.param("content_policy", openai.BadRequestError, 400, id="content_policy"),
    ],
)
async def test_sdk_raises_its_own_errors(
    srv: FakeProviderServer, sdk: openai.AsyncOpenAI, fault: FaultKind, error: type[openai.APIStatusError], status: int
) -> None:
    srv.script("m", [fault])
    with pytest.raises(error) as info:
        await sdk.chat.completions.create(model="m", messages=SDK_MESSAGES)
    assert info.value.status_code == status
    assert info.value.request_id is not None
    assert info.value.request_id.startswith("req_")
    if fault == "quota":
        assert info.value.code == "insufficient_quota"
    if fault == "context_length":
        assert info.value.code == "context_length_exceeded"


async def test_sdk_sees_connection_faults(srv: FakeProviderServer, sdk: openai.AsyncOpenAI) -> None:
    srv.script("m", ["reset", "mid_stream_error", "malformed_json"])
    with pytest.raises(openai.APIConnectionError):
        await sdk.chat.completions.create(model="m", messages=SDK_MESSAGES)
    stream = await sdk.chat.completions.create(model="m", messages=SDK_MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="server had an error"):
        async for _ in stream:
            pass
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        await sdk.chat.completions.create(model="m", messages=SDK_MESSAGES)
    with pytest.raises(openai.NotFoundError) as info:
        await sdk.chat.completions.create(model="gpt-nope", messages=SDK_MESSAGES)
    assert info.value.code == "model_not_found"


async def test_sdk_times_out_on_timeout_fault(srv: FakeProviderServer) -> None:
    srv.script("m", ["timeout"])
    client = openai.AsyncOpenAI(base_url=srv.openai_url, api_key="k", max_retries=0, timeout=0.3)
    try:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=SDK_MESSAGES)
    finally:
        await client.close()


async def test_sdk_retry_honours_retry_after(srv: FakeProviderServer) -> None:
    srv.set_behaviour("m", retry_after=0.01)
    srv.script("m", ["429", "429"])  # both carry Retry-After: 0.01, so the SDK's retries are quick
    client = openai.AsyncOpenAI(base_url=srv.openai_url, api_key="k", max_retries=2)
    try:
        completion = await client.chat.completions.create(model="m", messages=SDK_MESSAGES)
    finally:
        await client.close()
    assert completion.choices[0].message.content
    assert [r.status for r in srv.requests] == [429, 429, 200]


async def test_sync_sdk_in_a_thread(srv: FakeProviderServer) -> None:
    def run() -> tuple[str, int]:
        client = openai.OpenAI(base_url=srv.openai_url, api_key="k", max_retries=0, timeout=5.0)
        try:
            completion = client.chat.completions.create(model="m", messages=SDK_MESSAGES)
            status = 0
            srv.script("m", ["429"])
            try:
                client.chat.completions.create(model="m", messages=SDK_MESSAGES)
            except openai.RateLimitError as exc:
                status = exc.status_code
            return completion.choices[0].message.content or "", status
        finally:
            client.close()

    content, status = await anyio.to_thread.run_sync(run)
    assert content
    assert status == 429


# ----------------------------------------------------------------------------------------------- the CLI


def _cli_lines(output: bytes) -> Iterator[str]:
    yield from output.decode().splitlines()


async def test_cli_serves_until_signalled(http: aiohttp.ClientSession) -> None:
    command = [
        sys.executable,
        "-m",
        "asyncrouter.testing",
        "--port",
        "0",
        "--speed",
        "0",
        "--seed",
        "3",
        "--provider",
        "anthropic",
    ]
    with anyio.fail_after(30):
        async with await anyio.open_process(command) as process:
            assert process.stdout is not None
            buffered = b""
            while b"Press Ctrl-C" not in buffered:
                buffered += await process.stdout.receive()
            lines = list(_cli_lines(buffered))
            url = lines[0].rsplit(" ", 1)[1]
            assert url.startswith("http://127.0.0.1:")
            assert "provider: anthropic" in buffered.decode()
            status, _, _ = await post(http, url + "/v1/messages", anthropic_chat("fake-cheap"), ANTHROPIC_HEADERS)
            assert status in (200, 429, 500)  # the default fleet has occasional faults
            process.send_signal(signal.SIGINT)
            rest = b""
            async for chunk in process.stdout:
                rest += chunk
            assert await process.wait() == 0
    assert b"stopped" in rest
