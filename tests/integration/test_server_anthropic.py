"""The server's Anthropic Messages endpoint (``/v1/messages``), on the wire and through the official ``anthropic``
SDK, against the fake fleet on loopback; and the classification headers every routed reply carries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import anthropic
import anyio
import pytest
from aiohttp import web

from asyncrouter import Router
from asyncrouter._tokens import estimate_messages_tokens, estimate_tokens
from asyncrouter.server import create_app
from asyncrouter.testing import FakeProviderServer, default_fleet

FLEET_KEY = "sk-fleet-SECRET-0123456789abcdef"
SERVER_KEY = "sk-server-SECRET-fedcba9876543210"
ALIASES = ("fake-cheap", "fake-medium", "fake-strong")
PROMPT = "What is the capital of France?"
CODE_PROMPT = "Write a Python function that merges two sorted lists"
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
STREAM_ORDER = ("message_start", "ping", "content_block_start", "content_block_delta")


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

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The SSE events in order: (``event:`` name, parsed ``data:``)."""
        out = []
        for frame in self.text.split("\n\n"):
            if not frame.strip():
                continue
            lines = dict(line.split(": ", 1) for line in frame.split("\n"))
            out.append((lines["event"], json.loads(lines["data"])))
        return out


async def post(url: str, body: Any, *, path: str = "/v1/messages", headers: dict[str, str] | None = None) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"anthropic-version": "2023-06-01", "content-type": "application/json", **(headers or {})}
    async with aiohttp.ClientSession() as session, session.post(url + path, data=data, headers=headers) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.text())


def ask(content: Any = PROMPT, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "auto", "max_tokens": 256, "messages": [{"role": "user", "content": content}]}
    body.update(fields)
    return body


# --------------------------------------------------------------------------------------------- non-streamed


async def test_message_has_anthropic_shape_and_matches_the_tracker(api: Stack) -> None:
    r = await post(api.url, ask())
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    m = r.json()
    assert set(m) == {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
    assert m["type"] == "message"
    assert m["role"] == "assistant"
    assert m["model"] in ALIASES
    [block] = m["content"]
    assert block["type"] == "text"
    assert len(block["text"].split()) >= 3
    assert m["stop_reason"] == "end_turn"
    assert m["stop_sequence"] is None

    [record] = await api.router.logs(last_n=5)
    assert m["id"] == "msg_" + record.request_id
    assert r.headers["request-id"] == record.request_id == r.headers["X-AsyncRouter-Request-Id"]
    assert record.status == "ok"
    assert record.model == m["model"] == r.headers["X-AsyncRouter-Model"]
    accepted = [a for a in record.attempts if a.outcome == "ok"][-1]
    assert m["usage"]["input_tokens"] == accepted.input_tokens > 0
    assert m["usage"]["output_tokens"] == accepted.output_tokens > 0


async def test_request_fields_are_translated_for_the_provider(api: Stack) -> None:
    body = {
        "model": "fake-medium",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in English."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "assistant", "content": "Hi! What do you want to know?"},
            {"role": "user", "content": [{"type": "text", "text": PROMPT, "cache_control": {"type": "ephemeral"}}]},
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "user-7"},
        "thinking": {"type": "disabled"},
    }
    r = await post(api.url, body)
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["model"] == "fake-medium"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in English."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! What do you want to know?"},
        # the marked block stays a text part (so an Anthropic model could cache it); OpenAI gets no mark
        {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
    ]
    assert sent["max_completion_tokens"] == 300
    assert sent["temperature"] == 0.3
    assert sent["top_p"] == 0.9
    assert sent["stop"] == ["\n\nHuman:"]
    assert sent["user"] == "user-7"
    assert "top_k" not in sent
    assert "thinking" not in sent
    # what the router cannot carry is named, not silently dropped
    assert r.headers["X-AsyncRouter-Ignored-Params"] == "thinking,top_k"
    assert r.headers["X-AsyncRouter-Routing-Layer"] == "pinned"


