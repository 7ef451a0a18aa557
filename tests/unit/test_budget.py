"""The daily budget in one process: arithmetic, states and events, the day boundary, the sqlite rebuild, and
10,000 racing tasks that must never push spent + reserved past the cap."""

from __future__ import annotations

import logging
import math
import random
import sys
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asyncrouter._budget import (
    Budget,
    BudgetBackend,
    BudgetEvent,
    LedgerTotals,
    MemoryBackend,
    SpentSource,
)
from asyncrouter._config import BudgetConfig
from asyncrouter._exceptions import BudgetExceeded, ConfigError, RouterError
from asyncrouter.testing import FakeClock

# 2026-01-01T00:00:00Z, FakeClock's default start.
T0 = 1_767_225_600.0


def cfg(**kw: Any) -> BudgetConfig:
    kw.setdefault("daily_limit_usd", 10.0)
    return BudgetConfig(**kw)


class RecordedSpend:
    """A SpentSource over a list of (timestamp, usd) records: the shape the tracker offers."""

    def __init__(self, records: list[tuple[float, float]]) -> None:
        self.records = records
        self.calls: list[tuple[float, float]] = []

    async def spent_between(self, start: float, end: float) -> float:
        self.calls.append((start, end))
        return sum(usd for ts, usd in self.records if start <= ts < end)


# ------------------------------------------------------------------------------------------------ arithmetic


async def test_reserve_settle_release_arithmetic(fake_clock: FakeClock) -> None:
    async with Budget(cfg(), clock=fake_clock) as budget:
        r1 = await budget.reserve(3.0, model="mini")
        assert (r1.amount_usd, r1.model, r1.day, r1.open) == (3.0, "mini", "2026-01-01", True)
        st = budget.status()
        assert (st.spent, st.reserved, st.remaining, st.limit) == (0.0, 3.0, 7.0, 10.0)

        await budget.settle(r1, 2.5)
        st = budget.status()
        assert (st.spent, st.reserved, st.remaining) == (2.5, 0.0, 7.5)
        assert not r1.open

        r2 = await budget.reserve(4.0)
        await budget.release(r2)
        assert (budget.status().spent, budget.status().reserved) == (2.5, 0.0)

        # exactly once: later settles and releases of the same reservation change nothing
        await budget.release(r2)
        await budget.settle(r2, 4.0)
        await budget.release(r1)
        await budget.settle(r1, 9.0)
        st = budget.status()
        assert (st.spent, st.reserved) == (2.5, 0.0)


async def test_reserve_up_to_the_limit_then_refuse(fake_clock: FakeClock) -> None:
    async with Budget(cfg(), clock=fake_clock) as budget:
        await budget.settle(await budget.reserve(2.0), 2.0)
        held = await budget.reserve(8.0)  # spent 2 + reserved 8 == limit: allowed
        with pytest.raises(BudgetExceeded) as info:
            await budget.reserve(0.01, model="big")
        err = info.value
        assert (err.spent, err.reserved, err.limit) == (2.0, 8.0, 10.0)
        assert "big" in str(err)
        assert "10.00 USD limit" in str(err)
        assert "2026-01-01" in str(err)
        # a refusal holds nothing
        assert budget.status().reserved == 8.0
        await budget.release(held)
        await budget.reserve(0.01)


async def test_integer_accounting_does_not_drift(fake_clock: FakeClock) -> None:
    async with Budget(cfg(daily_limit_usd=None), clock=fake_clock) as budget:
        float_sum = 0.0
        for _ in range(10_000):
            await budget.settle(await budget.reserve(0.1), 0.1)
            float_sum += 0.1
        assert float_sum != 1000.0  # what naive float accounting would report
        assert budget.status().spent == 1000.0


async def test_overrun_is_recorded_in_full(fake_clock: FakeClock) -> None:
    async with Budget(cfg(), clock=fake_clock) as budget:
        r = await budget.reserve(1.0)
        await budget.settle(r, 1.5)  # the provider returned more tokens than the worst case assumed
        assert budget.status().spent == 1.5


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, 1e12])
async def test_invalid_amounts_are_rejected(fake_clock: FakeClock, bad: float) -> None:
    async with Budget(cfg(), clock=fake_clock) as budget:
        with pytest.raises(ValueError, match="amount_usd"):
            await budget.reserve(bad)
        r = await budget.reserve(1.0)
        with pytest.raises(ValueError, match="actual_usd"):
            await budget.settle(r, bad)
        assert r.open  # a rejected settlement leaves the hold to be settled or released properly
        await budget.release(r)


