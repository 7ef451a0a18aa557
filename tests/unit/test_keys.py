from __future__ import annotations

from collections import Counter

import anyio
import pytest

from asyncrouter import AuthenticationError, BadRequestError, RateLimited
from asyncrouter.providers import KeyPool
from asyncrouter.testing import FakeClock


async def test_round_robin_is_even_under_thousands_of_tasks(fake_clock: FakeClock) -> None:
    pool = KeyPool(["k1", "k2", "k3"], clock=fake_clock)
    seen: Counter[str | None] = Counter()

    async def worker() -> None:
        for _ in range(10):
            key = pool.acquire()
            seen[key] += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(3000):
            tg.start_soon(worker)
    assert sum(seen.values()) == 30_000
    assert set(seen.values()) == {10_000}


def test_auth_failure_evicts_key_and_all_dead_raises(fake_clock: FakeClock) -> None:
    pool = KeyPool(["k1", "k2"], clock=fake_clock, provider="openai", model="m")
    pool.report("k1", AuthenticationError("bad", status_code=401))
    assert {pool.acquire() for _ in range(5)} == {"k2"}
    pool.report("k2", AuthenticationError("bad", status_code=403))
    with pytest.raises(AuthenticationError, match="every API key") as info:
        pool.acquire()
    assert "k1" not in str(info.value)
    assert "k2" not in str(info.value)
    assert "k1" not in repr(pool)


def test_rate_limited_key_cools_down_for_retry_after(fake_clock: FakeClock) -> None:
    pool = KeyPool(["k1", "k2"], clock=fake_clock)
    pool.report("k1", RateLimited("slow", retry_after=5.0))
    assert [pool.acquire() for _ in range(4)] == ["k2"] * 4
    pool.report("k2", RateLimited("slow", retry_after=2.0))
    with pytest.raises(RateLimited) as info:
        pool.acquire()
    assert info.value.retry_after == pytest.approx(2.0)
    fake_clock.advance(2.0)
    assert pool.acquire() == "k2"
    fake_clock.advance(3.0)
    assert {pool.acquire() for _ in range(4)} == {"k1", "k2"}


def test_other_errors_do_not_touch_keys(fake_clock: FakeClock) -> None:
    pool = KeyPool(["k1"], clock=fake_clock)
    pool.report("k1", BadRequestError("bad"))
    pool.report("unknown", AuthenticationError("bad"))
    assert pool.acquire() == "k1"
    assert KeyPool([], clock=fake_clock).acquire() is None
