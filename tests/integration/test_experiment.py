"""A/B experiments: a deterministic split by prompt, per-variant counts, and both routers' lifecycles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asyncrouter import AllProvidersFailed, Experiment, Router
from asyncrouter.testing import FakeModel, FakeProviderServer


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("cheap", reply_words=30, cost_per_1k_input=0.0001, cost_per_1k_output=0.0002),
        FakeModel("strong", reply_words=30, cost_per_1k_input=0.005, cost_per_1k_output=0.015),
    ]
    async with FakeProviderServer(models=models, seed=11) as srv:
        yield srv


def router(srv: FakeProviderServer, model: str) -> Router:
    cfg: dict[str, Any] = srv.config_dict(default_model=model, models=[model], tracker={"path": None})
    return Router.from_dict(cfg)


PROMPTS = [f"Tell me about topic number {i}, briefly." for i in range(400)]


async def test_the_split_is_deterministic_and_near_its_share(fleet: FakeProviderServer) -> None:
    exp = Experiment(router(fleet, "cheap"), router(fleet, "strong"), split=0.25, name="cost-test")
    variants = [exp.variant_of(p) for p in PROMPTS]
    assert 0.18 < variants.count("treatment") / len(PROMPTS) < 0.32
    # the same prompt meets the same variant in another experiment object of the same name (another process)
    again = Experiment(router(fleet, "cheap"), router(fleet, "strong"), split=0.25, name="cost-test")
    assert [again.variant_of(p) for p in PROMPTS] == variants
    # a chat splits on its last user turn
    assert (
        exp.variant_of(messages=[{"role": "system", "content": "x"}, {"role": "user", "content": PROMPTS[7]}])
        == (variants[7])
    )
    # another name salts the hash: a different split of the same prompts
    other = Experiment(router(fleet, "cheap"), router(fleet, "strong"), split=0.25, name="another")
    assert [other.variant_of(p) for p in PROMPTS] != variants


async def test_requests_go_where_the_split_says_and_are_counted(fleet: FakeProviderServer) -> None:
    async with Experiment(router(fleet, "cheap"), router(fleet, "strong"), split=0.5, name="ab") as exp:
        expected = {p: exp.variant_of(p) for p in PROMPTS[:60]}
        results: dict[str, str] = {}

        async def one(p: str) -> None:
            results[p] = (await exp.aroute(p)).meta.model

        async with anyio.create_task_group() as tg:
            for p in PROMPTS[:60]:
                tg.start_soon(one, p)
        status = exp.status()
    assert all(results[p] == ("strong" if v == "treatment" else "cheap") for p, v in expected.items())
    n_treat = list(expected.values()).count("treatment")
    assert status.treatment.requests == n_treat
    assert status.control.requests == 60 - n_treat
    assert status.control.errors == status.treatment.errors == 0
    assert status.treatment.avg_cost_usd > 10 * status.control.avg_cost_usd
    ratios = status.ratios()
    assert ratios["avg_cost_usd"] is not None
    assert ratios["avg_cost_usd"] > 10
    assert status.to_dict()["treatment"]["requests"] == n_treat
    assert len(status.control.latencies_ms) == status.control.requests


async def test_errors_are_counted_per_variant_and_stop_sends_all_to_control(fleet: FakeProviderServer) -> None:
    strong = router(fleet, "strong")
    async with Experiment(router(fleet, "cheap"), strong, split=1.0, name="all-treatment") as exp:
        fleet.script("strong", ["500", "500", "500"])
        with pytest.raises(AllProvidersFailed):
            await exp.aroute("hello there")
        assert exp.status().treatment.errors == 1
        assert exp.status().treatment.error_rate == 1.0
        exp.stop()
        assert exp.variant_of("hello there") == "control"
        assert (await exp.aroute("hello there")).meta.model == "cheap"
        status = exp.status()
    assert not status.running
    assert (status.control.requests, status.treatment.requests) == (1, 1)
    assert not strong.is_open  # the experiment closed the routers it opened


async def test_a_cancelled_request_is_not_an_outcome(fleet: FakeProviderServer) -> None:
    fleet.set_behaviour("cheap", latency=5.0)
    async with Experiment(router(fleet, "cheap"), router(fleet, "strong"), split=0.0, name="c") as exp:
        with anyio.move_on_after(0.2):
            await exp.aroute("slow one")
        assert exp.status().control.requests == 0


async def test_bad_arguments_are_refused(fleet: FakeProviderServer) -> None:
    a = router(fleet, "cheap")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Experiment(a, router(fleet, "strong"), split=1.5)
    with pytest.raises(ValueError, match="two routers"):
        Experiment(a, a)
