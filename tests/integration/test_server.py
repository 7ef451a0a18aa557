"""The OpenAI-compatible server, driven by the official ``openai`` client against the fake fleet on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import openai
import pytest
from aiohttp import web

from asyncrouter import ConfigError, Router
from asyncrouter.server import ROUTER_KEY, create_app, serve
from asyncrouter.testing import FakeProviderServer, default_fleet

FLEET_KEY = "sk-fleet-SECRET-0123456789abcdef"
SERVER_KEY = "sk-server-SECRET-fedcba9876543210"
ALIASES = ("fake-cheap", "fake-medium", "fake-strong")
PROMPT = "What is the capital of France?"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(models=default_fleet(speed=0, faults=False), seed=5, api_keys=[FLEET_KEY]) as srv:
        yield srv


def fleet_config(srv: FakeProviderServer, **top: Any) -> dict[str, Any]:
    # one try per model and no backoff: failure tests stay fast
    top.setdefault("retries", {"max_attempts": 1, "backoff_base": 0.0, "backoff_max": 0.0})
    return srv.config_dict(**top)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Run *app* on 127.0.0.1, a free port; yields the base URL."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@dataclass
class Stack:
    srv: FakeProviderServer
    router: Router
    url: str
    client: openai.AsyncOpenAI


@asynccontextmanager
async def stack(
    srv: FakeProviderServer, *, config: dict[str, Any] | None = None, api_key: str | None = None, **app_kw: Any
) -> AsyncIterator[Stack]:
    async with Router.from_dict(config or fleet_config(srv)) as router:
        async with serving(create_app(router, api_key=api_key, **app_kw)) as url:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=api_key or "unused", max_retries=0)
            try:
                yield Stack(srv, router, url, client)
            finally:
                await client.close()


@pytest.fixture
async def api(fleet: FakeProviderServer) -> AsyncIterator[Stack]:
    async with stack(fleet) as s:
        yield s


async def raw_post(url: str, body: bytes | Any, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """POST to the server with a plain aiohttp client: (status, parsed JSON or None, raw text)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/v1/chat/completions", data=data, headers=headers or {}) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            return resp.status, parsed, text


# --------------------------------------------------------------------------------------------- non-streamed


async def test_completion_has_openai_shape_and_matches_the_tracker(api: Stack) -> None:
    c = await api.client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
    assert c.object == "chat.completion"
    assert c.id.startswith("chatcmpl-")
    assert c.model in ALIASES
    assert isinstance(c.created, int)
    assert c.created > 1_600_000_000
    choice = c.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert c.usage is not None
    assert c.usage.prompt_tokens > 0
    assert c.usage.completion_tokens > 0
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens

    [record] = await api.router.logs(last_n=5)
    assert c.id == "chatcmpl-" + record.request_id
    assert record.model == c.model
    assert record.status == "ok"
    # the fake provider's own usage for the accepted call is what the client sees
    accepted = [a for a in record.attempts if a.outcome == "ok"][-1]
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (accepted.input_tokens, accepted.output_tokens)


async def test_routing_metadata_in_headers(api: Stack) -> None:
    raw = await api.client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Write a Python function that merges two sorted lists"}]
    )
    c = raw.parse()
    h = raw.headers
    [record] = await api.router.logs(last_n=1)
    assert h["X-AsyncRouter-Request-Id"] == record.request_id == h["x-request-id"]
    assert c._request_id == record.request_id
    assert h["X-AsyncRouter-Model"] == c.model == record.model
    assert h["X-AsyncRouter-Provider"] == "openai"
    assert h["X-AsyncRouter-Routing-Layer"] == record.routing_layer
    assert h["X-AsyncRouter-Task-Type"] == record.task_type == "code"
    assert h["X-AsyncRouter-Tier"] == record.tier
    assert float(h["X-AsyncRouter-Complexity"]) == pytest.approx(record.complexity_score, abs=1e-4)
    assert float(h["X-AsyncRouter-Cost-USD"]) == pytest.approx(record.cost_usd, rel=1e-6)
    assert float(h["X-AsyncRouter-Cost-USD"]) > 0
    assert int(h["X-AsyncRouter-Escalations"]) == sum(a.outcome in ("error", "gate_failed") for a in record.attempts)
    assert h["X-AsyncRouter-Quality-Passed"] == ("true" if record.quality_passed else "false")
    assert "X-AsyncRouter-Ignored-Params" not in h


