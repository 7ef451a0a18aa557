"""The budget on a real redis-server: the same cap shared exactly by tasks, budgets and OS processes."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
import redis

from asyncrouter._budget import DEFAULT_REDIS_KEY_MARGIN, Budget, RedisBackend
from asyncrouter._config import BudgetConfig
from asyncrouter._exceptions import BudgetExceeded, RouterError
from asyncrouter.testing import FakeClock
from redis_server import RedisServer

pytestmark = pytest.mark.redis

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY_END = T0 + 86_400


def cfg(url: str, **kw: object) -> BudgetConfig:
    kw.setdefault("daily_limit_usd", 10.0)
    return BudgetConfig(backend="redis", redis_url=url, **kw)


def counters(url: str, day: str, prefix: str = "asyncrouter") -> tuple[int, int]:
    """The raw counters, read with a separate (sync) client."""
    with redis.Redis.from_url(url) as r:
        spent, reserved = r.mget(f"{prefix}:budget:{day}:spent", f"{prefix}:budget:{day}:reserved")
    return int(spent or 0), int(reserved or 0)


async def test_arithmetic_and_keys(redis_url: str, fake_clock: FakeClock) -> None:
    async with Budget(cfg(redis_url), clock=fake_clock) as budget:
        r = await budget.reserve(3.0)
        assert counters(redis_url, "2026-01-01") == (0, 3_000_000_000)
        await budget.settle(r, 2.5)
        st = budget.status()
        assert (st.spent, st.reserved, st.remaining) == (2.5, 0.0, 7.5)
        assert counters(redis_url, "2026-01-01") == (2_500_000_000, 0)

        held = await budget.reserve(7.5)
        with pytest.raises(BudgetExceeded) as info:
            await budget.reserve(0.000001)
        assert (info.value.spent, info.value.reserved, info.value.limit) == (2.5, 7.5, 10.0)
        await budget.release(held)
        await budget.release(held)  # idempotent: the shared counter is not decremented twice
        await budget.settle(held, 5.0)  # and a released reservation cannot be settled
        assert counters(redis_url, "2026-01-01") == (2_500_000_000, 0)


async def test_keys_expire_a_margin_after_their_day(redis_url: str, fake_clock: FakeClock) -> None:
    fake_clock.advance(3600)  # 01:00: 23 hours of the day left
    async with Budget(cfg(redis_url), clock=fake_clock) as budget:
        await budget.settle(await budget.reserve(1.0), 1.0)
        await budget.reserve(1.0)
    expected = DAY_END - fake_clock.time() + DEFAULT_REDIS_KEY_MARGIN
    with redis.Redis.from_url(redis_url) as r:
        for key in ("asyncrouter:budget:2026-01-01:spent", "asyncrouter:budget:2026-01-01:reserved"):
            ttl = r.ttl(key)
            assert expected - 5 <= ttl <= expected, (key, ttl)


async def test_keys_really_expire(redis_url: str) -> None:
    clock = FakeClock(start=DAY_END - 0.5)  # half a second before midnight
    backend = RedisBackend(redis_url, prefix="short", key_margin=0.0)
    async with Budget(cfg(redis_url), clock=clock, backend=backend) as budget:
        await budget.settle(await budget.reserve(1.0), 1.0)
    with redis.Redis.from_url(redis_url) as r:
        assert r.exists("short:budget:2026-01-01:spent") == 1
        for _ in range(100):  # expiry is the server's own clock: poll up to 5 s
            if not r.exists("short:budget:2026-01-01:spent"):
                break
            await anyio.sleep(0.05)
        assert r.exists("short:budget:2026-01-01:spent") == 0


async def test_two_budgets_share_one_cap(redis_url: str, fake_clock: FakeClock) -> None:
    async with Budget(cfg(redis_url), clock=fake_clock) as a, Budget(cfg(redis_url), clock=fake_clock) as b:
        r = await a.reserve(6.0)
        with pytest.raises(BudgetExceeded):
            await b.reserve(5.0)
        await a.settle(r, 6.0)
        st = await b.refresh()
        assert (st.spent, st.reserved, st.state) == (6.0, 0.0, "normal")
        await b.settle(await b.reserve(2.0), 2.0)  # 8.0: warn, and b saw it in its own reply
        assert b.state == "warn"
        assert (await a.refresh()).spent == 8.0
        assert a.state == "warn"


async def test_prefixes_keep_budgets_apart(redis_url: str, fake_clock: FakeClock) -> None:
    async with (
        Budget(cfg(redis_url, redis_prefix="team-a"), clock=fake_clock) as a,
        Budget(cfg(redis_url, redis_prefix="team-b"), clock=fake_clock) as b,
    ):
        await a.settle(await a.reserve(9.0), 9.0)
        await b.settle(await b.reserve(9.0), 9.0)
        assert counters(redis_url, "2026-01-01", "team-a") == (9_000_000_000, 0)


async def test_rollover_with_a_reservation_in_flight(redis_url: str) -> None:
    clock = FakeClock(start=T0 + 5 * 3600 - 10)  # 23:59:50 in New York on 2025-12-31
    async with Budget(cfg(redis_url, timezone="America/New_York"), clock=clock) as budget:
        assert budget.status().day == "2025-12-31"
        late = await budget.reserve(4.0)
        clock.advance(10)
        assert budget.status().day == "2026-01-01"
        await budget.settle(late, 3.0)  # hold freed on the 31st, cost booked on the 1st
        assert counters(redis_url, "2025-12-31") == (0, 0)
        assert counters(redis_url, "2026-01-01") == (3_000_000_000, 0)
        assert budget.status().spent == 3.0


async def test_amounts_above_1e14_nano_stay_exact(redis_url: str, fake_clock: FakeClock) -> None:
    # Lua's tostring would turn 5e14 into "5e+14"; the counters must stay integers
    async with Budget(cfg(redis_url, daily_limit_usd=2_000_000.0), clock=fake_clock) as budget:
        r = await budget.reserve(500_000.123456789)
        await budget.settle(r, 499_999.987654321)
        assert counters(redis_url, "2026-01-01") == (499_999_987_654_321, 0)
        assert budget.status().spent == 499_999.987654321


async def test_unreachable_redis_fails_at_open(fake_clock: FakeClock, redis_server: RedisServer) -> None:
    url = f"redis://:secret-password@127.0.0.1:{redis_server.port + 1 if redis_server.port < 65535 else 1}/0"
    budget = Budget(cfg(url), clock=fake_clock, backend=RedisBackend(url, timeout=1.0))
    with pytest.raises(RouterError, match="unreachable") as info:
        await budget.aopen()
    assert "secret-password" not in str(info.value)


async def test_cancelled_while_the_script_runs_leaks_nothing(redis_url: str, fake_clock: FakeClock) -> None:
    backend = RedisBackend(redis_url)
    async with Budget(cfg(redis_url), clock=fake_clock, backend=backend) as budget:
        entered = 0

        async def call() -> None:
            nonlocal entered
            entered += 1  # reserve() queues its script before its first await
            r = await budget.reserve(5.0)
            try:
                await anyio.sleep_forever()  # the provider call
            finally:
                await budget.release(r)

        for i in range(50):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    for _ in range(i % 4):  # cancel with the reservation queued, on the wire, or answered
                        await anyio.lowlevel.checkpoint()
                    scope.cancel()
            assert scope.cancelled_caught
        st = await budget.refresh()
        # Without giving the holds back, two 5.0 holds would fill the 10.0 cap and the rest be refused.
        assert (st.spent, st.reserved) == (0.0, 0.0)
        assert counters(redis_url, "2026-01-01") == (0, 0)
        assert entered >= 25
        # some holds were granted by the script after their caller had been cancelled, and given back
        assert backend.undone >= 1


# ------------------------------------------------------------------------------------------------ the race


async def test_ten_thousand_racing_tasks_with_cancellations(redis_url: str, fake_clock: FakeClock) -> None:
    limit = 20.0
    rng = random.Random(11)
    stats = {"granted": 0, "denied": 0, "cancelled": 0, "settled_micro": 0, "max_seen": 0.0}
    budget = Budget(cfg(redis_url, daily_limit_usd=limit), clock=fake_clock)

    def sample() -> None:
        st = budget.status()  # the counters as the last script saw them
        stats["max_seen"] = max(stats["max_seen"], st.spent + st.reserved)
        assert st.spent + st.reserved <= limit + 1e-9, st

    async def worker() -> None:
        amount_micro = rng.randint(1_000, 50_000)
        for _ in range(rng.randint(0, 5)):
            await anyio.lowlevel.checkpoint()
        try:
            r = await budget.reserve(amount_micro / 1e6)
        except BudgetExceeded:
            stats["denied"] += 1
            return
        finally:
            sample()
        stats["granted"] += 1
        try:
            for _ in range(rng.randint(0, 3)):
                await anyio.lowlevel.checkpoint()
            actual_micro = rng.randint(0, amount_micro)
            stats["settled_micro"] += actual_micro  # counted once called: the update lands even if we are cancelled
            await budget.settle(r, actual_micro / 1e6)
        finally:
            await budget.release(r)
            sample()

    async with budget:
        # plain asyncio tasks cancelled with Task.cancel(): the harshest kind, which anyio shields cannot stop
        tasks: list[asyncio.Future[None]] = []

        def chaos() -> None:
            live = [t for t in tasks[-2000:] if not t.done()]
            for t in rng.sample(live, min(40, len(live))):
                if rng.random() < 0.25:
                    t.cancel()

        # 40 waves of 250 arrivals, so settlements free room for later requests while others still race
        for _ in range(40):
            tasks += [asyncio.ensure_future(worker()) for _ in range(250)]
            for _ in range(3):
                chaos()
                await anyio.lowlevel.checkpoint()
            await anyio.sleep(0.002)
        while not all(t.done() for t in tasks):
            chaos()
            await anyio.lowlevel.checkpoint()
        for t in tasks:
            if t.cancelled():
                stats["cancelled"] += 1
            else:
                t.result()
        st = await budget.refresh()

    assert stats["denied"] > 0
    assert stats["cancelled"] > 100
    assert stats["granted"] > 1000
    assert limit * 0.9 < stats["max_seen"] <= limit + 1e-9
    assert st.reserved == 0.0
    assert st.spent == stats["settled_micro"] / 1e6
    assert counters(redis_url, "2026-01-01") == (stats["settled_micro"] * 1000, 0)


_WORKER = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from asyncrouter._budget import Budget
    from asyncrouter._config import BudgetConfig
    from asyncrouter._exceptions import BudgetExceeded
    from asyncrouter.testing import FakeClock

    url, seed, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    async def main():
        rng = random.Random(seed)
        config = BudgetConfig(daily_limit_usd=5.0, backend="redis", redis_url=url)
        granted_micro = denied = 0
        async with Budget(config, clock=FakeClock(start=1_767_225_600.0)) as budget:
            open(ready, "w").close()
            while not __import__("os").path.exists(go):  # start together with the other process
                await asyncio.sleep(0.005)

            async def one():
                nonlocal granted_micro, denied
                amount = rng.randint(1_000, 20_000)
                try:
                    r = await budget.reserve(amount / 1e6)
                except BudgetExceeded:
                    denied += 1
                    return
                await asyncio.sleep(0)
                actual = rng.randint(0, amount)
                await budget.settle(r, actual / 1e6)
                granted_micro += actual

            for _ in range(20):
                await asyncio.gather(*(one() for _ in range(100)))
        print(json.dumps({"spent_micro": granted_micro, "denied": denied}))

    asyncio.run(main())
    """
)


@pytest.mark.slow  # two fresh interpreters: about 2 s on an idle machine, more when it is busy
def test_two_processes_share_one_cap_exactly(redis_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs: list[subprocess.Popen[str]] = []
    ready_files = [tmp_path / f"ready{i}" for i in range(2)]
    try:
        for i, ready in enumerate(ready_files):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _WORKER, redis_url, str(i), str(ready), str(go)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        start = time.monotonic()
        while not all(f.exists() for f in ready_files):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() - start < 30, "workers did not start"
            time.sleep(0.01)
        go.touch()
        outputs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            outputs.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()

    spent_micro, reserved = counters(redis_url, "2026-01-01")
    granted = [o["spent_micro"] for o in outputs]
    # both processes got a share, both were refused at times, and together they stayed inside the cap
    assert all(g > 0 for g in granted)
    assert all(o["denied"] > 0 for o in outputs)
    assert reserved == 0
    assert spent_micro == sum(granted) * 1000
    assert spent_micro <= 5_000_000_000
