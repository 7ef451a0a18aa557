"""Route 1,000 prompts concurrently with a progress bar, then show where they went. No API keys.

``aroute_many`` keeps at most ``concurrency`` requests in flight and calls ``on_progress(done, total)`` after
each one; results come back aligned with the input, a failed prompt holding its exception.

Run it with ``python examples/batch_1000.py``.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter

import anyio
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from asyncrouter import Response, Router
from asyncrouter.testing import FakeProviderServer, default_fleet

N = 1000

TEMPLATES = [
    "What is the capital of {}?",
    "Write a Python function that {} and explain its complexity.",
    "Prove step by step that {}.",
    "Write a haiku about {}.",
    "Translate into German: '{}'",
    "Summarise in one sentence: {}",
]
FILLERS = [
    ["Peru", "Norway", "Kenya", "Japan", "Canada"],
    ["merges two sorted lists", "parses a date", "finds duplicates in a list", "reverses a linked list"],
    ["the square root of 2 is irrational", "there are infinitely many primes", "1 + 2 + ... + n = n(n+1)/2"],
    ["autumn leaves", "the sea at night", "a quiet library", "the first snow"],
    ["The meeting moved to Thursday.", "Please keep your receipt.", "The train is late again."],
    [
        "The council approved a cycling pilot on two streets after a long debate about parking and safety.",
        "Revenue grew twelve percent while hardware sales fell for the third quarter in a row.",
    ],
]


def prompts(n: int) -> list[str]:
    """A mixed batch: every template in turn, each with the next filler of its list."""
    cycles = [itertools.cycle(f) for f in FILLERS]
    out = []
    for i in range(n):
        k = i % len(TEMPLATES)
        out.append(TEMPLATES[k].format(next(cycles[k])) + f" (#{i})")
    return out


async def main() -> None:
    batch = prompts(N)
    # A twentieth of realistic latency, with the fleet's occasional hedging replies (`asyncrouter demo` adds
    # faults and an outage).
    async with FakeProviderServer(models=default_fleet(speed=0.05, faults=False), seed=1, record=False) as fleet:
        config = fleet.config_dict(default_model="fake-cheap")
        async with Router.from_dict(config) as router:
            columns = (TextColumn("routing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns) as progress:
                task = progress.add_task("routing", total=N)
                started = time.perf_counter()
                results = await router.aroute_many(
                    batch,
                    concurrency=64,
                    max_tokens=400,
                    on_progress=lambda done, total: progress.update(task, completed=done),
                )
                elapsed = time.perf_counter() - started
            stats = await router.stats(baseline="fake-strong")

    replies = [r for r in results if isinstance(r, Response)]
    failures = Counter(type(r).__name__ for r in results if not isinstance(r, Response))
    by_model = Counter(r.meta.model for r in replies)
    escalated = sum(1 for r in replies if r.meta.escalations)
    print(f"{len(results)} prompts in {elapsed:.1f} s ({len(results) / elapsed:.0f}/s), {len(replies)} answered")
    for model, count in sorted(by_model.items()):
        print(f"  {model:<12} {count:>4} ({100 * count / len(replies):.0f}%)")
    print(f"escalated: {escalated}; failed: {sum(failures.values())} {dict(failures)}")
    print(f"latency p50 {stats.p50_latency_ms:.0f} ms, p95 {stats.p95_latency_ms:.0f} ms")
    if stats.savings is not None and stats.savings.savings_pct is not None:
        print(
            f"cost ${stats.cost_usd:.2f} vs ${stats.savings.baseline_cost_usd:.2f} all-strong: "
            f"{stats.savings.savings_pct:.0f}% saved"
        )


if __name__ == "__main__":
    anyio.run(main)