@pytest.mark.parametrize(
    ("model", "layer", "profile", "answered_by"),
    [
        pytest.param("fake-strong", "pinned", None, "fake-strong", id="alias"),
        pytest.param("asyncrouter/fake-medium", "pinned", None, "fake-medium", id="prefixed-alias"),
        pytest.param("openai/fake-cheap", "pinned", None, "fake-cheap", id="provider-model-id"),
        pytest.param("premium", None, "premium", None, id="profile"),
        pytest.param("smart/eco", None, "eco", None, id="slr-profile"),
        pytest.param("smart/auto", None, None, None, id="slr-auto"),
    ],
)
async def test_model_names(api: Stack, model: str, layer: str | None, profile: str | None, answered_by: str) -> None:
    raw = await api.client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}]
    )
    c = raw.parse()
    assert c.choices[0].message.content
    if layer is not None:
        assert raw.headers["X-AsyncRouter-Routing-Layer"] == layer
    else:
        assert raw.headers["X-AsyncRouter-Routing-Layer"] != "pinned"
    assert raw.headers.get("X-AsyncRouter-Profile") == profile
    if answered_by is not None:
        assert c.model == answered_by
        assert api.srv.requests[-1].model == answered_by


async def test_request_params_reach_the_provider(fleet: FakeProviderServer) -> None:
    async with stack(fleet, passthrough_fields=("frequency_penalty",)) as s:
        raw = await s.client.chat.completions.with_raw_response.create(
            model="fake-medium",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
            max_completion_tokens=300,
            temperature=0.3,
            top_p=0.9,
            stop=["\n\n"],
            seed=42,
            user="user-7",
            frequency_penalty=0.5,
            store=True,
            extra_body={"vendor_knob": {"x": 1}},
        )
    sent = fleet.requests[-1].json
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    assert sent["max_completion_tokens"] == 300
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["seed"], sent["user"]) == (
        0.3,
        0.9,
        ["\n\n"],
        42,
        "user-7",
    )
    assert sent["frequency_penalty"] == 0.5  # allowed by the operator
    assert "store" not in sent
    assert "vendor_knob" not in sent
    assert raw.headers["X-AsyncRouter-Ignored-Params"] == "store,vendor_knob"


async def test_legacy_max_tokens_and_defaults(api: Stack) -> None:
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}  # no model: routed as auto
    status, parsed, _ = await raw_post(api.url, body)
    assert status == 200
    assert parsed["model"] in ALIASES
    sent = api.srv.requests[-1].json
    assert sent["max_completion_tokens"] == 64
    assert "temperature" not in sent  # nothing the client did not send is invented


async def test_tools_pass_through_and_tool_calls_come_back(api: Stack) -> None:
    c = await api.client.chat.completions.create(
        model="fake-medium",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    sent = api.srv.requests[-1].json
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == "required"
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    assert call.id

    # the tool result goes back in the conversation; the reply is text
    follow_up = await api.client.chat.completions.create(
        model="fake-medium",
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content
    assert api.srv.requests[-1].json["messages"][2]["tool_call_id"] == call.id


async def test_response_format_json_object(api: Stack) -> None:
    c = await api.client.chat.completions.create(
        model="fake-cheap",
        messages=[{"role": "user", "content": "List three colours as JSON"}],
        response_format={"type": "json_object"},
    )
    assert api.srv.requests[-1].json["response_format"] == {"type": "json_object"}
    content = c.choices[0].message.content
    assert content is not None
    assert isinstance(json.loads(content), dict)


async def test_sync_client_in_a_thread(api: Stack) -> None:
    def call() -> tuple[str, str]:
        with openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0) as client:
            c = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
            streamed = client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
            text = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices)
            return c.choices[0].message.content or "", text

    plain, streamed = await anyio.to_thread.run_sync(call)
    assert len(plain.split()) >= 10
    assert len(streamed.split()) >= 10
    records = await api.router.logs(last_n=5)
    assert [r.status for r in records] == ["ok", "ok"]


async def test_non_ascii_text_round_trips(api: Stack) -> None:
    reply = "Grüße aus 東京 — the answer is ✓ and it is long enough to pass the gates."
    api.srv.set_behaviour("fake-cheap", reply=reply)
    prompt = "東京の天気はどうですか？ Erklären Sie es bitte."
    c = await api.client.chat.completions.create(model="fake-cheap", messages=[{"role": "user", "content": prompt}])
    stream = await api.client.chat.completions.create(
        model="fake-cheap", messages=[{"role": "user", "content": prompt}], stream=True
    )
    streamed = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert c.choices[0].message.content == reply
    assert streamed == reply
    assert api.srv.requests[-1].json["messages"][0]["content"] == prompt


