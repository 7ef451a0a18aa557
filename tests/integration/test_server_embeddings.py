"""`POST /v1/embeddings` on the OpenAI-compatible server and `Router.aembed`, with the official openai client.

Embeddings are not routed: ``model`` names an alias. The call is charged to the budget, counted by the
breakers and tracked; the official SDK asks for base64 vectors, which the server encodes as it expects.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest

from asyncrouter import CircuitOpen, ConfigError, ProviderServerError, Router
from asyncrouter.server import create_app
from asyncrouter.testing import FakeModel, FakeProviderServer
from loopback import serve_app

TEXTS = ["the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew eleven percent"]


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("embed", cost_per_1k_input=0.02, cost_per_1k_output=0.0, embedding_dim=64),
        FakeModel("chat", cost_per_1k_input=0.001, cost_per_1k_output=0.002),
    ]
    async with FakeProviderServer(models=models, seed=4) as srv:
        yield srv


def config(srv: FakeProviderServer, tmp_path: Path, **top: Any) -> dict[str, Any]:
    cfg = srv.config_dict(default_model="chat", tracker={"path": str(tmp_path / "t.db")}, **top)
    cfg["models"].append(
        {
            "name": "claude",
            "model_id": "claude",
            "provider": "anthropic",
            "api_keys": ["sk-x"],
            "base_url": srv.url,
            "cost_per_1k_input": 0.003,
            "cost_per_1k_output": 0.015,
        }
    )
    return cfg


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


async def test_the_official_client_gets_embeddings_charged_and_tracked(
    fleet: FakeProviderServer, tmp_path: Path
) -> None:
    async with Router.from_dict(config(fleet, tmp_path, budget={"daily_limit_usd": 1.0})) as router:
        async with serve_app(create_app(router)) as port:
            client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
            try:
                reply = await client.embeddings.create(model="embed", input=TEXTS)  # the SDK asks for base64
                as_floats = await client.embeddings.create(model="embed", input=TEXTS[0], encoding_format="float")
            finally:
                await client.close()
            vectors = [d.embedding for d in reply.data]
            assert [d.index for d in reply.data] == [0, 1, 2]
            assert all(len(v) == 64 for v in vectors)
            assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]), "near texts are near"
            assert as_floats.data[0].embedding == pytest.approx(vectors[0], rel=1e-6)
            assert reply.model == "embed"
            assert reply.usage.prompt_tokens > 0
            spent = router.budget.status().spent
            assert spent == pytest.approx((reply.usage.prompt_tokens + as_floats.usage.prompt_tokens) / 1000 * 0.02)
            assert router.budget.status().reserved == 0
            assert router.tracker is not None
            await router.tracker.flush()
            logs = await router.logs(last_n=5)
            assert [r.task_type for r in logs] == ["embeddings", "embeddings"]
            assert {r.model for r in logs} == {"embed"}
            assert sum(r.cost_usd for r in logs) == pytest.approx(spent)


async def test_sync_client_and_errors(fleet: FakeProviderServer, tmp_path: Path) -> None:
    async with Router.from_dict(config(fleet, tmp_path)) as router:
        async with serve_app(create_app(router)) as port:
            base = f"http://127.0.0.1:{port}/v1"
            result: dict[str, Any] = {}

            def sync_calls() -> None:
                with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as client:
                    result["dims"] = len(
                        client.embeddings.create(model="embed", input="hello", dimensions=16).data[0].embedding
                    )
                    for model, exc in (("auto", openai.NotFoundError), ("claude", openai.BadRequestError)):
                        try:
                            client.embeddings.create(model=model, input="hello")
                        except exc as e:
                            result[model] = e.message if hasattr(e, "message") else str(e)
                    try:
                        client.embeddings.create(model="embed", input=[])
                    except openai.BadRequestError as e:
                        result["empty"] = str(e)

            await anyio.to_thread.run_sync(sync_calls)
    assert result["dims"] == 16
    assert "embeddings take a model alias" in result["auto"]
    assert "no embeddings endpoint" in result["claude"]
    assert "input must be a string or a non-empty list" in result["empty"]


async def test_aembed_counts_for_the_breakers_and_refuses_when_open(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = config(fleet, tmp_path, breakers={"model": {"fail_max": 2, "reset_timeout": 60}})
    fleet.script("embed", ["500", "500"])
    async with Router.from_dict(cfg) as router:
        for _ in range(2):
            with pytest.raises(ProviderServerError):
                await router.aembed("hello", model="embed")
        with pytest.raises(CircuitOpen):
            await router.aembed("hello", model="embed")
        with pytest.raises(ConfigError, match="unknown model"):
            await router.aembed("hello", model="nope")
        assert router.budget.status().reserved == 0
