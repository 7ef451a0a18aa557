"""Helpers shared by the benchmark scripts: figures and results, percentiles, child processes, printing.

Every benchmark returns one *result*::

    {"name": "overhead", "figures": [figure, ...], "notes": ["..."], "details": {...}, "skipped": None,
     "seconds": 12.3}

and every *figure* is ``{"metric", "value", "unit", "target", "op", "ratio", "ok"}``: ``op`` is ``"<="`` for a
limit (latency, memory) and ``">="`` for a target (throughput); ``ratio`` is ``value / target`` measured in the
same run (so ``ok`` is ``ratio <= 1`` for a limit and ``ratio >= 1`` for a target). Informational figures have
``target``, ``op``, ``ratio`` and ``ok`` set to ``None``.

The fake fleet runs in a child process (``python -m benchmarks._common fleet``), so its CPU does not share the
measured client's event loop. The child prints one line, ``READY {"url": ..., "config": {...}}``, where
``config`` is :meth:`asyncrouter.testing.FakeProviderServer.config_dict` of the running fleet, and stops on
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import gc
import json
import math
import os
import platform
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

import anyio

from asyncrouter.testing import FakeModel, FakeProviderServer, default_fleet

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
#: the line prefix a child process prints once it serves
READY_PREFIX: Final = "READY "
#: seconds to wait for a child to print its READY line, and for it to exit after SIGTERM
DEFAULT_CHILD_START_TIMEOUT: Final = 60.0
DEFAULT_CHILD_STOP_TIMEOUT: Final = 15.0
#: functions listed per profile ranking
DEFAULT_PROFILE_TOP: Final = 25

Figure = dict[str, Any]
Result = dict[str, Any]
FleetKind = Literal["steady", "default"]

# Realistic short prompts of several task types, reused across benchmarks so raw and router send the same text.
PROMPTS: Final = (
    "What is the capital of France?",
    "Translate 'the meeting moved to Thursday' into German.",
    "Summarise the plot of Hamlet in two sentences.",
    "Write a Python function that reverses a linked list.",
    "Why is the sky blue?",
    "Suggest three names for a bakery.",
    "Explain the difference between TCP and UDP.",
    "Is 91 a prime number? Explain briefly.",
)


# ------------------------------------------------------------------------------------------------- figures


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    digits = max(0, 4 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def figure(
    metric: str,
    value: float,
    unit: str,
    *,
    target: float | None = None,
    op: Literal["<=", ">="] | None = None,
) -> Figure:
    """One measured figure beside its limit (``op="<="``) or target (``op=">="``).

    ``ratio`` is ``value / target`` (``None`` for a zero target, e.g. "zero errors"); ``ok`` says whether the
    figure meets its limit or target.
    """
    if (target is None) != (op is None):
        raise ValueError("give both target and op, or neither")
    ratio: float | None = None
    ok: bool | None = None
    if target is not None and op is not None:
        ratio = _round(value / target) if target else None
        ok = value <= target if op == "<=" else value >= target
    return {
        "metric": metric,
        "value": _round(float(value)),
        "unit": unit,
        "target": target,
        "op": op,
        "ratio": ratio,
        "ok": ok,
    }


def make_result(
    name: str,
    figures: Sequence[Figure],
    notes: Iterable[str] = (),
    *,
    details: Mapping[str, Any] | None = None,
    skipped: str | None = None,
    seconds: float | None = None,
) -> Result:
    """A benchmark's result: ``{"name", "figures", "notes", "details", "skipped", "seconds"}``."""
    return {
        "name": name,
        "figures": list(figures),
        "notes": list(notes),
        "details": dict(details or {}),
        "skipped": skipped,
        "seconds": None if seconds is None else round(seconds, 2),
    }


# ------------------------------------------------------------------------------------------------- statistics


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted samples."""
    if not sorted_samples:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_samples)))
    return float(sorted_samples[min(rank, len(sorted_samples)) - 1])


def p50_p99_us(samples_ns: Iterable[int]) -> tuple[float, float]:
    """p50 and p99 of nanosecond samples, in microseconds."""
    s = sorted(samples_ns)
    return percentile(s, 50) / 1000.0, percentile(s, 99) / 1000.0


def median(values: Iterable[float]) -> float:
    s = sorted(values)
    if not s:
        raise ValueError("no values")
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def prepare_timing() -> None:
    """Collect garbage before a timed section, so one benchmark's garbage is not charged to the next."""
    gc.collect()


