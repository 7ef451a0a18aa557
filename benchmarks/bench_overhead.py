"""Per-request overhead: ``await router.aroute(prompt, model=...)`` against a raw aiohttp POST, one at a time.

Usage::

    python benchmarks/bench_overhead.py [--quick] [--json OUT]

The fake fleet (:func:`benchmarks._common.steady_fleet`: no latency, faults, hedging or refusals, so every
request is exactly one provider call) runs in a child process, so its CPU does not share the measured event
loop. In this process, at concurrency 1, after a warm-up, each *round* times a short block of calls of every
variant on the same prompts, in a rotated order; many short rounds interleave the variants finely, so a change in
the shared machine's load between rounds falls on all of them alike:

* ``raw``: one :class:`aiohttp.ClientSession`, ``session.post(url, json=body)`` with the same OpenAI body and
  headers the router sends, the reply read and ``json.loads``-ed (the least any client does);
* ``raw auto``: the same, each prompt posted to the model ``router.classify(prompt)`` picks (the baseline of
  ``model="auto"``, whose replies may come from a model with longer answers);
* ``transport``: the same POST through the router's own transport (``asyncrouter._http.HTTPClient.post_json``,
  which drives aiohttp's pool and parser without ``ClientSession.post``), with no routing at all. The router
  against it is what routing itself costs; the router against ``raw`` is what a user sees, and includes what
  the leaner transport saves;
* ``pinned``: ``router.aroute(prompt, model="fake-cheap")``, tracking on (a temporary SQLite file, so the
  writer task runs) and off (``tracker.path: null``);
* ``auto``: ``router.aroute(prompt)`` (classifier, planner, cascade of one), tracking on and off.

Overhead is the router's p50 minus the raw p50, over every call of every round. The client CPU overhead is the
process time per call (every thread, the SQLite writer's too: a block with tracking on ends once its records are
written) against raw's of the same round, the median over rounds. Target: 150 us at p50 with tracking on.

Then the router path runs under :mod:`cProfile` (and the raw path, for comparison): the result's
``details.profile`` lists where the time goes, per request.

Last, a count that the machine's load cannot move: the Python bytecodes each path executes per request
(:class:`benchmarks._common.BytecodeCounter`), raw against the router, by area. It leaves out C work (regex,
JSON, sockets) and the SQLite writer's thread, so it is a guide to the Python-level cost, not a timing; it is
taken with tracking off, because tracing slows requests ~50x and the writer's batches would shrink with them.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncrouter import Router
from asyncrouter._http import HTTPClient
from benchmarks._common import (
    PROMPTS,
    BytecodeCounter,
    FleetProcess,
    Result,
    area_diff,
    figure,
    make_result,
    median,
    p50_p99_us,
    prepare_timing,
    profile_summary,
    run_against_fleet,
    script_main,
)

NAME: Final = "overhead"
TARGET_OVERHEAD_US: Final = 150.0
PINNED_MODEL: Final = "fake-cheap"
DEFAULT_ROUNDS: Final = 40
#: calls per variant per round: short blocks, interleaved (see the module docstring)
DEFAULT_ITERATIONS: Final = 100
DEFAULT_WARMUP: Final = 200
DEFAULT_PROFILE_CALLS: Final = 2000
#: requests per variant whose bytecodes are counted (the count is exact; tracing is ~50x slower)
DEFAULT_COUNT_CALLS: Final = 200
QUICK_ROUNDS: Final = 3
QUICK_ITERATIONS: Final = 50
QUICK_WARMUP: Final = 30
QUICK_PROFILE_CALLS: Final = 150
#: how many functions of the profile to keep in the result
PROFILE_TOP: Final = 25

Call = Callable[[str], Awaitable[object]]


class _Raw:
    """The baseline client: one session, the router's body and headers, reply read and decoded."""

    def __init__(self, session: aiohttp.ClientSession, fleet: FleetProcess) -> None:
        self._session = session
        self._fleet = fleet
        self._targets: dict[str, tuple[str, dict[str, str], str]] = {}

    def _target(self, alias: str) -> tuple[str, dict[str, str], str]:
        if alias not in self._targets:
            entry = self._fleet.model_entry(alias)
            headers = {"Accept": "application/json"}
            if entry.get("api_keys"):
                headers["Authorization"] = f"Bearer {entry['api_keys'][0]}"
            self._targets[alias] = (f"{entry['base_url']}/chat/completions", headers, entry["model_id"])
        return self._targets[alias]

    async def call(self, prompt: str, alias: str) -> object:
        url, headers, model_id = self._target(alias)
        body = {"model": model_id, "messages": [{"role": "user", "content": prompt}]}
        async with self._session.post(url, json=body, headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"raw POST failed: HTTP {resp.status}")
        return json.loads(data)


