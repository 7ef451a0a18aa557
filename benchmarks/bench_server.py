"""Server throughput: requests/s of the OpenAI-compatible server, driven from another process.

Usage::

    python benchmarks/bench_server.py [--quick] [--json OUT]

Three processes on loopback: the fake fleet (:func:`benchmarks._common.steady_fleet`), the server
(``asyncrouter.server.serve(config, host="127.0.0.1", port=0)``, as ``asyncrouter serve`` runs it: a Router
over the fleet with tracking on, in a temporary SQLite file, and a bearer key), and this process, the load
generator: one :class:`aiohttp.ClientSession` and C workers POSTing ``/v1/chat/completions`` with
``model: "auto"`` until N requests are done. Every non-200 reply, transport error or body without
``choices`` counts as an error.

The same load generator also drives the fake fleet directly, alternating with the server round by round: that
rate is the ceiling of this machine for the same requests, so the server's rate is reported against it too
(medians over rounds). Target: at least 1,000 requests/s with zero
errors. When ``asyncrouter.server`` has no ``serve`` yet, the benchmark is skipped with a note.

With ``wrk`` on the PATH (Debian: ``apt-get install wrk``) it is the load generator instead, with the same
bodies, headers, connections and error checks (a Lua script; a body without ``choices`` is an error): a load
generator in C spends about a tenth of the CPU per request of a Python one, which on a 2-core machine is CPU
the server and the fleet get back. ``--load python`` forces the aiohttp generator; the result says which ran.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
import anyio

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    PROMPTS,
    READY_PREFIX,
    ChildProcess,
    FleetProcess,
    Result,
    environment,
    figure,
    format_result,
    make_result,
    median,
    p50_p99_us,
    prepare_timing,
    timed,
    write_json,
)

NAME: Final = "server"
TARGET_RPS: Final = 1_000.0
#: the environment variable the server child reads its bearer key from
KEY_ENV: Final = "ASYNCROUTER_BENCH_SERVER_KEY"
DEFAULT_REQUESTS: Final = 6_000
DEFAULT_ROUNDS: Final = 3
DEFAULT_WARMUP: Final = 500
QUICK_REQUESTS: Final = 600
QUICK_ROUNDS: Final = 1
QUICK_WARMUP: Final = 100
CONCURRENCY: Final = 64
#: seconds each wrk run lasts (wrk runs for a duration, not a count); the warm-up is shorter
WRK_SECONDS: Final = 8
QUICK_WRK_SECONDS: Final = 2
WRK_WARMUP_SECONDS: Final = 2


def load_serve() -> Callable[..., Awaitable[None]] | str:
    """``asyncrouter.server.serve``, or why it is not available (a reason to skip)."""
    try:
        module = importlib.import_module("asyncrouter.server")
    except ImportError as exc:
        return f"asyncrouter.server is not importable ({exc})"
    serve = getattr(module, "serve", None)
    if not callable(serve):
        return "asyncrouter.server has no serve() yet"
    return serve  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------------- the server child


async def _serve_router(config: dict[str, Any]) -> None:
    serve = load_serve()
    if isinstance(serve, str):
        raise SystemExit(serve)

    def ready(url: str) -> None:
        print(READY_PREFIX + json.dumps({"url": url}), flush=True)

    # serve() opens and closes the router and stops on SIGTERM (ChildProcess sends it)
    await serve(config, host="127.0.0.1", port=0, api_key_env=KEY_ENV, on_ready=ready)


# ------------------------------------------------------------------------------------------------- load generator


async def _load(
    url: str, body_for: Callable[[str], dict[str, Any]], headers: dict[str, str], *, n: int, concurrency: int
) -> dict[str, Any]:
    """N POSTs to *url* from *concurrency* workers; requests/s, latency percentiles and errors."""
    source: Iterator[int] = iter(range(n))
    latencies: list[int] = []
    errors: dict[str, int] = {}
    perf = time.perf_counter_ns
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in source:
            body = body_for(PROMPTS[i % len(PROMPTS)])
            t0 = perf()
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    data = await resp.read()
                    status = resp.status
                if status != 200:
                    kind = f"HTTP {status}"
                elif "choices" not in json.loads(data):
                    kind = "no choices"
                else:
                    kind = ""
            except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
                kind = type(exc).__name__
            latencies.append(perf() - t0)
            if kind:
                errors[kind] = errors.get(kind, 0) + 1

    prepare_timing()
    async with aiohttp.ClientSession(connector=connector) as session:
        with timed() as elapsed:
            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker, session)
        seconds = elapsed()
    p50, p99 = p50_p99_us(latencies)
    return {
        "requests": n,
        "seconds": round(seconds, 3),
        "requests_per_s": round(n / seconds, 1),
        "p50_ms": round(p50 / 1000, 3),
        "p99_ms": round(p99 / 1000, 3),
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


_WRK_SCRIPT: Final = """
wrk.method = "POST"
local bodies = {%(bodies)s}
local i = 0
bad = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"choices"', 1, true) then bad = bad + 1 end
end
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
done = function(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "bad": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect, e.read, e.write, e.timeout))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for this ASCII-safe text


