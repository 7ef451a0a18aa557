"""Budget throughput: reserve + settle pairs per second, in memory and against a local redis-server.

    python benchmarks/bench_budget.py [--json OUT] [--memory-pairs N] [--redis-pairs N] [--concurrency N]

Memory: one task doing reserve -> settle back to back (the per-call overhead the engine pays).
Redis: ``--concurrency`` tasks doing reserve -> settle through one Budget; the backend batches whatever
operations are queued into one Lua call per round trip. A redis-server is started on a free loopback port
for the run (skipped, and reported so, when the binary is missing). Targets: 200k pairs/s in memory,
10k pairs/s with Redis; the ratio printed is measured / target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asyncrouter._budget import Budget, RedisBackend
from asyncrouter._clock import AnyioClock
from asyncrouter._config import BudgetConfig

MEMORY_TARGET = 200_000.0
REDIS_TARGET = 10_000.0
DEFAULT_MEMORY_PAIRS = 300_000
DEFAULT_REDIS_PAIRS = 60_000
DEFAULT_CONCURRENCY = 256


@contextmanager
def local_redis() -> Iterator[str | None]:
    """A throwaway redis-server on 127.0.0.1, or None when there is no binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def bench_memory(pairs: int) -> dict[str, Any]:
    config = BudgetConfig(daily_limit_usd=1_000_000.0, backend="memory")
    async with Budget(config, clock=AnyioClock()) as budget:
        for _ in range(1000):  # warm-up
            await budget.settle(await budget.reserve(0.001), 0.0005)
        start = time.perf_counter()
        for _ in range(pairs):
            r = await budget.reserve(0.001)
            await budget.settle(r, 0.0005)
        elapsed = time.perf_counter() - start
    rate = pairs / elapsed
    return {"pairs": pairs, "seconds": elapsed, "pairs_per_s": rate, "target": MEMORY_TARGET,
            "ratio": rate / MEMORY_TARGET, "us_per_pair": 1e6 * elapsed / pairs}


async def bench_redis(url: str, pairs: int, concurrency: int) -> dict[str, Any]:
    config = BudgetConfig(daily_limit_usd=1_000_000.0, backend="redis", redis_url=url, redis_prefix="bench")
    backend = RedisBackend(url, prefix="bench")
    per_task = max(1, pairs // concurrency)
    total = per_task * concurrency

    async with Budget(config, clock=AnyioClock(), backend=backend) as budget:

        async def worker(n: int) -> None:
            for _ in range(n):
                r = await budget.reserve(0.001)
                await budget.settle(r, 0.0005)

        await asyncio.gather(*(worker(10) for _ in range(concurrency)))  # warm-up: connection, script load
        batches0, ops0 = backend.batches, backend.operations
        start = time.perf_counter()
        await asyncio.gather(*(worker(per_task) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        batches, ops = backend.batches - batches0, backend.operations - ops0
        status = await budget.refresh()
    rate = total / elapsed
    return {"pairs": total, "concurrency": concurrency, "seconds": elapsed, "pairs_per_s": rate,
            "target": REDIS_TARGET, "ratio": rate / REDIS_TARGET, "round_trips": batches,
            "ops_per_round_trip": ops / batches if batches else 0.0, "final_reserved_usd": status.reserved}


def run(
    *,
    memory_pairs: int = DEFAULT_MEMORY_PAIRS,
    redis_pairs: int = DEFAULT_REDIS_PAIRS,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> dict[str, Any]:
    """Run both benchmarks; return the figures (``redis`` is ``None`` without a redis-server binary)."""
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "memory": asyncio.run(bench_memory(memory_pairs)),
        "redis": None,
    }
    with local_redis() as url:
        if url is not None:
            out["redis"] = asyncio.run(bench_redis(url, redis_pairs, concurrency))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this file")
    parser.add_argument("--memory-pairs", type=int, default=DEFAULT_MEMORY_PAIRS)
    parser.add_argument("--redis-pairs", type=int, default=DEFAULT_REDIS_PAIRS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args(argv)
    result = run(memory_pairs=args.memory_pairs, redis_pairs=args.redis_pairs, concurrency=args.concurrency)

    m = result["memory"]
    print(f"python {result['python']} on {result['machine']}")
    print(f"memory: {m['pairs_per_s']:>10,.0f} reserve+settle pairs/s  target {m['target']:,.0f}  "
          f"ratio {m['ratio']:.2f}  ({m['us_per_pair']:.2f} us/pair, {m['pairs']:,} pairs)")
    r = result["redis"]
    if r is None:
        print("redis:  skipped (no redis-server binary)")
    else:
        print(f"redis:  {r['pairs_per_s']:>10,.0f} reserve+settle pairs/s  target {r['target']:,.0f}  "
              f"ratio {r['ratio']:.2f}  ({r['pairs']:,} pairs, {r['concurrency']} tasks, "
              f"{r['ops_per_round_trip']:.0f} ops per round trip)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