class _Transport(_Raw):
    """The same request through the router's transport alone: no classifier, planner, gates, budget or tracker."""

    def __init__(self, http: HTTPClient, fleet: FleetProcess) -> None:
        self._http = http
        self._fleet = fleet
        self._targets = {}

    async def call(self, prompt: str, alias: str) -> object:
        url, headers, model_id = self._target(alias)
        body = {"model": model_id, "messages": [{"role": "user", "content": prompt}]}
        reply = await self._http.post_json(url, headers=headers, body=body, timeout=30, provider="openai", model=alias)
        return reply.data


async def _time_calls(
    call: Call, prompts: Sequence[str], iterations: int, settle: Callable[[], Awaitable[object]] | None
) -> tuple[list[int], float]:
    """Wall latencies (ns) of each call, and this process's CPU time per call in us (all its threads).

    ``settle`` (the tracker's flush) runs inside the CPU measurement: the block pays for writing its own records,
    which would otherwise be written during the next variant's block.
    """
    perf = time.perf_counter_ns
    out: list[int] = []
    n = len(prompts)
    cpu0 = time.process_time_ns()
    for i in range(iterations):
        prompt = prompts[i % n]
        t0 = perf()
        await call(prompt)
        out.append(perf() - t0)
    if settle is not None:
        await settle()
    return out, (time.process_time_ns() - cpu0) / iterations / 1000


async def _profiled(call: Call, prompts: Sequence[str], calls: int) -> dict[str, Any]:
    prepare_timing()
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for i in range(calls):
            await call(prompts[i % len(prompts)])
    finally:
        profiler.disable()
    return profile_summary(pstats.Stats(profiler), calls, top=PROFILE_TOP)


async def _counted(call: Call, prompts: Sequence[str], calls: int) -> dict[str, float]:
    """Python bytecodes per request, by area."""
    counter = BytecodeCounter()
    with counter.enabled():
        for i in range(calls):
            await call(prompts[i % len(prompts)])
    return {area: n / calls for area, n in sorted(counter.by_area.items(), key=lambda kv: -kv[1])}