async def test_cache_marks_reach_an_anthropic_model_behind_the_router(fleet: FakeProviderServer) -> None:
    # Claude Code marks its system prompt and the last user turn; routed to an Anthropic-format model, the marks
    # arrive on the same blocks, so the provider caches that prefix (and bills its reads at a tenth)
    config = fleet.config_dict(provider="anthropic", default_model="fake-medium", tracker={"path": None})
    eph = {"type": "ephemeral"}
    body = {
        "model": "fake-medium",
        "max_tokens": 200,
        "system": [{"type": "text", "text": "You are a coding agent. " * 60, "cache_control": eph}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": PROMPT, "cache_control": eph}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ls", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.py", "cache_control": eph}],
            },
        ],
        "tools": [{"name": "ls", "description": "list files", "input_schema": {"type": "object"}}],
    }
    async with stack(fleet, config=config) as s:
        first = await post(s.url, body)
        second = await post(s.url, body)
    assert first.status == second.status == 200
    sent = fleet.requests[-1].json
    assert sent is not None
    assert sent["system"][-1]["cache_control"] == eph
    assert sent["messages"][0]["content"][-1]["cache_control"] == eph
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"
    assert sent["messages"][2]["content"][0]["cache_control"] == eph
    assert fleet.requests[-1].json == fleet.requests[-2].json
    # the fake fleet caches like Anthropic: the first call writes the prefix (1.25x), the repeat reads it (0.1x)
    first_cost = float(first.headers["X-AsyncRouter-Cost-USD"])
    second_cost = float(second.headers["X-AsyncRouter-Cost-USD"])
    assert second_cost < 0.9 * first_cost


async def test_passthrough_fields_reach_the_provider(fleet: FakeProviderServer) -> None:
    async with stack(fleet, passthrough_fields=("top_k",)) as s:
        r = await post(s.url, ask(model="fake-cheap", top_k=5))
    assert r.status == 200
    assert fleet.requests[-1].json is not None
    assert fleet.requests[-1].json["top_k"] == 5
    assert "X-AsyncRouter-Ignored-Params" not in r.headers


@pytest.mark.parametrize(
    ("model", "layer", "answered_by"),
    [
        pytest.param("fake-strong", "pinned", "fake-strong", id="alias"),
        pytest.param("smart/fake-medium", "pinned", "fake-medium", id="prefixed-alias"),
        pytest.param("premium", None, None, id="profile"),
        pytest.param("auto", None, None, id="auto"),
    ],
)
async def test_model_names(api: Stack, model: str, layer: str | None, answered_by: str | None) -> None:
    r = await post(api.url, ask(model=model))
    assert r.status == 200
    if layer is not None:
        assert r.headers["X-AsyncRouter-Routing-Layer"] == layer
    else:
        assert r.headers["X-AsyncRouter-Routing-Layer"] != "pinned"
    if answered_by is not None:
        assert r.json()["model"] == answered_by == api.srv.requests[-1].model


# ------------------------------------------------------------------------------------------------ streamed


async def test_stream_events_in_order(api: Stack) -> None:
    r = await post(api.url, ask(model="fake-medium", stream=True))
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = r.events()
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    assert tuple(names[:4]) == STREAM_ORDER
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}

    start = events[0][1]["message"]
    assert start["id"].startswith("msg_")
    assert start["type"] == "message"
    assert start["role"] == "assistant"
    assert start["model"] == "fake-medium"
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["stop_sequence"] is None
    assert start["usage"]["input_tokens"] > 0
    assert start["usage"]["output_tokens"] == 0

    block_start = events[2][1]
    assert block_start == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    deltas = [data for name, data in events if name == "content_block_delta"]
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas)
    text = "".join(d["delta"]["text"] for d in deltas)
    assert len(deltas) >= 5
    assert len(text.split()) >= 20
    assert events[-3][1] == {"type": "content_block_stop", "index": 0}

    message_delta = events[-2][1]
    [record] = await api.router.logs(last_n=1)
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    accepted = [a for a in record.attempts if a.outcome == "ok"][-1]
    assert message_delta["usage"] == {"input_tokens": accepted.input_tokens, "output_tokens": accepted.output_tokens}
    meta = message_delta["x_asyncrouter"]
    assert meta["request_id"] == record.request_id == r.headers["request-id"] == r.headers["X-AsyncRouter-Request-Id"]
    assert start["id"] == "msg_" + record.request_id
    assert meta["model"] == record.model == "fake-medium"
    assert meta["cost_usd"] == pytest.approx(record.cost_usd)
    assert meta["complexity_label"] == record.complexity
    assert meta["category"] == record.category
    assert events[-1][1] == {"type": "message_stop"}


