"""Batch routing: aligned results, bounded memory, failures in place, cancellation that leaves nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncrouter import AllProvidersFailed, Response, Router
from asyncrouter.testing import FakeModel, FakeProviderServer


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [FakeModel("m", reply_words=10, cost_per_1k_input=0.001, cost_per_1k_output=0.002)]
    async with FakeProviderServer(models=models, seed=9) as srv:
        yield srv


def config(srv: FakeProviderServer, tmp_path: Path, **top: Any) -> dict[str, Any]:
    cfg = srv.config_dict(
        default_model="m",
        tracker={"path": str(tmp_path / "b.db")},
        budget={"daily_limit_usd": 100.0},
        retries={"max_attempts": 1},
        breakers={"enabled": False},
        **top,
    )
    cfg["models"][0]["timeout"] = 30.0
    return cfg


async def test_results_align_with_input_and_failures_stay_in_place(fleet: FakeProviderServer, tmp_path: Path) -> None:
    fleet.set_faults("m", {"500": 0.25})
    items: list[Any] = [f"prompt {i}" for i in range(200)]
    items[7] = {"prompt": "with params", "max_tokens": 5}
    items[9] = {"messages": [{"role": "user", "content": "chat form"}]}
    progress: list[tuple[int, int | None]] = []
    async with Router.from_dict(config(fleet, tmp_path)) as router:
        results = await router.aroute_many(items, concurrency=32, on_progress=lambda d, t: progress.append((d, t)))
        stats = await router.stats()
    assert len(results) == 200
    failures = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failures
    assert all(isinstance(results[i], AllProvidersFailed) for i in failures)
    for i, r in enumerate(results):
        if isinstance(r, Response):
            sent = next(
                x
                for x in fleet.requests
                if x.json
                and x.json["messages"][-1]["content"]
                == ("with params" if i == 7 else "chat form" if i == 9 else f"prompt {i}")
            )
            assert sent.status == 200
    assert progress[-1] == (200, 200)
    assert [d for d, _ in progress] == list(range(1, 201))
    assert stats.requests == 200
    assert stats.errors == len(failures)


async def test_first_failure_raises_when_asked(fleet: FakeProviderServer, tmp_path: Path) -> None:
    fleet.script("m", [None, "500"])
    async with Router.from_dict(config(fleet, tmp_path)) as router:
        with pytest.raises(ExceptionGroup) as info:
            await router.aroute_many(["a", "b", "c", "d"], concurrency=1, return_exceptions=False)
    assert info.group_contains(AllProvidersFailed)


async def test_astream_many_is_lazy_and_bounded(fleet: FakeProviderServer, tmp_path: Path) -> None:
    pulled = 0

    def prompts() -> Iterator[str]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield f"p{i}"

    seen = 0
    async with Router.from_dict(config(fleet, tmp_path)) as router:
        async with router.astream_many(prompts(), concurrency=8) as results:
            async for _index, result in results:
                assert isinstance(result, Response)
                seen += 1
                # the input is pulled only as fast as results are consumed
                assert pulled <= seen + 8 + 8 + 1
                if seen == 100:
                    break
    assert pulled < 200


async def test_cancelling_a_batch_cancels_calls_releases_budget_and_tracks_everything(
    fleet: FakeProviderServer, tmp_path: Path
) -> None:
    fleet.set_behaviour("m", latency=0.05, latency_jitter=0.04)
    fleet.set_faults("m", {"503": 0.2})
    done: list[int] = []
    async with Router.from_dict(config(fleet, tmp_path)) as router:
        with anyio.move_on_after(0.6):
            await router.aroute_many(
                [f"q{i}" for i in range(2000)], concurrency=64, on_progress=lambda d, t: done.append(d)
            )
        assert done  # some finished
        assert len(done) < 2000  # and the batch really was cut short
        st = router.budget.status()
        assert st.reserved == 0
        stats = await router.stats()
        logs = await router.logs(last_n=5000)
    sent = fleet.calls(model="m")
    statuses = {x.status for x in logs}
    assert statuses <= {"ok", "error", "cancelled"}
    assert "cancelled" in statuses
    # every request that started is a row: the finished ones (delivered to the caller or still queued for it
    # when the batch was cancelled) plus the in-flight ones that were cancelled
    assert stats.ok + stats.errors >= len(done)
    assert stats.requests == stats.ok + stats.errors + stats.cancelled
    assert stats.requests >= sent  # nothing reached the provider without a record
    assert stats.tracker.dropped == 0
    assert st.spent == pytest.approx(stats.cost_usd, abs=1e-9)