async def test_no_cap(fake_clock: FakeClock) -> None:
    async with Budget(cfg(daily_limit_usd=None), clock=fake_clock) as budget:
        r = await budget.reserve(1_000_000.0)
        await budget.settle(r, 999_999.0)
        st = budget.status()
        assert (st.spent, st.remaining, st.limit, st.state, st.fraction) == (999_999.0, None, None, "normal", 0.0)
        assert budget.limit_usd is None


async def test_zero_cap_allows_only_free_calls(fake_clock: FakeClock) -> None:
    async with Budget(cfg(daily_limit_usd=0.0), clock=fake_clock) as budget:
        assert budget.status().state == "exhausted"
        assert budget.status().fraction == 1.0
        await budget.settle(await budget.reserve(0.0, model="local"), 0.0)
        with pytest.raises(BudgetExceeded):
            await budget.reserve(0.000001)


async def test_force_grants_past_the_cap(fake_clock: FakeClock) -> None:
    async with Budget(cfg(daily_limit_usd=1.0, on_exhausted="cheapest"), clock=fake_clock) as budget:
        await budget.settle(await budget.reserve(1.0), 1.0)
        with pytest.raises(BudgetExceeded):
            await budget.reserve(0.01)
        assert budget.on_exhausted == "cheapest"
        r = await budget.reserve(0.01, force=True)
        await budget.settle(r, 0.01)
        assert budget.status().spent == 1.01


async def test_must_be_open(fake_clock: FakeClock) -> None:
    budget = Budget(cfg(), clock=fake_clock)
    assert budget.status().spent == 0.0  # reading is fine
    with pytest.raises(RouterError, match="not open"):
        await budget.reserve(1.0)
    async with budget:
        r = await budget.reserve(1.0)
    with pytest.raises(RouterError, match="not open"):
        await budget.settle(r, 1.0)


async def test_unclosed_budget_warns(fake_clock: FakeClock) -> None:
    budget = Budget(cfg(), clock=fake_clock)
    await budget.aopen()
    with pytest.warns(ResourceWarning, match="unclosed"):
        del budget  # nothing else refers to it: collected right here


async def test_hold_releases_unless_settled(fake_clock: FakeClock) -> None:
    async with Budget(cfg(), clock=fake_clock) as budget:
        seen_reserved: list[float] = []

        async def failing_call() -> None:
            async with budget.hold(4.0):
                seen_reserved.append(budget.status().reserved)
                raise RuntimeError("provider blew up")

        with pytest.raises(RuntimeError, match="provider blew up"):
            await failing_call()
        assert seen_reserved == [4.0]
        assert (budget.status().spent, budget.status().reserved) == (0.0, 0.0)

        async with budget.hold(4.0) as r:
            await budget.settle(r, 3.0)
        assert (budget.status().spent, budget.status().reserved) == (3.0, 0.0)


def test_worst_case_cost(fake_clock: FakeClock) -> None:
    budget = Budget(cfg(default_max_output_tokens=2000), clock=fake_clock)
    kw = {"cost_per_1k_input": 0.5, "cost_per_1k_output": 2.0}
    assert budget.worst_case_cost(input_tokens=1000, max_output_tokens=500, **kw) == pytest.approx(0.5 + 1.0)
    # no max_tokens and no model cap: the configured default allowance
    assert budget.worst_case_cost(input_tokens=1000, max_output_tokens=None, **kw) == pytest.approx(0.5 + 4.0)


def test_backends_satisfy_the_protocols() -> None:
    assert isinstance(MemoryBackend(), BudgetBackend)
    assert isinstance(RecordedSpend([]), SpentSource)


# -------------------------------------------------------------------------------------------- states/events


