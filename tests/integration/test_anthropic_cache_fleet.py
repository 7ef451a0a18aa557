"""Anthropic prompt caching end to end: real aiohttp against the fake fleet, which plays Anthropic's cache."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from asyncrouter import BadRequestError, Router
from asyncrouter._config import ModelConfig, PricingConfig
from asyncrouter._http import HTTPClient
from asyncrouter._models import ChatRequest, ChatResponse, Usage
from asyncrouter._pricing import Price, cost_usd, resolve_price, usage_cost_usd
from asyncrouter._tokens import estimate_messages_tokens
from asyncrouter.providers._anthropic import AnthropicFormat
from asyncrouter.providers._client import ModelClient
from asyncrouter.testing import FakeClock, FakeModel, FakeProviderServer

EPH = {"type": "ephemeral"}
SYSTEM = "You are the support assistant of a small bookshop. Answer briefly and politely. " * 40
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "find_book",
            "description": "Look a book up in the shop's catalogue by title or author.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture
async def server() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("claude", reply_words=12, cost_per_1k_input=0.003, cost_per_1k_output=0.015),
        FakeModel("claude-2", reply_words=12, cost_per_1k_input=0.003, cost_per_1k_output=0.015),
    ]
    async with FakeProviderServer(models=models, seed=3) as srv:
        yield srv


def client(srv: FakeProviderServer, http: HTTPClient, *, model: str = "claude", **fields: Any) -> ModelClient:
    cfg = ModelConfig.model_validate(srv.model_config(model, provider="anthropic", **fields))
    return ModelClient(cfg, http=http, clock=FakeClock())


def chat(question: str, *, system: Any = SYSTEM, tools: list[dict[str, Any]] | None = None) -> ChatRequest:
    return ChatRequest(
        model_id="",  # set per client below
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        tools=tools,
        tool_choice="none" if tools else None,
    )


async def call(c: ModelClient, request: ChatRequest, *, stream: bool = False) -> ChatResponse:
    request.model_id = c.config.model_id
    if not stream:
        return await c.complete(request)
    final = None
    async for event in c.stream(request):
        if isinstance(event, ChatResponse):
            final = event
    assert final is not None
    return final


def cached(usage: Usage) -> tuple[int, int]:
    return usage.cache_creation_input_tokens, usage.cache_read_input_tokens


# ------------------------------------------------------------------------------------ the fake's cache, on the wire


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_first_call_writes_the_prefix_and_a_repeat_reads_it(
    server: FakeProviderServer, http: HTTPClient, stream: bool
) -> None:
    c = client(server, http, prompt_caching=True)
    questions = ("Do you sell maps?", "Are you open on Sunday?")
    first = (await call(c, chat(questions[0]), stream=stream)).usage
    second = (await call(c, chat(questions[1]), stream=stream)).usage

    body = server.requests[0].json
    assert body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": EPH}]
    written, read = cached(first)
    assert written > 500  # the long system prompt, by the fake's estimate
    assert read == 0
    assert cached(second) == (0, written)  # same prefix, new question: a cache hit
    # input_tokens counts the whole prompt either way; only the question is left uncached
    for usage, question in zip((first, second), questions, strict=True):
        assert not usage.estimated
        assert usage.input_tokens == estimate_messages_tokens(chat(question).messages)
        assert 0 < usage.uncached_input_tokens < 50


async def test_requests_without_cache_control_report_no_cache(server: FakeProviderServer, http: HTTPClient) -> None:
    c = client(server, http)
    for _ in range(2):
        usage = (await call(c, chat("Do you sell maps?"))).usage
        assert usage == Usage(estimate_messages_tokens(chat("Do you sell maps?").messages), usage.output_tokens, False)
    assert isinstance(server.requests[0].json["system"], str)


async def test_a_callers_own_cache_control_reaches_the_wire(server: FakeProviderServer, http: HTTPClient) -> None:
    c = client(server, http)  # prompt_caching off: only the caller's mark
    system = [{"type": "text", "text": SYSTEM, "cache_control": EPH}, {"type": "text", "text": "Today: Monday."}]
    first = (await call(c, chat("Maps?", system=system))).usage
    second = (await call(c, chat("Sundays?", system=system))).usage
    assert server.requests[0].json["system"] == system
    assert cached(first)[0] > 500
    assert cached(second) == (0, cached(first)[0])


async def test_a_changed_prefix_misses(server: FakeProviderServer, http: HTTPClient) -> None:
    c = client(server, http, prompt_caching=True)
    first = (await call(c, chat("Maps?"))).usage
    other = (await call(c, chat("Maps?", system=SYSTEM + " Be cheerful."))).usage
    assert cached(first)[1] == 0
    assert cached(other)[0] > 500
    assert cached(other)[1] == 0


async def test_each_model_has_its_own_cache_and_reset_empties_it(server: FakeProviderServer, http: HTTPClient) -> None:
    a, b = client(server, http, prompt_caching=True), client(server, http, model="claude-2", prompt_caching=True)
    await call(a, chat("Maps?"))
    assert cached((await call(b, chat("Maps?"))).usage)[1] == 0  # claude's cache is not claude-2's
    assert cached((await call(a, chat("Maps?"))).usage)[1] > 0
    server.reset()
    assert cached((await call(a, chat("Maps?"))).usage)[1] == 0


async def test_tools_and_system_are_separate_breakpoints(server: FakeProviderServer, http: HTTPClient) -> None:
    c = client(server, http, prompt_caching=True)
    first = (await call(c, chat("Maps?", tools=TOOLS))).usage
    body = server.requests[0].json
    assert body["tools"][0]["cache_control"] == EPH
    assert body["system"][-1]["cache_control"] == EPH
    # a new system prompt after the same tools: the tools' prefix is read, the new system prompt written
    changed = (await call(c, chat("Maps?", system="You are terse. " * 100, tools=TOOLS))).usage
    written, read = cached(changed)
    assert 0 < read < cached(first)[0]
    assert written > 0
    assert changed.input_tokens == changed.uncached_input_tokens + written + read


async def test_streamed_events_carry_the_cache_counts(server: FakeProviderServer) -> None:
    cfg = ModelConfig.model_validate(server.model_config("claude", provider="anthropic", prompt_caching=True))
    fmt = AnthropicFormat()
    request = chat("Maps?")
    request.model_id, request.stream = "claude", True
    usages: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(
                fmt.url(cfg, stream=True),
                json=fmt.build_request(request, cfg),
                headers=fmt.headers(cfg, cfg.key_values()[0]),
            ) as resp:
                raw = (await resp.read()).decode()
            for frame in raw.split("\n\n"):
                data = next((line[6:] for line in frame.splitlines() if line.startswith("data: ")), None)
                if data is None:
                    continue
                event = json.loads(data)
                if event["type"] == "message_start":
                    usages["start"] = event["message"]["usage"]
                elif event["type"] == "message_delta":
                    usages["delta"] = event["usage"]
    # the second call's events: message_start and message_delta both report the read, as the API does
    for where in ("start", "delta"):
        assert usages[where]["cache_read_input_tokens"] > 500, where
        assert usages[where]["cache_creation_input_tokens"] == 0, where


@pytest.mark.parametrize(
    ("system", "message"),
    [
        pytest.param(
            [{"type": "text", "text": f"part {i}", "cache_control": EPH} for i in range(5)],
            "A maximum of 4 blocks with cache_control",
            id="five-breakpoints",
        ),
        pytest.param(
            [{"type": "text", "text": "S", "cache_control": {"type": "persistent"}}],
            "cache_control.type",
            id="unknown-type",
        ),
    ],
)
async def test_the_fake_rejects_what_anthropic_rejects(
    server: FakeProviderServer, http: HTTPClient, system: list[dict[str, Any]], message: str
) -> None:
    c = client(server, http)
    with pytest.raises(BadRequestError, match=message):
        await call(c, chat("q", system=system))
    assert server.requests[-1].status == 400


# --------------------------------------------------------------------------------------------- through a Router


def router_config(srv: FakeProviderServer) -> dict[str, Any]:
    cfg = srv.config_dict(provider="anthropic", models=["claude"], breakers={"enabled": False})
    cfg["models"][0]["prompt_caching"] = True
    return cfg


def router_price(srv: FakeProviderServer) -> Price:
    return Router.from_dict(router_config(srv)).prices["claude"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_router_sends_cache_control_and_counts_cached_tokens(server: FakeProviderServer, stream: bool) -> None:
    async with Router.from_dict(router_config(server)) as router:
        metas = []
        for question in ("Do you sell maps of Scotland?", "Do you sell maps of Wales?"):
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
            if stream:
                async with router.astream(messages=messages, model="claude") as s:
                    _ = [d async for d in s]
                assert s.response is not None
                metas.append(s.response.meta)
            else:
                metas.append((await router.aroute(messages=messages, model="claude")).meta)
    assert [r.json["system"][-1]["cache_control"] for r in server.requests] == [EPH, EPH]
    for meta, question in zip(metas, ("Do you sell maps of Scotland?", "Do you sell maps of Wales?"), strict=True):
        prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        # the router's input tokens are the whole prompt, cached part included
        assert meta.input_tokens == estimate_messages_tokens(prompt)
        assert not meta.tokens_estimated
    # and its cost prices them: the first call writes the system prompt to the cache (1.25x), the second reads
    # it (0.1x), so the second costs less than the same tokens at the plain input price
    price = router_price(server)
    plain = [cost_usd(price, m.input_tokens, m.output_tokens) for m in metas]
    assert metas[0].estimated_cost_usd > plain[0]
    assert metas[1].estimated_cost_usd < plain[1] * 0.6


async def test_a_cache_hit_is_priced_below_a_write(server: FakeProviderServer, http: HTTPClient) -> None:
    c = client(server, http, prompt_caching=True)
    price = resolve_price(c.config, PricingConfig())
    write = (await call(c, chat("Maps?"))).usage
    read = (await call(c, chat("Maps?"))).usage
    plain_write = cost_usd(price, write.input_tokens, write.output_tokens)
    plain_read = cost_usd(price, read.input_tokens, read.output_tokens)
    assert usage_cost_usd(price, read) < plain_read
    assert usage_cost_usd(price, write) > plain_write
    # the written prefix costs 1.25x the input price, the read one 0.1x
    w, r = write.cache_creation_input_tokens, read.cache_read_input_tokens
    assert usage_cost_usd(price, write) - plain_write == pytest.approx(w * price.input_per_1k * 0.25 / 1000)
    assert plain_read - usage_cost_usd(price, read) == pytest.approx(r * price.input_per_1k * 0.9 / 1000)