async def test_stream_failing_before_the_first_byte_gets_an_error_status(fleet: FakeProviderServer) -> None:
    for alias in ALIASES:
        fleet.set_faults(alias, {"500": 1.0})
    async with stack(fleet) as s:
        r = await post(s.url, ask(stream=True))
    assert r.status == 502
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "api_error"
    assert FLEET_KEY not in r.text


async def test_error_after_the_stream_started_is_an_error_event(api: Stack) -> None:
    api.srv.set_behaviour("fake-cheap", token_interval=0.02)  # the deltas before the fault arrive one by one
    api.srv.script("fake-cheap", ["mid_stream_error"])
    r = await post(api.url, ask(model="fake-cheap", stream=True))
    assert r.status == 200  # the status went out with the first text
    events = r.events()
    names = [name for name, _ in events]
    assert tuple(names[:4]) == STREAM_ORDER
    assert names[-1] == "error"
    assert "message_stop" not in names
    error = events[-1][1]
    assert error["type"] == "error"
    assert error["error"]["type"] == "api_error"
    assert FLEET_KEY not in r.text

    api.srv.script("fake-cheap", ["mid_stream_error"])
    received: list[str] = []
    async with sdk_async(api) as client:
        with pytest.raises(anthropic.APIStatusError) as info:
            async with client.messages.stream(
                model="fake-cheap", max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
            ) as stream:
                async for text in stream.text_stream:
                    received.append(text)
    assert received
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "api_error"


# ---------------------------------------------------------------------------------------------------- tools