async def _bench(
    fleet: FleetProcess, tmp: str, *, rounds: int, iterations: int, warmup: int, profile_calls: int
) -> Result:
    prompts = list(PROMPTS)
    cfg_on = fleet.config(tracker_path=os.path.join(tmp, "pinned.db"))
    cfg_auto_on = fleet.config(tracker_path=os.path.join(tmp, "auto.db"))
    cfg_off = fleet.config(tracker_path=None)
    async with (
        aiohttp.ClientSession() as session,
        Router.from_dict(cfg_on) as pinned_on,
        Router.from_dict(cfg_off) as pinned_off,
        Router.from_dict(cfg_auto_on) as auto_on,
        Router.from_dict(cfg_off) as auto_off,
    ):
        raw = _Raw(session, fleet)
        http = HTTPClient()
        await http.aopen()
        transport = _Transport(http, fleet)
        # the model "auto" picks for each prompt (classify is pure: no request is sent)
        auto_model = {p: pinned_off.classify(p).model or PINNED_MODEL for p in prompts}

        variants: dict[str, Call] = {
            "raw": lambda p: raw.call(p, PINNED_MODEL),
            "raw auto": lambda p: raw.call(p, auto_model[p]),
            "transport": lambda p: transport.call(p, PINNED_MODEL),
            "pinned, tracking on": lambda p: pinned_on.aroute(p, model=PINNED_MODEL),
            "pinned, tracking off": lambda p: pinned_off.aroute(p, model=PINNED_MODEL),
            "auto, tracking on": lambda p: auto_on.aroute(p),
            "auto, tracking off": lambda p: auto_off.aroute(p),
        }
        # every router reply must come from one attempt, or the figures would include a cascade
        for name, router in (("pinned", pinned_off), ("auto", auto_off)):
            for p in prompts:
                r = await router.aroute(p, model=PINNED_MODEL if name == "pinned" else "auto")
                if len(r.meta.attempts) != 1 or r.meta.model != (PINNED_MODEL if name == "pinned" else auto_model[p]):
                    raise RuntimeError(f"{name}: unexpected route {r.meta.model} with {len(r.meta.attempts)} attempts")
        for call in variants.values():
            for i in range(warmup):
                await call(prompts[i % len(prompts)])

        flushes = {"pinned, tracking on": pinned_on, "auto, tracking on": auto_on}
        names = list(variants)
        latencies: dict[str, list[int]] = {n: [] for n in names}
        per_round: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        cpu_round: dict[str, list[float]] = {n: [] for n in names}
        for rnd in range(rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                prepare_timing()
                tracker = flushes[name].tracker if name in flushes else None
                block, cpu_us = await _time_calls(
                    variants[name], prompts, iterations, tracker.flush if tracker is not None else None
                )
                latencies[name].extend(block)
                per_round[name].append(p50_p99_us(block))
                cpu_round[name].append(cpu_us)

        tracked = {}
        for label, router in (("pinned", pinned_on), ("auto", auto_on)):
            tracker = router.tracker
            assert tracker is not None
            await tracker.flush()
            tracked[label] = {"written": tracker.written, "dropped": tracker.dropped}

        profiles = {
            name: await _profiled(variants[name], prompts, profile_calls)
            for name in ("raw", "pinned, tracking off", "pinned, tracking on")
        }
        bytecodes = {
            name: await _counted(variants[name], prompts, min(DEFAULT_COUNT_CALLS, profile_calls))
            for name in ("raw", "transport", "pinned, tracking off", "raw auto", "auto, tracking off")
        }
        await http.aclose()

    pooled = {name: p50_p99_us(samples) for name, samples in latencies.items()}

    def p50(name: str) -> float:
        return pooled[name][0]

    def p99(name: str) -> float:
        return pooled[name][1]

    def overhead(name: str, base: str) -> float:
        return p50(name) - p50(base)

    figures = [
        figure("raw aiohttp POST p50", p50("raw"), "us"),
        figure("raw aiohttp POST p99", p99("raw"), "us"),
    ]
    for name in ("pinned, tracking on", "pinned, tracking off", "auto, tracking on", "auto, tracking off"):
        base = "raw auto" if name.startswith("auto") else "raw"
        figures.append(figure(f"aroute {name}: p50", p50(name), "us"))
        figures.append(figure(f"aroute {name}: p99", p99(name), "us"))
        figures.append(
            figure(f"aroute {name}: overhead p50", overhead(name, base), "us", target=TARGET_OVERHEAD_US, op="<=")
        )
        # The same overhead as client CPU per request (process time, every thread, so the SQLite writer too):
        # unlike wall latency it does not move with what else the shared machine runs.
        cpu = median(r - b for r, b in zip(cpu_round[name], cpu_round[base], strict=True))
        figures.append(
            figure(f"aroute {name}: client CPU overhead per request", cpu, "us", target=TARGET_OVERHEAD_US, op="<=")
        )
    # What routing costs over its own transport (no target: the target is against raw aiohttp, what users compare)
    figures.append(figure("router's transport alone (no routing) p50", p50("transport"), "us"))
    figures.append(figure("raw aiohttp POST p50 / router's transport alone p50", p50("raw") / p50("transport"), "x"))
    for name in ("pinned, tracking on", "pinned, tracking off"):
        figures.append(
            figure(f"aroute {name}: routing cost over its own transport p50", overhead(name, "transport"), "us")
        )
        cpu = median(r - b for r, b in zip(cpu_round[name], cpu_round["transport"], strict=True))
        figures.append(figure(f"aroute {name}: routing cost over its own transport, client CPU", cpu, "us"))
    figures.append(
        figure("Python bytecodes per request: router's transport alone", sum(bytecodes["transport"].values()), "ops")
    )
    for name, base in (("pinned, tracking off", "raw"), ("auto, tracking off", "raw auto")):
        router_ops, raw_ops = sum(bytecodes[name].values()), sum(bytecodes[base].values())
        figures.append(figure(f"Python bytecodes per request: {base}", raw_ops, "ops"))
        figures.append(figure(f"Python bytecodes per request: aroute {name}", router_ops, "ops"))
        figures.append(figure(f"bytecodes per request: aroute {name} / {base}", router_ops / raw_ops, "x"))
    ops_diff = {
        k: round(bytecodes["pinned, tracking off"].get(k, 0.0) - bytecodes["raw"].get(k, 0.0))
        for k in set(bytecodes["pinned, tracking off"]) | set(bytecodes["raw"])
    }
    ops_diff = dict(sorted(ops_diff.items(), key=lambda kv: -kv[1]))
    profile_off, profile_on = profiles["pinned, tracking off"], profiles["pinned, tracking on"]
    router_minus_raw = area_diff(profile_off, profiles["raw"])
    tracking_cost = area_diff(profile_on, profile_off)

    def top(diff: dict[str, float], n: int = 8) -> str:
        return ", ".join(f"{k} {v:+.1f}" for k, v in list(diff.items())[:n])

    notes = [
        f"concurrency 1, {rounds} round(s) x {iterations} calls per variant (interleaved blocks) after {warmup} "
        "warm-up calls; p50/p99 over all calls; overhead = router p50 - raw p50; CPU overhead = median over rounds "
        "of the same round's difference",
        "auto overheads are against 'raw auto' (each prompt posted to the model the router picks)",
        "the router's transport skips ClientSession.post (redirects, cookies, tracing, per-call header and payload "
        "objects); 'routing cost over its own transport' is the router against that transport with no routing "
        "(pinned, the same model and prompts), i.e. what the routing features themselves cost",
        f"tracker rows written during the run: {tracked} (the SQLite writer ran)",
        f"profile (cProfile, us/request; it inflates absolute times, use the ranking): router (tracking off) "
        f"minus raw, by area: {top(router_minus_raw)}",
        f"profile: tracking on minus tracking off, by area: {top(tracking_cost, 5)}",
        "bytecodes per request (tracking off: under tracing the writer's batches shrink, so a tracking-on count "
        "would overstate it), router (pinned) minus raw, by area: "
        + ", ".join(f"{k} {v:+d}" for k, v in list(ops_diff.items())[:10]),
        "profile: top asyncrouter functions by own time (us/request): "
        + "; ".join(f"{row['function']} {row['tottime_us']}" for row in profile_off["top_asyncrouter_tottime"][:10]),
    ]
    details = {
        "rounds": rounds,
        "iterations": iterations,
        "warmup": warmup,
        "per_round_us": {k: [[round(a, 2), round(b, 2)] for a, b in v] for k, v in per_round.items()},
        "auto_models": auto_model,
        "tracker": tracked,
        "bytecodes_per_request_by_area": bytecodes,
        "profile": {
            **profiles,
            "router_minus_raw_by_area_us": router_minus_raw,
            "tracking_on_minus_off_by_area_us": tracking_cost,
            "note": "cProfile inflates absolute times; use the ranking. The SQLite writer's thread is not profiled.",
        },
    }
    return make_result(NAME, figures, notes, details=details)


def run(quick: bool = False) -> Result:
    """Measure the router's per-request overhead against raw aiohttp; see the module docstring.

    Args:
        quick: one short round (a smoke run): the figures are noisy.
    """
    rounds, iterations, warmup, profile_calls = (
        (QUICK_ROUNDS, QUICK_ITERATIONS, QUICK_WARMUP, QUICK_PROFILE_CALLS)
        if quick
        else (DEFAULT_ROUNDS, DEFAULT_ITERATIONS, DEFAULT_WARMUP, DEFAULT_PROFILE_CALLS)
    )
    return run_against_fleet(
        lambda fleet, tmp: _bench(
            fleet, tmp, rounds=rounds, iterations=iterations, warmup=warmup, profile_calls=profile_calls
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    return script_main(run, argv, description=__doc__.splitlines()[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(main())
