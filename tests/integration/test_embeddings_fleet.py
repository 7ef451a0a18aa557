"""Embeddings end to end over real sockets: ModelClient.embed against the fake fleet's /v1/embeddings (order,
batching, tokens, keys, faults, providers without embeddings), the official ``openai`` SDK against the same
endpoint, and a kNN index trained on the bundled hold-out set through the fleet."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import openai
import pytest

from asyncrouter._config import ModelConfig
from asyncrouter._embeddings import EmbeddingIndex, embed_texts, train_index
from asyncrouter._eval import load_bundled_eval_data
from asyncrouter._exceptions import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContextLengthExceeded,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
)
from asyncrouter._http import HTTPClient
from asyncrouter._tokens import estimate_tokens
from asyncrouter._types import ProviderName
from asyncrouter.providers._client import ModelClient
from asyncrouter.testing import FakeClock, FakeModel, FakeProviderServer, FaultKind, default_fleet
from asyncrouter.testing._vectors import fake_embedding

KEY = "good-key"
TEXTS = [
    "what year did the titanic sink",
    "Write a Python function that merges two sorted lists",
    "用Python写一个排序函数",
    "Compare optimistic and pessimistic locking in PostgreSQL",
    "a haiku about autumn rain",
]


@pytest.fixture
async def srv() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("embed", retry_after=0.25, context_window=50),
        FakeModel("embed-large", embedding_dim=1536),
        FakeModel("no-usage", usage=False),
    ]
    async with FakeProviderServer(models=models, seed=5, api_keys=[KEY]) as server:
        yield server


def client(
    srv: FakeProviderServer,
    http: HTTPClient,
    model: str = "embed",
    *,
    provider: ProviderName = "openai",
    clock: FakeClock | None = None,
    **fields: Any,
) -> ModelClient:
    cfg = ModelConfig.model_validate(srv.model_config(model, provider=provider, **fields))
    return ModelClient(cfg, http=http, clock=clock or FakeClock())


def close(a: list[float], b: list[float], *, tol: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------------------------- ModelClient


async def test_embed_returns_one_vector_per_text_in_order(srv: FakeProviderServer, http: HTTPClient) -> None:
    c = client(srv, http)
    assert c.supports_embeddings
    reply = await c.embed(TEXTS)
    assert len(reply.vectors) == len(TEXTS)
    for text, vector in zip(TEXTS, reply.vectors, strict=True):
        assert close(vector, fake_embedding(text), tol=1e-8)
    assert reply.dimensions == 256
    assert (reply.input_tokens, reply.estimated) == (sum(estimate_tokens(t) for t in TEXTS), False)
    assert reply.provider_model == "embed"
    assert reply.request_id is not None
    assert reply.request_id.startswith("req_")
    (rec,) = srv.requests
    assert (rec.method, rec.path, rec.api_key, rec.status) == ("POST", "/v1/embeddings", KEY, 200)
    assert rec.json == {"model": "embed", "input": TEXTS, "encoding_format": "float"}


async def test_embed_sizes_tokens_and_no_call_for_nothing(srv: FakeProviderServer, http: HTTPClient) -> None:
    large = await client(srv, http, "embed-large").embed(TEXTS[:2])
    assert large.dimensions == 1536
    short = await client(srv, http, "embed-large").embed(TEXTS[:2], dimensions=64)
    assert short.dimensions == 64
    assert close(short.vectors[1], fake_embedding(TEXTS[1], dim=64), tol=1e-8)
    assert srv.requests[-1].json["dimensions"] == 64
    with pytest.raises(BadRequestError, match="dimensions") as info:
        await client(srv, http).embed(TEXTS[:1], dimensions=512)
    assert info.value.status_code == 400

    estimated = await client(srv, http, "no-usage").embed(TEXTS)
    assert (estimated.input_tokens, estimated.estimated) == (sum(estimate_tokens(t) for t in TEXTS), True)

    calls = srv.calls()
    empty = await client(srv, http).embed([])
    assert (empty.vectors, empty.input_tokens) == ([], 0)
    assert srv.calls() == calls


async def test_embed_texts_batches_through_the_server(srv: FakeProviderServer, http: HTTPClient) -> None:
    texts = [f"{t} ({i})" for i in range(3) for t in TEXTS]  # 15 texts
    vectors, tokens = await embed_texts(client(srv, http), texts, batch_size=4, concurrency=2)
    assert srv.calls(path="/v1/embeddings") == 4
    assert sorted(len(r.json["input"]) for r in srv.requests) == [3, 4, 4, 4]
    assert all(close(v, fake_embedding(t), tol=1e-8) for v, t in zip(vectors, texts, strict=True))
    assert tokens == sum(estimate_tokens(t) for t in texts)


async def test_a_rejected_key_is_dropped_from_rotation(srv: FakeProviderServer, http: HTTPClient) -> None:
    c = client(srv, http, api_keys=["bad-key", KEY])
    with pytest.raises(AuthenticationError) as info:
        await c.embed(TEXTS[:1])
    assert info.value.status_code == 401
    assert "bad-key" not in str(info.value)
    await c.embed(TEXTS[:1])
    await c.embed(TEXTS[:1])
    assert [(r.api_key, r.status) for r in srv.requests] == [("bad-key", 401), (KEY, 200), (KEY, 200)]


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        pytest.param("500", ProviderServerError, 500, id="500"),
        pytest.param("503", ProviderServerError, 503, id="503"),
        pytest.param("429", RateLimited, 429, id="429"),
        pytest.param("quota", QuotaExhausted, 429, id="quota"),
        pytest.param("context_length", ContextLengthExceeded, 400, id="context_length"),
        pytest.param("mid_stream_error", ProviderServerError, 500, id="mid_stream_error"),
        pytest.param("malformed_json", MalformedResponse, 200, id="malformed_json"),
        pytest.param("empty", MalformedResponse, None, id="empty"),
        pytest.param("truncated", MalformedResponse, None, id="truncated"),
        pytest.param("truncated_stream", ProviderConnectionError, None, id="truncated_stream"),
        pytest.param("reset", ProviderConnectionError, None, id="reset"),
    ],
)
async def test_scripted_faults_map_to_typed_errors(
    srv: FakeProviderServer, http: HTTPClient, fault: FaultKind, error: type[ProviderError], status: int | None
) -> None:
    clock = FakeClock()
    c = client(srv, http, clock=clock)
    srv.script("embed", [fault])
    with pytest.raises(error) as info:
        await c.embed(TEXTS[:2])
    assert (info.value.provider, info.value.model) == ("openai", "embed")
    if status is not None:
        assert info.value.status_code == status
    if isinstance(info.value, RateLimited):
        # the only key cools down for the Retry-After the server sent, as after a chat 429
        assert info.value.retry_after == 0.25
        with pytest.raises(RateLimited, match="cooling down"):
            await c.embed(TEXTS[:2])
        clock.advance(0.25)
    assert srv.requests[-1].fault == fault
    # the script is used up: the next call succeeds
    assert len((await c.embed(TEXTS[:2])).vectors) == 2


async def test_a_long_input_and_a_silent_server(srv: FakeProviderServer, http: HTTPClient) -> None:
    c = client(srv, http)
    with pytest.raises(ContextLengthExceeded):
        await c.embed(["word " * 100])  # over the model's 50-token window
    srv.script("embed", ["timeout"])
    with pytest.raises(ProviderTimeout):
        await c.embed(TEXTS[:1], timeout=0.2)
    with pytest.raises(BadRequestError, match="does not exist") as info:
        await client(srv, http, model_id="nope").embed(TEXTS[:1])
    assert info.value.status_code == 404


@pytest.mark.parametrize(
    ("provider", "fields", "named"),
    [
        pytest.param("anthropic", {}, "provider anthropic", id="anthropic"),
        pytest.param("ollama", {"ollama_api": "native"}, "provider ollama, api: native", id="ollama-native"),
    ],
)
async def test_providers_without_embeddings_are_refused_before_any_call(
    srv: FakeProviderServer, http: HTTPClient, provider: ProviderName, fields: dict[str, Any], named: str
) -> None:
    c = client(srv, http, provider=provider, alias="chatty", **fields)
    assert not c.supports_embeddings
    with pytest.raises(ConfigError) as info:
        await c.embed(TEXTS)
    message = str(info.value)
    assert f"model 'chatty' ({named}) has no embeddings endpoint" in message
    assert "openai, openrouter" in message
    assert "ollama with `api: openai`" in message
    assert srv.calls() == 0


@pytest.mark.parametrize(
    ("provider", "fields", "path"),
    [
        pytest.param("ollama", {"ollama_api": "openai"}, "/v1/embeddings", id="ollama-v1"),
        pytest.param("openrouter", {}, "/api/v1/embeddings", id="openrouter"),
        pytest.param("google", {}, "/v1/embeddings", id="google"),
        pytest.param("openai_compatible", {}, "/v1/embeddings", id="openai-compatible"),
    ],
)
async def test_the_openai_family_embeds(
    srv: FakeProviderServer, http: HTTPClient, provider: ProviderName, fields: dict[str, Any], path: str
) -> None:
    c = client(srv, http, provider=provider, **fields)
    reply = await c.embed(TEXTS[:2])
    assert close(reply.vectors[0], fake_embedding(TEXTS[0]), tol=1e-8)
    assert srv.requests[-1].path == path


# ------------------------------------------------------------------------------------------ the openai SDK


@pytest.fixture
async def sdk(srv: FakeProviderServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=srv.openai_url, api_key=KEY, max_retries=0, timeout=5.0)
    try:
        yield client
    finally:
        await client.close()


async def test_sdk_embeddings_base64_float_and_single_input(srv: FakeProviderServer, sdk: openai.AsyncOpenAI) -> None:
    # the SDK asks for base64 unless told otherwise, and decodes it to floats itself
    result = await sdk.embeddings.create(model="embed", input=TEXTS)
    assert srv.requests[-1].json["encoding_format"] == "base64"
    assert [d.index for d in result.data] == list(range(len(TEXTS)))
    for text, item in zip(TEXTS, result.data, strict=True):
        assert close(item.embedding, fake_embedding(text), tol=1e-6)  # float32 on the wire
    assert result.model == "embed"
    assert result.usage.prompt_tokens == result.usage.total_tokens == sum(estimate_tokens(t) for t in TEXTS)

    floats = await sdk.embeddings.create(model="embed", input=TEXTS[1], encoding_format="float", dimensions=32)
    (item,) = floats.data
    assert close(item.embedding, fake_embedding(TEXTS[1], dim=32), tol=1e-8)
    assert math.fsum(x * x for x in item.embedding) == pytest.approx(1.0, abs=1e-6)

    tokens = await sdk.embeddings.create(model="embed", input=[[101, 2023], [101]], encoding_format="float")
    assert len(tokens.data) == 2


async def test_sdk_embeddings_errors(srv: FakeProviderServer, sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.embeddings.create(model="nope", input="x")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="input"):
        await sdk.embeddings.create(model="embed", input=["ok", ""])
    srv.script("embed", ["500", "429"])
    with pytest.raises(openai.InternalServerError):
        await sdk.embeddings.create(model="embed", input="x")
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.embeddings.create(model="embed", input="x")
    assert limited.value.response.headers["retry-after-ms"] == "250"
    stranger = openai.AsyncOpenAI(base_url=srv.openai_url, api_key="stranger", max_retries=0, timeout=5.0)
    try:
        with pytest.raises(openai.AuthenticationError):
            await stranger.embeddings.create(model="embed", input="x")
    finally:
        await stranger.close()


async def test_sync_sdk_embeddings_in_a_thread(srv: FakeProviderServer) -> None:
    def run() -> list[list[float]]:
        with openai.OpenAI(base_url=srv.openai_url, api_key=KEY, max_retries=0, timeout=5.0) as sync:
            result = sync.embeddings.create(model="embed-large", input=TEXTS[:2])
            return [d.embedding for d in result.data]

    vectors = await anyio.to_thread.run_sync(run)
    assert close(vectors[0], fake_embedding(TEXTS[0], dim=1536), tol=1e-6)
    assert close(vectors[1], fake_embedding(TEXTS[1], dim=1536), tol=1e-6)


# ---------------------------------------------------------------------------- training on the bundled set


async def test_train_index_on_the_bundled_holdout_through_the_fleet(http: HTTPClient, tmp_path: Path) -> None:
    data = load_bundled_eval_data()
    async with FakeProviderServer(models=default_fleet(speed=0.0, faults=False), seed=0) as fleet:
        c = client(fleet, http, "fake-cheap")
        index, report = await train_index(c, data, eval_split=0.2, seed=0)
        print("bundled hold-out, kNN over the fake fleet's embeddings:", report.to_dict())
        assert fleet.calls(path="/v1/embeddings") == math.ceil(len(data) / 128)
        assert report.skipped == 0
        assert (report.train_size + report.eval_size, report.eval_size) == (len(data), 72)
        assert report.input_tokens == sum(estimate_tokens(e.prompt) for e in data)
        # chance is 1/3 for complexity, 1/4 for category and 1/12 for both (the cells are balanced)
        # (seed 0 measured 0.78 / 0.36 / 0.29: hashed bags of words in 11 languages tell length apart far
        # better than topic)
        assert report.accuracy["complexity"] >= 0.65
        assert report.accuracy["category"] >= 0.3
        assert report.accuracy["complexity+category"] >= 0.22

        index.save(tmp_path / "custom")
        loaded = EmbeddingIndex.load(tmp_path / "custom", model_id=c.model_id)
        assert loaded.metadata["train_report"] == report.to_dict()
        (query,), _ = await embed_texts(c, ["What is the capital of Mongolia?"])
        assert loaded.predict(query) == index.predict(query)