# ------------------------------------------------------------------------------------------------ streamed


async def test_stream_chunks_usage_and_metadata(api: Stack) -> None:
    stream = await api.client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Explain how a circuit breaker protects a service"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert len({ch.id for ch in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert len(text.split()) >= 20

    finish, usage_chunk = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "stop"
    assert all(ch.choices[0].finish_reason is None for ch in chunks[:-2])
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.total_tokens == usage_chunk.usage.prompt_tokens + usage_chunk.usage.completion_tokens

    meta = (finish.model_extra or {})["x_asyncrouter"]
    [record] = await api.router.logs(last_n=1)
    assert meta["request_id"] == record.request_id
    assert meta["model"] == finish.model == usage_chunk.model == record.model
    assert meta["cost_usd"] == pytest.approx(record.cost_usd)
    assert meta["routing_layer"] == record.routing_layer
    assert usage_chunk.usage.completion_tokens == record.output_tokens


async def test_raw_sse_ends_with_done(api: Stack) -> None:
    body = {"model": "fake-cheap", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    status, _, text = await raw_post(api.url, body)
    assert status == 200
    events = [line for line in text.split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    # without stream_options.include_usage: no usage chunk
    assert all("usage" not in json.loads(e[6:]) for e in events[:-1])


async def test_streamed_tool_calls(api: Stack) -> None:
    stream = await api.client.chat.completions.create(
        model="fake-strong",
        messages=[{"role": "user", "content": "What's the weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    chunks = [ch async for ch in stream]
    calls = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
    assert [tc.function.name for tc in calls if tc.function] == ["get_weather"]
    assert isinstance(json.loads(calls[0].function.arguments or ""), dict)  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_error_after_the_stream_started_is_an_error_event(api: Stack) -> None:
    api.srv.set_behaviour("fake-cheap", token_interval=0.05)  # the deltas before the fault arrive one by one
    api.srv.script("fake-cheap", ["mid_stream_error"])
    stream = await api.client.chat.completions.create(
        model="fake-cheap", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        async for ch in stream:
            if ch.choices and ch.choices[0].delta.content:
                received.append(ch.choices[0].delta.content)
    assert received  # some text went out before the failure
    assert FLEET_KEY not in str(info.value)
    body = info.value.body
    assert isinstance(body, dict)
    assert body["type"] == "upstream_error"


# --------------------------------------------------------------------------------------------------- models


async def test_models_list_and_retrieve(api: Stack) -> None:
    page = await api.client.models.list()
    ids = [m.id for m in page.data]
    assert ids[:5] == ["auto", "agentic", "eco", "free", "premium"]
    assert ids[5:] == list(ALIASES)
    assert all(m.object == "model" for m in page.data)
    m = await api.client.models.retrieve("fake-strong")
    assert (m.id, m.owned_by) == ("fake-strong", "openai")
    m = await api.client.models.retrieve("smart/premium")  # an accepted spelling describes what it names
    assert (m.id, m.owned_by) == ("smart/premium", "asyncrouter")
    with pytest.raises(openai.NotFoundError):
        await api.client.models.retrieve("gpt-9")


async def test_config_profiles_are_listed_and_routable(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, profiles={"coding": {"models": ["fake-medium"]}})
    async with stack(fleet, config=cfg) as s:
        ids = [m.id async for m in s.client.models.list()]
        raw = await s.client.chat.completions.with_raw_response.create(
            model="coding", messages=[{"role": "user", "content": PROMPT}]
        )
    assert "coding" in ids
    assert raw.headers["X-AsyncRouter-Profile"] == "coding"
    assert raw.parse().model == "fake-medium"


# --------------------------------------------------------------------------------------------------- errors


async def test_unknown_model_is_404(api: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await api.client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": PROMPT}])
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"
    assert api.srv.calls() == 0


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        pytest.param(b"{not json", None, "invalid_json", id="invalid-json"),
        pytest.param({"model": "auto"}, "messages", "missing_required_parameter", id="missing-messages"),
        pytest.param({"messages": []}, "messages", None, id="empty-messages"),
        pytest.param({"messages": [{"content": "hi"}]}, "messages[0].role", None, id="no-role"),
        pytest.param({"messages": [{"role": "user"}]}, "messages[0].content", None, id="no-content"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, "temperature", None, id="t"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens", None, id="mt"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n", None, id="n"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}], "stop": 3}, "stop", None, id="stop"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}], "tools": [{}]}, "tools", None, id="tools"),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "xml"}},
            "response_format",
            None,
            id="response-format",
        ),
        pytest.param([1, 2], None, None, id="not-an-object"),
    ],
)
async def test_bad_requests_are_400(api: Stack, body: Any, param: str | None, code: str | None) -> None:
    status, parsed, _ = await raw_post(api.url, body)
    assert status == 400
    assert parsed["error"]["type"] == "invalid_request_error"
    assert parsed["error"]["param"] == param
    assert parsed["error"]["code"] == code
    assert api.srv.calls() == 0