def environment() -> dict[str, Any]:
    """Where the figures were measured: the machine is shared, so the load average matters."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        load = []
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "loadavg": load,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ------------------------------------------------------------------------------------------------- profiles


def _area(filename: str) -> str:
    """Where a profiled function lives: one asyncrouter module, a third-party package, or a stdlib module."""
    f = filename.replace("\\", "/")
    if "/asyncrouter/" in f:
        return "asyncrouter/" + f.rsplit("/asyncrouter/", 1)[1]
    if "/site-packages/" in f:
        return f.rsplit("/site-packages/", 1)[1].split("/", 1)[0]
    if f == "<string>":
        return "generated code (dataclass __init__)"
    if f.startswith(("~", "<")):
        return "C calls (socket send, epoll: include waiting for the server)"
    if "/asyncio/" in f:
        return "asyncio"
    if "/json/" in f:
        return "json"
    return "stdlib " + f.rsplit("/", 1)[-1]


def _label(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    f = filename.replace("\\", "/")
    for marker in ("/asyncrouter/", "/site-packages/", "/lib/python3"):
        if marker in f:
            f = f.rsplit(marker, 1)[1]
            break
    return f"{f}:{line}({name})" if line else name


def _is_own(func: tuple[str, int, str]) -> bool:
    return "/asyncrouter/" in func[0].replace("\\", "/")


def profile_summary(stats: pstats.Stats, calls: int, *, top: int = DEFAULT_PROFILE_TOP) -> dict[str, Any]:
    """Per-call costs from a profile: by area, and the top functions (own and asyncrouter-only)."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = {}
    rows = []
    for func, (_cc, nc, tt, ct, _callers) in raw.items():
        area = _area(func[0])
        by_area[area] = by_area.get(area, 0.0) + tt
        rows.append((func, nc, tt, ct))
    per = 1e6 / calls

    def listing(selected: list[tuple[tuple[str, int, str], int, float, float]], key: int) -> list[dict[str, Any]]:
        best = sorted(selected, key=lambda r: r[key], reverse=True)[:top]
        return [
            {
                "function": _label(f),
                "ncalls_per_request": round(nc / calls, 2),
                "tottime_us": round(tt * per, 2),
                "cumtime_us": round(ct * per, 2),
            }
            for f, nc, tt, ct in best
        ]

    own = [r for r in rows if _is_own(r[0])]
    return {
        "calls": calls,
        "total_us_per_request": round(sum(by_area.values()) * per, 2),
        "by_area_us_per_request": {k: round(v * per, 2) for k, v in sorted(by_area.items(), key=lambda kv: -kv[1])},
        "top_tottime": listing(rows, 2),
        "top_asyncrouter_tottime": listing(own, 2),
        "top_asyncrouter_cumtime": listing(own, 3),
    }


def area_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, float]:
    """Per-area difference of two profiles, largest first (what the first path costs beyond the second)."""
    x, y = a["by_area_us_per_request"], b["by_area_us_per_request"]
    diff = {k: round(x.get(k, 0.0) - y.get(k, 0.0), 2) for k in set(x) | set(y)}
    return dict(sorted(diff.items(), key=lambda kv: -kv[1]))


class BytecodeCounter:
    """Counts the Python bytecodes this thread executes while enabled, by area (see :func:`_area`).

    Unlike a timing, the count does not move with the load of a shared machine, so it shows whether a change
    made the path cheaper. It misses work done in C (regex, json, sockets) and in other threads, and the
    tracing makes the code ~50x slower, so only count, never time, under it. Python 3.11+
    (``frame.f_trace_opcodes``).
    """

    def __init__(self) -> None:
        self.by_area: dict[str, int] = {}
        self._by_code: dict[Any, int] = {}

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            self._by_code[code] = self._by_code.get(code, 0) + 1
        return self._trace

    @contextlib.contextmanager
    def enabled(self) -> Iterator[None]:
        """Count while inside the block (code running in this thread: the event loop and its tasks)."""
        previous = sys.gettrace()
        sys.settrace(self._trace)
        try:
            yield
        finally:
            sys.settrace(previous)
            for code, n in self._by_code.items():
                area = _area(code.co_filename)
                self.by_area[area] = self.by_area.get(area, 0) + n
            self._by_code.clear()

    @property
    def total(self) -> int:
        return sum(self.by_area.values())