async def test_tool_use_round_trip(api: Stack) -> None:
    first = await post(
        api.url,
        ask("What's the weather in Paris?", model="fake-medium", tools=[WEATHER_TOOL], tool_choice={"type": "any"}),
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
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == "required"
    m = first.json()
    assert m["stop_reason"] == "tool_use"
    [tool_use] = [b for b in m["content"] if b["type"] == "tool_use"]
    assert tool_use["name"] == "get_weather"
    assert isinstance(tool_use["input"], dict)
    assert tool_use["input"]
    assert tool_use["id"]

    # the result goes back as a tool_result block; the model answers in text
    follow_up = await post(
        api.url,
        {
            "model": "fake-medium",
            "max_tokens": 256,
            "tools": [WEATHER_TOOL],
            "messages": [
                {"role": "user", "content": "What's the weather in Paris?"},
                {"role": "assistant", "content": m["content"]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": '{"temp_c": 21}'}],
                },
            ],
        },
    )
    assert follow_up.status == 200, follow_up.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assistant, tool = sent["messages"][1:]
    assert assistant["role"] == "assistant"
    [call] = assistant["tool_calls"]
    assert call["id"] == tool_use["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == tool_use["input"]
    assert tool == {"role": "tool", "tool_call_id": tool_use["id"], "content": '{"temp_c": 21}'}
    reply = follow_up.json()
    assert reply["stop_reason"] == "end_turn"
    assert [b["type"] for b in reply["content"]] == ["text"]


async def test_a_user_turn_with_results_and_text_and_history_with_thinking(api: Stack) -> None:
    body = ask(model="fake-cheap")
    body["messages"] = [
        {"role": "user", "content": "Check both cities."},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": [{"type": "text", "text": "-3C"}]},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "timeout", "is_error": True},
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]
    r = await post(api.url, body)
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",  # the thinking block is not sent to another model
            "tool_calls": [
                {
                    "id": "toolu_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "toolu_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_a", "content": "-3C"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "Error: timeout"},
        {"role": "user", "content": "Which is warmer?"},
    ]


@pytest.mark.parametrize(
    ("choice", "sent_choice"),
    [
        pytest.param({"type": "auto"}, "auto", id="auto"),
        pytest.param({"type": "none"}, "none", id="none"),
        pytest.param(
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
            id="tool",
        ),
    ],
)
async def test_tool_choice_translation(api: Stack, choice: dict[str, Any], sent_choice: Any) -> None:
    r = await post(api.url, ask("Weather in Oslo?", model="fake-cheap", tools=[WEATHER_TOOL], tool_choice=choice))
    assert r.status == 200, r.text
    sent = api.srv.requests[-1].json
    assert sent is not None
    assert sent["tool_choice"] == sent_choice
    kinds = [b["type"] for b in r.json()["content"]]
    if choice["type"] == "tool":
        assert "tool_use" in kinds
    if choice["type"] == "none":
        assert kinds == ["text"]


async def test_streamed_tool_use(api: Stack) -> None:
    r = await post(
        api.url,
        ask("Weather in Rome?", model="fake-medium", tools=[WEATHER_TOOL], tool_choice={"type": "any"}, stream=True),
    )
    assert r.status == 200
    events = r.events()
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    starts = [(i, d) for i, (n, d) in enumerate(events) if n == "content_block_start"]
    tool_starts = [(i, d) for i, d in starts if d["content_block"]["type"] == "tool_use"]
    assert tool_starts
    pos, start = tool_starts[0]
    block = start["content_block"]
    assert block["name"] == "get_weather"
    assert block["input"] == {}
    assert block["id"]
    index = start["index"]
    assert index == len(starts) - len(tool_starts)  # after the text block, if there was one
    delta_name, delta = events[pos + 1]
    assert delta_name == "content_block_delta"
    assert delta["index"] == index
    assert delta["delta"]["type"] == "input_json_delta"
    assert isinstance(json.loads(delta["delta"]["partial_json"]), dict)
    assert events[pos + 2] == ("content_block_stop", {"type": "content_block_stop", "index": index})
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_provider_end_to_end_with_tools(fleet: FakeProviderServer) -> None:
    """Anthropic in, the router, Anthropic out to the provider: the tool round trip survives both translations."""
    cfg = fleet_config(fleet, provider={"fake-strong": "anthropic"})
    async with stack(fleet, config=cfg) as s:
        r = await post(
            s.url,
            ask("Weather in Lima?", model="fake-strong", tools=[WEATHER_TOOL], tool_choice={"type": "any"}),
        )
        assert r.status == 200, r.text
        sent = fleet.requests[-1]
        assert sent.path == "/v1/messages"
        assert sent.json is not None
        assert sent.json["tools"] == [WEATHER_TOOL]
        assert sent.json["tool_choice"] == {"type": "any"}
        [tool_use] = [b for b in r.json()["content"] if b["type"] == "tool_use"]
        assert r.headers["X-AsyncRouter-Provider"] == "anthropic"
        follow = await post(
            s.url,
            {
                "model": "fake-strong",
                "max_tokens": 200,
                "system": "You are terse.",
                "tools": [WEATHER_TOOL],
                "messages": [
                    {"role": "user", "content": "Weather in Lima?"},
                    {"role": "assistant", "content": r.json()["content"]},
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "18C"}],
                    },
                ],
            },
        )
    assert follow.status == 200, follow.text
    sent_json = fleet.requests[-1].json
    assert sent_json is not None
    assert sent_json["system"] == "You are terse."
    assert sent_json["messages"][1]["content"][-1] == {
        "type": "tool_use",
        "id": tool_use["id"],
        "name": "get_weather",
        "input": tool_use["input"],
    }
    assert sent_json["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "18C"}
    ]
    assert follow.json()["stop_reason"] == "end_turn"


