"""The `asyncrouter` command line, end to end: every command in-process through `main()` (serve in a subprocess),
against the fake fleet running in a background thread with its own event loop, trackers on tmp files."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from anyio.from_thread import BlockingPortal

from asyncrouter import Router
from asyncrouter._demo import DEFAULT_DEMO_BASELINE, demo_prompts, run_demo
from asyncrouter.cli import NO_CONFIG_MESSAGE, PROVIDERS, main, parse_since, starter_config
from asyncrouter.testing import FakeProviderServer, default_fleet

MODELS = ("fake-cheap", "fake-medium", "fake-strong")
SECRET = "sk-test-ABCDEFGHIJKLMNOPQRSTUV"


@pytest.fixture(scope="module")
def fleet(portal: BlockingPortal) -> Iterator[FakeProviderServer]:
    # No hedging, refusals or random faults: what a test sees is what it scripts.
    models = [dataclasses.replace(m, hedge_rate=0.0, refusal_rate=0.0) for m in default_fleet(speed=0, faults=False)]
    with portal.wrap_async_context_manager(FakeProviderServer(models=models, seed=5)) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No config is found by accident: not from the environment, not from the working directory.
    monkeypatch.delenv("ASYNCROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def reset(fleet: FakeProviderServer, portal: BlockingPortal) -> Iterator[None]:
    portal.call(fleet.reset)
    yield
    portal.call(fleet.reset)


def write_config(path: Path, srv: FakeProviderServer, **top: Any) -> Path:
    cfg = srv.config_dict(**top)
    cfg.setdefault("default_model", "fake-cheap")
    cfg.setdefault("retries", {"max_attempts": 1})
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, fleet: FakeProviderServer, reset: None) -> Path:
    """A config pointing at the fleet, tracking into tmp_path/track.db, budget on the sqlite backend."""
    return write_config(
        tmp_path / "router.yaml",
        fleet,
        tracker={"path": str(tmp_path / "track.db")},
        budget={"daily_limit_usd": 5.0, "backend": "sqlite"},
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)  # the whole of stdout is one JSON document


# ------------------------------------------------------------------------------------------------ usage


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys)[0] == 2
    assert run(capsys, "route")[0] == 2  # no prompt
    assert run(capsys, "nosuchcommand")[0] == 2
    assert run(capsys, "batch", "in.txt", "--concurrency", "0")[0] == 2
    code, _, err = run(capsys, "stats", "--since", "yesterday-ish")
    assert code == 2
    assert "neither a duration" in err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("init", "route", "classify", "eval", "batch", "stats", "logs", "budget", "breakers", "serve"):
        assert command in out
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("asyncrouter ")


def test_python_dash_m_is_the_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "asyncrouter", "route", "hello"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert NO_CONFIG_MESSAGE in proc.stderr
    assert proc.stdout == ""


def test_parse_since() -> None:
    from datetime import UTC, datetime, timedelta

    assert parse_since("24h") == timedelta(hours=24)
    assert parse_since("7d") == timedelta(days=7)
    assert parse_since("90s") == timedelta(seconds=90)
    assert parse_since("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    aware = parse_since("2026-01-31T08:00+02:00")
    assert isinstance(aware, datetime)
    assert aware.utcoffset() == timedelta(hours=2)


# ----------------------------------------------------------------------------------------------- config


def test_missing_config_exits_2_with_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "route", "hello")
    assert code == 2
    assert NO_CONFIG_MESSAGE in err
    assert out == ""
    code, _, err = run(capsys, "stats", "--config", "missing.yaml")
    assert code == 2
    assert "missing.yaml" in err


def test_config_comes_from_env_then_working_directory(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCROUTER_CONFIG", str(config))
    assert run_json(capsys, "classify", "What is the capital of Peru?")["chain"]
    monkeypatch.delenv("ASYNCROUTER_CONFIG")
    assert run(capsys, "classify", "What is the capital of Peru?")[0] == 2
    (tmp_path / "asyncrouter.yaml").write_text(config.read_text())
    assert run_json(capsys, "classify", "What is the capital of Peru?")["chain"]


def test_config_error_shows_the_field_path_and_no_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = write_config(tmp_path / "bad.yaml", fleet)
    data = yaml.safe_load(path.read_text())
    data["models"][1]["cost_per_1k_input"] = -1
    data["models"][0]["api_keys"] = [SECRET]
    path.write_text(yaml.safe_dump(data))
    code, out, err = run(capsys, "route", "--config", str(path), "hi")
    assert code == 2
    assert "models[1].cost_per_1k_input" in err
    assert "Traceback" not in err
    assert out == ""
    data["models"][1]["cost_per_1k_input"] = 0.001
    data["models"][0]["api_keys"] = ["${NOT_SET_ANYWHERE_42}"]
    path.write_text(yaml.safe_dump(data))
    code, _, err = run(capsys, "classify", "--config", str(path), "hi")
    assert code == 2
    assert "models[0].api_keys[0]" in err
    assert "NOT_SET_ANYWHERE_42 is not set" in err


# ------------------------------------------------------------------------------------------------- init


@pytest.mark.parametrize("provider", PROVIDERS)
def test_init_writes_a_starter_config_that_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    key_env = {
        "openai": "OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
        "openrouter": "OPENROUTER_API_KEY",
        "huggingface": "HF_TOKEN",
        "ollama": None,
        "google": "GEMINI_API_KEY",
        "openai_compatible": "OPENAI_COMPATIBLE_API_KEY",
    }[provider]
    target = tmp_path / "conf" / "asyncrouter.yaml"
    code, out, _ = run(capsys, "init", "--provider", provider, "--path", str(target))
    assert code == 0
    assert str(target) in out
    text = target.read_text()
    assert "budget:" in text
    assert "tracker:" in text
    assert text.count("#") > 20  # commented
    if key_env is not None:
        assert "${" + key_env in text  # keys are references, never values
        monkeypatch.setenv(key_env, "test-key-value")
    router = Router.from_yaml(target)
    assert [m.name for m in router.config.models] == ["cheap", "strong"]
    assert {m.provider for m in router.config.models} == {provider}
    assert router.config.default_model == "cheap"
    if key_env is not None:
        assert router.config.model("cheap").key_values() == ("test-key-value",)
    # the planner sends a hard prompt to the strong model and a trivial one to the cheap model
    assert router.classify("Prove that there are infinitely many primes, step by step.").chain[0] == "strong"
    assert router.classify("What is the capital of France?").chain[0] == "cheap"
    assert text == starter_config(provider)


@pytest.mark.parametrize(
    ("template", "keys", "providers"),
    [
        (
            "multi-provider",
            ["ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"],
            {"anthropic", "openai", "google"},
        ),
        ("openrouter", ["OPENROUTER_API_KEY"], {"openrouter"}),
    ],
)
def test_init_templates_write_whole_configurations_that_load(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    template: str,
    keys: list[str],
    providers: set[str],
) -> None:
    target = tmp_path / "t.yaml"
    data = run_json(capsys, "init", "--template", template, "--path", str(target))
    assert data == {"path": str(target), "template": template, "key_env": keys}
    for key in keys:
        monkeypatch.setenv(key, f"test-{key.lower()}")
    router = Router.from_yaml(target)
    assert {m.provider for m in router.config.models} == providers
    assert len(router.config.models) >= 7
    # every fallback names a configured model (the loader checks), and every tier has a capable model
    hard = router.classify("Prove that there are infinitely many primes, step by step.")
    easy = router.classify("What is the capital of France?")
    assert router.model_strengths[hard.chain[0]] >= 2
    assert router.config.model(easy.chain[0]).cost_per_1k_output < router.config.model(hard.chain[0]).cost_per_1k_output
    if template == "openrouter":
        assert router.classify("What is the capital of France?", model="free").chain == ["llama-free"]
        assert router.classify("Refactor this function", model="budget-code").chain


def test_init_template_and_provider_exclude_each_other(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys, "init", "--template", "openrouter", "--provider", "openai", "--path", str(tmp_path / "x")
    )
    assert code == 2
    assert "pass one of them" in err


def test_init_refuses_to_overwrite_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "asyncrouter.yaml"
    target.write_text("mine\n")
    code, _, err = run(capsys, "init")
    assert code == 2
    assert "--force" in err
    assert target.read_text() == "mine\n"
    code, _, _ = run(capsys, "init", "--provider", "ollama", "--force")
    assert code == 0
    assert "provider: ollama" in target.read_text()


def test_openai_compatible_key_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    (tmp_path / "c.yaml").write_text(starter_config("openai_compatible"))
    router = Router.from_yaml(tmp_path / "c.yaml")
    assert router.config.model("cheap").key_values() == ()


# ------------------------------------------------------------------------------------------------ route


def test_route_prints_the_reply_and_a_meta_line(
    capsys: pytest.CaptureFixture[str], config: Path, fleet: FakeProviderServer
) -> None:
    code, out, err = run(capsys, "route", "--config", str(config), "What is the capital of Australia?")
    assert code == 0
    assert len(out.strip()) > 20
    line = err.strip().splitlines()[-1]
    assert re.search(r"model fake-\w+ \(openai\) \| layer \w+ \| tier \w+ \| tokens \d+\+\d+", line)
    assert "escalations 0" in line
    assert fleet.calls() == 1


def test_route_json_and_pinned_model(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    data = run_json(capsys, "route", "--config", str(config), "--model", "fake-strong", "--max-tokens", "60", "Hi")
    meta = data["meta"]
    assert meta["model"] == "fake-strong"
    assert meta["routing_layer"] == "pinned"
    assert 0 < meta["output_tokens"] <= 60
    assert meta["estimated_cost_usd"] > 0
    assert data["content"]
    assert [a["model"] for a in meta["attempts"]] == ["fake-strong"]  # pinned: no cascade


def test_route_escalation_shows_in_the_meta_line(
    capsys: pytest.CaptureFixture[str], config: Path, fleet: FakeProviderServer, portal: BlockingPortal
) -> None:
    portal.call(lambda: fleet.set_behaviour("fake-cheap", hedge_rate=1.0))
    code, _, err = run(capsys, "route", "--config", str(config), "What is the capital of Australia?")
    assert code == 0
    assert "escalations 1" in err
    assert "fake-cheap: gate hedging" in err


def test_route_stream(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, err = run(capsys, "route", "--config", str(config), "--stream", "Write a haiku about rain")
    assert code == 0
    assert len(out.split()) > 5
    assert "model fake-" in err
    data = run_json(capsys, "route", "--config", str(config), "--stream", "Write a haiku about rain")
    assert data["meta"]["output_tokens"] > 0


def test_route_reads_the_prompt_from_stdin(
    capsys: pytest.CaptureFixture[str], config: Path, monkeypatch: pytest.MonkeyPatch, fleet: FakeProviderServer
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("What is the capital of Kenya?\n"))
    data = run_json(capsys, "route", "--config", str(config), "-")
    assert data["content"]
    body = fleet.requests[-1].json
    assert body["messages"][-1]["content"].startswith("What is the capital of Kenya?")


def test_failed_request_exits_1_with_the_typed_error(
    capsys: pytest.CaptureFixture[str], config: Path, fleet: FakeProviderServer, portal: BlockingPortal
) -> None:
    for name in MODELS:
        portal.call(fleet.set_faults, name, {"500": 1.0})
    code, out, err = run(capsys, "route", "--config", str(config), "Write a Python function to add two numbers")
    assert code == 1
    assert out == ""
    assert "error: AllProvidersFailed: every model failed" in err
    assert "HTTP 500" in err
    assert "Traceback" not in err
    code, out, err = run(capsys, "route", "--config", str(config), "--json", "What is 2+2?")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["type"] == "AllProvidersFailed"
    assert error["message"].startswith("every model failed")


def test_an_unknown_model_is_bad_usage(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, _, err = run(capsys, "route", "--config", str(config), "--model", "gpt-17", "hi")
    assert code == 2
    assert "unknown model or profile 'gpt-17'" in err


def test_a_key_never_reaches_the_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer, portal: BlockingPortal, reset: None
) -> None:
    path = write_config(tmp_path / "k.yaml", fleet, tracker={"path": None})
    data = yaml.safe_load(path.read_text())
    for m in data["models"]:
        m["api_keys"] = [SECRET]
    path.write_text(yaml.safe_dump(data))
    for name in MODELS:
        portal.call(fleet.set_faults, name, {"401": 1.0})
    code, out, err = run(capsys, "route", "--config", str(path), "What is 2+2?")
    assert code == 1
    assert "AuthenticationError" in err or "AllProvidersFailed" in err
    assert SECRET not in out + err
    assert SECRET[6:] not in out + err


# --------------------------------------------------------------------------------------------- classify


def test_classify_decides_without_calling_any_model(
    capsys: pytest.CaptureFixture[str], config: Path, fleet: FakeProviderServer
) -> None:
    data = run_json(capsys, "classify", "--config", str(config), "Prove that the square root of 2 is irrational")
    assert data["task_type"] == "reasoning"
    assert data["tier"] == "reasoning"
    assert data["chain"][0] in ("fake-medium", "fake-strong")
    assert data["most_expensive_model"] == "fake-strong"
    assert data["estimated_cost_usd"] <= data["max_cost_usd"]
    assert data["signals"]
    code, out, _ = run(capsys, "classify", "--config", str(config), "What is the capital of Peru?")
    assert code == 0
    for label in ("task", "score", "tier", "complexity", "category", "chain", "layer", "reason", "estimated cost"):
        assert label in out
    assert "factual" in out
    assert fleet.calls() == 0


# ------------------------------------------------------------------------------------------------- eval


EVAL_DATA = yaml.safe_dump(
    {
        "examples": [
            {"prompt": "What is the capital of Australia?", "complexity": "simple", "category": "factual"},
            {"prompt": "Prove that there are infinitely many primes.", "category": "reasoning", "tier": "reasoning"},
            {"prompt": "Write a haiku about autumn leaves.", "category": "creative", "task_type": "creative"},
            {"prompt": "What is the capital of Peru?", "complexity": "complex", "category": "code"},
        ]
    }
)


def test_eval_needs_no_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data_file = tmp_path / "labelled.yaml"
    data_file.write_text(EVAL_DATA)
    report = run_json(capsys, "eval", "--data", str(data_file))
    assert report["total"] == 4
    assert report["labelled"]["category"] == 4
    assert 0 < report["accuracy"]["category"] < 1  # the last example is labelled wrong on purpose
    assert any(m["prompt"] == "What is the capital of Peru?" for m in report["misclassified"])
    code, out, _ = run(capsys, "eval", "--data", str(data_file))
    assert code == 0
    assert "Examples: 4" in out
    assert "Confusion category" in out
    assert "Misclassified" in out


def test_eval_on_the_project_dev_set_by_split(capsys: pytest.CaptureFixture[str]) -> None:
    dev = Path(__file__).parents[2] / "asyncrouter" / "data" / "dev_set.yaml"
    examples = yaml.safe_load(dev.read_text())["examples"]
    report = run_json(capsys, "eval", "--data", str(dev), "--split", "test")
    assert report["total"] == sum(1 for e in examples if e.get("split") == "test")


def test_eval_bad_data_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("examples:\n- {prompt: hi, complexity: gigantic}\n")
    code, _, err = run(capsys, "eval", "--data", str(bad))
    assert code == 2
    assert "examples[0].complexity" in err
    assert run(capsys, "eval", "--data", str(tmp_path / "nope.yaml"))[0] == 2


# ------------------------------------------------------------------------------------------------ batch


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_jsonl_with_ids_params_and_errors(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, fleet: FakeProviderServer
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "prompt": "What is 2+2?"}),
                json.dumps({"id": "b", "prompt": "Write a haiku about rain", "max_tokens": 40}),
                "",
                json.dumps({"messages": [{"role": "user", "content": "Hi there, how are you?"}]}),
                json.dumps({"id": 9, "prompt": "Capital of Peru?", "model": "fake-strong"}),
                json.dumps({"id": "bad", "prompt": "x", "no_such_param": 1}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    code, stdout, err = run(capsys, "batch", "--config", str(config), str(src), "--out", str(out))
    assert code == 1  # one line failed
    assert stdout == ""
    assert "5 routed (1 failed)" in err
    lines = {(line.get("id"), line["index"]): line for line in read_jsonl(out)}
    assert set(lines) == {("a", 0), ("b", 1), (None, 2), (9, 3), ("bad", 4)}
    haiku = [r.json for r in fleet.requests if "haiku" in json.dumps(r.json)]
    assert haiku[0]["max_completion_tokens"] == 40  # the line's own params reach the provider
    assert lines[(9, 3)]["meta"]["model"] == "fake-strong"
    assert lines[(9, 3)]["meta"]["routing_layer"] == "pinned"
    assert lines[("bad", 4)]["error"]["type"] == "TypeError"
    for key in (("a", 0), ("b", 1), (None, 2), (9, 3)):
        assert lines[key]["content"]
        assert lines[key]["meta"]["cost_usd"] > 0


def test_batch_text_file_to_stdout_with_a_pinned_model(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    src = tmp_path / "prompts.txt"
    src.write_text("What is 2+2?\n\nName a colour.\nTranslate 'cat' into German.\n")
    code, stdout, _ = run(capsys, "batch", "--config", str(config), str(src), "--model", "fake-medium")
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2]
    assert {line["meta"]["model"] for line in lines} == {"fake-medium"}


def test_batch_resumes_after_a_crash_without_duplicates(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, fleet: FakeProviderServer
) -> None:
    src = tmp_path / "in.jsonl"
    n = 24
    src.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"What is {i} + {i}?"}) + "\n" for i in range(n)))
    out = tmp_path / "out.jsonl"
    assert run(capsys, "batch", "--config", str(config), str(src), "--out", str(out), "--concurrency", "4")[0] == 0
    assert fleet.calls() == n
    # a crash halfway: the file ends in the middle of a line
    raw = out.read_bytes()
    out.write_bytes(raw[: len(raw) // 2])
    kept = {json.loads(line)["id"] for line in out.read_text().splitlines()[:-1]}
    assert 0 < len(kept) < n
    code, _, err = run(capsys, "batch", "--config", str(config), str(src), "--out", str(out))
    assert code == 0
    assert f"{n - len(kept)} routed (0 failed), {len(kept)} already done" in err
    assert fleet.calls() == n + (n - len(kept))  # only the missing lines were routed again
    ids = [line["id"] for line in read_jsonl(out)]
    assert sorted(ids) == sorted(f"q{i}" for i in range(n))  # complete, no duplicates, nothing half-written
    # a third run has nothing left to do
    code, _, err = run(capsys, "batch", "--config", str(config), str(src), "--out", str(out))
    assert code == 0
    assert f"0 routed (0 failed), {n} already done" in err
    assert fleet.calls() == n + (n - len(kept))


def test_batch_writes_each_line_as_it_completes(
    config: Path, tmp_path: Path, fleet: FakeProviderServer, portal: BlockingPortal
) -> None:
    portal.call(lambda: fleet.set_behaviour("fake-strong", latency=3.0, latency_jitter=0.0))
    src = tmp_path / "in.jsonl"
    rows = [{"id": "slow", "prompt": "Prove it", "model": "fake-strong"}]
    rows += [{"id": f"fast{i}", "prompt": f"What is {i}+1?", "model": "fake-cheap"} for i in range(5)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "asyncrouter", "batch", "--config", str(config), str(src), "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the five fast answers land while the slow one is still in flight
            seen = out.read_text().splitlines() if out.exists() else []
            if len(seen) == 5 or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the batch finished before its fast lines were seen"
        assert sorted(json.loads(line)["id"] for line in seen) == [f"fast{i}" for i in range(5)]
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads(out.read_text().splitlines()[-1])["id"] == "slow"


def test_batch_retry_errors_routes_failed_lines_again(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, fleet: FakeProviderServer, portal: BlockingPortal
) -> None:
    src = tmp_path / "in.txt"
    src.write_text("What is 2+2?\nWhat is 3+3?\n")
    out = tmp_path / "out.jsonl"
    portal.call(fleet.set_faults, "fake-cheap", {"500": 1.0})
    code, _, _ = run(capsys, "batch", "--config", str(config), str(src), "--out", str(out), "--model", "fake-cheap")
    assert code == 1
    assert all("error" in line for line in read_jsonl(out))
    portal.call(fleet.set_faults, "fake-cheap", {})
    # without --retry-errors the failed lines count as done
    assert "0 routed" in run(capsys, "batch", "--config", str(config), str(src), "--out", str(out))[2]
    code, _, _ = run(capsys, "batch", "--config", str(config), str(src), "--out", str(out), "--retry-errors")
    assert code == 0
    lines = read_jsonl(out)
    assert sorted(line["index"] for line in lines) == [0, 1]
    assert all("content" in line for line in lines)


def test_batch_rejects_bad_input_before_any_request(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, fleet: FakeProviderServer
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "ok"}) + "\n" + "{not json\n")
    code, _, err = run(capsys, "batch", "--config", str(config), str(src))
    assert code == 2
    assert f"{src}:2: not valid JSON" in err
    src.write_text(json.dumps({"id": 1, "prompt": "a"}) + "\n" + json.dumps({"id": 1, "prompt": "b"}) + "\n")
    code, _, err = run(capsys, "batch", "--config", str(config), str(src))
    assert code == 2
    assert "duplicate id" in err
    src.write_text(json.dumps({"id": 1, "text": "a"}) + "\n")
    assert run(capsys, "batch", "--config", str(config), str(src))[0] == 2
    assert run(capsys, "batch", "--config", str(config), str(tmp_path / "missing.txt"))[0] == 2
    assert fleet.calls() == 0


# ---------------------------------------------------------------------------- stats, logs, budget, breakers


@pytest.fixture
def tracked(capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path) -> Path:
    """The config, after a batch of 12 prompts (4 pinned to the strong model) was tracked."""
    src = tmp_path / "seed.jsonl"
    rows = [{"prompt": f"What is the capital of country number {i}?"} for i in range(8)]
    rows += [{"prompt": f"Prove claim {i}", "model": "fake-strong"} for i in range(4)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run(capsys, "batch", "--config", str(config), str(src), "--out", str(tmp_path / "seed.out"))[0] == 0
    return config


def test_stats_report_what_was_tracked(capsys: pytest.CaptureFixture[str], tracked: Path, tmp_path: Path) -> None:
    lines = read_jsonl(tmp_path / "seed.out")
    stats = run_json(capsys, "stats", "--config", str(tracked))
    assert stats["requests"] == 12
    assert stats["ok"] == 12
    assert stats["cost_usd"] == pytest.approx(sum(line["meta"]["cost_usd"] for line in lines))
    assert stats["by_model"]["fake-strong"]["requests"] == 4
    assert sum(g["requests"] for g in stats["by_model"].values()) == 12
    assert stats["savings"]["baseline_model"] == "fake-strong"
    assert stats["savings"]["actual_cost_usd"] < stats["savings"]["baseline_cost_usd"]
    assert run_json(capsys, "stats", "--config", str(tracked), "--since", "1h")["requests"] == 12
    assert run_json(capsys, "stats", "--config", str(tracked), "--since", "2999-01-01")["requests"] == 0
    cheap = run_json(capsys, "stats", "--config", str(tracked), "--baseline", "fake-cheap")
    assert cheap["savings"]["savings_usd"] < 0  # routing to the strong model cost more than all-cheap
    code, out, _ = run(capsys, "stats", "--config", str(tracked))
    assert code == 0
    assert "By model" in out
    assert "fake-strong" in out
    assert "all-fake-strong" in out
    assert "By day (UTC)" not in out
    code, out, _ = run(capsys, "stats", "--config", str(tracked), "--detailed")
    assert code == 0
    for title in ("By day (UTC)", "By complexity", "By category"):
        assert title in out
    assert sum(g["requests"] for g in stats["by_day"].values()) == 12
    assert run(capsys, "stats", "--config", str(tracked), "--baseline", "nope")[0] == 2


def test_logs_newest_first_and_filtered(capsys: pytest.CaptureFixture[str], tracked: Path) -> None:
    records = run_json(capsys, "logs", "--config", str(tracked), "-n", "5")
    assert len(records) == 5
    stamps = [r["timestamp"] for r in records]
    assert stamps == sorted(stamps, reverse=True)
    strong = run_json(capsys, "logs", "--config", str(tracked), "--model", "fake-strong")
    assert len(strong) == 4
    assert all(r["model"] == "fake-strong" and r["prompt_preview"].startswith("Prove claim") for r in strong)
    assert run_json(capsys, "logs", "--config", str(tracked), "--status", "error") == []
    code, out, _ = run(capsys, "logs", "--config", str(tracked), "-n", "3")
    assert code == 0
    assert "Last 3 requests" in out


def test_budget_rebuilds_todays_spend_from_the_tracker(capsys: pytest.CaptureFixture[str], tracked: Path) -> None:
    stats = run_json(capsys, "stats", "--config", str(tracked))
    budget = run_json(capsys, "budget", "--config", str(tracked))
    assert budget["backend"] == "sqlite"
    assert budget["limit"] == 5.0
    assert budget["spent"] == pytest.approx(stats["cost_usd"], abs=1e-6)
    assert budget["remaining"] == pytest.approx(5.0 - budget["spent"], abs=1e-6)
    assert budget["state"] == "normal"
    code, out, _ = run(capsys, "budget", "--config", str(tracked))
    assert code == 0
    assert "sqlite" in out
    assert "$5.00" in out


@pytest.mark.redis
def test_budget_reads_the_shared_redis_counters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer, redis_url: str, reset: None
) -> None:
    budget = {"daily_limit_usd": 2.0, "backend": "redis", "redis_url": redis_url, "redis_prefix": "cli-test"}
    path = write_config(tmp_path / "r.yaml", fleet, tracker={"path": None}, budget=budget)
    costs = [
        run_json(capsys, "route", "--config", str(path), prompt)["meta"]["estimated_cost_usd"]
        for prompt in ("What is 2+2?", "Write a haiku about rain")
    ]
    status = run_json(capsys, "budget", "--config", str(path))  # a third process's view of the shared day
    assert status["backend"] == "redis"
    assert status["spent"] == pytest.approx(sum(costs), abs=1e-6)
    assert status["reserved"] == 0


def test_breakers_list_every_model_and_endpoint(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    status = run_json(capsys, "breakers", "--config", str(config))
    assert set(MODELS) <= set(status)
    assert all(s["state"] == "closed" for s in status.values())
    assert {s["kind"] for s in status.values()} == {"model", "provider"}
    code, out, _ = run(capsys, "breakers", "--config", str(config))
    assert code == 0
    assert "fake-medium" in out


def test_tracking_disabled_is_a_config_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = write_config(tmp_path / "nt.yaml", fleet, tracker={"path": None})
    code, _, err = run(capsys, "stats", "--config", str(path))
    assert code == 2
    assert "tracker.path is null" in err
    assert run(capsys, "logs", "--config", str(path))[0] == 2


# ------------------------------------------------------------------------------------------------- demo


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "demo", "--prompts", "40", "--speed", "0", "--seed", "3")
    assert data["prompts"] == 40
    assert data["ok"] + data["failed"] == 40
    assert sum(m["requests"] for m in data["models"]) == data["ok"]
    assert [m["model"] for m in data["models"]] == list(MODELS)  # cheapest first
    assert sum(data["layers"].values()) == data["ok"]
    assert sum(data["languages"].values()) == 40
    assert data["cost_usd"] == pytest.approx(sum(m["cost_usd"] for m in data["models"]))
    assert data["baseline_model"] == DEFAULT_DEMO_BASELINE
    assert data["savings_pct"] == pytest.approx(100 * (1 - data["cost_usd"] / data["baseline_cost_usd"]))
    assert re.fullmatch(r"Cost \$\d+\.\d\d vs \$\d+\.\d\d all-strong: -?\d+% saved", data["headline"])
    assert data["budget"]["limit"] == 1.0


def test_demo_renders_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--prompts", "30", "--speed", "0")
    assert code == 0
    for text in ("Where the prompts went", "Routing layers", "Escalations:", "Budget:", "Latency: p50", "all-strong"):
        assert text in out
    assert "Outage injected: fake-medium from prompt 9 to 14" in out
    code, out, _ = run(capsys, "demo", "--prompts", "30", "--speed", "0", "--no-outage", "--no-faults")
    assert code == 0
    assert "Outage injected" not in out
    assert "Breaker events: none" in out


def test_demo_prompts_are_a_deterministic_multilingual_mix() -> None:
    a = demo_prompts(300, seed=1)
    assert a == demo_prompts(300, seed=1)
    assert [p.text for p in a] != [p.text for p in demo_prompts(300, seed=2)]
    kinds = {p.kind for p in a}
    assert kinds == {"factual", "code", "reasoning", "creative", "translation", "summarisation", "general"}
    assert len({p.language for p in a}) >= 6
    assert len({p.text for p in a}) > 150
    assert all(p.max_tokens > 0 for p in a)


async def test_demo_outage_opens_and_closes_the_breaker() -> None:
    # No budget cap here: this run spends ~0.9 of the demo's $1, and how much of the outage's traffic escalates
    # to the strong model depends on timing (the breaker's cool-down is wall time), so a cap can reject a few
    # requests on a loaded machine. The budget's own behaviour is tested with the budget.
    result = await run_demo(prompts=200, speed=0, faults=False, seed=4, budget_usd=None)
    medium = [(e.old_state, e.new_state) for e in result.breaker_events if e.name == "fake-medium"]
    assert medium[0] == ("closed", "open")
    assert medium[-1] == ("half_open", "closed")  # the model came back and a trial closed it
    assert result.escalation_reasons.get("ProviderServerError (HTTP 503)", 0) >= 5
    assert result.skips.get("breaker open", 0) > 0
    assert result.failed == 0, result.error_examples  # the cascade routed around the outage
    assert result.outage is not None


async def test_demo_without_outage_or_faults_has_no_breaker_events() -> None:
    result = await run_demo(prompts=60, speed=0, faults=False, outage=False, seed=4, budget_usd=None)
    assert result.breaker_events == []
    assert result.failed == 0
    assert result.budget.limit is None
    assert result.ok == 60


# ------------------------------------------------------------------------------------------------ serve


def test_serve_answers_openai_requests_until_interrupted(tmp_path: Path, config: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncrouter", "serve", "--config", str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ASYNCROUTER_API_KEY": ""},
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stderr or ():
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=60)  # the server must say where it listens within a minute
            m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            url = m.group(1) if m else None
        body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "What is 2+2?"}]}).encode()
        req = urllib.request.Request(
            url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            reply = json.loads(resp.read())
            assert resp.headers["X-AsyncRouter-Model"] in MODELS
        assert reply["choices"][0]["message"]["content"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)  # it ends at EOF: close the pipes only after it has stopped reading
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_refuses_a_public_address_without_a_key(
    capsys: pytest.CaptureFixture[str], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASYNCROUTER_API_KEY", raising=False)
    code, _, err = run(capsys, "serve", "--config", str(config), "--host", "0.0.0.0", "--port", "0")
    assert code == 2
    assert "host" in err


# ------------------------------------------------------------------------------------------------ bench


@pytest.fixture
def no_benchmarks_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [n for n in sys.modules if n == "benchmarks" or n.startswith("benchmarks.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [n for n in sys.modules if n == "benchmarks" or n.startswith("benchmarks.")]:
        del sys.modules[name]


def test_bench_runs_the_suite_of_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_benchmarks_module: None
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    pkg = tmp_path / "benchmarks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text("def main(argv):\n    print('SUITE', list(argv))\n    return 3\n")
    code, out, _ = run(capsys, "bench", "--quick", "--json", "r.json", "--only", "x")
    assert code == 3  # the suite's own exit code
    assert "SUITE ['--quick', '--json', 'r.json', '--only', 'x']" in out  # unknown options are the suite's
    assert run(capsys, "stats", "--only", "x")[0] == 2  # ...and bad usage anywhere else


@pytest.mark.slow
def test_bench_runs_the_real_suite_from_the_checkout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_benchmarks_module: None
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(Path(__file__).parents[2])
    out = tmp_path / "bench.json"
    code, _, _ = run(
        capsys, "bench", "--quick", "--only", "classify", "--json", str(out), "--markdown", str(tmp_path / "b.md")
    )
    assert code == 0
    results = json.loads(out.read_text())
    assert "classify" in json.dumps(results)


def test_bench_outside_a_checkout_exits_2(capsys: pytest.CaptureFixture[str], no_benchmarks_module: None) -> None:
    code, _, err = run(capsys, "bench", "--quick")
    assert code == 2
    assert "run from the asyncrouter source checkout" in err
