"""One daily cap shared by two worker processes through Redis. No API keys.

With ``budget.backend: redis`` every router keeps the day's spend and its in-flight reservations in Redis, and
checks and reserves in one atomic Lua step, so any number of processes share one cap exactly: their total spend
never exceeds it, however they race. The example starts a throwaway ``redis-server`` on a free port (if the
binary is installed; otherwise it says so and exits), a fake fleet, and two worker processes (multiprocessing,
spawn), each with its own Router routing prompts as fast as it can until the cap turns it away.

Run it with ``python examples/redis_shared_budget.py``.
"""

from __future__ import annotations

import functools
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread

from asyncrouter import BudgetExceeded, Response, Router
from asyncrouter.testing import FakeProviderServer, default_fleet

CAP_USD = 0.05
PROMPTS_PER_WORKER = 80
REDIS_STARTUP_TIMEOUT = 10.0
WORKER_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(binary: str, workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + REDIS_STARTUP_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if redis_ping(port):
            return proc, port
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("redis-server did not start")


def worker(name: str, config: dict[str, Any], start: Any, out: Any) -> None:
    """One process: its own Router on the shared budget, routing until the cap says no."""

    async def run() -> dict[str, Any]:
        prompts = [
            f"Write a Python function number {i} for {name} that merges sorted lists."
            for i in range(PROMPTS_PER_WORKER)
        ]
        async with Router.from_dict(config) as router:
            start.wait()  # both workers are ready: race for the cap from the same moment
            results = await router.aroute_many(prompts, concurrency=4, max_tokens=300)
        replies = [r for r in results if isinstance(r, Response)]
        return {
            "name": name,
            "ok": len(replies),
            "rejected": sum(1 for r in results if isinstance(r, BudgetExceeded)),
            "spent": sum(r.meta.estimated_cost_usd for r in replies),
        }

    out.put(anyio.run(run))


async def main(redis_url: str) -> bool:
    async with FakeProviderServer(models=default_fleet(speed=0.05, faults=False), seed=1, record=False) as fleet:
        config = fleet.config_dict(
            default_model="fake-cheap",
            tracker={"path": None},
            budget={
                "daily_limit_usd": CAP_USD,
                "backend": "redis",
                "redis_url": redis_url,
                "redis_prefix": f"example-{uuid.uuid4().hex[:8]}",  # a fresh budget for every run
            },
        )
        spawn = multiprocessing.get_context("spawn")
        start, out = spawn.Barrier(2), spawn.Queue()
        workers = [spawn.Process(target=worker, args=(f"worker-{i}", config, start, out)) for i in (1, 2)]
        for p in workers:
            p.start()
        # get() and join() block: wait in a thread so the fleet keeps serving on this event loop
        get = functools.partial(out.get, timeout=WORKER_TIMEOUT)  # a crashed worker must not hang the example
        results = sorted([await anyio.to_thread.run_sync(get) for _ in workers], key=lambda r: str(r["name"]))
        for p in workers:
            await anyio.to_thread.run_sync(p.join)
        async with Router.from_dict(config) as router:
            status = await router.budget.refresh()

    for r in results:
        print(f"{r['name']}: {r['ok']} replies, {r['rejected']} rejected by the budget, spent ${r['spent']:.5f}")
    total = sum(r["spent"] for r in results)
    print(f"total spent by both workers: ${total:.5f} (Redis says ${status.spent:.5f}) of the ${CAP_USD:.2f} cap")
    print(f"budget state: {status.state}, remaining ${status.remaining or 0:.5f}")
    held = status.spent <= CAP_USD and total <= CAP_USD + 1e-9
    print("the shared cap held: total spend <= cap" if held else "THE CAP WAS EXCEEDED")
    return held


def run() -> int:
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed: install it (e.g. `apt-get install redis-server`) to run this example")
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        proc, port = start_redis(binary, workdir)
        try:
            held = anyio.run(main, f"redis://127.0.0.1:{port}/0")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(run())
