"""Router.aroute / astream against the fake fleet: every provider kind, streamed and not, every fault kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asyncrouter import (
    AllProvidersFailed,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextLengthExceeded,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderServerError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    Response,
    Router,
    StreamInterrupted,
)
from asyncrouter.testing import ALL_PROVIDERS, FakeModel, FakeProviderServer

PRICE_IN, PRICE_OUT = 0.001, 0.004


@pytest.fixture
async def server() -> AsyncIterator[FakeProviderServer]:
    models = [FakeModel("m", reply_words=(20, 40), cost_per_1k_input=PRICE_IN, cost_per_1k_output=PRICE_OUT)]
    async with FakeProviderServer(models=models, seed=7) as srv:
        yield srv


def one_model_config(srv: FakeProviderServer, provider: str, **top: Any) -> dict[str, Any]:
    cfg = srv.config_dict(provider=provider, breakers={"enabled": False}, **top)  # type: ignore[arg-type]
    cfg["models"][0]["timeout"] = 0.5
    return cfg


async def ask(
    router: Router, stream: bool, prompt: str = "Explain how a circuit breaker protects a service"
) -> Response:
    if not stream:
        return await router.aroute(prompt, model="m")
    async with router.astream(prompt, model="m") as s:
        text = "".join([d async for d in s])
    assert s.response is not None
    assert text == s.response.content
    return s.response


PROVIDERS = [*ALL_PROVIDERS, "ollama-openai"]


def provider_config(srv: FakeProviderServer, kind: str) -> dict[str, Any]:
    if kind == "ollama-openai":
        cfg = one_model_config(srv, "ollama")
        cfg["models"][0]["api"] = "openai"
        return cfg
    return one_model_config(srv, kind)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", PROVIDERS)
async def test_every_provider_kind_end_to_end(server: FakeProviderServer, kind: str, stream: bool) -> None:
    async with Router.from_dict(provider_config(server, kind)) as router:
        r = await ask(router, stream)
    rec = server.requests[-1]
    assert rec.model == "m"
    assert len(r.content.split()) >= 20
    m = r.meta
    assert m.model == "m"
    assert m.provider == ("ollama" if kind == "ollama-openai" else kind)
    assert m.routing_layer == "pinned"
    assert m.input_tokens > 0
    assert m.output_tokens > 0
    assert not m.tokens_estimated
    assert m.estimated_cost_usd == pytest.approx(m.input_tokens * PRICE_IN / 1000 + m.output_tokens * PRICE_OUT / 1000)
    assert m.latency_ms > 0
    assert [a.outcome for a in m.attempts] == ["ok"]
    assert m.attempts[0].cost_usd == pytest.approx(m.estimated_cost_usd)
    assert m.finish_reason == "stop"
    assert len(m.request_id) == 32
    # the wire format really was the provider's
    if kind == "anthropic":
        assert rec.headers.get("anthropic-version") == "2023-06-01"
        assert "x-api-key" in {k.lower() for k in rec.headers}
    elif kind == "ollama":
        assert rec.path == "/api/chat"
    elif kind == "openrouter":
        assert rec.path == "/api/v1/chat/completions"


async def test_missing_usage_is_estimated_and_marked(server: FakeProviderServer) -> None:
    server.set_behaviour("m", usage=False)
    for stream in (False, True):
        async with Router.from_dict(one_model_config(server, "openai")) as router:
            r = await ask(router, stream)
        assert r.meta.tokens_estimated
        assert r.meta.input_tokens > 0
        assert r.meta.output_tokens > 0


async def test_parameters_pass_through(server: FakeProviderServer) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    async with Router.from_dict(one_model_config(server, "openai")) as router:
        r = await router.aroute(
            "Look it up",
            model="m",
            tools=tools,
            tool_choice="required",
            temperature=0.3,
            max_tokens=77,
            stop=["STOP"],
            seed=5,
        )
        assert r.tool_calls
        assert r.tool_calls[0]["function"]["name"] == "lookup"
        body = server.requests[-1].json
        assert body is not None
        assert body["temperature"] == 0.3
        assert body["max_completion_tokens"] == 77
        assert body["stop"] == ["STOP"]
        assert body["tools"] == tools
        j = await router.aroute("Give me a JSON object", model="m", response_format={"type": "json_object"})
        import json

        assert isinstance(json.loads(j.content), dict)
        assert j.meta.quality_passed


FAULTS: list[tuple[str, type[ProviderError]]] = [
    ("500", ProviderServerError),
    ("502", ProviderServerError),
    ("503", ProviderServerError),
    ("529", ProviderOverloaded),
    ("overloaded", ProviderOverloaded),
    ("429", RateLimited),
    ("quota", QuotaExhausted),
    ("401", AuthenticationError),
    ("400", BadRequestError),
    ("context_length", ContextLengthExceeded),
    ("content_policy", ContentPolicyError),
    ("timeout", ProviderTimeout),
    ("reset", ProviderConnectionError),
    ("malformed_json", MalformedResponse),
    ("mid_stream_error", ProviderServerError),
    ("truncated_stream", StreamInterrupted),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", ["openai", "anthropic", "ollama", "openrouter"])
@pytest.mark.parametrize(("fault", "expected"), FAULTS, ids=[f for f, _ in FAULTS])
async def test_every_fault_ends_in_its_typed_error(
    server: FakeProviderServer, kind: str, stream: bool, fault: str, expected: type[ProviderError]
) -> None:
    cfg = one_model_config(server, kind, retries={"max_attempts": 1})
    server.script("m", [fault])  # type: ignore[list-item]
    with anyio.fail_after(10):  # nothing may hang
        async with Router.from_dict(cfg) as router:
            with pytest.raises((AllProvidersFailed, ProviderError)) as info:
                await ask(router, stream)
            err: BaseException = info.value
            if isinstance(err, AllProvidersFailed):
                assert len(err.errors) == 1
                err = err.errors[0]
            else:
                # only a stream that already delivered text raises the provider error itself
                assert stream
                assert fault in ("truncated_stream", "mid_stream_error")
            assert isinstance(err, expected), f"{fault}: {type(err).__name__}: {err}"
            assert isinstance(err, ProviderError)
            assert err.model == "m"
            assert err.provider == kind
            logs = await router.logs(last_n=1)
    assert logs[0].status == "error"
    assert logs[0].error_type is not None


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_soft_faults_return_a_reply_marked_by_the_gates(server: FakeProviderServer, stream: bool) -> None:
    async with Router.from_dict(one_model_config(server, "openai")) as router:
        server.script("m", ["truncated"])
        r = await ask(router, stream)
        assert r.meta.finish_reason == "length"
        assert not r.meta.quality_passed
        assert "truncated" in r.meta.attempts[0].reason
        server.script("m", ["empty"])
        r = await ask(router, stream)
        assert r.content == ""
        assert not r.meta.quality_passed
        assert "empty" in r.meta.attempts[0].reason


async def test_retries_recover_transient_faults(server: FakeProviderServer) -> None:
    server.set_behaviour("m", retry_after=0.01)
    cfg = one_model_config(server, "openai", retries={"max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.02})
    async with Router.from_dict(cfg) as router:
        server.script("m", ["503", "429"])
        r = await router.aroute("hello", model="m")
    assert r.meta.attempts[0].outcome == "ok"
    assert r.meta.attempts[0].retries == 2
    assert server.calls(model="m") == 3


async def test_no_retry_for_rejections(server: FakeProviderServer) -> None:
    cfg = one_model_config(server, "openai", retries={"max_attempts": 3, "backoff_base": 0.01})
    async with Router.from_dict(cfg) as router:
        for fault in ("400", "context_length", "quota", "401"):
            server.reset()
            server.script("m", [fault])  # type: ignore[list-item]
            with pytest.raises(AllProvidersFailed):
                await router.aroute("hello", model="m")
            assert server.calls(model="m") == 1, fault
