"""Batch throughput: ``router.aroute_many(N prompts, concurrency=C)`` against a raw aiohttp client.

Usage::

    python benchmarks/bench_batch.py [--quick] [--json OUT]

The fake fleet (:func:`benchmarks._common.steady_fleet`: no latency and one provider call per request) runs in
a child process. In this process each round sends the same N prompts three ways, at each concurrency C:

* ``raw``: one :class:`aiohttp.ClientSession` and C worker tasks pulling from a shared iterator, each POSTing
  the OpenAI body to the model the router would pick (``router.classify(prompt).model``) and decoding the
  JSON reply;
* ``router``: ``await router.aroute_many(prompts, concurrency=C)`` (``model="auto"``), tracking on (a
  temporary SQLite file; the timed batch ends when its records are written: ``tracker.flush()``) and off.

Figures: requests/s, the median over rounds, and the router-to-raw ratio of the same round (median over
rounds). Target: at least 0.85x raw with tracking on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
import anyio

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncrouter import Response, Router
from benchmarks._common import (
    PROMPTS,
    FleetProcess,
    Result,
    figure,
    make_result,
    median,
    prepare_timing,
    run_against_fleet,
    script_main,
    timed,
)

NAME: Final = "batch"
TARGET_RATIO: Final = 0.85
DEFAULT_N: Final = 4000
DEFAULT_ROUNDS: Final = 5
DEFAULT_CONCURRENCIES: Final = (16, 64)
QUICK_N: Final = 400
QUICK_ROUNDS: Final = 1

Batch = Callable[[list[str], int], Awaitable[int]]


async def _raw_batch(
    session: aiohttp.ClientSession,
    targets: dict[str, tuple[str, dict[str, str], str]],
    prompts: list[str],
    concurrency: int,
) -> int:
    """N POSTs with *concurrency* workers; returns the number of failed requests."""
    source: Iterator[str] = iter(prompts)
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for prompt in source:
            url, headers, model_id = targets[prompt]
            body = {"model": model_id, "messages": [{"role": "user", "content": prompt}]}
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    data = await resp.read()
                    ok = resp.status == 200
                json.loads(data)
            except (aiohttp.ClientError, ValueError):
                ok = False
            errors += not ok

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return errors


async def _router_batch(router: Router, prompts: list[str], concurrency: int) -> int:
    results = await router.aroute_many(prompts, concurrency=concurrency)
    if router.tracker is not None:
        # Charge the writing to this variant: records still being written would otherwise spill over into the
        # next variant's timed batch.
        await router.tracker.flush()
    if len(results) != len(prompts):
        raise RuntimeError(f"aroute_many returned {len(results)} results for {len(prompts)} prompts")
    errors = 0
    for r in results:
        if not isinstance(r, Response) or len(r.meta.attempts) != 1:
            errors += 1
    return errors


async def _bench(fleet: FleetProcess, tmp: str, *, n: int, rounds: int, concurrencies: Sequence[int]) -> Result:
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
    async with (
        aiohttp.ClientSession() as session,
        Router.from_dict(fleet.config(tracker_path=os.path.join(tmp, "batch.db"))) as router_on,
        Router.from_dict(fleet.config(tracker_path=None)) as router_off,
    ):
        targets: dict[str, tuple[str, dict[str, str], str]] = {}
        for p in set(prompts):
            entry = fleet.model_entry(router_off.classify(p).model or "fake-cheap")
            headers = {"Accept": "application/json"}
            if entry.get("api_keys"):
                headers["Authorization"] = f"Bearer {entry['api_keys'][0]}"
            targets[p] = (f"{entry['base_url']}/chat/completions", headers, entry["model_id"])

        variants: dict[str, Batch] = {
            "raw": lambda ps, c: _raw_batch(session, targets, ps, c),
            "router, tracking on": lambda ps, c: _router_batch(router_on, ps, c),
            "router, tracking off": lambda ps, c: _router_batch(router_off, ps, c),
        }
        rates: dict[tuple[str, int], list[float]] = {}
        errors: dict[str, int] = dict.fromkeys(variants, 0)
        for c in concurrencies:
            warm = prompts[: min(len(prompts), 4 * c)]
            for name, batch in variants.items():
                errors[name] += await batch(warm, c)
            for rnd in range(rounds):
                names = list(variants)
                order = names[rnd % len(names) :] + names[: rnd % len(names)]
                for name in order:
                    prepare_timing()
                    with timed() as elapsed:
                        errors[name] += await variants[name](prompts, c)
                    rates.setdefault((name, c), []).append(n / elapsed())
        tracker = router_on.tracker
        assert tracker is not None
        await tracker.flush()
        written = tracker.written

    figures = []
    for c in concurrencies:
        raw = rates[("raw", c)]
        figures.append(figure(f"C={c}: raw aiohttp", median(raw), "req/s"))
        for name in ("router, tracking on", "router, tracking off"):
            mine = rates[(name, c)]
            figures.append(figure(f"C={c}: aroute_many {name}", median(mine), "req/s"))
            figures.append(
                figure(
                    f"C={c}: aroute_many {name} / raw",
                    median(a / b for a, b in zip(mine, raw, strict=True)),
                    "x",
                    target=TARGET_RATIO,
                    op=">=",
                )
            )
    figures.append(figure("failed requests (all variants)", sum(errors.values()), "count", target=0, op="<="))
    notes = [
        f"N={n} prompts per batch, {rounds} round(s) per concurrency after a warm-up of 4*C; "
        "throughput is the median over rounds, the ratio the median of same-round ratios",
        "raw posts each prompt to the model the router picks, so both send the same requests",
        f"tracker rows written (tracking on): {written}",
    ]
    details: dict[str, Any] = {
        "n": n,
        "rounds": rounds,
        "rates": {f"{name} C={c}": [round(x, 1) for x in v] for (name, c), v in rates.items()},
        "errors": errors,
        "tracker_written": written,
    }
    return make_result(NAME, figures, notes, details=details)


def run(quick: bool = False) -> Result:
    """Measure batch throughput of ``aroute_many`` against raw aiohttp; see the module docstring.

    Args:
        quick: small batches and one round (a smoke run): the figures are noisy.
    """
    n, rounds = (QUICK_N, QUICK_ROUNDS) if quick else (DEFAULT_N, DEFAULT_ROUNDS)
    return run_against_fleet(
        lambda fleet, tmp: _bench(fleet, tmp, n=n, rounds=rounds, concurrencies=DEFAULT_CONCURRENCIES)
    )


def main(argv: Sequence[str] | None = None) -> int:
    return script_main(run, argv, description=__doc__.splitlines()[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(main())
