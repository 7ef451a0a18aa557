"""The cascade under faults, breakers, deadlines, cancellation and concurrency, against the fake fleet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asyncrouter import (
    AllProvidersFailed,
    ProviderServerError,
    ProviderTimeout,
    QualityGateFailed,
    Router,
    StreamInterrupted,
)
from asyncrouter._quality import GateInput
from asyncrouter.testing import FakeClock, FakeProviderServer, default_fleet

CODE_PROMPT = "Write a Python function that merges two sorted lists and explain its complexity"


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(models=default_fleet(speed=0, faults=False), seed=3) as srv:
        srv.set_behaviour("fake-cheap", hedge_rate=0.0, refusal_rate=0.0)
        srv.set_behaviour("fake-medium", hedge_rate=0.0)
        yield srv


def config(srv: FakeProviderServer, **top: Any) -> dict[str, Any]:
    top.setdefault("default_model", "fake-cheap")
    top.setdefault("retries", {"max_attempts": 1})
    cfg = srv.config_dict(**top)
    for m in cfg["models"]:
        m["timeout"] = 2.0
    return cfg


def chain_config(srv: FakeProviderServer, **top: Any) -> dict[str, Any]:
    """cheap -> medium -> strong as explicit fallbacks of the cheap model (pinned requests use them on errors)."""
    cfg = config(srv, **top)
    cfg["models"][0]["fallbacks"] = ["fake-medium", "fake-strong"]
    return cfg


async def test_cheapest_first_then_escalates_on_a_failed_gate(fleet: FakeProviderServer) -> None:
    fleet.set_behaviour("fake-cheap", hedge_rate=1.0)
    async with Router.from_dict(config(fleet)) as router:
        r = await router.aroute("What is the capital of France?", model="auto")
    outcomes = [(a.model, a.outcome) for a in r.meta.attempts]
    assert outcomes[0] == ("fake-cheap", "gate_failed")
    assert "hedging" in r.meta.attempts[0].reason
    assert outcomes[-1][1] == "ok"
    assert r.meta.model == outcomes[-1][0] != "fake-cheap"
    # the cascade never under-reports: every attempt's tokens and cost are summed
    assert r.meta.input_tokens == sum(a.input_tokens for a in r.meta.attempts)
    assert r.meta.output_tokens == sum(a.output_tokens for a in r.meta.attempts)
    assert r.meta.estimated_cost_usd == pytest.approx(sum(a.cost_usd for a in r.meta.attempts))
    assert r.meta.attempts[0].cost_usd > 0
    assert r.meta.quality_passed
    assert r.meta.escalations == 1


async def test_every_gate_fails_best_reply_is_returned_and_marked(fleet: FakeProviderServer) -> None:
    for name in ("fake-cheap", "fake-medium", "fake-strong"):
        fleet.set_behaviour(name, refusal_rate=1.0 if name != "fake-strong" else 0.0, hedge_rate=1.0)
    async with Router.from_dict(config(fleet)) as router:
        r = await router.aroute("Write a long story about a lighthouse keeper and a storm", model="auto")
    assert not r.meta.quality_passed
    assert all(a.outcome == "gate_failed" for a in r.meta.attempts)
    best = max(r.meta.attempts, key=lambda a: a.gate_score or 0)
    assert r.meta.model == best.model  # the hedging reply beats the refusals
    cfg = config(fleet, quality={"on_all_failed": "raise"})
    async with Router.from_dict(cfg) as router:
        with pytest.raises(QualityGateFailed) as info:
            await router.aroute("Write a long story about a lighthouse keeper and a storm")
    assert len(info.value.attempts) == len(r.meta.attempts)


async def test_every_model_errors_one_error_holds_all(fleet: FakeProviderServer) -> None:
    for name in ("fake-cheap", "fake-medium", "fake-strong"):
        fleet.set_faults(name, {"500": 1.0})
    async with Router.from_dict(chain_config(fleet)) as router:
        with pytest.raises(AllProvidersFailed) as info:
            await router.aroute("hello", model="fake-cheap")
    assert [type(e) for e in info.value.errors] == [ProviderServerError] * 3
    assert {e.model for e in info.value.errors if isinstance(e, ProviderServerError)} == {
        "fake-cheap",
        "fake-medium",
        "fake-strong",
    }


async def test_context_length_escalates_to_a_larger_window(fleet: FakeProviderServer) -> None:
    fleet.script("fake-cheap", ["context_length"])
    async with Router.from_dict(chain_config(fleet)) as router:
        r = await router.aroute("summarise this", model="fake-cheap")
    assert [a.outcome for a in r.meta.attempts] == ["error", "ok"]
    assert r.meta.attempts[0].error_type == "ContextLengthExceeded"
    assert fleet.calls(model="fake-cheap") == 1  # never retried


async def test_custom_async_gate_escalates(fleet: FakeProviderServer) -> None:
    seen: list[str] = []

    async def must_mention_python(reply: GateInput) -> str | None:
        await anyio.lowlevel.checkpoint()
        seen.append(reply.content)
        return None if "python" in reply.content.lower() else "reply never mentions Python"

    fleet.set_behaviour("fake-cheap", reply="A plain answer without the keyword, long enough to pass length checks.")
    fleet.set_behaviour("fake-medium", reply="In Python you would write a generator; here is how it works in detail.")
    async with Router.from_dict(chain_config(fleet), quality_gates=[must_mention_python]) as router:
        r = await router.aroute("How do I write a generator?", model="auto")
    assert r.meta.attempts[0].outcome == "gate_failed"
    assert "reply never mentions Python" in r.meta.attempts[0].reason
    assert "Python" in r.content
    assert len(seen) == 2


async def test_breaker_opens_skips_and_half_open_admits_exactly_one_trial(fleet: FakeProviderServer) -> None:
    clock = FakeClock()
    cfg = chain_config(fleet, breakers={"model": {"fail_max": 3, "reset_timeout": 30}, "provider": {"fail_max": 1000}})
    fleet.set_faults("fake-cheap", {"503": 1.0})
    events: list[tuple[str, str]] = []
    async with Router.from_dict(cfg, clock=clock) as router:
        router.breakers.subscribe(lambda e: events.append((e.name, e.new_state)))
        for _ in range(3):
            r = await router.aroute("hi", model="fake-cheap")
            assert r.meta.model == "fake-medium"
        assert router.breakers.status()["fake-cheap"].state == "open"
        assert ("fake-cheap", "open") in events
        before = fleet.calls(model="fake-cheap")
        r = await router.aroute("hi", model="fake-cheap")
        assert fleet.calls(model="fake-cheap") == before  # skipped, not called
        assert r.meta.attempts[0].outcome == "skipped"
        assert "breaker" in r.meta.attempts[0].reason
        assert "breaker" in r.meta.routing_reason
        assert r.meta.model == "fake-medium"
        # half-open: 100 concurrent requests, exactly one trial reaches the upstream
        clock.advance(31)
        fleet.set_faults("fake-cheap", {})
        fleet.set_behaviour("fake-cheap", latency=0.2)
        results: list[Any] = []

        async def one() -> None:
            results.append(await router.aroute("hi", model="fake-cheap"))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
        assert fleet.calls(model="fake-cheap") == before + 1
        assert sum(1 for r in results if r.meta.model == "fake-cheap") == 1
        assert len(results) == 100
        assert router.breakers.status()["fake-cheap"].state == "closed"
        assert events[-1] == ("fake-cheap", "closed")


async def test_rejections_and_gate_failures_never_open_a_breaker(fleet: FakeProviderServer) -> None:
    cfg = chain_config(fleet, breakers={"model": {"fail_max": 2, "reset_timeout": 30}})
    async with Router.from_dict(cfg) as router:
        fleet.set_faults("fake-cheap", {"400": 1.0})
        for _ in range(5):
            await router.aroute("hi", model="fake-cheap")
        fleet.set_faults("fake-cheap", {})
        fleet.set_behaviour("fake-cheap", refusal_rate=1.0)
        for _ in range(5):
            await router.aroute("Write an essay about rivers", model="auto")
        assert router.breakers.status()["fake-cheap"].state == "closed"


async def test_provider_breaker_skips_every_model_it_hosts(fleet: FakeProviderServer) -> None:
    clock = FakeClock()
    cfg = config(fleet, breakers={"model": {"fail_max": 100}, "provider": {"fail_max": 4, "reset_timeout": 60}})
    for m in cfg["models"]:
        m["fallbacks"] = []
    for name in ("fake-cheap", "fake-medium", "fake-strong"):
        fleet.set_faults(name, {"502": 1.0})
    async with Router.from_dict(cfg, clock=clock) as router:
        for name in ("fake-cheap", "fake-medium", "fake-cheap", "fake-medium"):
            with pytest.raises(AllProvidersFailed):
                await router.aroute("hi", model=name)
        status = router.breakers.status()
        provider_states = {n: s.state for n, s in status.items() if s.kind == "provider"}
        assert list(provider_states.values()) == ["open"]
        calls = fleet.calls()
        d = router.classify("hi", model="fake-strong")
        assert d.chain == []
        assert any("provider" in reason for _, reason in d.skipped)
        with pytest.raises(Exception, match="breaker"):
            await router.aroute("hi", model="fake-strong")
        assert fleet.calls() == calls


async def test_thousand_concurrent_requests_with_a_flaky_first_model(fleet: FakeProviderServer) -> None:
    fleet.set_faults("fake-cheap", {"500": 0.3})
    cfg = chain_config(fleet, breakers={"model": {"fail_max": 10_000}, "provider": {"fail_max": 10_000}})
    for m in cfg["models"]:
        m["timeout"] = 60.0  # a shared 2-core machine must not turn load into timeouts here
    async with Router.from_dict(cfg) as router:
        results = await router.aroute_many([f"hello {i}" for i in range(1000)], concurrency=1000, model="fake-cheap")
        stats = await router.stats()
    assert len(results) == 1000
    assert all(not isinstance(r, BaseException) for r in results)
    ok = [r for r in results if not isinstance(r, BaseException)]
    rescued = sum(1 for r in ok if r.meta.attempts[0].outcome == "error")
    assert all(r.meta.attempts[-1].outcome == "ok" for r in ok)
    import collections

    kinds = collections.Counter(r.meta.attempts[0].error_type for r in ok if r.meta.attempts[0].outcome == "error")
    injected = sum(1 for x in fleet.requests if x.model == "fake-cheap" and x.fault == "500")
    assert kinds == {"ProviderServerError": injected}, kinds
    assert 200 < rescued < 400  # about 30% failed on the first model and were rescued by the fallback
    assert all(r.meta.model == "fake-medium" for r in ok if r.meta.attempts[0].outcome == "error")
    assert stats.requests == 1000


async def test_deadline_bounds_the_whole_request(fleet: FakeProviderServer) -> None:
    fleet.set_behaviour("fake-cheap", latency=5.0)
    async with Router.from_dict(chain_config(fleet)) as router:
        t0 = anyio.current_time()
        with pytest.raises(AllProvidersFailed) as info:
            await router.aroute("hi", model="fake-cheap", timeout=0.3)
        assert anyio.current_time() - t0 < 2.0
        assert isinstance(info.value.errors[0], ProviderTimeout)
        assert router.budget.status().reserved == 0
        # the caller's deadline does not count against the model's breaker
        assert router.breakers.status()["fake-cheap"].fail_count == 0


async def test_cancelling_aroute_cancels_the_call_and_leaves_nothing_behind(fleet: FakeProviderServer) -> None:
    fleet.set_behaviour("fake-cheap", latency=5.0)
    cfg = chain_config(fleet, budget={"daily_limit_usd": 10.0})
    async with Router.from_dict(cfg) as router:
        with anyio.move_on_after(0.2) as scope:
            await router.aroute("hi", model="fake-cheap")
        assert scope.cancelled_caught
        st = router.budget.status()
        assert st.reserved == 0
        assert st.spent == 0
        assert router.breakers.status()["fake-cheap"].state == "closed"
        assert router.breakers.status()["fake-cheap"].fail_count == 0
        logs = await router.logs(last_n=5)
    assert [x.status for x in logs] == ["cancelled"]


async def test_stream_falls_back_before_the_first_delta(fleet: FakeProviderServer) -> None:
    async with Router.from_dict(chain_config(fleet)) as router:
        fleet.script("fake-cheap", ["503"])
        async with router.astream("hi", model="fake-cheap") as s:
            text = "".join([d async for d in s])
        assert s.response is not None
        assert s.response.meta.model == "fake-medium"
        assert text == s.response.content
        assert [a.outcome for a in s.response.meta.attempts] == ["error", "ok"]


@pytest.mark.parametrize("fault", ["mid_stream_error", "truncated_stream"])
async def test_stream_error_after_first_delta_raises_and_never_replays(fleet: FakeProviderServer, fault: str) -> None:
    # spaced-out chunks, so deltas reach the caller before the fault (in one TCP read the error would arrive
    # before any text was delivered, and the stream would rightly fall back instead)
    fleet.set_behaviour("fake-cheap", token_interval=0.02)
    async with Router.from_dict(chain_config(fleet)) as router:
        fleet.script("fake-cheap", [fault])  # type: ignore[list-item]
        got: list[str] = []
        with pytest.raises((ProviderServerError, StreamInterrupted)):
            async with router.astream("hi", model="fake-cheap") as s:
                async for d in s:
                    got.append(d)
        assert got  # some text arrived before the failure
        assert fleet.calls(model="fake-medium") == 0  # no fallback replayed text after delivery
        assert router.budget.status().reserved == 0
        logs = await router.logs(last_n=1)
        assert logs[0].status == "error"


async def test_buffered_stream_runs_the_cascade(fleet: FakeProviderServer) -> None:
    fleet.set_behaviour("fake-cheap", hedge_rate=1.0)
    async with Router.from_dict(config(fleet)) as router:
        async with router.astream("Explain why the sky is blue", buffer=True) as s:
            text = "".join([d async for d in s])
    assert s.response is not None
    assert s.response.meta.attempts[0].outcome == "gate_failed"
    assert not text.startswith("I'm not sure")


async def test_a_stream_dropped_without_closing_releases_everything(fleet: FakeProviderServer) -> None:
    import gc

    fleet.set_behaviour("fake-cheap", token_interval=0.01, reply_words=80)
    cfg = chain_config(fleet, budget={"daily_limit_usd": 5.0})
    async with Router.from_dict(cfg) as router:
        stream = router.astream("Tell me a long story", model="fake-cheap")
        got = [await anext(stream) for _ in range(3)]
        assert len(got) == 3
        del stream  # no aclose(), no async with: the generator is finalised by the event loop
        gc.collect()
        for _ in range(50):
            await anyio.sleep(0.01)
            if router.budget.status().reserved == 0:
                break
        assert router.budget.status().reserved == 0
        logs = await router.logs(last_n=1)
    assert logs[0].status == "cancelled"