# --------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"{not json", "not valid JSON", id="invalid-json"),
        pytest.param([1], "JSON object", id="not-an-object"),
        pytest.param({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens", id="no-max"),
        pytest.param(ask(max_tokens=0), "max_tokens", id="max-tokens-0"),
        pytest.param({"model": "auto", "max_tokens": 5}, "messages: Field required", id="no-messages"),
        pytest.param(ask(temperature=1.5), "temperature", id="temperature"),
        pytest.param(ask(stop_sequences="x"), "stop_sequences", id="stop-sequences"),
        pytest.param(
            {"model": "auto", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "top-level `system`",
            id="system-role",
        ),
        pytest.param(
            ask([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]),
            "image blocks are not supported",
            id="image",
        ),
        pytest.param(ask(tools=[{"name": "x"}]), "tools.0.input_schema", id="tool-without-schema"),
        pytest.param(
            ask(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "server tool", id="server-tool"
        ),
        pytest.param(ask(tool_choice={"type": "tool"}), "tool_choice.name", id="tool-choice-no-name"),
        pytest.param(ask(metadata={"user_id": 7}), "metadata.user_id", id="user-id"),
    ],
)
async def test_bad_requests_are_400_in_anthropic_shape(api: Stack, body: Any, fragment: str) -> None:
    r = await post(api.url, body)
    assert r.status == 400
    err = r.json()
    assert err["type"] == "error"
    assert err["error"]["type"] == "invalid_request_error"
    assert fragment in err["error"]["message"]
    assert api.srv.calls() == 0


async def test_unknown_model_is_404_not_found(api: Stack) -> None:
    r = await post(api.url, ask(model="claude-opus-9"))
    assert r.status == 404
    assert r.json()["error"]["type"] == "not_found_error"
    assert "auto" in r.json()["error"]["message"]  # says what would work
    assert api.srv.calls() == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="missing"),
        pytest.param({"x-api-key": "sk-wrong"}, 401, id="wrong-x-api-key"),
        pytest.param({"Authorization": "Bearer sk-wrong"}, 401, id="wrong-bearer"),
        pytest.param({"x-api-key": SERVER_KEY}, 200, id="x-api-key"),
        pytest.param({"Authorization": f"Bearer {SERVER_KEY}"}, 200, id="bearer"),
        pytest.param({"x-api-key": "sk-real-anthropic-key", "Authorization": f"Bearer {SERVER_KEY}"}, 200, id="both"),
    ],
)
async def test_auth_accepts_x_api_key_or_bearer(
    fleet: FakeProviderServer, headers: dict[str, str], status: int
) -> None:
    async with stack(fleet, api_key=SERVER_KEY) as s:
        r = await post(s.url, ask(), headers=headers)
        counted = await post(s.url, ask(), path="/v1/messages/count_tokens", headers=headers)
    assert (r.status, counted.status) == (status, status)
    if status == 401:
        assert r.json()["error"]["type"] == "authentication_error"
        assert counted.json()["error"]["type"] == "authentication_error"
        assert SERVER_KEY not in r.text
        assert "sk-wrong" not in r.text
        assert fleet.calls() == 0


async def test_chat_completions_still_take_only_the_bearer_key(fleet: FakeProviderServer) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}
    async with stack(fleet, api_key=SERVER_KEY) as s:
        r = await post(s.url, body, path="/v1/chat/completions", headers={"x-api-key": SERVER_KEY})
    assert r.status == 401
    assert r.json()["error"]["code"] == "invalid_api_key"  # OpenAI's shape there


async def test_body_over_the_limit_is_413(fleet: FakeProviderServer) -> None:
    async with stack(fleet, max_body_bytes=64 * 1024) as s:
        big = await post(s.url, ask("word " * 30_000))
        ok = await post(s.url, ask("word " * 10_000))
    assert big.status == 413
    assert big.json()["error"]["type"] == "request_too_large"
    assert ok.status == 200
    assert fleet.calls() == 1


