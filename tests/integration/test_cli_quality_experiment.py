"""`asyncrouter quality` (LLM-as-judge against a baseline) and `asyncrouter experiment` (A/B of two configs),
end to end through `main()` against the fake fleet (running in a background thread, as in test_cli.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from anyio.from_thread import BlockingPortal

from asyncrouter.cli import main
from asyncrouter.testing import FakeModel, FakeProviderServer, FakeRequest, default_fleet


def judge_reply(req: FakeRequest) -> str:
    # the strong model's answers are longer: score by length, in the order shown
    a, b = (part.split('"\n', 1)[0] for part in req.prompt.split("Answer ")[1:3])
    score = {"relevance": 9, "accuracy": 9, "completeness": 9}
    weak = {"relevance": 7, "accuracy": 7, "completeness": 6}
    return json.dumps({"A": score if len(a) >= len(b) else weak, "B": score if len(b) > len(a) else weak})


@pytest.fixture(scope="module")
def fleet(portal: BlockingPortal) -> Iterator[FakeProviderServer]:
    models = [dataclasses.replace(m, hedge_rate=0.0, refusal_rate=0.0) for m in default_fleet(speed=0, faults=False)]
    models.append(FakeModel("judge", reply=judge_reply, cost_per_1k_input=0.001, cost_per_1k_output=0.002))
    with portal.wrap_async_context_manager(FakeProviderServer(models=models, seed=9)) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASYNCROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def write_config(path: Path, srv: FakeProviderServer, **top: Any) -> Path:
    cfg = srv.config_dict(**top)
    cfg.setdefault("default_model", "fake-cheap")
    cfg.setdefault("tracker", {"path": str(path.with_suffix(".db"))})
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    got = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert got == code, err
    return json.loads(out)


def test_quality_judges_a_sample_of_the_bundled_prompts(
    capsys: pytest.CaptureFixture[str], fleet: FakeProviderServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "r.yaml", fleet)
    data = run_json(
        capsys, "quality", "-c", str(config), "--baseline", "fake-strong", "--judge", "judge", "--sample", "6"
    )
    assert data["data"].endswith("holdout_v2.yaml")
    assert data["judged"] + data["failed"] == 6
    assert data["judged"] >= 5
    assert data["baseline"] == "fake-strong"
    assert {c["baseline_model"] for c in data["cases"] if c["error"] is None} == {"fake-strong"}
    assert data["savings"] is None or data["savings"] < 1.0
    assert set(data["delta"]) == {"relevance", "accuracy", "completeness", "overall"}

    # the human output: the score table and the costs
    assert main(["quality", "-c", str(config), "--judge", "judge", "--sample", "3"]) == 0
    out = capsys.readouterr().out
    assert "overall" in out
    assert "Cost: routed $" in out


def test_quality_names_an_unknown_model(
    capsys: pytest.CaptureFixture[str], fleet: FakeProviderServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "r.yaml", fleet)
    assert main(["quality", "-c", str(config), "--judge", "gpt-judge"]) == 2
    assert "--judge: unknown model 'gpt-judge'" in capsys.readouterr().err


def test_experiment_splits_a_prompt_file_between_two_configs(
    capsys: pytest.CaptureFixture[str], fleet: FakeProviderServer, tmp_path: Path
) -> None:
    control = write_config(tmp_path / "control.yaml", fleet, models=["fake-cheap"])
    treatment = write_config(tmp_path / "treatment.yaml", fleet, models=["fake-strong"], default_model="fake-strong")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"Question number {i}: what is {i} squared?\n" for i in range(40)), encoding="utf-8")
    argv = ["experiment", "-c", str(control), "--treatment", str(treatment), "--data", str(prompts)]
    data = run_json(capsys, *argv, "--split", "0.5", "--name", "t1")
    c, t = data["control"], data["treatment"]
    assert c["requests"] + t["requests"] == 40
    assert 8 < t["requests"] < 32
    assert c["errors"] == t["errors"] == 0
    assert data["treatment_over_control"]["avg_cost_usd"] > 5  # the strong model costs more
    # deterministic: the same name splits the same prompts the same way
    assert run_json(capsys, *argv, "--split", "0.5", "--name", "t1")["treatment"]["requests"] == t["requests"]
    # split 0: everything to the control
    assert run_json(capsys, *argv, "--split", "0", "--name", "t1")["treatment"]["requests"] == 0

    assert main([*argv, "--sample", "10"]) == 0
    out = capsys.readouterr().out
    assert "treatment" in out
    assert "avg cost" in out


def test_experiment_refuses_a_bad_split_and_a_bad_treatment(
    capsys: pytest.CaptureFixture[str], fleet: FakeProviderServer, tmp_path: Path
) -> None:
    control = write_config(tmp_path / "control.yaml", fleet)
    assert main(["experiment", "-c", str(control), "--treatment", str(control), "--split", "1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: []\n", encoding="utf-8")
    assert main(["experiment", "-c", str(control), "--treatment", str(bad)]) == 2
    assert "invalid treatment config" in capsys.readouterr().err