async def test_bad_param_through_the_openai_client(api: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await api.client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": PROMPT}], temperature=3.5
        )
    assert info.value.param == "temperature"


async def test_body_over_the_limit_is_413(fleet: FakeProviderServer) -> None:
    async with stack(fleet, max_body_bytes=64 * 1024) as s:
        with pytest.raises(openai.APIStatusError) as info:
            await s.client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "word " * 30_000}]
            )
        # just under the limit is fine
        ok = await s.client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "word " * 10_000}]
        )
    assert info.value.status_code == 413
    assert info.value.code == "request_too_large"
    assert ok.choices[0].message.content
    assert fleet.calls() == 1


async def test_every_provider_failing_is_502_without_the_key(fleet: FakeProviderServer) -> None:
    for alias in ALIASES:
        fleet.set_faults(alias, {"500": 1.0})
    async with stack(fleet) as s:
        with pytest.raises(openai.APIStatusError) as info:
            await s.client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
        with pytest.raises(openai.APIStatusError) as streamed:
            await s.client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
    for err in (info.value, streamed.value):
        assert err.status_code == 502
        assert err.code == "all_providers_failed"
        assert err.response.headers["x-should-retry"] == "false"
        assert FLEET_KEY not in err.message
        assert FLEET_KEY not in err.response.text
        assert "fake-cheap" in err.message  # says what was tried


async def test_provider_rejecting_the_key_never_leaks_it(fleet: FakeProviderServer) -> None:
    fleet.set_key_fault(FLEET_KEY, "401")
    async with stack(fleet) as s:
        with pytest.raises(openai.APIStatusError) as info:
            await s.client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
    assert info.value.status_code == 502  # the server's upstream credentials are wrong, not the client's request
    assert "AuthenticationError" in info.value.message
    assert FLEET_KEY not in info.value.response.text
    assert FLEET_KEY[:12] not in info.value.response.text


async def test_every_provider_rejecting_the_request_is_400(fleet: FakeProviderServer) -> None:
    for alias in ALIASES:
        fleet.set_faults(alias, {"context_length": 1.0})
    async with stack(fleet) as s:
        with pytest.raises(openai.BadRequestError) as info:
            await s.client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
    assert info.value.code == "context_length_exceeded"


async def test_open_breakers_are_503_with_retry_after(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, breakers={"model": {"fail_max": 1, "reset_timeout": 60}})
    fleet.set_faults("fake-strong", {"503": 1.0})
    async with stack(fleet, config=cfg) as s:
        with pytest.raises(openai.APIStatusError) as first:
            await s.client.chat.completions.create(model="fake-strong", messages=[{"role": "user", "content": PROMPT}])
        calls = fleet.calls(model="fake-strong")
        with pytest.raises(openai.APIStatusError) as second:
            await s.client.chat.completions.create(model="fake-strong", messages=[{"role": "user", "content": PROMPT}])
        async with aiohttp.ClientSession() as session, session.get(s.url + "/healthz") as resp:
            health = await resp.json()
    assert first.value.status_code == 502
    assert second.value.status_code == 503
    assert second.value.code == "circuit_open"
    assert 1 <= int(second.value.response.headers["Retry-After"]) <= 60
    assert fleet.calls(model="fake-strong") == calls  # the open breaker kept the request from the provider
    assert health["status"] == "degraded"
    assert health["breakers"]["fake-strong"] == "open"
    assert "fake-strong" in health["models"]["blocked"]


