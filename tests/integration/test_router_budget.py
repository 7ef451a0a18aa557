"""The daily budget through the Router: never overshoots under concurrency, survives restarts, rolls over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncrouter import BudgetExceeded, Response, Router
from asyncrouter.testing import FakeClock, FakeModel, FakeProviderServer

CIN, COUT = 0.001, 0.002  # per 1k tokens


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("cheap", reply_words=(5, 40), cost_per_1k_input=CIN, cost_per_1k_output=COUT),
        FakeModel("dear", reply_words=(5, 40), cost_per_1k_input=CIN * 20, cost_per_1k_output=COUT * 20),
    ]
    async with FakeProviderServer(models=models, seed=11) as srv:
        yield srv


def config(srv: FakeProviderServer, tmp_path: Path, **budget: Any) -> dict[str, Any]:
    cfg = srv.config_dict(
        default_model="cheap",
        tracker={"path": str(tmp_path / "track.db")},
        budget={"daily_limit_usd": 0.05, **budget},
        retries={"max_attempts": 1},
    )
    for m in cfg["models"]:
        m["timeout"] = 60.0
    return cfg


async def hammer(router: Router, n: int) -> tuple[list[Response], list[BaseException]]:
    results = await router.aroute_many(["hi there"] * n, concurrency=n, model="cheap", max_tokens=64)
    ok = [r for r in results if isinstance(r, Response)]
    errors = [r for r in results if isinstance(r, BaseException)]
    return ok, errors


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_ten_thousand_concurrent_requests_never_overshoot(
    fleet: FakeProviderServer, tmp_path: Path, backend: str
) -> None:
    async with Router.from_dict(config(fleet, tmp_path, backend=backend)) as router:
        ok, errors = await hammer(router, 10_000)
        st = router.budget.status()
        stats = await router.stats()
    assert len(ok) + len(errors) == 10_000
    assert ok
    assert errors
    assert all(isinstance(e, BudgetExceeded) for e in errors), {type(e).__name__ for e in errors}
    spent = sum(r.meta.estimated_cost_usd for r in ok)
    assert st.spent == pytest.approx(spent, abs=1e-9)
    assert st.spent <= 0.05 + 1e-9
    assert st.reserved == 0
    # every request, granted or refused, is one tracker row
    assert stats.requests == 10_000
    assert stats.cost_usd == pytest.approx(spent, abs=1e-9)


async def test_redis_backend_shares_the_cap(fleet: FakeProviderServer, tmp_path: Path, redis_url: str) -> None:
    cfg = config(fleet, tmp_path, backend="redis", redis_url=redis_url)
    async with Router.from_dict(cfg) as a, Router.from_dict(cfg) as b:
        ok_a, _ = await hammer(a, 1000)
        ok_b, _ = await hammer(b, 1000)
        spent = sum(r.meta.estimated_cost_usd for r in [*ok_a, *ok_b])
        st = await b.budget.refresh()
    assert ok_a
    assert st.spent == pytest.approx(spent, abs=1e-9)
    assert st.spent <= 0.05 + 1e-9
    assert st.reserved == 0


async def test_exhausted_rejects_before_any_call(fleet: FakeProviderServer, tmp_path: Path) -> None:
    async with Router.from_dict(config(fleet, tmp_path, daily_limit_usd=0.0005)) as router:
        while True:
            try:
                await router.aroute("hi", model="cheap", max_tokens=16)
            except BudgetExceeded:
                break
        calls = fleet.calls()
        with pytest.raises(BudgetExceeded, match="budget"):
            await router.aroute("hi", model="cheap", max_tokens=16)
        assert fleet.calls() == calls
        assert router.budget.status().state == "exhausted"


async def test_sqlite_backend_rebuilds_spend_after_restart(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = config(fleet, tmp_path, backend="sqlite", daily_limit_usd=10.0)
    clock = FakeClock()
    async with Router.from_dict(cfg, clock=clock) as router:
        for _ in range(5):
            await router.aroute("hello", model="dear")
        spent = router.budget.status().spent
    assert spent > 0
    async with Router.from_dict(cfg, clock=clock) as again:
        assert again.budget.status().spent == pytest.approx(spent, abs=1e-9)
    clock.advance(86_400)  # the next day starts from zero
    async with Router.from_dict(cfg, clock=clock) as tomorrow:
        assert tomorrow.budget.status().spent == 0


async def test_day_rolls_over_on_the_injected_clock(fleet: FakeProviderServer, tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = config(fleet, tmp_path, daily_limit_usd=0.001, timezone="America/New_York")
    async with Router.from_dict(cfg, clock=clock) as router:
        with pytest.raises(BudgetExceeded):
            for _ in range(100):
                await router.aroute("hi", model="dear", max_tokens=8)
        assert router.budget.status().state != "normal"
        assert router.budget.status().spent > 0
        clock.advance(86_400)
        assert router.budget.status().spent == 0
        assert router.budget.status().state == "normal"
        r = await router.aroute("hi", model="cheap", max_tokens=8)
        assert r.content
        assert router.budget.status().spent == pytest.approx(r.meta.estimated_cost_usd)


async def test_downgrade_state_lowers_the_tier(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = config(fleet, tmp_path, daily_limit_usd=1.0, warn_at=0.0, downgrade_at=0.0)
    cfg["models"][1]["tags"] = ["strong"]
    cfg["models"][0]["tags"] = ["cheap"]
    async with Router.from_dict(cfg) as router:
        await router.aroute("warm up", model="cheap")
        assert router.budget.status().state == "downgrade"
        d = router.classify("Design a distributed database with consensus, sharding and failover, in detail")
    assert "budget" in d.reason