async def test_states_and_events_at_thresholds(fake_clock: FakeClock) -> None:
    events: list[BudgetEvent] = []
    async with Budget(cfg(warn_at=0.75, downgrade_at=0.9), clock=fake_clock) as budget:
        budget.subscribe(events.append)

        async def spend(usd: float) -> None:
            await budget.settle(await budget.reserve(usd), usd)

        await spend(7.49)
        assert budget.status().state == "normal"
        assert events == []
        held = await budget.reserve(2.0)  # holds do not move the state: only spending does
        assert budget.status().state == "normal"
        await budget.release(held)
        await spend(0.01)  # 7.50: exactly warn_at
        assert budget.status().state == "warn"
        await spend(1.49)  # 8.99
        assert budget.status().state == "warn"
        await spend(0.01)  # 9.00: exactly downgrade_at
        assert budget.status().state == "downgrade"
        assert budget.state == "downgrade"  # the property the planner reads
        assert [(e.previous, e.state) for e in events] == [("normal", "warn"), ("warn", "downgrade")]
        assert events[1].status.spent == 9.0
        assert events[1].status.fraction == pytest.approx(0.9)


async def test_exhausted_at_the_limit_and_jumps_fire_one_event(fake_clock: FakeClock) -> None:
    events: list[BudgetEvent] = []
    async with Budget(cfg(), clock=fake_clock) as budget:
        budget.subscribe(events.append)
        r = await budget.reserve(2.0)
        await budget.settle(r, 10.0)  # an overrun straight past every threshold
        assert budget.status().state == "exhausted"
        assert [(e.previous, e.state) for e in events] == [("normal", "exhausted")]
        assert budget.status().remaining == 0.0


async def test_exhausted_when_the_cheapest_call_no_longer_fits(fake_clock: FakeClock) -> None:
    async with Budget(cfg(), clock=fake_clock, min_reservation_usd=0.5) as budget:
        await budget.settle(await budget.reserve(9.5), 9.5)
        assert budget.status().state == "downgrade"  # 0.5 left: still exactly covers the cheapest call
        await budget.settle(await budget.reserve(0.01), 0.01)
        assert budget.status().state == "exhausted"


