"""The benchmark suite runs end to end and reports well-formed figures (never its speed: no timing assertions)."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ("classify", "overhead", "batch", "tracker", "budget", "memory", "server")
FIGURE_KEYS = {"metric", "value", "unit", "target", "op", "ratio", "ok"}


@pytest.fixture
def common(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # `benchmarks` lives beside `tests`, not inside the package
    return importlib.import_module("benchmarks._common")


@pytest.fixture
def runner(common: ModuleType) -> ModuleType:
    return importlib.import_module("benchmarks.__main__")


def _server_available() -> bool:
    try:
        module = importlib.import_module("asyncrouter.server")
    except ImportError:
        return False
    return callable(getattr(module, "serve", None))


def _check_figure(f: dict[str, Any]) -> None:
    assert set(f) == FIGURE_KEYS, f
    assert isinstance(f["metric"], str)
    assert f["metric"]
    assert isinstance(f["unit"], str)
    assert f["unit"]
    assert isinstance(f["value"], int | float), f
    assert math.isfinite(f["value"]), f
    if f["target"] is None:
        assert (f["op"], f["ratio"], f["ok"]) == (None, None, None), f
        return
    assert f["op"] in ("<=", ">=")
    assert isinstance(f["ok"], bool)
    # ok and ratio agree with value and target (a consistency check of the report, not a speed target)
    assert f["ok"] == (f["value"] <= f["target"] if f["op"] == "<=" else f["value"] >= f["target"]), f
    if f["target"]:
        assert f["ratio"] == pytest.approx(f["value"] / f["target"], rel=1e-2, abs=1e-3), f


# ------------------------------------------------------------------------------------------------- fast checks


@pytest.mark.parametrize(
    ("value", "target", "op", "ratio", "ok"),
    [
        pytest.param(120.0, 150.0, "<=", 0.8, True, id="limit-met"),
        pytest.param(300.0, 150.0, "<=", 2.0, False, id="limit-missed"),
        pytest.param(1700.0, 1000.0, ">=", 1.7, True, id="target-met"),
        pytest.param(0.5, 0.85, ">=", 0.5882, False, id="target-missed"),
        pytest.param(0, 0, "<=", None, True, id="zero-errors"),
        pytest.param(3, 0, "<=", None, False, id="some-errors"),
    ],
)
def test_figure_ratio_and_verdict(
    common: ModuleType, value: float, target: float, op: str, ratio: float | None, ok: bool
) -> None:
    f = common.figure("m", value, "us", target=target, op=op)
    assert f["ratio"] == (None if ratio is None else pytest.approx(ratio, rel=1e-3))
    assert f["ok"] is ok
    _check_figure(f)


def test_figure_without_target_is_informational(common: ModuleType) -> None:
    f = common.figure("raw p50", 595.123456, "us")
    assert (f["target"], f["op"], f["ratio"], f["ok"]) == (None, None, None, None)
    assert f["value"] == pytest.approx(595.12)
    with pytest.raises(ValueError, match="both"):
        common.figure("m", 1.0, "us", target=1.0)


def test_percentiles_are_nearest_rank(common: ModuleType) -> None:
    samples = [float(x) for x in range(1, 101)]
    assert common.percentile(samples, 50) == 50.0
    assert common.percentile(samples, 99) == 99.0
    assert common.percentile([7.0], 99) == 7.0
    assert common.p50_p99_us([3000, 1000, 2000]) == (2.0, 3.0)
    assert common.median([5.0, 1.0, 3.0, 10.0]) == 4.0


def test_markdown_has_a_row_per_figure_and_the_skips(common: ModuleType) -> None:
    results = [
        common.make_result("a", [common.figure("x", 1.0, "us", target=2.0, op="<="), common.figure("y", 3.0, "MB")]),
        common.make_result("b", [], ["why"], skipped="no server"),
    ]
    md = common.markdown(results)
    assert "| a | x | 1 | us | <= 2 | 0.5 | ok |" in md
    assert "| a | y | 3 | MB |  |  |  |" in md
    assert "| b | skipped: no server |" in md
    assert "- why" in md


def test_child_process_reads_ready_line_and_stops(common: ModuleType) -> None:
    code = "import json, signal; print('READY ' + json.dumps({'url': 'u'}), flush=True); signal.pause()"
    with common.ChildProcess(["-c", code]) as child:
        assert child.info == {"url": "u"}
        proc = child._proc
    assert proc.returncode is not None  # terminated and reaped


def test_child_process_that_dies_before_ready_raises(common: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="did not become ready"), common.ChildProcess(["-c", "print('oops')"]):
        pass


def test_runner_rejects_unknown_benchmarks(runner: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["--only", "classify,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert runner.main(["--bogus"]) == 2


def test_runner_reports_a_benchmark_that_fails_and_runs_the_rest(
    runner: ModuleType, common: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(quick: bool) -> Any:
        raise RuntimeError("fleet did not start")

    def fine(quick: bool) -> Any:
        return common.make_result("fine", [common.figure("x", 1.0, "us")])

    monkeypatch.setitem(runner.BENCHMARKS, "boom", boom)
    monkeypatch.setitem(runner.BENCHMARKS, "fine", fine)
    results, failed = runner.run_benchmarks(["boom", "fine"], quick=True, echo=None)
    assert failed == ["boom"]
    assert [r["name"] for r in results] == ["boom", "fine"]
    assert "fleet did not start" in results[0]["notes"][0]
    assert "RuntimeError" in results[0]["error"]
    assert results[1]["figures"][0]["value"] == 1.0


# ------------------------------------------------------------------------------------------------- the whole suite


@pytest.mark.slow
def test_quick_suite_reports_every_benchmark(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out), "--markdown", str(md)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["quick"] is True
    results = {r["name"]: r for r in data["results"]}
    assert tuple(results) == EXPECTED
    for name, result in results.items():
        assert "error" not in result, result.get("error")
        if name == "server" and not _server_available():
            assert result["skipped"], result  # skipped with a reason, and only then
            assert result["notes"], result
            continue
        assert result["skipped"] is None, (name, result["skipped"])
        assert result["figures"], name
        for f in result["figures"]:
            _check_figure(f)
        # each benchmark reports at least one figure against a limit or target
        assert any(f["target"] is not None for f in result["figures"]), name
    budget_metrics = {f["metric"] for f in results["budget"]["figures"]}
    assert ("redis: reserve+settle" in budget_metrics) == (shutil.which("redis-server") is not None)
    # the server is driven by wrk exactly when it is installed, and every request it sent was answered well
    assert ("load generator: wrk" in results["server"]["notes"][0]) == (shutil.which("wrk") is not None)
    assert {f["metric"]: f["value"] for f in results["server"]["figures"]}["server errors"] == 0
    table = md.read_text(encoding="utf-8")
    rows = sum(len(r["figures"]) + bool(r["skipped"]) for r in results.values())
    assert table.count("\n| ") - 1 == rows  # one row per figure and per skip, plus the header


@pytest.mark.slow
def test_server_benchmark_with_the_python_load_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    bench_server = importlib.import_module("benchmarks.bench_server")
    result = bench_server.run(quick=True, load="python")
    assert "aiohttp session" in result["notes"][0]
    figures = {f["metric"]: f for f in result["figures"]}
    assert figures["server errors"]["value"] == 0
    assert figures["server requests/s (C=64)"]["value"] > 0
    for f in result["figures"]:
        _check_figure(f)