async def test_budget_exceeded_is_429_and_not_retried(fleet: FakeProviderServer) -> None:
    cfg = fleet_config(fleet, budget={"daily_limit_usd": 0.000001})
    paths: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        paths.append(request.path)
        return await handler(request)  # type: ignore[no-any-return]

    async with Router.from_dict(cfg) as router:
        app = create_app(router)
        app.middlewares.append(count)
        async with serving(app) as url:
            # the SDK's default retries are on: x-should-retry must stop them
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused") as client:
                with pytest.raises(openai.RateLimitError) as info:
                    await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
                with pytest.raises(openai.RateLimitError) as streamed:
                    await client.chat.completions.create(
                        model="auto", messages=[{"role": "user", "content": PROMPT}], stream=True
                    )
            async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
                health_status, health = resp.status, await resp.json()
    for err in (info.value, streamed.value):
        assert err.status_code == 429
        assert err.code == "budget_exceeded"
        assert err.type == "insufficient_quota"
        assert "budget" in err.message
    assert paths == ["/v1/chat/completions"] * 2 + ["/healthz"]  # one request each: the client did not retry
    assert health_status == 503
    assert health["status"] == "unavailable"
    assert health["budget"]["state"] == "exhausted"
    assert fleet.calls() == 0


# ----------------------------------------------------------------------------------------------------- auth


async def test_bearer_auth(fleet: FakeProviderServer) -> None:
    async with stack(fleet, api_key=SERVER_KEY) as s:
        ok = await s.client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
        assert ok.choices[0].message.content
        for key in ("sk-wrong-key-0000000000", SERVER_KEY[:-1], SERVER_KEY + "x"):
            async with openai.AsyncOpenAI(base_url=s.url + "/v1", api_key=key, max_retries=0) as bad:
                with pytest.raises(openai.AuthenticationError) as info:
                    await bad.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
                with pytest.raises(openai.AuthenticationError):
                    await bad.models.list()
            assert info.value.code == "invalid_api_key"
            assert key not in info.value.response.text
            assert SERVER_KEY not in info.value.response.text
        status, parsed, _ = await raw_post(s.url, {"messages": [{"role": "user", "content": PROMPT}]})
        assert status == 401
        assert parsed["error"]["code"] == "invalid_api_key"
        async with aiohttp.ClientSession() as session:
            async with session.get(s.url + "/healthz") as resp:
                anonymous = await resp.json()
            async with session.get(s.url + "/healthz", headers={"Authorization": f"Bearer {SERVER_KEY}"}) as resp:
                authorised = await resp.json()
    assert fleet.calls() == 1  # only the authorised request reached a provider
    assert anonymous == {"status": "ok"}
    assert authorised["status"] == "ok"
    assert authorised["budget"]["state"] == "normal"
    assert authorised["models"] == {"total": 3, "available": 3, "blocked": {}}