async def test_every_provider_failing_is_an_api_error(fleet: FakeProviderServer) -> None:
    for alias in ALIASES:
        fleet.set_faults(alias, {"500": 1.0})
    async with stack(fleet) as s:
        r = await post(s.url, ask())
    assert r.status == 502
    assert r.headers["x-should-retry"] == "false"
    assert r.json()["error"]["type"] == "api_error"
    assert "fake-cheap" in r.json()["error"]["message"]
    assert FLEET_KEY not in r.text


async def test_open_breaker_is_529_overloaded_with_retry_after(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, breakers={"model": {"fail_max": 1, "reset_timeout": 60}})
    fleet.set_faults("fake-strong", {"503": 1.0})
    async with stack(fleet, config=cfg) as s:
        first = await post(s.url, ask(model="fake-strong"))
        second = await post(s.url, ask(model="fake-strong"))
    assert first.status == 502
    assert second.status == 529
    assert second.json()["error"]["type"] == "overloaded_error"
    assert 1 <= int(second.headers["Retry-After"]) <= 60


async def test_budget_exceeded_is_a_rate_limit_error_not_retried(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, budget={"daily_limit_usd": 0.000001})
    async with stack(fleet, config=cfg) as s:
        r = await post(s.url, ask("Explain the history of the Roman empire in detail"))
    assert r.status == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert r.headers["x-should-retry"] == "false"


async def test_aiohttp_errors_under_messages_use_anthropic_shape(api: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(api.url + "/v1/messages") as resp:
            status, body = resp.status, await resp.json()
        async with session.post(api.url + "/v1/messages/batches", json={}) as resp:
            missing_status, missing = resp.status, await resp.json()
    assert status == 405
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert missing_status == 404
    assert missing["error"]["type"] == "not_found_error"


# ----------------------------------------------------------------------------------------------- count_tokens


async def test_count_tokens_uses_the_token_estimator(api: Stack) -> None:
    body = {
        "model": "auto",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": PROMPT}],
    }
    r = await post(api.url, body, path="/v1/messages/count_tokens")
    assert r.status == 200
    expected = estimate_messages_tokens(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    )
    assert r.json() == {"input_tokens": expected}

    with_tools = await post(api.url, {**body, "tools": [WEATHER_TOOL]}, path="/v1/messages/count_tokens")
    longer = await post(
        api.url, {**body, "messages": [{"role": "user", "content": PROMPT * 50}]}, path="/v1/messages/count_tokens"
    )
    # tool definitions are input too, counted as the function tools the router sends on
    function_tool = {
        "type": "function",
        "function": {
            "name": WEATHER_TOOL["name"],
            "description": WEATHER_TOOL["description"],
            "parameters": WEATHER_TOOL["input_schema"],
        },
    }
    assert with_tools.json()["input_tokens"] == expected + estimate_tokens(json.dumps([function_tool]))
    assert longer.json()["input_tokens"] > 10 * expected
    unknown = await post(api.url, {**body, "model": "nope"}, path="/v1/messages/count_tokens")
    assert unknown.status == 404
    assert unknown.json()["error"]["type"] == "not_found_error"
    assert api.srv.calls() == 0  # counting calls no model
    assert await api.router.logs(last_n=5) == []  # and is not a routed request


# ---------------------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize("endpoint", ["/v1/messages", "/v1/chat/completions"])
async def test_classification_headers(api: Stack, endpoint: str) -> None:
    if endpoint == "/v1/messages":
        body = ask(CODE_PROMPT)
    else:
        body = {"model": "auto", "messages": [{"role": "user", "content": CODE_PROMPT}]}
    r = await post(api.url, body, path=endpoint)
    assert r.status == 200
    h = r.headers
    [record] = await api.router.logs(last_n=1)
    decision = api.router.classify(messages=[{"role": "user", "content": CODE_PROMPT}])
    assert h["X-AsyncRouter-Complexity-Label"] == record.complexity == decision.complexity
    assert h["X-AsyncRouter-Complexity-Label"] in ("simple", "medium", "complex")
    assert h["X-AsyncRouter-Category"] == record.category == decision.category == "code"
    assert float(h["X-AsyncRouter-Confidence"]) == pytest.approx(decision.confidence, abs=1e-4)
    assert 0.0 < float(h["X-AsyncRouter-Confidence"]) <= 1.0
    # the existing ones stay
    assert float(h["X-AsyncRouter-Complexity"]) == pytest.approx(record.complexity_score, abs=1e-4)
    assert h["X-AsyncRouter-Task-Type"] == record.task_type == "code"
    assert h["X-AsyncRouter-Tier"] == record.tier
    assert h["X-AsyncRouter-Model"] == record.model
    assert float(h["X-AsyncRouter-Cost-USD"]) == pytest.approx(record.cost_usd, rel=1e-6)


# ------------------------------------------------------------------------------------------- anthropic SDK


def sdk_async(s: Stack, key: str = "unused") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=s.url, api_key=key, max_retries=0)


