"""Memory: RSS growth while ``router.astream_many`` consumes a generator of 100k prompts, concurrency 64.

Usage::

    python benchmarks/bench_memory.py [--quick] [--json OUT]

The fake fleet (:func:`benchmarks._common.steady_fleet`) runs in a child process, so only the router's memory
is measured. Each variant (tracking off, then on with a temporary SQLite file) opens a fresh router, routes a
warm-up batch (connections, caches and the tracker's queue reach their working size), then iterates
``astream_many`` over a *generator* of distinct prompts, sampling this process's RSS (:mod:`psutil`) and the
number of live asyncio tasks every ``SAMPLE_EVERY`` results.

Figures: RSS growth = the highest sample minus the RSS just before the run (limit 50 MB), the growth over the
second half of the run (a leak shows as growth there), and the peak number of tasks alive (bounded by the
concurrency, whatever the number of prompts).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import psutil  # type: ignore[import-untyped]  # no stubs in the dev extra

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncrouter import Response, Router
from benchmarks._common import (
    FleetProcess,
    Result,
    figure,
    make_result,
    prepare_timing,
    run_against_fleet,
    script_main,
    timed,
)

NAME: Final = "memory"
LIMIT_GROWTH_MB: Final = 50.0
CONCURRENCY: Final = 64
DEFAULT_N: Final = 100_000
QUICK_N: Final = 3_000
WARMUP: Final = 1_000
QUICK_WARMUP: Final = 300
SAMPLE_EVERY: Final = 250
MB: Final = 1024 * 1024

_TOPICS: Final = ("rivers", "compilers", "tides", "volcanoes", "sourdough", "orbits", "glaciers", "typefaces")


def prompts(n: int, *, start: int = 0) -> Iterator[str]:
    """A lazy stream of *n* distinct short prompts (nothing is held: the router must pull them one by one)."""
    for i in range(start, start + n):
        yield f"Question {i}: in two sentences, what should a beginner know about {_TOPICS[i % len(_TOPICS)]}?"


async def _variant(config: dict[str, Any], *, n: int, warmup: int) -> dict[str, Any]:
    proc = psutil.Process()
    async with Router.from_dict(config) as router:
        async for _i, _r in router.astream_many(prompts(warmup, start=10 * n), concurrency=CONCURRENCY):
            pass
        prepare_timing()
        base = proc.memory_info().rss
        samples: list[tuple[int, int, int]] = []  # (done, rss, tasks)
        peak_tasks = len(asyncio.all_tasks())
        done = errors = 0
        with timed() as elapsed:
            async for _index, result in router.astream_many(prompts(n), concurrency=CONCURRENCY):
                done += 1
                if not isinstance(result, Response):
                    errors += 1
                if done % SAMPLE_EVERY == 0:
                    tasks = len(asyncio.all_tasks())
                    peak_tasks = max(peak_tasks, tasks)
                    samples.append((done, proc.memory_info().rss, tasks))
        seconds = elapsed()
        end = proc.memory_info().rss
        written = None
        if router.tracker is not None:
            await router.tracker.flush()
            written = router.tracker.written
    mid = min(samples, key=lambda s: abs(s[0] - n // 2)) if samples else (0, base, 0)
    peak = max([base, end, *(s[1] for s in samples)])
    return {
        "n": done,
        "errors": errors,
        "seconds": round(seconds, 2),
        "requests_per_s": round(done / seconds, 1),
        "rss_before_mb": round(base / MB, 2),
        "rss_peak_mb": round(peak / MB, 2),
        "rss_end_mb": round(end / MB, 2),
        "growth_mb": round((peak - base) / MB, 2),
        "second_half_growth_mb": round((end - mid[1]) / MB, 2),
        "peak_tasks": peak_tasks,
        "tracker_written": written,
        "samples": [(d, round(r / MB, 2), t) for d, r, t in samples[:: max(1, len(samples) // 40)]],
    }


async def _bench(fleet: FleetProcess, tmp: str, *, n: int, warmup: int) -> Result:
    out = {
        "tracking off": await _variant(fleet.config(tracker_path=None), n=n, warmup=warmup),
        "tracking on": await _variant(fleet.config(tracker_path=os.path.join(tmp, "memory.db")), n=n, warmup=warmup),
    }
    figures = []
    for name, v in out.items():
        figures.append(
            figure(f"{name}: RSS growth over {v['n']:,} prompts", v["growth_mb"], "MB", target=LIMIT_GROWTH_MB, op="<=")
        )
        figures.append(figure(f"{name}: RSS growth, second half", v["second_half_growth_mb"], "MB"))
        figures.append(figure(f"{name}: peak asyncio tasks alive", v["peak_tasks"], "tasks"))
        figures.append(figure(f"{name}: throughput", v["requests_per_s"], "req/s"))
        figures.append(figure(f"{name}: failed requests", v["errors"], "count", target=0, op="<="))
    notes = [
        f"astream_many(generator, concurrency={CONCURRENCY}) after a {warmup}-prompt warm-up; RSS sampled every "
        f"{SAMPLE_EVERY} results; growth = peak sample - RSS before the run",
        "RSS before the run: "
        + ", ".join(f"{k} {v['rss_before_mb']} MB" for k, v in out.items())
        + f"; tracker rows written: {out['tracking on']['tracker_written']}",
    ]
    return make_result(NAME, figures, notes, details=out)


def run(quick: bool = False) -> Result:
    """Measure RSS growth and live tasks over a long ``astream_many``; see the module docstring.

    Args:
        quick: a few thousand prompts instead of 100k (a smoke run).
    """
    n, warmup = (QUICK_N, QUICK_WARMUP) if quick else (DEFAULT_N, WARMUP)
    return run_against_fleet(lambda fleet, tmp: _bench(fleet, tmp, n=n, warmup=warmup))


def main(argv: Sequence[str] | None = None) -> int:
    return script_main(run, argv, description=__doc__.splitlines()[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(main())