async def test_unknown_paths_and_methods_answer_in_json(api: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(api.url + "/v1/images/generations") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not_found"
        async with session.get(api.url + "/v1/chat/completions") as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_app_exposes_its_router(api: Stack) -> None:
    app = create_app(api.router)
    assert app[ROUTER_KEY] is api.router
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(api.router, max_body_bytes=0)


# ---------------------------------------------------------------------------------------------------- serve


@dataclass
class Served:
    url: str
    stop: Callable[[], None]
    returned: list[bool]


@asynccontextmanager
async def served(router: Router, **kw: Any) -> AsyncIterator[Served]:
    """Run serve() in a task of its own; ``stop()`` cancels only it. Leaving the block waits for it to end."""
    ready: list[str] = []
    returned: list[bool] = []
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            await serve(router, host="127.0.0.1", port=0, on_ready=ready.append, **kw)
            returned.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        while not ready:
            await anyio.lowlevel.checkpoint()
        yield Served(ready[0], scope.cancel, returned)


async def test_serve_runs_until_cancelled_and_closes_everything(
    fleet: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCROUTER_API_KEY", SERVER_KEY)
    router = Router.from_dict(fleet_config(fleet))
    async with served(router, handle_signals=False) as s:
        assert s.url.startswith("http://127.0.0.1:")
        async with openai.AsyncOpenAI(base_url=s.url + "/v1", api_key=SERVER_KEY, max_retries=0) as client:
            c = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
            assert c.choices[0].message.content
            with pytest.raises(openai.AuthenticationError):
                await client.with_options(api_key="nope").models.list()
        s.stop()
    assert s.returned == []  # cancelled: serve() let the cancellation through after cleaning up
    assert "open=False" in repr(router)
    async with openai.AsyncOpenAI(base_url=s.url + "/v1", api_key=SERVER_KEY, max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.models.list()


async def test_graceful_shutdown_finishes_in_flight_requests_and_drains_the_tracker(
    fleet: FakeProviderServer, tmp_path: Path
) -> None:
    db = tmp_path / "tracker.db"
    cfg = fleet_config(fleet, tracker={"path": str(db)})
    fleet.set_behaviour("fake-strong", latency=0.5)  # long enough to be in flight when shutdown starts
    router = Router.from_dict(cfg)
    results: dict[str, Any] = {}
    async with served(router, handle_signals=False) as s:
        async with openai.AsyncOpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0) as client:
            for i in range(5):
                await client.chat.completions.create(
                    model="fake-cheap", messages=[{"role": "user", "content": f"Question {i}?"}]
                )

            async def slow() -> None:
                results["slow"] = await client.chat.completions.create(
                    model="fake-strong", messages=[{"role": "user", "content": PROMPT}]
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow)
                while fleet.calls(model="fake-strong") == 0:  # the request reached the provider
                    await anyio.lowlevel.checkpoint()
                s.stop()  # shut the server down while the slow request is in flight
    assert results["slow"].model == "fake-strong"
    assert results["slow"].choices[0].message.content
    assert "open=False" in repr(router)
    async with Router.from_dict(cfg) as reader:
        records = await reader.logs(last_n=50)
    assert len(records) == 6
    assert {r.status for r in records} == {"ok"}
    assert records[0].model == "fake-strong"


async def test_a_client_hanging_up_cancels_its_request(fleet: FakeProviderServer) -> None:
    fleet.set_behaviour("fake-medium", token_interval=0.05, reply_words=(300, 300))  # a stream of many seconds
    router = Router.from_dict(fleet_config(fleet))
    body = {"model": "fake-medium", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    async with served(router, handle_signals=False) as s:
        async with aiohttp.ClientSession() as session:
            async with session.post(s.url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                assert (await resp.content.readline()).startswith(b"data: ")
            # leaving the block unread closes the connection
        with anyio.fail_after(5):
            while not (records := await router.logs(last_n=5)):  # noqa: ASYNC110  (the tracker has no event)
                await anyio.sleep(0.01)
        s.stop()
    [record] = records
    assert record.status == "cancelled"
    assert record.model is None  # no reply was accepted


async def test_shutdown_cancels_requests_that_outlive_the_timeout(fleet: FakeProviderServer, tmp_path: Path) -> None:
    fleet.set_behaviour("fake-medium", token_interval=0.05, reply_words=(300, 300))  # a stream of many seconds
    cfg = fleet_config(fleet, tracker={"path": str(tmp_path / "t.db")})
    body = {"model": "fake-medium", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    router = Router.from_dict(cfg)
    with anyio.fail_after(10):  # far below the stream's length: the drain is bounded by shutdown_timeout
        async with served(router, handle_signals=False, shutdown_timeout=0.2) as s:
            async with aiohttp.ClientSession() as session:
                async with session.post(s.url + "/v1/chat/completions", json=body) as resp:
                    assert (await resp.content.readline()).startswith(b"data: ")
                    s.stop()
                    rest = b""
                    with contextlib.suppress(aiohttp.ClientPayloadError):
                        rest = await resp.content.read()
    assert b"[DONE]" not in rest
    async with Router.from_dict(cfg) as reader:
        [record] = await reader.logs(last_n=5)
    assert record.status == "cancelled"


async def test_serve_stops_on_sigterm(fleet: FakeProviderServer) -> None:
    router = Router.from_dict(fleet_config(fleet))
    with anyio.fail_after(10):  # fail, not hang, if the signal is not handled
        async with served(router) as s:
            async with openai.AsyncOpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0) as client:
                await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
            os.kill(os.getpid(), signal.SIGTERM)
    assert s.returned == [True]  # a signal is a normal stop: serve() returned
    assert "open=False" in repr(router)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.com", ""])
async def test_serve_refuses_remote_hosts_without_a_key(
    fleet: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.delenv("ASYNCROUTER_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="without authentication") as info:
        await serve(fleet_config(fleet), host=host, port=0)
    assert info.value.path == "host"


async def test_serve_takes_a_yaml_path(fleet: FakeProviderServer, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "asyncrouter.yaml"
    path.write_text(yaml.safe_dump(fleet_config(fleet)))
    seen: list[str] = []

    class Stop(Exception):
        pass

    async def on_ready(url: str) -> None:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:
            seen.extend([m.id async for m in client.models.list()])
        raise Stop  # an error in on_ready reaches the caller as it is, after a clean shutdown

    with pytest.raises(Stop):
        await serve(str(path), port=0, handle_signals=False, on_ready=on_ready)
    assert seen == ["auto", "agentic", "eco", "free", "premium", *ALIASES]
