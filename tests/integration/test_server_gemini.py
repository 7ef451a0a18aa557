"""The server's Gemini endpoints (``/v1beta/models/{model}:generateContent`` and friends), on the wire and through
the official ``google-genai`` SDK, against the fake fleet on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from asyncrouter import Router
from asyncrouter._tokens import estimate_messages_tokens, estimate_tokens
from asyncrouter.server import create_app
from asyncrouter.testing import FakeProviderServer, default_fleet

FLEET_KEY = "sk-fleet-SECRET-0123456789abcdef"
SERVER_KEY = "sk-server-SECRET-fedcba9876543210"
ALIASES = ("fake-cheap", "fake-medium", "fake-strong")
PROMPT = "What is the capital of France?"
CODE_PROMPT = "Write a Python function that merges two sorted lists"
WEATHER_DECL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
}
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
GENERATE = "/v1beta/models/{}:generateContent"
STREAM = "/v1beta/models/{}:streamGenerateContent"


@dataclass
class Stack:
    srv: FakeProviderServer
    router: Router
    url: str


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(models=default_fleet(speed=0, faults=False), seed=5, api_keys=[FLEET_KEY]) as srv:
        yield srv


def fleet_config(srv: FakeProviderServer, **top: Any) -> dict[str, Any]:
    top.setdefault("retries", {"max_attempts": 1, "backoff_base": 0.0, "backoff_max": 0.0})
    return srv.config_dict(**top)


@asynccontextmanager
async def stack(
    srv: FakeProviderServer, *, config: dict[str, Any] | None = None, **app_kw: Any
) -> AsyncIterator[Stack]:
    async with Router.from_dict(config or fleet_config(srv)) as router:
        runner = web.AppRunner(create_app(router, **app_kw), handler_cancellation=True, shutdown_timeout=5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield Stack(srv, router, f"http://{host}:{port}")
        finally:
            await runner.cleanup()


@pytest.fixture
async def api(fleet: FakeProviderServer) -> AsyncIterator[Stack]:
    async with stack(fleet) as s:
        yield s


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    def chunks(self) -> list[dict[str, Any]]:
        """Every SSE ``data:`` payload, parsed; nothing else may be in the stream."""
        out = []
        for frame in self.text.split("\n\n"):
            if not frame.strip():
                continue
            assert frame.startswith("data: "), frame
            assert "\n" not in frame
            out.append(json.loads(frame.removeprefix("data: ")))
        return out


async def post(
    url: str, body: Any, *, path: str = GENERATE.format("auto"), headers: dict[str, str] | None = None
) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **(headers or {})}
    async with aiohttp.ClientSession() as session, session.post(url + path, data=data, headers=headers) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.text())


async def get(url: str, path: str, *, headers: dict[str, str] | None = None) -> Reply:
    async with aiohttp.ClientSession() as session, session.get(url + path, headers=headers or {}) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.text())


def ask(text: str = PROMPT, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    body.update(fields)
    return body


def text_of(candidate: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in candidate["content"]["parts"])


# --------------------------------------------------------------------------------------------- non-streamed


async def test_generate_content_has_gemini_shape_and_matches_the_tracker(api: Stack) -> None:
    r = await post(api.url, ask())
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"candidates", "usageMetadata", "modelVersion", "responseId"}
    [candidate] = body["candidates"]
    assert candidate["index"] == 0
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    [part] = candidate["content"]["parts"]
    assert len(part["text"].split()) >= 3

    [record] = await api.router.logs(last_n=5)
    assert record.status == "ok"
    assert body["responseId"] == record.request_id == r.headers["X-AsyncRouter-Request-Id"]
    assert body["modelVersion"] == record.model == r.headers["X-AsyncRouter-Model"]
    assert body["modelVersion"] in ALIASES
    accepted = [a for a in record.attempts if a.outcome == "ok"][-1]
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == accepted.input_tokens > 0
    assert usage["candidatesTokenCount"] == accepted.output_tokens > 0
    assert usage["totalTokenCount"] == accepted.input_tokens + accepted.output_tokens
    assert "X-AsyncRouter-Ignored-Params" not in r.headers


async def test_request_fields_are_translated_for_the_provider(api: Stack) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in English."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Hi!", "thoughtSignature": "c2ln"}, {"text": "Ask away."}]},
            {"role": "model", "parts": [{"text": "thinking about it", "thought": True}]},
            {"parts": [{"text": PROMPT}]},  # no role: a user turn, as Google reads it
        ],
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 300,
            "stopSequences": ["END"],
            "seed": 7,
            "candidateCount": 1,
            "thinkingConfig": {"thinkingBudget": 0},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    r = await post(api.url, body, path=GENERATE.format("fake-medium"))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["model"] == "fake-medium"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in English."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!\n\nAsk away."},
        # the thoughts-only turn is dropped
        {"role": "user", "content": PROMPT},
    ]
    assert sent["max_completion_tokens"] == 300
    assert sent["temperature"] == 0.3
    assert sent["top_p"] == 0.9
    assert sent["stop"] == ["END"]
    assert sent["seed"] == 7
    assert "top_k" not in sent
    assert "topK" not in sent
    # what the router cannot carry is named, not silently dropped
    assert r.headers["X-AsyncRouter-Ignored-Params"] == (
        "generationConfig.thinkingConfig,generationConfig.topK,safetySettings"
    )
    assert r.headers["X-AsyncRouter-Routing-Layer"] == "pinned"


async def test_snake_case_field_names_are_accepted(api: Stack) -> None:
    body = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "generation_config": {"max_output_tokens": 64, "top_p": 0.5},
    }
    r = await post(api.url, body, path=GENERATE.format("fake-cheap"))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_completion_tokens"] == 64
    assert sent["top_p"] == 0.5
    assert "X-AsyncRouter-Ignored-Params" not in r.headers


async def test_passthrough_fields_reach_the_provider(fleet: FakeProviderServer) -> None:
    async with stack(fleet, passthrough_fields=("cachedContent",)) as s:
        r = await post(s.url, ask(cachedContent="cachedContents/abc"), path=GENERATE.format("fake-cheap"))
    assert r.status == 200
    assert fleet.requests[-1].json is not None
    assert fleet.requests[-1].json["cachedContent"] == "cachedContents/abc"
    assert "X-AsyncRouter-Ignored-Params" not in r.headers


@pytest.mark.parametrize(
    ("path", "layer", "answered_by"),
    [
        pytest.param(GENERATE.format("fake-strong"), "pinned", "fake-strong", id="alias"),
        pytest.param(GENERATE.format("models/fake-strong"), "pinned", "fake-strong", id="models-prefix"),
        pytest.param(GENERATE.format("smart/fake-medium"), "pinned", "fake-medium", id="prefixed-alias"),
        pytest.param("/v1/models/fake-medium:generateContent", "pinned", "fake-medium", id="v1-path"),
        pytest.param(GENERATE.format("premium"), None, None, id="profile"),
        pytest.param(GENERATE.format("auto"), None, None, id="auto"),
    ],
)
async def test_model_names(api: Stack, path: str, layer: str | None, answered_by: str | None) -> None:
    r = await post(api.url, ask(), path=path)
    assert r.status == 200, r.text
    if layer is not None:
        assert r.headers["X-AsyncRouter-Routing-Layer"] == layer
    else:
        assert r.headers["X-AsyncRouter-Routing-Layer"] != "pinned"
    if answered_by is not None:
        assert r.json()["modelVersion"] == answered_by == api.srv.requests[-1].model


# ------------------------------------------------------------------------------------------------ streamed


async def test_sse_stream_chunks(api: Stack) -> None:
    r = await post(api.url, ask(), path=STREAM.format("fake-medium") + "?alt=sse")
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    chunks = r.chunks()
    assert len(chunks) >= 6
    *body, last = chunks
    rid = r.headers["X-AsyncRouter-Request-Id"]
    for chunk in body:
        [candidate] = chunk["candidates"]
        assert candidate["content"]["role"] == "model"
        assert "finishReason" not in candidate
        assert [list(p) for p in candidate["content"]["parts"]] == [["text"]]
        assert chunk["modelVersion"] == "fake-medium"  # the requested name until the end
        assert chunk["responseId"] == rid
        assert "usageMetadata" not in chunk
    text = "".join(text_of(c["candidates"][0]) for c in chunks)
    assert len(text.split()) >= 20

    [record] = await api.router.logs(last_n=1)
    [candidate] = last["candidates"]
    assert candidate["finishReason"] == "STOP"
    accepted = [a for a in record.attempts if a.outcome == "ok"][-1]
    assert last["usageMetadata"] == {
        "promptTokenCount": accepted.input_tokens,
        "candidatesTokenCount": accepted.output_tokens,
        "totalTokenCount": accepted.input_tokens + accepted.output_tokens,
    }
    assert last["modelVersion"] == record.model == "fake-medium"
    assert last["responseId"] == rid == record.request_id
    meta = last["x_asyncrouter"]
    assert meta["request_id"] == record.request_id
    assert meta["cost_usd"] == pytest.approx(record.cost_usd)
    assert meta["category"] == record.category


async def test_stream_without_alt_sse_is_a_json_array(api: Stack) -> None:
    r = await post(api.url, ask(), path=STREAM.format("fake-medium"))
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    chunks = r.json()
    assert isinstance(chunks, list)
    assert len(chunks) >= 6
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert len("".join(text_of(c["candidates"][0]) for c in chunks).split()) >= 20
    [record] = await api.router.logs(last_n=1)
    assert chunks[-1]["responseId"] == record.request_id


async def test_stream_with_an_unknown_alt_is_400(api: Stack) -> None:
    r = await post(api.url, ask(), path=STREAM.format("auto") + "?alt=proto")
    assert r.status == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "alt" in r.json()["error"]["message"]
    assert api.srv.calls() == 0


async def test_stream_failing_before_the_first_byte_gets_an_error_status(fleet: FakeProviderServer) -> None:
    for alias in ALIASES:
        fleet.set_faults(alias, {"500": 1.0})
    async with stack(fleet) as s:
        r = await post(s.url, ask(), path=STREAM.format("auto") + "?alt=sse")
    assert r.status == 502
    error = r.json()["error"]
    assert error["code"] == 502
    assert error["status"] == "INTERNAL"
    assert error["details"][0]["reason"] == "ALL_PROVIDERS_FAILED"
    assert FLEET_KEY not in r.text


@pytest.mark.parametrize("alt", ["?alt=sse", ""])
async def test_error_after_the_stream_started_is_an_error_chunk(api: Stack, alt: str) -> None:
    api.srv.set_behaviour("fake-cheap", token_interval=0.02)  # the deltas before the fault arrive one by one
    api.srv.script("fake-cheap", ["mid_stream_error"])
    r = await post(api.url, ask(), path=STREAM.format("fake-cheap") + alt)
    assert r.status == 200  # the status went out with the first text
    chunks = r.chunks() if alt else r.json()
    assert "candidates" in chunks[0]
    error = chunks[-1]["error"]
    assert error["code"] >= 500
    assert error["status"] in ("INTERNAL", "DEADLINE_EXCEEDED")
    assert all("finishReason" not in c.get("candidates", [{}])[0] for c in chunks)
    assert FLEET_KEY not in r.text


# ---------------------------------------------------------------------------------------------------- tools


async def test_function_calling_round_trip(api: Stack) -> None:
    tools = [{"functionDeclarations": [WEATHER_DECL]}]
    first = await post(
        api.url,
        ask(
            "What's the weather in Paris?",
            tools=tools,
            toolConfig={"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        ),
        path=GENERATE.format("fake-medium"),
    )
    assert first.status == 200, first.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_SCHEMA,
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    candidate = first.json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    [call_part] = [p for p in candidate["content"]["parts"] if "functionCall" in p]
    call = call_part["functionCall"]
    assert call["name"] == "get_weather"
    assert isinstance(call["args"], dict)
    assert call["args"]

    # Gemini clients send the call back as a model turn and its result as a functionResponse part
    model_turn = {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": call["args"]}}]}
    follow_up = await post(
        api.url,
        {
            "tools": tools,
            "contents": [
                {"role": "user", "parts": [{"text": "What's the weather in Paris?"}]},
                model_turn,
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]},
            ],
        },
        path=GENERATE.format("fake-medium"),
    )
    assert follow_up.status == 200, follow_up.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assistant, tool = sent["messages"][1:]
    assert assistant["role"] == "assistant"
    [sent_call] = assistant["tool_calls"]
    assert sent_call["function"]["name"] == "get_weather"
    assert json.loads(sent_call["function"]["arguments"]) == call["args"]
    # no ids on Gemini's side: the response is paired with its call by name
    assert tool == {"role": "tool", "tool_call_id": sent_call["id"], "content": '{"temp_c": 21}'}
    reply = follow_up.json()["candidates"][0]
    assert [list(p) for p in reply["content"]["parts"]] == [["text"]]


async def test_parallel_calls_pair_with_their_responses_by_id_then_name(api: Stack) -> None:
    body = ask()
    body["contents"] = [
        {"role": "user", "parts": [{"text": "Check Oslo, Rome and the time."}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                {"functionCall": {"id": "t-1", "name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "t-1", "name": "get_time", "response": {"time": "12:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"c": -3}}},
                {"functionResponse": {"name": "get_weather", "response": {"c": 20}}},
                {"text": "Which is warmer?"},
            ],
        },
    ]
    r = await post(api.url, body, path=GENERATE.format("fake-cheap"))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assistant, *results, user = sent["messages"][1:]
    oslo, rome, clock = (c["id"] for c in assistant["tool_calls"])
    assert clock == "t-1"
    assert len({oslo, rome, clock}) == 3
    assert results == [
        {"role": "tool", "tool_call_id": "t-1", "content": '{"time": "12:00"}'},
        {"role": "tool", "tool_call_id": oslo, "content": '{"c": -3}'},
        {"role": "tool", "tool_call_id": rome, "content": '{"c": 20}'},
    ]
    assert user == {"role": "user", "content": "Which is warmer?"}


@pytest.mark.parametrize(
    ("config", "sent_choice", "sent_tools"),
    [
        pytest.param({"mode": "AUTO"}, "auto", ["get_weather", "get_time"], id="auto"),
        pytest.param({"mode": "NONE"}, "none", ["get_weather", "get_time"], id="none"),
        pytest.param({"mode": "ANY"}, "required", ["get_weather", "get_time"], id="any"),
        pytest.param(
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
            {"type": "function", "function": {"name": "get_time"}},
            ["get_time"],
            id="any-one-allowed",
        ),
        pytest.param(
            {"mode": "AUTO", "allowedFunctionNames": ["get_time", "get_weather"]},
            "auto",
            ["get_weather", "get_time"],
            id="auto-allowed",
        ),
    ],
)
async def test_tool_config_translation(
    api: Stack, config: dict[str, Any], sent_choice: Any, sent_tools: list[str]
) -> None:
    decls = [WEATHER_DECL, {"name": "get_time", "description": "The time"}]
    body = ask(tools=[{"functionDeclarations": decls}], toolConfig={"functionCallingConfig": config})
    r = await post(api.url, body, path=GENERATE.format("fake-cheap"))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["tool_choice"] == sent_choice
    assert [t["function"]["name"] for t in sent["tools"]] == sent_tools
    # a declaration without parameters still reaches OpenAI-style providers with an (empty) object schema
    time_tool = next(t for t in sent["tools"] if t["function"]["name"] == "get_time")
    assert time_tool["function"]["parameters"] == {"type": "object", "properties": {}}


async def test_streamed_function_call_is_in_the_last_chunk(api: Stack) -> None:
    body = ask(
        "Weather in Paris?",
        tools=[{"functionDeclarations": [WEATHER_DECL]}],
        toolConfig={"functionCallingConfig": {"mode": "ANY"}},
    )
    r = await post(api.url, body, path=STREAM.format("fake-medium") + "?alt=sse")
    assert r.status == 200, r.text
    last = r.chunks()[-1]["candidates"][0]
    [part] = last["content"]["parts"]
    assert part["functionCall"]["name"] == "get_weather"
    assert part["functionCall"]["args"]
    assert last["finishReason"] == "STOP"


# ------------------------------------------------------------------------------------------------ JSON mode


async def test_json_mode(api: Stack) -> None:
    r = await post(
        api.url,
        ask("List three colours as JSON", generationConfig={"responseMimeType": "application/json"}),
        path=GENERATE.format("fake-cheap"),
    )
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["response_format"] == {"type": "json_object"}
    json.loads(text_of(r.json()["candidates"][0]))  # the reply is JSON


async def test_json_mode_with_a_schema(api: Stack) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "description": "a colour"},
            "hex": {"type": "STRING", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["name", "tags"],
        "propertyOrdering": ["name", "hex", "tags"],
    }
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    r = await post(api.url, ask("Describe a colour", generationConfig=config), path=GENERATE.format("fake-cheap"))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "a colour"},
                    "hex": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["name", "tags"],
            },
        },
    }
    reply = json.loads(text_of(r.json()["candidates"][0]))
    assert isinstance(reply["name"], str)
    assert isinstance(reply["tags"], list)


async def test_json_schema_given_as_responsejsonschema_goes_through_unchanged(api: Stack) -> None:
    config = {"responseMimeType": "application/json", "responseJsonSchema": WEATHER_SCHEMA}
    r = await post(api.url, ask(generationConfig=config), path=GENERATE.format("fake-cheap"))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["response_format"]["json_schema"]["schema"] == WEATHER_SCHEMA


# --------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param([], "JSON object", id="array-body"),
        pytest.param({"generationConfig": {}}, "contents is required", id="no-contents"),
        pytest.param({"contents": []}, "must not be empty", id="empty-contents"),
        pytest.param(
            {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]},
            "inlineData parts are not supported",
            id="inline-data",
        ),
        pytest.param(
            {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://x/y.pdf"}}]}]},
            "fileData parts are not supported",
            id="file-data",
        ),
        pytest.param(
            {"contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AA"}}]}]},
            "not supported",
            id="inline-data-snake",
        ),
        pytest.param({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "role", id="bad-role"),
        pytest.param({"contents": [{"role": "user", "parts": [{}]}]}, "parts[0] must have text", id="empty-part"),
        pytest.param(
            {"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f"}}]}]},
            "belong in 'model' turns",
            id="call-in-user-turn",
        ),
        pytest.param(ask(tools=[{"googleSearch": {}}]), "built-in tools are not supported", id="google-search"),
        pytest.param(ask(tools=[{"functionDeclarations": [{"description": "x"}]}]), ".name is required", id="no-name"),
        pytest.param(ask(generationConfig={"temperature": 5}), "temperature", id="temperature"),
        pytest.param(ask(generationConfig={"candidateCount": 2}), "candidateCount", id="candidates"),
        pytest.param(ask(generationConfig={"maxOutputTokens": 0}), "maxOutputTokens", id="max-tokens"),
        pytest.param(ask(generationConfig={"responseMimeType": "image/png"}), "responseMimeType", id="mime"),
        pytest.param(ask(toolConfig={"functionCallingConfig": {"mode": "SOMETIMES"}}), "mode must be", id="tool-mode"),
    ],
)
async def test_bad_requests_are_400_in_google_shape(api: Stack, body: Any, fragment: str) -> None:
    r = await post(api.url, body)
    assert r.status == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert fragment in error["message"]
    assert api.srv.calls() == 0


async def test_unknown_model_and_method_are_404_not_found(api: Stack) -> None:
    r = await post(api.url, ask(), path=GENERATE.format("gemini-9-ultra"))
    assert r.status == 404
    error = r.json()["error"]
    assert error["status"] == "NOT_FOUND"
    assert error["details"][0]["reason"] == "MODEL_NOT_FOUND"
    assert "auto" in error["message"]  # says what would work
    method = await post(api.url, ask(), path="/v1beta/models/auto:embedContent")
    assert method.status == 404
    assert method.json()["error"]["status"] == "NOT_FOUND"
    async with aiohttp.ClientSession() as session, session.get(api.url + GENERATE.format("auto")) as resp:
        # GET there is the model lookup, which knows no "auto:generateContent"
        assert resp.status == 404
        assert (await resp.json())["error"]["status"] == "NOT_FOUND"
    missing = await post(api.url, ask(), path="/v1beta/cachedContents")
    assert missing.status == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert api.srv.calls() == 0


GOOD = {"x-goog-api-key": SERVER_KEY}


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        pytest.param({}, "", 401, id="missing"),
        pytest.param({"x-goog-api-key": "sk-wrong"}, "", 401, id="wrong-goog-key"),
        pytest.param({}, "?key=sk-wrong", 401, id="wrong-query-key"),
        pytest.param({"Authorization": "Bearer sk-wrong"}, "", 401, id="wrong-bearer"),
        pytest.param({"x-api-key": SERVER_KEY}, "", 401, id="anthropic-header-not-taken"),
        pytest.param(GOOD, "", 200, id="goog-key"),
        pytest.param({}, f"?key={SERVER_KEY}", 200, id="query-key"),
        pytest.param({"Authorization": f"Bearer {SERVER_KEY}"}, "", 200, id="bearer"),
    ],
)
async def test_auth_accepts_goog_key_query_key_or_bearer(
    fleet: FakeProviderServer, headers: dict[str, str], query: str, status: int
) -> None:
    async with stack(fleet, api_key=SERVER_KEY) as s:
        r = await post(s.url, ask(), path=GENERATE.format("auto") + query, headers=headers)
        counted = await post(s.url, ask(), path="/v1beta/models/auto:countTokens" + query, headers=headers)
        listed = await get(s.url, "/v1beta/models" + query, headers=headers)
    assert (r.status, counted.status, listed.status) == (status, status, status)
    if status == 401:
        for reply in (r, counted, listed):
            assert reply.json()["error"]["status"] == "UNAUTHENTICATED"
            assert SERVER_KEY not in reply.text
            assert "sk-wrong" not in reply.text
        assert fleet.calls() == 0


async def test_other_endpoints_do_not_take_the_goog_key(fleet: FakeProviderServer) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}
    async with stack(fleet, api_key=SERVER_KEY) as s:
        chat = await post(s.url, body, path="/v1/chat/completions", headers=GOOD)
        query = await post(s.url, body, path=f"/v1/chat/completions?key={SERVER_KEY}")
    assert (chat.status, query.status) == (401, 401)
    assert chat.json()["error"]["code"] == "invalid_api_key"  # OpenAI's shape there


async def test_body_over_the_limit_is_413(fleet: FakeProviderServer) -> None:
    async with stack(fleet, max_body_bytes=64 * 1024) as s:
        big = await post(s.url, ask("word " * 30_000))
        ok = await post(s.url, ask("word " * 10_000))
    assert big.status == 413
    assert big.json()["error"]["code"] == 413
    assert big.json()["error"]["details"][0]["reason"] == "REQUEST_TOO_LARGE"
    assert ok.status == 200
    assert fleet.calls() == 1


async def test_every_provider_failing_is_internal(fleet: FakeProviderServer) -> None:
    for alias in ALIASES:
        fleet.set_faults(alias, {"500": 1.0})
    async with stack(fleet) as s:
        r = await post(s.url, ask())
    assert r.status == 502
    assert r.headers["x-should-retry"] == "false"
    assert r.json()["error"]["status"] == "INTERNAL"
    assert "fake-cheap" in r.json()["error"]["message"]
    assert FLEET_KEY not in r.text


async def test_open_breaker_is_503_unavailable_with_retry_after(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, breakers={"model": {"fail_max": 1, "reset_timeout": 60}})
    fleet.set_faults("fake-strong", {"503": 1.0})
    async with stack(fleet, config=cfg) as s:
        first = await post(s.url, ask(), path=GENERATE.format("fake-strong"))
        second = await post(s.url, ask(), path=GENERATE.format("fake-strong"))
    assert first.status == 502
    assert second.status == 503
    assert second.json()["error"]["status"] == "UNAVAILABLE"
    assert 1 <= int(second.headers["Retry-After"]) <= 60


async def test_budget_exceeded_is_resource_exhausted(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, budget={"daily_limit_usd": 0.000001})
    async with stack(fleet, config=cfg) as s:
        r = await post(s.url, ask("Explain the history of the Roman empire in detail"))
    assert r.status == 429
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert r.json()["error"]["details"][0]["reason"] == "BUDGET_EXCEEDED"
    assert r.headers["x-should-retry"] == "false"


# ----------------------------------------------------------------------------------------- countTokens, models


async def test_count_tokens_uses_the_token_estimator(api: Stack) -> None:
    path = "/v1beta/models/auto:countTokens"
    body = ask(systemInstruction={"parts": [{"text": "Be brief."}]})
    r = await post(api.url, body, path=path)
    assert r.status == 200, r.text
    expected = estimate_messages_tokens(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    )
    assert r.json() == {"totalTokens": expected}
    wrapped = await post(api.url, {"generateContentRequest": {"model": "models/auto", **body}}, path=path)
    assert wrapped.json() == {"totalTokens": expected}

    with_tools = await post(api.url, {**body, "tools": [{"functionDeclarations": [WEATHER_DECL]}]}, path=path)
    function_tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER_SCHEMA},
    }
    assert with_tools.json()["totalTokens"] == expected + estimate_tokens(json.dumps([function_tool]))
    longer = await post(api.url, ask(PROMPT * 50), path=path)
    assert longer.json()["totalTokens"] > 10 * expected
    unknown = await post(api.url, body, path="/v1beta/models/nope:countTokens")
    assert unknown.status == 404
    assert unknown.json()["error"]["status"] == "NOT_FOUND"
    assert api.srv.calls() == 0  # counting calls no model
    assert await api.router.logs(last_n=5) == []  # and is not a routed request


async def test_models_list_in_gemini_shape(api: Stack) -> None:
    r = await get(api.url, "/v1beta/models")
    assert r.status == 200
    models = r.json()["models"]
    names = [m["name"] for m in models]
    assert names[0] == "models/auto"
    assert {"models/eco", "models/premium"} <= set(names)
    assert names[-3:] == [f"models/{a}" for a in ALIASES]
    for m in models:
        assert m["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent", "countTokens"]
    cheap = await get(api.url, "/v1beta/models/fake-cheap")
    assert cheap.json() == models[-3]
    assert cheap.json()["inputTokenLimit"] == api.router.config.models[0].context_window
    prefixed = await get(api.url, "/v1beta/models/models/smart/auto")
    assert prefixed.json()["name"] == "models/smart/auto"
    assert (await get(api.url, "/v1beta/models/nope")).json()["error"]["status"] == "NOT_FOUND"


async def test_v1_models_answers_openai_clients_unchanged_and_gemini_clients_in_their_shape(api: Stack) -> None:
    openai_list = await get(api.url, "/v1/models")
    assert openai_list.json()["object"] == "list"
    assert openai_list.json()["data"][0]["id"] == "auto"
    openai_one = await get(api.url, "/v1/models/fake-cheap")
    assert openai_one.json()["id"] == "fake-cheap"
    gemini_list = await get(api.url, "/v1/models", headers={"x-goog-api-key": "unused"})
    assert gemini_list.json() == (await get(api.url, "/v1beta/models")).json()
    gemini_one = await get(api.url, "/v1/models/fake-cheap", headers={"x-goog-api-client": "genai-py"})
    assert gemini_one.json()["name"] == "models/fake-cheap"


# ---------------------------------------------------------------------------------------------------- headers


async def test_classification_headers(api: Stack) -> None:
    r = await post(api.url, ask(CODE_PROMPT))
    assert r.status == 200
    h = r.headers
    [record] = await api.router.logs(last_n=1)
    decision = api.router.classify(messages=[{"role": "user", "content": CODE_PROMPT}])
    assert h["X-AsyncRouter-Complexity-Label"] == record.complexity == decision.complexity
    assert h["X-AsyncRouter-Category"] == record.category == decision.category == "code"
    assert float(h["X-AsyncRouter-Confidence"]) == pytest.approx(decision.confidence, abs=1e-4)
    assert h["X-AsyncRouter-Task-Type"] == record.task_type == "code"
    assert h["X-AsyncRouter-Tier"] == record.tier
    assert h["X-AsyncRouter-Model"] == record.model
    assert float(h["X-AsyncRouter-Cost-USD"]) == pytest.approx(record.cost_usd, rel=1e-6)
    assert {k.lower(): v for k, v in h.items()}["x-request-id"] == record.request_id


# --------------------------------------------------------------------------------------------- google-genai SDK


def http_options(
    s: Stack, *, session: aiohttp.ClientSession | None = None, api_version: str | None = None
) -> types.HttpOptions:
    # The async client gets a session the test owns: the SDK's own subclasses aiohttp.ClientSession, which aiohttp
    # answers with a DeprecationWarning (an error under this suite's filterwarnings).
    return types.HttpOptions(
        base_url=s.url,
        api_version=api_version,
        retry_options=types.HttpRetryOptions(attempts=1),
        timeout=30_000,
        aiohttp_client=session,
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.mark.parametrize("api_version", [None, "v1beta"])
async def test_sdk_async_generate_and_stream(
    api: Stack, session: aiohttp.ClientSession, api_version: str | None
) -> None:
    options = http_options(api, session=session, api_version=api_version)
    async with genai.Client(api_key="unused", http_options=options).aio as client:
        reply = await client.models.generate_content(
            model="auto",
            contents=PROMPT,
            config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=256),
        )
        chunks = [c async for c in await client.models.generate_content_stream(model="fake-medium", contents=PROMPT)]
    first, second = await api.router.logs(last_n=2)  # newest first
    assert reply.text
    assert len(reply.text.split()) >= 3
    assert reply.model_version == second.model
    assert reply.response_id == second.request_id
    assert reply.candidates is not None
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata is not None
    assert reply.usage_metadata.candidates_token_count == second.output_tokens
    streamed = "".join(c.text or "" for c in chunks)
    assert len(chunks) >= 6
    assert len(streamed.split()) >= 20
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.model_version == first.model == "fake-medium"
    assert last.usage_metadata is not None
    assert last.usage_metadata.total_token_count == first.input_tokens + first.output_tokens


async def test_sdk_function_calling_json_mode_count_and_list(api: Stack, session: aiohttp.ClientSession) -> None:
    weather = types.FunctionDeclaration(
        name="get_weather",
        description="Current weather for a city",
        parameters=types.Schema(
            type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
        ),
    )
    async with genai.Client(api_key="unused", http_options=http_options(api, session=session)).aio as client:
        called = await client.models.generate_content(
            model="fake-medium",
            contents="Weather in Paris?",
            config=types.GenerateContentConfig(
                tools=[types.Tool(function_declarations=[weather])],
                tool_config=types.ToolConfig(
                    function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
                ),
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            ),
        )
        sent_tools = api.srv.requests[-1].json
        as_json = await client.models.generate_content(
            model="fake-cheap",
            contents="Describe a colour",
            config=types.GenerateContentConfig(
                response_mime_type="application/json",
                response_schema=types.Schema(
                    type=types.Type.OBJECT,
                    properties={"name": types.Schema(type=types.Type.STRING)},
                    required=["name"],
                ),
            ),
        )
        counted = await client.models.count_tokens(model="auto", contents=PROMPT)
        names = [m.name async for m in await client.models.list()]
    assert called.function_calls is not None
    [call] = called.function_calls
    assert call.name == "get_weather"
    assert call.args
    assert sent_tools is not None
    assert sent_tools["tools"][0]["function"]["parameters"]["type"] == "object"
    assert sent_tools["tool_choice"] == "required"
    assert as_json.text is not None
    assert isinstance(json.loads(as_json.text)["name"], str)
    assert counted.total_tokens == estimate_messages_tokens([{"role": "user", "content": PROMPT}])
    assert names[0] == "models/auto"
    assert "models/fake-strong" in names


async def test_sdk_typed_errors(fleet: FakeProviderServer, session: aiohttp.ClientSession) -> None:
    async with stack(fleet, api_key=SERVER_KEY) as s:
        async with (
            genai.Client(api_key="sk-wrong", http_options=http_options(s, session=session)).aio as bad,
            genai.Client(api_key=SERVER_KEY, http_options=http_options(s, session=session)).aio as good,
        ):
            with pytest.raises(genai_errors.ClientError) as unauthorized:
                await bad.models.generate_content(model="auto", contents="hi")
            with pytest.raises(genai_errors.ClientError) as missing:
                await good.models.generate_content(model="nope", contents="hi")
            ok = await good.models.generate_content(model="auto", contents=PROMPT)
    assert unauthorized.value.code == 401
    assert unauthorized.value.status == "UNAUTHENTICATED"
    assert missing.value.code == 404
    assert missing.value.status == "NOT_FOUND"
    assert ok.text


async def test_sdk_sync_client_in_a_thread(api: Stack) -> None:
    def call() -> tuple[str, str, str]:
        with genai.Client(api_key="unused", http_options=http_options(api)) as client:
            plain = client.models.generate_content(model="auto", contents=PROMPT)
            chunks = list(client.models.generate_content_stream(model="auto", contents=PROMPT))
        last = chunks[-1].candidates
        assert last is not None
        return plain.text or "", "".join(c.text or "" for c in chunks), str(last[0].finish_reason)

    plain, streamed, finish = await anyio.to_thread.run_sync(call)
    assert len(plain.split()) >= 3
    assert len(streamed.split()) >= 3
    assert finish == str(types.FinishReason.STOP)
    records = await api.router.logs(last_n=5)
    assert [r.status for r in records] == ["ok", "ok"]


def test_the_access_log_leaves_the_query_string_out(caplog: pytest.LogCaptureFixture) -> None:
    # Gemini clients may send their key as ?key=: the access log (serve(access_log=True)) must never show it
    import logging

    from aiohttp.test_utils import make_mocked_request

    from asyncrouter.server._serve import _AccessLogger

    logger = logging.getLogger("aiohttp.access")
    request = make_mocked_request("POST", "/v1beta/models/auto:generateContent?key=AIza-secret-key-0123456789")
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        _AccessLogger(logger, "").log(request, web.Response(status=200, text="{}"), 0.0123)
    text = caplog.text
    assert "/v1beta/models/auto:generateContent" in text
    assert "200" in text
    assert "secret" not in text
    assert "key=" not in text
