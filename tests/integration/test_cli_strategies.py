"""`asyncrouter classify | eval | compare --classifier llm`: the strategies from the command line, on the fake fleet.

The labelling model here knows the right answer for every prompt of the data set (it reads the quoted prompt
back out of its request), so the llm strategy's accuracy is exactly 100% and the rules' is what it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from anyio.from_thread import BlockingPortal

from asyncrouter.cli import main
from asyncrouter.testing import FakeModel, FakeProviderServer, FakeRequest

EXAMPLES = [
    {"prompt": "What is the capital of Australia?", "complexity": "simple", "category": "factual"},
    {"prompt": "Write a limerick about a cat who learns Rust.", "complexity": "medium", "category": "creative"},
    # labelled against what the rules classifier says, so the rules miss at least this one
    {"prompt": "What is the capital of Peru?", "complexity": "complex", "category": "code"},
    {"prompt": "Why does ice float on water?", "complexity": "medium", "category": "reasoning"},
]
TRUTH = {e["prompt"]: e for e in EXAMPLES}


def knowing_labeller(req: FakeRequest) -> str:
    quoted = re.search(r"<request_data>(.*)</request_data>", req.prompt, re.DOTALL)
    assert quoted is not None, "the labeller always gets the prompt as quoted data"
    truth = TRUTH.get(json.loads(quoted.group(1)), {"complexity": "simple", "category": "factual"})
    return json.dumps({"complexity": truth["complexity"], "category": truth["category"], "confidence": 0.95})


@pytest.fixture(scope="module")
def fleet(portal: BlockingPortal) -> Iterator[FakeProviderServer]:
    models = [
        FakeModel("labeller", reply=knowing_labeller, cost_per_1k_input=0.0001, cost_per_1k_output=0.0002),
        FakeModel("cheap", reply_words=30, cost_per_1k_input=0.0002, cost_per_1k_output=0.0008),
        FakeModel("strong", reply_words=60, cost_per_1k_input=0.01, cost_per_1k_output=0.03),
    ]
    with portal.wrap_async_context_manager(FakeProviderServer(models=models, seed=2)) as srv:
        yield srv


@pytest.fixture
def files(
    tmp_path: Path, fleet: FakeProviderServer, portal: BlockingPortal, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    monkeypatch.delenv("ASYNCROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    portal.call(fleet.reset)
    cfg: dict[str, Any] = fleet.config_dict(default_model="cheap")
    for m in cfg["models"]:
        m["tags"] = ["strong"] if m["name"] == "strong" else ["cheap"]
    cfg["classifier"] = {"model": "labeller"}  # strategy stays rules: --classifier picks llm
    (tmp_path / "router.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"examples": EXAMPLES}))
    return {"config": tmp_path / "router.yaml", "data": tmp_path / "data.yaml"}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_classify_with_the_llm_classifier(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], fleet: FakeProviderServer
) -> None:
    rules = run_json(capsys, "classify", "-c", str(files["config"]), "What is the capital of Peru?")
    assert fleet.calls() == 0
    assert rules["complexity"] == "simple"
    llm = run_json(
        capsys, "classify", "-c", str(files["config"]), "What is the capital of Peru?", "--classifier", "llm"
    )
    assert (llm["complexity"], llm["category"], llm["confidence"]) == ("complex", "code", 0.95)
    assert "llm classifier: complex/code" in llm["reason"]
    assert fleet.calls(model="labeller") == 1
    assert fleet.calls(model="cheap") == fleet.calls(model="strong") == 0
    code = main(["classify", "-c", str(files["config"]), "What is the capital of Peru?", "--classifier", "llm"])
    out = capsys.readouterr().out
    assert code == 0
    assert "llm classifier" in out


def test_eval_and_compare_the_strategies(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    rules = run_json(capsys, "eval", "--data", str(files["data"]))
    llm = run_json(capsys, "eval", "-c", str(files["config"]), "--data", str(files["data"]), "--classifier", "llm")
    assert llm["total"] == rules["total"] == 4
    assert llm["accuracy"]["complexity+category"] == 1.0
    assert rules["accuracy"]["complexity+category"] < 1.0
    table = run_json(capsys, "compare", "-c", str(files["config"]), "--data", str(files["data"]))
    by_name = {row["classifier"]: row for row in table["results"]}
    assert set(by_name) == {"rules", "llm"}, "embeddings is not configured, so it is not compared"
    assert by_name["llm"]["overall"] == 1.0
    assert by_name["rules"]["overall"] == rules["accuracy"]["complexity+category"]
    code = main(["compare", "-c", str(files["config"]), "--data", str(files["data"])])
    out, err = capsys.readouterr()
    assert code == 0
    assert "100.0%" in out
    assert "not compared (not configured): embeddings" in err


def test_a_strategy_the_config_cannot_run_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code = main(["classify", "-c", str(files["config"]), "hi there", "--classifier", "embeddings"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--classifier embeddings" in err
    assert "embedding_model" in err
    code = main(["compare", "-c", str(files["config"]), "--classifiers", "rules,bayes"])
    assert code == 2
    assert "unknown classifier 'bayes'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- embeddings: train


@pytest.fixture
def embed_files(files: dict[str, Path]) -> dict[str, Path]:
    cfg = yaml.safe_load(files["config"].read_text())
    cfg["classifier"] = {"model": "labeller", "embedding_model": "cheap"}  # the fake serves /embeddings too
    files["config"].write_text(yaml.safe_dump(cfg))
    return files


def test_train_then_classify_eval_and_compare_with_embeddings(
    capsys: pytest.CaptureFixture[str], embed_files: dict[str, Path], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    out_dir = tmp_path / "models" / "custom"
    cfg = str(embed_files["config"])
    report = run_json(capsys, "train", "-c", cfg, "--output", str(out_dir))
    assert report["train_size"] + report["eval_size"] + report["skipped"] > 500, "the bundled development set"
    assert report["eval_size"] > 50
    # the fake's hashed word vectors are crude, but nearest neighbours still beat the 1-in-12 guess by far
    assert report["accuracy"]["complexity+category"] > 0.3
    assert (out_dir / "manifest.json").is_file() or any(out_dir.iterdir())
    code = main(["train", "-c", cfg, "--output", str(out_dir)])
    assert code == 2, "an existing index is not overwritten without --force"
    assert "--force" in capsys.readouterr().err

    decision = run_json(
        capsys,
        "classify",
        "-c",
        cfg,
        "Write a SQL query that lists customers",
        "--classifier",
        "embeddings",
        "--trained-model",
        str(out_dir),
    )
    assert f"embeddings classifier: {decision['complexity']}/{decision['category']}" in decision["reason"]
    assert "embeddings:" in decision["signals"][-1]
    assert fleet.calls(model="strong") == 0, "classify calls no answering model"
    table = run_json(capsys, "compare", "-c", cfg, "--data", str(embed_files["data"]), "--trained-model", str(out_dir))
    assert {row["classifier"] for row in table["results"]} == {"rules", "llm", "embeddings"}
    assert all(row["examples"] == 4 for row in table["results"])


def test_train_needs_an_embeddings_model(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    cfg = yaml.safe_load(files["config"].read_text())
    cfg["classifier"] = {}
    files["config"].write_text(yaml.safe_dump(cfg))
    code = main(["train", "-c", str(files["config"]), "--output", str(tmp_path / "idx")])
    assert code == 2
    assert "embedding_model" in capsys.readouterr().err