async def test_a_raising_subscriber_is_logged_and_ignored(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(event: BudgetEvent) -> None:
        raise RuntimeError("subscriber bug")

    async with Budget(cfg(), clock=fake_clock) as budget:
        budget.subscribe(broken)
        budget.subscribe(lambda e: seen.append(e.state))
        with caplog.at_level(logging.ERROR, logger="asyncrouter.budget"):
            await budget.settle(await budget.reserve(8.0), 8.0)
        assert seen == ["warn"]  # the later subscriber still heard it
        assert "subscriber bug" in caplog.text
        await budget.reserve(1.0)  # and routing goes on


async def test_unsubscribe(fake_clock: FakeClock) -> None:
    seen: list[str] = []
    async with Budget(cfg(), clock=fake_clock) as budget:
        unsubscribe = budget.subscribe(lambda e: seen.append(e.state))
        unsubscribe()
        unsubscribe()  # idempotent
        await budget.settle(await budget.reserve(8.0), 8.0)
        assert seen == []


# --------------------------------------------------------------------------------------------- day boundary


async def test_day_rollover_in_a_non_utc_timezone(fake_clock: FakeClock) -> None:
    events: list[BudgetEvent] = []
    # T0 is 2026-01-01T00:00Z, i.e. 2025-12-31 19:00 in New York: the budget day is still the 31st.
    async with Budget(cfg(timezone="America/New_York"), clock=fake_clock) as budget:
        budget.subscribe(events.append)
        assert budget.status().day == "2025-12-31"
        await budget.settle(await budget.reserve(8.0), 8.0)
        late = await budget.reserve(1.5)  # still in flight at midnight
        assert budget.status().state == "warn"

        fake_clock.advance(5 * 3600 - 1)  # 23:59:59 local
        assert budget.status().day == "2025-12-31"
        with pytest.raises(BudgetExceeded):
            await budget.reserve(1.0)

        fake_clock.advance(1)  # midnight in New York (05:00Z)
        st = budget.status()
        assert (st.day, st.spent, st.reserved, st.state) == ("2026-01-01", 0.0, 0.0, "normal")
        assert [(e.previous, e.state) for e in events][-1] == ("warn", "normal")

        # The whole cap is available again; yesterday's hold does not count against today ...
        r = await budget.reserve(10.0)
        await budget.release(r)
        # ... and the late call's cost is booked on the day it settled.
        await budget.settle(late, 1.2)
        st = budget.status()
        assert (st.spent, st.reserved) == (1.2, 0.0)


async def test_a_dst_day_has_23_hours() -> None:
    # Berlin springs forward on 2026-03-29: that budget day runs from 23:00Z to 22:00Z.
    clock = FakeClock(start=1_774_738_800.0)  # 2026-03-28T23:00:00Z = 2026-03-29 00:00 CET
    async with Budget(cfg(timezone="Europe/Berlin"), clock=clock) as budget:
        assert budget.status().day == "2026-03-29"
        await budget.settle(await budget.reserve(5.0), 5.0)
        clock.advance(23 * 3600 - 1)
        assert (budget.status().day, budget.status().spent) == ("2026-03-29", 5.0)
        clock.advance(1)
        assert (budget.status().day, budget.status().spent) == ("2026-03-30", 0.0)


# ---------------------------------------------------------------------------------------------------- sqlite


def test_sqlite_backend_needs_a_spent_source(fake_clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match=r"budget\.backend.*tracker"):
        Budget(cfg(backend="sqlite"), clock=fake_clock)


async def test_sqlite_backend_rebuilds_todays_spend_at_open() -> None:
    tz_day_start = 1_767_243_600.0  # 2026-01-01 00:00 in New York = 05:00Z
    clock = FakeClock(start=tz_day_start + 10 * 3600)  # 10:00 local
    records = [
        (tz_day_start - 1, 100.0),  # yesterday (local): not today's spend
        (tz_day_start, 3.0),
        (tz_day_start + 9 * 3600, 4.5),
    ]
    source = RecordedSpend(records)
    events: list[BudgetEvent] = []
    config = cfg(backend="sqlite", timezone="America/New_York")

    budget = Budget(config, clock=clock, spent_source=source)
    budget.subscribe(events.append)
    async with budget:
        assert source.calls == [(tz_day_start, tz_day_start + 86_400)]
        st = budget.status()
        assert (st.spent, st.reserved, st.state) == (7.5, 0.0, "warn")
        assert [e.state for e in events] == ["warn"]
        r = await budget.reserve(2.0)
        await budget.settle(r, 2.0)
        records.append((clock.time(), 2.0))  # what the tracker would have recorded
        with pytest.raises(BudgetExceeded):
            await budget.reserve(1.0)

    # a restart: a new budget over the same records knows what was spent today
    async with Budget(config, clock=clock, spent_source=source) as again:
        assert again.status().spent == 9.5
        with pytest.raises(BudgetExceeded):
            await again.reserve(1.0)


# ------------------------------------------------------------------------------------------ missing redis


def test_redis_backend_without_the_package_is_a_config_error(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes `import redis` raise ImportError, as if it were not installed.
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigError, match=r"budget\.backend.*asyncrouter\[redis\]"):
        Budget(cfg(backend="redis", redis_url="redis://127.0.0.1:1/0"), clock=fake_clock)


# ----------------------------------------------------------------------------- an async (shared) backend


class GatedBackend:
    """A BudgetBackend whose answers wait for a gate: a remote store with a slow network, in miniature."""

    def __init__(self) -> None:
        self.inner = MemoryBackend()
        self.gate = anyio.Event()
        self.entered = anyio.Event()

    async def aopen(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def _wait(self) -> None:
        self.entered.set()
        await self.gate.wait()

    async def reserve(self, *, day: str, amount: int, limit: int | None, day_ends_in: float) -> LedgerTotals:
        await self._wait()
        return self.inner.try_reserve(day, amount, limit)

    async def settle(
        self, *, day: str, reserved_day: str, amount: int, actual: int, day_ends_in: float
    ) -> LedgerTotals:
        await self._wait()
        return self.inner.settle_now(day, reserved_day, amount, actual)

    async def release(self, *, day: str, amount: int) -> LedgerTotals:
        await self._wait()
        return self.inner.release_now(day, amount)

    async def totals(self, *, day: str) -> LedgerTotals:
        return self.inner.totals_now(day)


async def test_a_reservation_granted_after_its_caller_was_cancelled_is_given_back(fake_clock: FakeClock) -> None:
    backend = GatedBackend()
    outcome: list[str] = []
    async with Budget(cfg(), clock=fake_clock, backend=backend) as budget:

        async def caller() -> None:
            try:
                await budget.reserve(4.0)
            except anyio.get_cancelled_exc_class():
                outcome.append("cancelled")
                raise
            outcome.append("returned")

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await backend.entered.wait()  # the reservation is on its way to the backend
            tg.cancel_scope.cancel()
        assert outcome == ["cancelled"]
        backend.gate.set()  # the backend grants it only now, after the caller has gone
        st = await budget.refresh()
        assert (st.spent, st.reserved) == (0.0, 0.0)
        assert backend.inner.totals_now(st.day) == (True, 0, 0)


async def test_a_cancelled_settle_still_lands(fake_clock: FakeClock) -> None:
    backend = GatedBackend()
    backend.gate.set()
    async with Budget(cfg(), clock=fake_clock, backend=backend) as budget:
        r = await budget.reserve(4.0)
        backend.gate = anyio.Event()
        backend.entered = anyio.Event()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(budget.settle, r, 3.0)
                await backend.entered.wait()
                scope.cancel()
        backend.gate.set()
        st = await budget.refresh()
        assert (st.spent, st.reserved) == (3.0, 0.0)
        await budget.release(r)  # the reservation counts as settled: no double release
        assert (await budget.refresh()).reserved == 0.0


# ---------------------------------------------------------------------------------------------- the race


async def hammer(budget: Budget, *, tasks: int, seed: int) -> dict[str, float]:
    """``tasks`` concurrent reserve -> (checkpoints) -> settle|release cycles while another task cancels random
    ones at random moments. Returns what happened; spent + reserved is sampled after every operation."""
    rng = random.Random(seed)
    limit = budget.limit_usd
    assert limit is not None
    stats = {"granted": 0, "denied": 0, "cancelled": 0, "settled_micro": 0, "max_seen": 0.0}
    scopes: dict[int, anyio.CancelScope] = {}
    running = True

    def sample() -> None:
        st = budget.status()
        stats["max_seen"] = max(stats["max_seen"], st.spent + st.reserved)
        assert st.spent + st.reserved <= limit + 1e-9, st

    async def worker(i: int) -> None:
        amount_micro = rng.randint(1_000, 50_000)  # 0.001 .. 0.05 USD, exact in micro-dollars
        with anyio.CancelScope() as scope:
            scopes[i] = scope
            try:
                for _ in range(rng.randint(0, 20)):  # arrivals spread over time
                    await anyio.lowlevel.checkpoint()
                try:
                    r = await budget.reserve(amount_micro / 1e6, model=f"m{i % 3}")
                except BudgetExceeded:
                    stats["denied"] += 1
                    return
                finally:
                    sample()
                stats["granted"] += 1
                try:
                    for _ in range(rng.randint(0, 5)):  # the provider call
                        await anyio.lowlevel.checkpoint()
                    actual_micro = rng.randint(0, amount_micro)
                    stats["settled_micro"] += actual_micro
                    await budget.settle(r, actual_micro / 1e6)
                finally:
                    await budget.release(r)
                    sample()
            finally:
                del scopes[i]
        if scope.cancelled_caught:
            stats["cancelled"] += 1

    async def chaos() -> None:
        while running:
            if scopes:
                for i in rng.sample(sorted(scopes), k=min(len(scopes), 50)):
                    if rng.random() < 0.2:
                        scopes[i].cancel()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as outer:
        outer.start_soon(chaos)
        async with anyio.create_task_group() as tg:
            for i in range(tasks):
                tg.start_soon(worker, i)
        running = False
    return stats


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_ten_thousand_racing_tasks_never_overshoot(fake_clock: FakeClock, backend: str) -> None:
    limit = 20.0
    source = RecordedSpend([])
    config = cfg(daily_limit_usd=limit, backend=backend)
    async with Budget(config, clock=fake_clock, spent_source=source) as budget:
        stats = await hammer(budget, tasks=10_000, seed=5)
        st = budget.status()
    # the race was real: the cap was reached, requests were refused, and callers were cancelled mid-flight
    assert stats["denied"] > 0
    assert stats["cancelled"] > 0
    assert stats["granted"] > 1000
    assert limit * 0.95 < stats["max_seen"] <= limit + 1e-9
    assert st.reserved == 0.0
    # every settlement that was made is counted, to the nano-dollar
    assert st.spent == stats["settled_micro"] / 1e6
    assert st.spent <= limit