# ------------------------------------------------------------------------------------------------- child processes


class ChildProcess:
    """A Python child process that prints ``READY <json>`` once it serves, and stops on SIGTERM.

    Args:
        args: arguments after ``python``, e.g. ``["-m", "benchmarks._common", "fleet"]``.
        env: environment variables to set in the child (on top of this process's).
        start_timeout: seconds to wait for the READY line.

    Use it as a context manager; :attr:`info` is the decoded JSON of the READY line.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        start_timeout: float = DEFAULT_CHILD_START_TIMEOUT,
    ) -> None:
        self._args = [sys.executable, *args]
        self._env = dict(env or {})
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Self:
        # cwd=REPO_ROOT: `python -m benchmarks...` finds this package wherever the parent was started.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self._env}
        proc = subprocess.Popen(self._args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=env)
        self._proc = proc
        try:
            self.info = self._wait_ready(proc)
        except BaseException:
            self._stop()
            raise
        return self

    def _wait_ready(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        deadline = time.monotonic() + self._start_timeout
        seen: list[str] = []
        # The child prints nothing else before READY; readline() returns "" when it dies first.
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(READY_PREFIX):
                info: dict[str, Any] = json.loads(line[len(READY_PREFIX) :])
                return info
            seen.append(line.rstrip())
        raise RuntimeError(f"child {self._args[1:]} did not become ready (exit {proc.poll()}): {seen[-5:]}")

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=DEFAULT_CHILD_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the child process is not running")
        return self._proc.pid


def steady_fleet() -> list[FakeModel]:
    """:func:`default_fleet` at speed 0 with no faults, hedging or refusals.

    Every request then costs exactly one provider call, so the router's figures measure the router, not the
    cascade (which the default fleet's hedged replies would trigger now and then).
    """
    return [dataclasses.replace(m, hedge_rate=0.0, refusal_rate=0.0) for m in default_fleet(speed=0.0, faults=False)]


class FleetProcess(ChildProcess):
    """The fake provider fleet served by a child process on 127.0.0.1 (a free port).

    Args:
        fleet: ``"steady"`` (:func:`steady_fleet`) or ``"default"`` (``default_fleet(speed=0, faults=False)``).
        seed: seed of the fake server's replies.
    """

    def __init__(self, *, fleet: FleetKind = "steady", seed: int = 0) -> None:
        super().__init__(["-m", "benchmarks._common", "fleet", "--fleet", fleet, "--seed", str(seed)])

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def config(self, *, tracker_path: str | None, **top_level: Any) -> dict[str, Any]:
        """A Router config for the fleet (the child's ``config_dict``) with this tracker path."""
        cfg: dict[str, Any] = copy.deepcopy(self.info["config"])
        cfg["tracker"] = {"path": tracker_path}
        cfg.update(top_level)
        return cfg

    def model_entry(self, alias: str) -> dict[str, Any]:
        """The config entry of one model (its ``base_url``, ``model_id`` and keys)."""
        for entry in self.info["config"]["models"]:
            if entry["name"] == alias:
                return dict(entry)
        raise KeyError(alias)


async def _serve_fleet(kind: FleetKind, seed: int) -> None:
    models = steady_fleet() if kind == "steady" else default_fleet(speed=0.0, faults=False)
    # record=False: a benchmark sends 100k+ requests; keeping each one would grow the child by gigabytes.
    async with FakeProviderServer(models=models, seed=seed, record=False) as srv:
        await serve_until_signal({"url": srv.url, "config": srv.config_dict(provider="openai")})


async def serve_until_signal(info: Mapping[str, Any]) -> None:
    """In a child process: print the READY line with *info*, then wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    print(READY_PREFIX + json.dumps(info), flush=True)
    await stop.wait()


# ------------------------------------------------------------------------------------------------- output


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _verdict(fig: Figure) -> str:
    if fig["ok"] is None:
        return ""
    return "ok" if fig["ok"] else "MISS"


def format_result(result: Result) -> str:
    """A plain-text table of one result: each figure beside its limit or target and the ratio."""
    lines = [f"== {result['name']}" + (f"  ({result['seconds']} s)" if result.get("seconds") is not None else "")]
    if result.get("skipped"):
        lines.append(f"   skipped: {result['skipped']}")
    figs = result["figures"]
    if figs:
        width = max(len(f["metric"]) for f in figs)
        for f in figs:
            target = f"{f['op']} {_fmt(f['target'])}" if f["op"] else ""
            ratio = f"x{_fmt(f['ratio'])}" if f["ratio"] is not None else ""
            lines.append(
                f"   {f['metric']:<{width}}  {_fmt(f['value']):>10} {f['unit']:<9} {target:>12} {ratio:>8}  "
                f"{_verdict(f)}"
            )
    lines.extend(f"   note: {n}" for n in result["notes"])
    return "\n".join(lines)


def markdown(results: Sequence[Result], env: Mapping[str, Any] | None = None) -> str:
    """One Markdown table of every figure, then the notes."""
    out = ["# asyncrouter benchmarks", ""]
    if env:
        out += [
            f"Python {env.get('python')} on {env.get('system')} {env.get('machine')}, {env.get('cpus')} CPUs, "
            f"load average {env.get('loadavg')}, {env.get('time')}.",
            "",
        ]
    out += ["| benchmark | metric | value | unit | limit/target | ratio | ok |", "|---|---|---:|---|---:|---:|---|"]
    for r in results:
        if r.get("skipped"):
            out.append(f"| {r['name']} | skipped: {r['skipped']} | | | | | |")
        for f in r["figures"]:
            target = f"{f['op']} {_fmt(f['target'])}" if f["op"] else ""
            ratio = _fmt(f["ratio"]) if f["ratio"] is not None else ""
            out.append(
                f"| {r['name']} | {f['metric']} | {_fmt(f['value'])} | {f['unit']} | {target} | {ratio} | "
                f"{_verdict(f)} |"
            )
    out.append("")
    for r in results:
        if r["notes"]:
            out.append(f"**{r['name']}**")
            out.append("")
            out.extend(f"- {n}" for n in r["notes"])
            out.append("")
    return "\n".join(out)


def write_json(path: str | Path, data: Any) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def script_main(run: Callable[..., Result], argv: Sequence[str] | None, *, description: str | None) -> int:
    """The command line of one ``bench_X.py``: ``[--quick] [--json OUT]``; prints the table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small iteration counts (a smoke run)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON to OUT")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    print(format_result(result))
    if args.json:
        write_json(args.json, {"environment": environment(), "results": [result]})
    return 0


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed: ...; elapsed()`` gives the seconds spent in the block (so far)."""
    start = time.perf_counter_ns()
    end: list[int] = []

    def elapsed() -> float:
        return ((end[0] if end else time.perf_counter_ns()) - start) / 1e9

    try:
        yield elapsed
    finally:
        end.append(time.perf_counter_ns())


def run_against_fleet(bench: Callable[[FleetProcess, str], Awaitable[Result]]) -> Result:
    """``await bench(fleet, tmp)`` in a fresh event loop, against a steady fleet in a child process and with a
    temporary directory; the result's ``seconds`` is the whole run, the fleet's start and stop included."""
    with timed() as elapsed, FleetProcess(fleet="steady") as fleet, tempfile.TemporaryDirectory() as tmp:
        result = anyio.run(bench, fleet, tmp)
    result["seconds"] = round(elapsed(), 2)
    return result


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._common", description="benchmark child processes")
    sub = parser.add_subparsers(dest="command", required=True)
    fleet = sub.add_parser("fleet", help="serve the fake fleet until SIGTERM; print READY <json>")
    fleet.add_argument("--fleet", choices=("steady", "default"), default="steady")
    fleet.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "fleet":
        asyncio.run(_serve_fleet(args.fleet, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
