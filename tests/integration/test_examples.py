"""Every example runs as a script with no API keys, against the fake fleet it starts itself, and says what it
should; and every example passes mypy --strict."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
TIMEOUT = 120


def run_example(name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}  # really no keys
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=EXAMPLES.parent,
        env=env,
        check=False,
    )


def test_quickstart() -> None:
    proc = run_example("quickstart.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^classify: task=\w+ tier=\w+ chain=fake-", out, re.M)
    assert len(re.findall(r"^  -> fake-(cheap|medium|strong) \(\w+, tier \w+, task \w+\)", out, re.M)) == 5
    assert re.search(r"^  streamed by fake-\w+, \d+ tokens$", out, re.M)
    assert "requests: 6," in out
    assert re.search(r"all-strong would have cost \$\d+\.\d+: \d+% saved", out)


def test_batch_1000() -> None:
    proc = run_example("batch_1000.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    m = re.search(r"^1000 prompts in [\d.]+ s \(\d+/s\), (\d+) answered$", out, re.M)
    assert m
    counts = [int(n) for n in re.findall(r"^  fake-\w+ +(\d+) \(\d+%\)$", out, re.M)]
    assert sum(counts) == int(m.group(1)) == 1000  # every prompt answered, each by exactly one model
    assert len(counts) == 3
    assert re.search(r"^cost \$\d+\.\d\d vs \$\d+\.\d\d all-strong: \d+% saved$", out, re.M)


def test_budget_cap() -> None:
    proc = run_example("budget_cap.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "budget normal -> warn" in out
    assert "budget warn -> downgrade" in out
    assert re.search(r"^request \d+: fake-cheap \(tier \w+, budget downgrade\)", out, re.M)
    assert re.search(r"^request \d+: BudgetExceeded: daily budget", out, re.M)
    m = re.search(r"budget.status\(\): state=\w+ spent=\$([\d.]+) .* limit=\$0\.02", out)
    assert m
    assert float(m.group(1)) <= 0.02


def test_custom_gate() -> None:
    proc = run_example("custom_gate.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"gate_failed: gate min_words: \d+ words < 80 for a long-form answer", out)
    assert len(re.findall(r"^  -> fake-\w+, \d+ words", out, re.M)) == 4
    # a reply the custom gate rejected is never the one returned when a later model passed
    blocks = out.split("\n'")
    for block in blocks:
        if "gate_failed" in block and "quality passed: True" in block:
            rejected = re.findall(r"^  (fake-\w+) +gate_failed", block, re.M)
            accepted = re.search(r"^  -> (fake-\w+),", block, re.M)
            assert accepted
            assert accepted.group(1) not in rejected


def test_aiohttp_service() -> None:
    proc = run_example("aiohttp_service.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^service listening on http://127\.0\.0\.1:\d+/ask$", out, re.M)
    assert re.search(r"^HTTP 200: model=fake-\w+ tier=\w+ cost=\$\d+\.\d+$", out, re.M)
    assert out.rstrip().endswith("service stopped")
    assert "Unclosed" not in proc.stderr
    assert "ResourceWarning" not in proc.stderr


def test_redis_shared_budget() -> None:
    from redis_server import require_redis_server

    require_redis_server()  # skips without the binary, unless CI is set
    proc = run_example("redis_shared_budget.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    spent = [
        float(x)
        for x in re.findall(r"^worker-\d: \d+ replies, \d+ rejected by the budget, spent \$([\d.]+)$", out, re.M)
    ]
    assert len(spent) == 2
    m = re.search(r"total spent by both workers: \$([\d.]+) \(Redis says \$([\d.]+)\) of the \$0\.05 cap", out)
    assert m
    total, in_redis = float(m.group(1)), float(m.group(2))
    assert total == pytest.approx(sum(spent), abs=2e-5)
    assert total == pytest.approx(in_redis, abs=2e-5)  # what the workers were told they spent is what was counted
    assert in_redis <= 0.05
    assert total > 0.04  # the workers really pushed against the cap
    assert "the shared cap held" in out


def test_redis_example_without_the_binary_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no redis-server on this PATH
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "redis_shared_budget.py")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "redis-server is not installed" in proc.stdout


def test_every_example_is_tested() -> None:
    names = {p.name for p in EXAMPLES.glob("*.py")}
    tested = {f"{n.removeprefix('test_')}.py" for n in globals() if n.startswith("test_")}
    assert names <= tested


@pytest.mark.slow
def test_examples_pass_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=EXAMPLES.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