async def test_sdk_async_create(api: Stack) -> None:
    async with sdk_async(api) as client:
        raw = await client.messages.with_raw_response.create(
            model="auto", max_tokens=256, system="Be brief.", messages=[{"role": "user", "content": PROMPT}]
        )
    m = await raw.parse()
    [record] = await api.router.logs(last_n=1)
    assert m.id == "msg_" + record.request_id
    assert m._request_id == record.request_id
    assert m.model == record.model
    assert m.stop_reason == "end_turn"
    [block] = m.content
    assert block.type == "text"
    assert block.text
    assert m.usage.output_tokens > 0
    assert raw.headers["X-AsyncRouter-Category"] == record.category


async def test_sdk_async_stream(api: Stack) -> None:
    async with sdk_async(api) as client:
        async with client.messages.stream(
            model="fake-medium", max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
        ) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    [record] = await api.router.logs(last_n=1)
    assert len(pieces) >= 5
    assert final.content[0].type == "text"
    assert final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"
    accepted = [a for a in record.attempts if a.outcome == "ok"][-1]
    assert final.usage.input_tokens == accepted.input_tokens  # message_delta made the estimate exact
    assert final.usage.output_tokens == accepted.output_tokens


async def test_sdk_tools_streamed(api: Stack) -> None:
    async with sdk_async(api) as client:
        async with client.messages.stream(
            model="fake-medium",
            max_tokens=256,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"},
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        ) as stream:
            final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [tool_use] = [b for b in final.content if b.type == "tool_use"]
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input, dict)
    assert tool_use.input


async def test_sdk_typed_errors(fleet: FakeProviderServer) -> None:
    async with stack(fleet, api_key=SERVER_KEY) as s:
        async with sdk_async(s, key="sk-wrong") as bad, sdk_async(s, key=SERVER_KEY) as good:
            with pytest.raises(anthropic.AuthenticationError):
                await bad.messages.create(model="auto", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(anthropic.NotFoundError) as missing:
                await good.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            counted = await good.messages.count_tokens(model="auto", messages=[{"role": "user", "content": PROMPT}])
    assert missing.value.status_code == 404
    assert counted.input_tokens == estimate_messages_tokens([{"role": "user", "content": PROMPT}])


async def test_sdk_sync_client_in_a_thread(api: Stack) -> None:
    def call() -> tuple[str, str, str]:
        with anthropic.Anthropic(base_url=api.url, api_key="unused", max_retries=0) as client:
            m = client.messages.create(model="auto", max_tokens=256, messages=[{"role": "user", "content": PROMPT}])
            with client.messages.stream(
                model="auto", max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
            ) as stream:
                text = "".join(stream.text_stream)
                final = stream.get_final_message()
            block = m.content[0]
            assert block.type == "text"
            return block.text, text, str(final.stop_reason)

    plain, streamed, stop = await anyio.to_thread.run_sync(call)
    assert len(plain.split()) >= 3
    assert len(streamed.split()) >= 3
    assert stop == "end_turn"
    records = await api.router.logs(last_n=5)
    assert [r.status for r in records] == ["ok", "ok"]