def _wrk(
    url: str,
    body_for: Callable[[str], dict[str, Any]],
    headers: dict[str, str],
    *,
    seconds: int,
    concurrency: int,
    tmp: str,
) -> dict[str, Any]:
    """wrk against *url* for *seconds* with *concurrency* connections on one thread; the same result shape."""
    bodies = ", ".join(_lua_string(json.dumps(body_for(p), ensure_ascii=True)) for p in PROMPTS)
    script = os.path.join(tmp, "load.lua")
    Path(script).write_text(_WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", script]
    for k, v in {"Content-Type": "application/json", **headers}.items():
        argv += ["-H", f"{k}: {v}"]
    # -H sets the headers of wrk.format(nil, ...) in the script (the script sets the method)
    proc = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    r = json.loads(line[len("RESULT ") :])
    n, secs = r["requests"], r["duration_us"] / 1e6
    errors = {k: r[k] for k in ("bad", "connect", "read", "write", "timeout") if r[k]}
    return {
        "requests": n,
        "seconds": round(secs, 3),
        "requests_per_s": round(n / secs, 1),
        "p50_ms": round(r["p50_us"] / 1000, 3),
        "p99_ms": round(r["p99_us"] / 1000, 3),
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


async def _drive(
    server_url: str,
    key: str,
    fleet: FleetProcess,
    *,
    n: int,
    rounds: int,
    warmup: int,
    wrk_seconds: int | None = None,
    tmp: str = "",
) -> dict[str, list[dict[str, Any]]]:
    def server_body(prompt: str) -> dict[str, Any]:
        return {"model": "auto", "messages": [{"role": "user", "content": prompt}]}

    cheap = fleet.model_entry("fake-cheap")
    fleet_headers = {"Authorization": f"Bearer {cheap['api_keys'][0]}"} if cheap.get("api_keys") else {}

    def fleet_body(prompt: str) -> dict[str, Any]:
        return {"model": cheap["model_id"], "messages": [{"role": "user", "content": prompt}]}

    server_headers = {"Authorization": f"Bearer {key}"}
    server_endpoint = f"{server_url}/v1/chat/completions"
    fleet_endpoint = f"{cheap['base_url']}/chat/completions"
    if wrk_seconds is not None:
        targets = (
            ("server", server_endpoint, server_body, server_headers),
            ("fleet direct", fleet_endpoint, fleet_body, fleet_headers),
        )
        for _, url, body_for, headers in targets:
            _wrk(url, body_for, headers, seconds=WRK_WARMUP_SECONDS, concurrency=CONCURRENCY, tmp=tmp)
        runs: dict[str, list[dict[str, Any]]] = {"server": [], "fleet direct": []}
        for _ in range(rounds):
            for name, url, body_for, headers in targets:
                runs[name].append(_wrk(url, body_for, headers, seconds=wrk_seconds, concurrency=CONCURRENCY, tmp=tmp))
        return runs
    await _load(server_endpoint, server_body, server_headers, n=warmup, concurrency=CONCURRENCY)
    await _load(fleet_endpoint, fleet_body, fleet_headers, n=warmup, concurrency=CONCURRENCY)
    out: dict[str, list[dict[str, Any]]] = {"server": [], "fleet direct": []}
    # alternate the two so a change in the machine's load hits both alike
    for _ in range(rounds):
        out["server"].append(await _load(server_endpoint, server_body, server_headers, n=n, concurrency=CONCURRENCY))
        out["fleet direct"].append(await _load(fleet_endpoint, fleet_body, fleet_headers, n=n, concurrency=CONCURRENCY))
    return out


def run(quick: bool = False, load: str = "auto") -> Result:
    """Measure the OpenAI-compatible server's throughput; see the module docstring.

    Args:
        quick: a few hundred requests (a smoke run).
        load: ``"wrk"``, ``"python"`` (the aiohttp load generator), or ``"auto"``: wrk when it is on the PATH.
    """
    use_wrk = load == "wrk" or (load == "auto" and shutil.which("wrk") is not None)
    if load == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not on the PATH (Debian: apt-get install wrk)")
    n, rounds, warmup = (
        (QUICK_REQUESTS, QUICK_ROUNDS, QUICK_WARMUP) if quick else (DEFAULT_REQUESTS, DEFAULT_ROUNDS, DEFAULT_WARMUP)
    )
    serve = load_serve()
    if isinstance(serve, str):
        return make_result(
            NAME,
            [],
            [f"skipped: {serve}; rerun `python benchmarks/bench_server.py` once the server module lands"],
            skipped=serve,
        )
    key = secrets.token_hex(16)
    with timed() as elapsed, FleetProcess(fleet="steady") as fleet, tempfile.TemporaryDirectory() as tmp:
        config_path = os.path.join(tmp, "config.json")
        Path(config_path).write_text(
            json.dumps(fleet.config(tracker_path=os.path.join(tmp, "server.db"))), encoding="utf-8"
        )
        child = ["-m", "benchmarks.bench_server", "--serve-config", config_path]
        with ChildProcess(child, env={KEY_ENV: key}) as server:
            wrk_seconds = (QUICK_WRK_SECONDS if quick else WRK_SECONDS) if use_wrk else None
            out = anyio.run(
                lambda: _drive(
                    str(server.info["url"]),
                    key,
                    fleet,
                    n=n,
                    rounds=rounds,
                    warmup=warmup,
                    wrk_seconds=wrk_seconds,
                    tmp=tmp,
                )
            )
    s, f = out["server"], out["fleet direct"]
    error_kinds: dict[str, int] = {}
    for r in s:
        for kind, count in r["error_kinds"].items():
            error_kinds[kind] = error_kinds.get(kind, 0) + count
    figures = [
        figure(
            f"server requests/s (C={CONCURRENCY})",
            median(r["requests_per_s"] for r in s),
            "req/s",
            target=TARGET_RPS,
            op=">=",
        ),
        figure("server errors", sum(r["errors"] for r in s), "count", target=0, op="<="),
        figure("server latency p50", median(r["p50_ms"] for r in s), "ms"),
        figure("server latency p99", median(r["p99_ms"] for r in s), "ms"),
        figure("fake fleet direct requests/s (same load generator)", median(r["requests_per_s"] for r in f), "req/s"),
        figure(
            "server / fleet direct",
            median(a["requests_per_s"] / b["requests_per_s"] for a, b in zip(s, f, strict=True)),
            "x",
        ),
    ]
    generator = (
        f"wrk (1 thread, {CONCURRENCY} connections, {wrk_seconds} s per run)"
        if wrk_seconds is not None
        else f"{n:,} requests per run from {CONCURRENCY} workers on one aiohttp session"
    )
    notes = [
        f"load generator: {generator}; {rounds} round(s) to each, alternating, after a warm-up; medians over "
        f"rounds; load generator, server and fleet each in its own process ({os.cpu_count()} CPUs shared)",
        "server: asyncrouter.server.serve(config) with a bearer key, Router tracking on (SQLite file)",
    ]
    if error_kinds:
        notes.append(f"server errors by kind: {error_kinds}")
    result = make_result(NAME, figures, notes, details=out)
    result["seconds"] = round(elapsed(), 2)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few hundred requests (a smoke run)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON to OUT")
    parser.add_argument(
        "--load", choices=("auto", "wrk", "python"), default="auto", help="the load generator (auto: wrk if installed)"
    )
    parser.add_argument("--serve-config", metavar="CONFIG_JSON", help=argparse.SUPPRESS)  # the server child
    args = parser.parse_args(argv)
    if args.serve_config:
        asyncio.run(_serve_router(json.loads(Path(args.serve_config).read_text(encoding="utf-8"))))
        return 0
    result = run(quick=args.quick, load=args.load)
    print(format_result(result))
    if args.json:
        write_json(args.json, {"environment": environment(), "results": [result]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
