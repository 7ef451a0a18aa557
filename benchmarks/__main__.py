"""The benchmark runner: ``python -m benchmarks [--quick] [--only NAME,...] [--json OUT] [--markdown OUT]``.

Runs every benchmark against the fake fleet on loopback and prints each figure beside its limit or target, with
the ratio measured in the same run; then writes all results as JSON and as one Markdown table (by default
``benchmarks/results/bench-<time>.json`` and ``.md``; the folder is git-ignored). ``asyncrouter bench`` calls
:func:`main`.

Benchmarks (see each script's docstring and ``benchmarks/README.md``):

* ``classify``: decision time per prompt class, ``Classifier.classify`` (``bench_classify.run``) and
  ``Router.classify`` (classifier + planner) on the same prompts, against one-pass regex floors; accuracy;
* ``overhead``: ``aroute`` latency at concurrency 1 minus a raw aiohttp POST, tracking on and off, and a profile;
* ``batch``: ``aroute_many`` requests/s against a raw aiohttp client with as many workers;
* ``tracker``: tracker records/s into SQLite against raw ``executemany`` (``bench_tracker.run``);
* ``budget``: reserve + settle pairs/s in memory and on a local redis-server (``bench_budget.run``);
* ``memory``: RSS growth and live tasks while ``astream_many`` consumes a generator of 100k prompts;
* ``server``: requests/s of the OpenAI-compatible server, load generated from another process.

Exit code: 0 when every benchmark ran (whether or not its targets were met), 1 when one failed to run, 2 on
bad usage.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypedDict

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    DEFAULT_RESULTS_DIR,
    Figure,
    Result,
    environment,
    figure,
    format_result,
    make_result,
    markdown,
    p50_p99_us,
    profile_summary,
    timed,
    write_json,
)

__all__ = ["BENCHMARKS", "main", "run_benchmarks"]

# classify targets (issue #6): decision time in microseconds, and the ratio to a one-pass regex floor
CLASSIFY_SHORT_P50_US: Final = 15.0
CLASSIFY_LONG_P99_US: Final = 400.0
CLASSIFY_FLOOR_RATIO: Final = 3.0
CLASSIFY_ITERATIONS: Final = 2000
CLASSIFY_QUICK_ITERATIONS: Final = 200
CLASSIFY_PROFILE_TOP: Final = 15
TRACKER_N: Final = 200_000
TRACKER_QUICK_N: Final = 20_000
TRACKER_REPEAT: Final = 3
BUDGET_QUICK_MEMORY_PAIRS: Final = 30_000
BUDGET_QUICK_REDIS_PAIRS: Final = 5_000
BUDGET_QUICK_CONCURRENCY: Final = 64


# ------------------------------------------------------------------------------------------------- classify


def _router_for_classify() -> Any:
    """A Router over the default fleet's models, never opened: ``classify`` does no I/O."""
    import anyio

    from asyncrouter import Router
    from asyncrouter.testing import FakeProviderServer, default_fleet

    async def config() -> dict[str, Any]:
        async with FakeProviderServer(models=default_fleet(speed=0.0, faults=False), record=False) as srv:
            return srv.config_dict(provider="openai", tracker={"path": None})

    return Router.from_dict(anyio.run(config))


