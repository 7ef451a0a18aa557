"""The synchronous API: ``Router.route`` reuses one event loop of its own across calls, threads and the exit."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from asyncrouter import Response, Router, RouterError
from asyncrouter.testing import FakeModel, FakeProviderServer


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("cheap", reply_words=20, cost_per_1k_input=0.0001, cost_per_1k_output=0.0002),
        FakeModel("strong", reply_words=40, cost_per_1k_input=0.003, cost_per_1k_output=0.006),
    ]
    async with FakeProviderServer(models=models, seed=7) as srv:
        yield srv


def tracked_config(srv: FakeProviderServer, db: Path) -> dict[str, Any]:
    return srv.config_dict(default_model="cheap", tracker={"path": str(db)})


def rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select request_id, status from requests order by request_id").fetchall()


async def in_thread(fn: Any) -> Any:
    """Run blocking code the way a script would: in a thread with no event loop (the server keeps serving)."""
    return await anyio.to_thread.run_sync(fn)


async def test_route_reuses_one_router_across_calls(fleet: FakeProviderServer, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    router = Router.from_dict(tracked_config(fleet, db))

    def script() -> list[Response]:
        with router:
            return [router.route(f"question {i}: what is {i} + {i}?", request_id=f"r{i}") for i in range(5)]

    replies = await in_thread(script)
    assert [r.meta.request_id for r in replies] == [f"r{i}" for i in range(5)]
    assert all(r.content for r in replies)
    # leaving `with router:` drained the tracker: every request is on disk, none lost
    assert rows(db) == [(f"r{i}", "ok") for i in range(5)]
    assert fleet.calls() == 5


async def test_route_after_close_is_a_clear_error(fleet: FakeProviderServer, tmp_path: Path) -> None:
    router = Router.from_dict(tracked_config(fleet, tmp_path / "t.db"))

    def script() -> None:
        router.route("hello")
        router.close()
        router.close()  # twice is fine
        router.route("again")

    with pytest.raises(RouterError, match="opened once"):
        await in_thread(script)


async def test_route_from_many_threads_at_once(fleet: FakeProviderServer, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    router = Router.from_dict(tracked_config(fleet, db))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        start.wait()
        try:
            for i in range(6):
                r = router.route(f"thread {t} asks {i}", request_id=f"t{t}-{i}")
                assert r.meta.request_id == f"t{t}-{i}"
        except BaseException as exc:  # reported below: an assertion in a thread would be lost
            errors.append(exc)

    def script() -> None:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        router.close()

    await in_thread(script)
    assert errors == []
    assert len(rows(db)) == 48
    assert {status for _, status in rows(db)} == {"ok"}


async def test_route_inside_async_code_is_refused(fleet: FakeProviderServer, tmp_path: Path) -> None:
    router = Router.from_dict(tracked_config(fleet, tmp_path / "t.db"))
    with pytest.raises(RuntimeError, match=r"await router\.aroute"):
        router.route("hello")
    router.close()  # nothing was opened: a no-op


async def test_sync_and_async_opens_exclude_each_other(fleet: FakeProviderServer, tmp_path: Path) -> None:
    sync_router = Router.from_dict(tracked_config(fleet, tmp_path / "a.db"))
    await in_thread(lambda: sync_router.route("hello"))
    with pytest.raises(RouterError, match=r"synchronous API.*router\.close\(\)"):
        async with sync_router:
            pass
    await in_thread(sync_router.close)

    async with Router.from_dict(tracked_config(fleet, tmp_path / "b.db")) as async_router:
        with pytest.raises(RouterError, match="open in an event loop"):
            await in_thread(lambda: async_router.route("hello"))
        assert (await async_router.aroute("still works")).content


async def test_a_router_is_opened_once(fleet: FakeProviderServer, tmp_path: Path) -> None:
    router = Router.from_dict(tracked_config(fleet, tmp_path / "t.db"))
    async with router:
        await router.aroute("hello")
    with pytest.raises(RouterError, match="opened once: build a new one"):
        async with router:
            pass


@pytest.mark.slow
async def test_a_script_that_never_closes_still_writes_every_record(fleet: FakeProviderServer, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    cfg = tracked_config(fleet, db)
    cfg["tracker"]["flush_interval"] = 5.0  # far longer than the script: only the exit hook can write them
    (tmp_path / "asyncrouter.yaml").write_text(yaml.safe_dump(cfg))
    script = textwrap.dedent(
        """
        from asyncrouter import Router
        router = Router.from_yaml("asyncrouter.yaml")
        for i in range(3):
            print(router.route(f"question {i}", request_id=f"exit-{i}").meta.model)
        """
    )
    result = await anyio.run_process([sys.executable, "-c", script], cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["cheap"] * 3
    assert rows(db) == [(f"exit-{i}", "ok") for i in range(3)]


async def test_logs_awaited_or_iterated(fleet: FakeProviderServer, tmp_path: Path) -> None:
    # routeforge's `for run in router.logs(last_n=5): print(run)`, in a script
    router = Router.from_dict(tracked_config(fleet, tmp_path / "s.db"))

    def script() -> list[str]:
        with router:
            for i in range(7):
                router.route(f"question {i}", request_id=f"s{i}")
            return [run.request_id for run in router.logs(last_n=5)]

    assert await in_thread(script) == ["s6", "s5", "s4", "s3", "s2"]  # newest first, written before the read

    # and awaited in async code, where iterating it is refused with a pointer to `await`
    async with Router.from_dict(tracked_config(fleet, tmp_path / "a.db")) as arouter:
        await arouter.aroute("hello", request_id="a0")
        assert [r.request_id for r in await arouter.logs(last_n=5)] == ["a0"]
        with pytest.raises(RuntimeError, match=r"await router\.logs"):
            list(arouter.logs())
