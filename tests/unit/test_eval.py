"""Eval tooling: loading labelled data and scoring the classifier against it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncrouter._classifier import Classifier
from asyncrouter._eval import BOTH, EvalExample, evaluate, format_report, load_eval_data
from asyncrouter._exceptions import ConfigError

YAML_LIST = """
- prompt: What is the capital of Peru?
  language: en
  complexity: simple
  category: factual
  task_type: factual
  tier: simple
  split: test
- prompt: Write a short poem about the sea.
  complexity: Medium
  category: creative
  split: train
"""


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier()


def test_load_yaml_list(tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(YAML_LIST, encoding="utf-8")
    examples = load_eval_data(path)
    assert examples[0] == EvalExample(
        prompt="What is the capital of Peru?",
        complexity="simple",
        category="factual",
        task_type="factual",
        tier="simple",
        language="en",
        split="test",
    )
    assert examples[1].complexity == "medium"  # labels are normalised
    assert examples[1].task_type is None
    assert examples[1].language is None


def test_load_yaml_examples_mapping_and_query_key(tmp_path: Path) -> None:
    path = tmp_path / "set.yml"
    path.write_text("examples:\n  - query: hi there\n    category: factual\n    system: Be brief.\n", encoding="utf-8")
    (example,) = load_eval_data(path)
    assert (example.prompt, example.category, example.system) == ("hi there", "factual", "Be brief.")


def test_load_jsonl_and_json(tmp_path: Path) -> None:
    rows = [{"prompt": "Is 7 prime?", "complexity": "simple", "category": "reasoning"}, {"text": "Write a haiku"}]
    jsonl = tmp_path / "set.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    as_json = tmp_path / "set.json"
    as_json.write_text(json.dumps({"examples": rows}), encoding="utf-8")
    assert load_eval_data(jsonl) == load_eval_data(as_json)
    assert [e.prompt for e in load_eval_data(jsonl)] == ["Is 7 prime?", "Write a haiku"]


@pytest.mark.parametrize(
    ("content", "suffix", "path", "message"),
    [
        pytest.param("- complexity: simple\n", ".yaml", "examples[0]", "prompt", id="missing-prompt"),
        pytest.param(
            "- {prompt: hi, complexity: trivial}\n", ".yaml", "examples[0].complexity", "trivial", id="bad-label"
        ),
        pytest.param("- {prompt: hi}\n- 3\n", ".yaml", "examples[1]", "mapping", id="not-a-mapping"),
        pytest.param("prompt: hi\n", ".yaml", None, "list of examples", id="wrong-shape"),
        pytest.param('{"prompt": "hi"\n', ".jsonl", None, "cannot parse", id="bad-json"),
        pytest.param("- {prompt: hi, language: 3}\n", ".yaml", "examples[0].language", "string", id="bad-language"),
    ],
)
def test_load_errors_name_the_example(
    tmp_path: Path, content: str, suffix: str, path: str | None, message: str
) -> None:
    file = tmp_path / f"set{suffix}"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_eval_data(file)
    assert info.value.path == (path if path is not None else str(file))


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_eval_data(tmp_path / "nope.yaml")


def _examples() -> list[EvalExample]:
    return [
        EvalExample("What is the capital of Peru?", "simple", "factual", "factual", "simple", "en", split="a"),
        EvalExample("Who painted the Mona Lisa?", "simple", "factual", language="en", split="a"),
        # Deliberately mislabelled: a short factual question labelled complex/code.
        EvalExample("When did the Berlin Wall fall?", "complex", "code", language="en", split="a"),
        EvalExample("法国的首都是哪里？", "simple", "factual", language="zh", split="b"),
        EvalExample("Write a short poem about the sea.", category="creative", split="b"),
    ]


def test_evaluate_scores_each_dimension(clf: Classifier) -> None:
    report = evaluate(clf, _examples())
    assert report.total == 5
    assert report.labelled == {"complexity": 4, "category": 5, "task_type": 1, "tier": 1, BOTH: 4}
    assert report.accuracy["complexity"] == pytest.approx(3 / 4)
    assert report.accuracy["category"] == pytest.approx(4 / 5)
    assert report.accuracy[BOTH] == pytest.approx(3 / 4)
    assert report.accuracy["task_type"] == report.accuracy["tier"] == 1.0
    assert report.confusion["complexity"]["complex"] == {"simple": 1}
    assert report.confusion["category"]["code"] == {"factual": 1}
    assert report.confusion["category"]["factual"] == {"factual": 3}
    (wrong,) = report.misclassified
    assert wrong.prompt == "When did the Berlin Wall fall?"
    assert wrong.expected == {"complexity": "complex", "category": "code"}
    assert wrong.predicted == {"complexity": "simple", "category": "factual"}


def test_evaluate_per_language_uses_labels_then_detection(clf: Classifier) -> None:
    report = evaluate(clf, _examples())
    # Three examples are labelled en; the poem has no language label and is detected as English.
    assert set(report.per_language) == {"en", "zh"}
    assert report.per_language["en"]["n"] == 4
    assert report.per_language["en"]["category"] == pytest.approx(3 / 4)
    assert report.per_language["en"][BOTH] == pytest.approx(2 / 3)  # the poem has no complexity label
    assert report.per_language["zh"] == {"n": 1.0, "complexity": 1.0, "category": 1.0, BOTH: 1.0}


def test_evaluate_split_filter(clf: Classifier) -> None:
    assert evaluate(clf, _examples(), split="a").total == 3
    assert evaluate(clf, _examples(), split="b").total == 2
    assert evaluate(clf, _examples(), split="c").total == 0


def test_report_to_dict_is_json_and_text_is_readable(clf: Classifier) -> None:
    report = evaluate(clf, _examples())
    data = json.loads(json.dumps(report.to_dict()))
    assert data["accuracy"]["complexity"] == pytest.approx(0.75)
    assert data["misclassified"][0]["expected"]["category"] == "code"
    text = format_report(report)
    assert text == report.format_report()
    assert "Examples: 5" in text
    assert "complexity+category   75.0%  (3/4)" in text
    assert "Confusion category" in text
    assert "category code->factual" in text
    assert "When did the Berlin Wall fall?" in text
    assert "Misclassified" not in format_report(report, max_errors=0)


def test_empty_report_formats(clf: Classifier) -> None:
    report = evaluate(clf, [])
    assert report.total == 0
    assert report.accuracy == {}
    assert format_report(report) == "Examples: 0"