def _profile_router_classify(router: Any, prompts: Sequence[str], calls: int) -> dict[str, Any]:
    """Where ``Router.classify`` spends its time (cProfile; use the ranking, not the absolute times)."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    try:
        for i in range(calls):
            router.classify(prompts[i % len(prompts)])
    finally:
        profiler.disable()
    return profile_summary(pstats.Stats(profiler), calls, top=CLASSIFY_PROFILE_TOP)


def _time_router_classify(
    router: Any, classes: dict[str, list[str]], iterations: int
) -> dict[str, tuple[float, float]]:
    """``Router.classify`` p50/p99 per class, timed as ``bench_classify`` times the classifier."""
    perf = time.perf_counter_ns
    out: dict[str, tuple[float, float]] = {}
    for name, prompts in classes.items():
        n = iterations if name != "2000-word" else max(50, iterations // 10)
        per_prompt = max(20, n // len(prompts))
        samples: list[int] = []
        gc.collect()
        gc.disable()
        try:
            for prompt in prompts:
                for _ in range(20):  # warm caches before timing, as bench_classify does
                    router.classify(prompt)
                for _ in range(per_prompt):
                    t0 = perf()
                    router.classify(prompt)
                    samples.append(perf() - t0)
        finally:
            gc.enable()
        out[name] = p50_p99_us(samples)
    return out


class _Limit(TypedDict, total=False):
    target: float
    op: Literal["<=", ">="]


def _limit(value: float | None) -> _Limit:
    """``figure()`` keywords for an upper limit, or none."""
    return {} if value is None else {"target": value, "op": "<="}


def run_classify(quick: bool = False) -> Result:
    """Decision time: ``bench_classify.run`` (the classifier) plus ``Router.classify`` (classifier + planner)."""
    from benchmarks import bench_classify

    iterations = CLASSIFY_QUICK_ITERATIONS if quick else CLASSIFY_ITERATIONS
    raw = bench_classify.run(iterations=iterations)
    timing = raw["timing"]["classes"]
    # the prompt classes bench_classify times, so both are measured on the same text
    classes = {
        "short": list(bench_classify._SHORT),
        "code": list(bench_classify._CODE),
        "medium": list(bench_classify._MEDIUM),
        "2000-word": bench_classify._long_prompts(),
        "non-English": list(bench_classify._NON_ENGLISH),
    }
    missing = set(timing) ^ set(classes)
    if missing:
        raise RuntimeError(f"bench_classify's prompt classes changed: {sorted(missing)}")
    router = _router_for_classify()
    decision = _time_router_classify(router, classes, iterations)
    profile = _profile_router_classify(router, classes["short"], iterations)
    figures: list[Figure] = []
    for name, row in timing.items():
        clf, floor_w, floor_alt = row["classify"], row["floor_w"], row["floor_alt"]
        p50_limit = CLASSIFY_SHORT_P50_US if name == "short" else None
        p99_limit = CLASSIFY_LONG_P99_US if name == "2000-word" else None
        d50, d99 = decision[name]
        figures += [
            figure(f"{name}: Classifier.classify p50", clf["p50_us"], "us", **_limit(p50_limit)),
            figure(f"{name}: Classifier.classify p99", clf["p99_us"], "us", **_limit(p99_limit)),
            figure(
                f"{name}: Classifier p50 / \\w+ floor",
                clf["p50_us"] / floor_w["p50_us"],
                "x",
                **_limit(CLASSIFY_FLOOR_RATIO),
            ),
            figure(
                f"{name}: Classifier p50 / keyword-regex floor",
                clf["p50_us"] / floor_alt["p50_us"],
                "x",
                **_limit(CLASSIFY_FLOOR_RATIO),
            ),
            figure(f"{name}: Router.classify p50", d50, "us", **_limit(p50_limit)),
            figure(f"{name}: Router.classify p99", d99, "us", **_limit(p99_limit)),
            figure(
                f"{name}: Router.classify p50 / \\w+ floor",
                d50 / floor_w["p50_us"],
                "x",
                **_limit(CLASSIFY_FLOOR_RATIO),
            ),
        ]
    test = raw["accuracy"]["test"]
    for key in ("complexity", "category", "task_type", "tier"):
        figures.append(figure(f"accuracy on the test split: {key}", 100.0 * test["accuracy"][key], "%"))
    notes = [
        f"{iterations} calls per class (2000-word: a tenth), after 20 warm-up calls per prompt, gc disabled "
        "while timing; Router.classify = classifier + planner + cost estimate",
        "floors: one precompiled regex pass over the same prompt: `\\w+` findall, and one findall over the "
        "alternation of the classifier's English keywords",
        f"accuracy on the test split (n={test['total']}); competitors timed: {raw['timing']['competitors'] or 'none'}",
        "profile of Router.classify on short prompts (cProfile, us/call, cumulative): "
        + "; ".join(f"{row['function']} {row['cumtime_us']}" for row in profile["top_asyncrouter_cumtime"][:8]),
    ]
    details = {
        "bench_classify": raw,
        "router_classify_us": {k: list(v) for k, v in decision.items()},
        "router_classify_profile_short": profile,
    }
    return make_result("classify", figures, notes, details=details)


# ------------------------------------------------------------------------------------------------- tracker, budget


def run_tracker(quick: bool = False) -> Result:
    """Tracker records/s: ``bench_tracker.run``."""
    from benchmarks import bench_tracker

    n, repeat = (TRACKER_QUICK_N, 1) if quick else (TRACKER_N, TRACKER_REPEAT)
    raw = bench_tracker.run(n=n, repeat=repeat)
    rates = raw["records_per_s"]
    figures = [
        figure("Tracker.record + flush", rates["tracker"], "records/s", target=raw["target_records_per_s"], op=">="),
        figure("raw sqlite3 executemany", rates["raw_sqlite3"], "records/s"),
        figure("raw aiosqlite executemany", rates["raw_aiosqlite"], "records/s"),
        figure("tracker / raw sqlite3", raw["tracker_vs_raw_sqlite3"], "x"),
        figure("tracker / raw aiosqlite", raw["tracker_vs_raw_aiosqlite"], "x"),
        figure("row encoding alone", rates["encode"], "records/s"),
        figure("with log_path (JSON Lines run log)", rates["tracker_log"], "records/s"),
        figure("with log_path / without", raw["tracker_log_vs_tracker"], "x"),
    ]
    notes = [
        f"{raw['n']:,} records, batch {raw['batch_size']}, best of {raw['repeat']}, SQLite {raw['sqlite_version']}"
    ]
    return make_result("tracker", figures, notes, details=raw)


def run_budget(quick: bool = False) -> Result:
    """Budget reserve + settle pairs/s: ``bench_budget.run`` (memory, and redis when the binary exists)."""
    from benchmarks import bench_budget

    kwargs: dict[str, int] = (
        {
            "memory_pairs": BUDGET_QUICK_MEMORY_PAIRS,
            "redis_pairs": BUDGET_QUICK_REDIS_PAIRS,
            "concurrency": BUDGET_QUICK_CONCURRENCY,
        }
        if quick
        else {}
    )
    raw = bench_budget.run(**kwargs)
    m, r = raw["memory"], raw["redis"]
    figures = [figure("memory: reserve+settle", m["pairs_per_s"], "pairs/s", target=m["target"], op=">=")]
    notes = [f"memory: one task, {m['pairs']:,} pairs ({m['us_per_pair']:.2f} us/pair)"]
    if r is None:
        notes.append("redis: skipped (no redis-server binary on PATH)")
    else:
        figures.append(figure("redis: reserve+settle", r["pairs_per_s"], "pairs/s", target=r["target"], op=">="))
        notes.append(
            f"redis: {r['pairs']:,} pairs from {r['concurrency']} tasks on a throwaway local redis-server, "
            f"{r['ops_per_round_trip']:.0f} operations per round trip"
        )
    return make_result("budget", figures, notes, details=raw)


# ------------------------------------------------------------------------------------------------- the others


def run_overhead(quick: bool = False) -> Result:
    from benchmarks import bench_overhead

    return bench_overhead.run(quick=quick)


def run_batch(quick: bool = False) -> Result:
    from benchmarks import bench_batch

    return bench_batch.run(quick=quick)


def run_memory(quick: bool = False) -> Result:
    from benchmarks import bench_memory

    return bench_memory.run(quick=quick)


def run_server(quick: bool = False) -> Result:
    from benchmarks import bench_server

    return bench_server.run(quick=quick)


#: every benchmark, in the order the runner runs them
BENCHMARKS: Final[dict[str, Callable[[bool], Result]]] = {
    "classify": run_classify,
    "overhead": run_overhead,
    "batch": run_batch,
    "tracker": run_tracker,
    "budget": run_budget,
    "memory": run_memory,
    "server": run_server,
}


def run_benchmarks(
    names: Sequence[str], *, quick: bool = False, echo: Callable[[str], None] | None = print
) -> tuple[list[Result], list[str]]:
    """Run the named benchmarks; return their results and the names of those that failed to run.

    A benchmark that raises is reported (a result with ``error`` and no figures) and the others still run.
    """
    results: list[Result] = []
    failed: list[str] = []
    for name in names:
        with timed() as elapsed:
            try:
                result = BENCHMARKS[name](quick)
            except Exception as exc:
                failed.append(name)
                result = make_result(name, [], [f"failed to run: {type(exc).__name__}: {exc}"])
                result["error"] = traceback.format_exc()
        if result.get("seconds") is None:
            result["seconds"] = round(elapsed(), 2)
        results.append(result)
        if echo is not None:
            echo(format_result(result))
            if "error" in result:
                echo(result["error"])
    return results, failed


def _summary(results: Sequence[Result], failed: Sequence[str]) -> str:
    judged = [f for r in results for f in r["figures"] if f["ok"] is not None]
    missed = [f"{r['name']}: {f['metric']}" for r in results for f in r["figures"] if f["ok"] is False]
    skipped = [r["name"] for r in results if r.get("skipped")]
    lines = [f"{len(judged) - len(missed)} of {len(judged)} figures meet their limit or target"]
    lines += [f"  missed: {m}" for m in missed]
    if skipped:
        lines.append(f"skipped: {', '.join(skipped)}")
    if failed:
        lines.append(f"FAILED to run: {', '.join(failed)}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the asyncrouter benchmarks against the fake fleet on loopback.",
    )
    parser.add_argument("--quick", action="store_true", help="small iteration counts (the whole suite in < 60 s)")
    parser.add_argument("--only", metavar="NAME,...", help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON here (default: under results/)")
    parser.add_argument("--markdown", metavar="OUT", help="write the Markdown table here (default: beside the JSON)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; the exit code (0 ran, 1 a benchmark failed to run, 2 bad usage).

    Args:
        argv: command-line arguments without the program name (default: ``sys.argv[1:]``).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (2): a return code, not an exception, for the CLI
        return exc.code if isinstance(exc.code, int) else 2
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown or not names:
            parser.print_usage(sys.stderr)
            print(f"unknown benchmark(s): {', '.join(unknown) or '(none given)'}", file=sys.stderr)
            return 2
    env = environment()
    print(
        f"asyncrouter benchmarks{' (quick)' if args.quick else ''}: Python {env['python']}, {env['cpus']} CPUs, "
        f"load average {env['loadavg']}",
        flush=True,
    )
    with timed() as elapsed:
        results, failed = run_benchmarks(names, quick=args.quick, echo=lambda s: print(s, flush=True))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = Path(args.json) if args.json else DEFAULT_RESULTS_DIR / f"bench-{stamp}.json"
    md_path = Path(args.markdown) if args.markdown else json_path.with_suffix(".md")
    env["loadavg_after"] = environment()["loadavg"]
    write_json(json_path, {"environment": env, "quick": args.quick, "seconds": round(elapsed(), 1), "results": results})
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(results, env), encoding="utf-8")
    print(_summary(results, failed))
    print(f"wrote {json_path} and {md_path} ({elapsed():.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
