"""benchmarks/bench_quality.py runs and reports well-formed figures (never its speed: no timing assertions)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quality_benchmark_reports_every_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # `benchmarks` lives beside `tests`, not inside the package
    bench = importlib.import_module("benchmarks.bench_quality")
    result = bench.run(quick=True)
    assert result["name"] == "quality"
    assert result["skipped"] is None
    metrics = [f["metric"] for f in result["figures"]]
    assert len(metrics) == 2 * len(result["details"]) == 12
    for f in result["figures"]:
        assert isinstance(f["value"], int | float)
        assert math.isfinite(f["value"])
        assert f["value"] > 0
    # one figure has a target, and its verdict agrees with its value
    (target,) = [f for f in result["figures"] if f["target"] is not None]
    assert target["metric"] == "fleet-like replies (8 prompts): bytecodes per check()"
    assert target["ok"] == (target["value"] <= target["target"])
