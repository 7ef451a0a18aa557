"""Accuracy of the routing classifier on a labelled data set.

:func:`load_eval_data` reads labelled prompts from YAML (a list of mappings, or ``{examples: [...]}``) or JSON
Lines (one mapping per line). Each example needs a ``prompt`` (``query`` and ``text`` are accepted too) and any
of the labels ``complexity``, ``category``, ``task_type``, ``tier``, ``language``, plus an optional ``system``
prompt and ``split`` name. :func:`evaluate` runs a :class:`~asyncrouter._classifier.Classifier` over the examples
and returns an :class:`EvalReport`: accuracy per labelled dimension and for complexity+category together,
per-language accuracy, a confusion matrix per dimension and every misclassified prompt.

A labelled set ships inside the package, ``asyncrouter/data/holdout_v2.yaml`` (:data:`BUNDLED_EVAL_DATA`): 372
prompts in eleven languages, written before the classifier was retuned and never tuned on. It is what
``asyncrouter eval`` scores without ``--data`` (:func:`load_bundled_eval_data`) and the hold-out that
``benchmarks/bench_classify.py`` and the classifier's accuracy tests report.

Pure apart from :func:`load_eval_data` and :func:`load_bundled_eval_data`, which read the one file they are given.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Protocol, get_args

import yaml

from ._classifier import Classification
from ._exceptions import ConfigError
from ._types import Category, ComplexityLabel, TaskType, Tier

__all__ = [
    "BUNDLED_EVAL_DATA",
    "DIMENSION_LABELS",
    "EvalExample",
    "EvalReport",
    "Misclassification",
    "bundled_eval_data",
    "evaluate",
    "format_report",
    "load_bundled_eval_data",
    "load_bundled_training_data",
    "load_eval_data",
    "score",
]

#: The labelled dimensions and the values each may take.
DIMENSION_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "complexity": get_args(ComplexityLabel),
    "category": get_args(Category),
    "task_type": get_args(TaskType),
    "tier": get_args(Tier),
}
#: The development set shipped in the package (``asyncrouter train``'s default data; the classifier's tuning set).
BUNDLED_TRAINING_DATA: Final = "dev_set.yaml"
#: The labelled set shipped in the package, under ``asyncrouter/data/``.
BUNDLED_EVAL_DATA: Final = "holdout_v2.yaml"
#: Label of the joint dimension: complexity and category both right.
BOTH: Final = "complexity+category"
_PROMPT_KEYS: Final = ("prompt", "query", "text")
_KNOWN_KEYS: Final = frozenset({*_PROMPT_KEYS, *DIMENSION_LABELS, "language", "system", "split", "id"})


class _Classifies(Protocol):
    def classify_text(self, prompt: str, *, system: str | None = None) -> Classification: ...


@dataclass(frozen=True, slots=True)
class EvalExample:
    """One labelled prompt. A label left ``None`` is not scored.

    .. versionadded:: 0.1.0
    """

    prompt: str
    complexity: str | None = None
    category: str | None = None
    task_type: str | None = None
    tier: str | None = None
    language: str | None = None
    system: str | None = None
    split: str | None = None

    def label(self, dimension: str) -> str | None:
        """The expected value of ``dimension`` (one of :data:`DIMENSION_LABELS`), or ``None``."""
        value: str | None = getattr(self, dimension)
        return value


@dataclass(frozen=True, slots=True)
class Misclassification:
    """A prompt the classifier got wrong on at least one labelled dimension."""

    prompt: str
    language: str
    expected: dict[str, str]
    predicted: dict[str, str]
    signals: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "language": self.language,
            "expected": dict(self.expected),
            "predicted": dict(self.predicted),
            "signals": list(self.signals),
        }


@dataclass(slots=True)
class EvalReport:
    """What :func:`evaluate` measured.

    Attributes:
        total: examples evaluated.
        accuracy: dimension -> fraction right, over the examples labelled for it; ``complexity+category``
            counts an example right only when both are.
        labelled: dimension -> how many examples carried that label.
        per_language: language -> dimension -> fraction right (plus ``"n"``, the example count).
        confusion: dimension -> expected -> predicted -> count.
        misclassified: every example wrong on at least one labelled dimension, in input order.

    .. versionadded:: 0.1.0
    """

    total: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)
    per_language: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    misclassified: list[Misclassification] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "total": self.total,
            "accuracy": dict(self.accuracy),
            "labelled": dict(self.labelled),
            "per_language": {k: dict(v) for k, v in self.per_language.items()},
            "confusion": {d: {e: dict(p) for e, p in m.items()} for d, m in self.confusion.items()},
            "misclassified": [m.to_dict() for m in self.misclassified],
        }

    def format_report(self, *, max_errors: int = 20) -> str:
        """A plain-text report: accuracy, per-language table, confusion matrices, the first misclassifications."""
        return format_report(self, max_errors=max_errors)


def load_eval_data(path: str | Path) -> list[EvalExample]:
    """Read labelled examples from a YAML or JSON Lines file.

    Args:
        path: a ``.yaml``/``.yml`` file (a list of mappings, or a mapping with an ``examples`` list), or a
            ``.jsonl`` file (one mapping per line). A ``.json`` file may hold either shape.

    Returns:
        The examples, in file order.

    Raises:
        ConfigError: the file cannot be read or parsed, or an example lacks a prompt or has an unknown label
            value; the message names the example (e.g. ``examples[3].complexity``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read eval data: {exc.strerror or exc}", path=str(p)) from exc
    raw: Any
    try:
        if p.suffix.lower() == ".jsonl":
            raw = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif p.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            raw = yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse eval data: {exc}", path=str(p)) from exc
    if isinstance(raw, Mapping):
        raw = raw.get("examples")
    if not isinstance(raw, list):
        raise ConfigError("eval data must be a list of examples or a mapping with an 'examples' list", path=str(p))
    return [_example(item, f"examples[{i}]") for i, item in enumerate(raw)]


def bundled_eval_data() -> Traversable:
    """The labelled set shipped in the package (:data:`BUNDLED_EVAL_DATA`), as an ``importlib.resources`` file.

    Installed as plain files (pip's way), ``Path(str(bundled_eval_data()))`` is its path on disk.

    .. versionadded:: 0.1.0
    """
    return resources.files(__package__ or "asyncrouter").joinpath("data", BUNDLED_EVAL_DATA)


def load_bundled_eval_data() -> list[EvalExample]:
    """Read the labelled set shipped in the package (what ``asyncrouter eval`` scores without ``--data``).

    Returns:
        The examples, in file order (they carry no ``split``: the whole set is held out).

    Raises:
        ConfigError: the file is missing from this installation or cannot be parsed.

    .. versionadded:: 0.1.0
    """
    with resources.as_file(bundled_eval_data()) as path:
        return load_eval_data(path)


def load_bundled_training_data() -> list[EvalExample]:
    """Read the development set shipped in the package (:data:`BUNDLED_TRAINING_DATA`): what the rules
    classifier was tuned on (its ``train`` split) and first measured on (``test``), and what ``asyncrouter
    train`` fits an embeddings index on without ``--data``. Separate from the hold-out set :func:`evaluate`
    scores by default.

    Raises:
        ConfigError: the file is missing from this installation or cannot be parsed.

    .. versionadded:: 0.1.0
    """
    with resources.as_file(
        resources.files(__package__ or "asyncrouter").joinpath("data", BUNDLED_TRAINING_DATA)
    ) as path:
        return load_eval_data(path)


def _example(item: Any, where: str) -> EvalExample:
    if not isinstance(item, Mapping):
        raise ConfigError("each example must be a mapping", path=where)
    prompt = next((item[k] for k in _PROMPT_KEYS if k in item), None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("needs a non-empty 'prompt'", path=where)
    labels: dict[str, str | None] = {}
    for dim, allowed in DIMENSION_LABELS.items():
        value = item.get(dim)
        if value is None:
            labels[dim] = None
            continue
        norm = str(value).strip().lower()
        if norm not in allowed:
            raise ConfigError(f"unknown value {value!r} (expected one of {', '.join(allowed)})", path=f"{where}.{dim}")
        labels[dim] = norm
    extras = {k: item.get(k) for k in ("language", "system", "split")}
    for key, value in extras.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError("must be a string", path=f"{where}.{key}")
    language = extras["language"]
    return EvalExample(
        prompt=prompt,
        complexity=labels["complexity"],
        category=labels["category"],
        task_type=labels["task_type"],
        tier=labels["tier"],
        language=language.strip().lower() if language else None,
        system=extras["system"],
        split=extras["split"],
    )


def evaluate(
    classifier: _Classifies,
    examples: Iterable[EvalExample],
    *,
    split: str | None = None,
) -> EvalReport:
    """Classify every example and score each labelled dimension.

    Args:
        classifier: a :class:`~asyncrouter._classifier.Classifier` (anything with ``classify_text``).
        examples: labelled examples, e.g. from :func:`load_eval_data`.
        split: when given, only examples whose ``split`` equals it are evaluated.

    Returns:
        The :class:`EvalReport`.
    """
    scorer = _Scorer()
    for ex in examples:
        if split is None or ex.split == split:
            scorer.add(ex, classifier.classify_text(ex.prompt, system=ex.system))
    return scorer.report()


def score(pairs: Iterable[tuple[EvalExample, Classification]]) -> EvalReport:
    """Score classifications made elsewhere (e.g. by ``Router.aclassify`` with a strategy that calls a model)
    against their examples' labels, as :func:`evaluate` does.

    .. versionadded:: 0.1.0
    """
    scorer = _Scorer()
    for ex, c in pairs:
        scorer.add(ex, c)
    return scorer.report()


class _Scorer:
    """Accumulates right / seen counts per dimension, language and confusion cell."""

    def __init__(self) -> None:
        self.dims = tuple(DIMENSION_LABELS)
        self.right: dict[str, int] = dict.fromkeys((*self.dims, BOTH), 0)
        self.seen: dict[str, int] = dict.fromkeys((*self.dims, BOTH), 0)
        self.lang_right: dict[str, dict[str, int]] = {}
        self.lang_seen: dict[str, dict[str, int]] = {}
        self.confusion: dict[str, dict[str, dict[str, int]]] = {d: {} for d in self.dims}
        self.out = EvalReport()

    def add(self, ex: EvalExample, c: Classification) -> None:
        report, seen, right = self.out, self.seen, self.right
        report.total += 1
        language = ex.language or c.language
        lr = self.lang_right.setdefault(language, {})
        ls = self.lang_seen.setdefault(language, {})
        expected: dict[str, str] = {}
        predicted: dict[str, str] = {}
        wrong = False
        for dim in self.dims:
            want = ex.label(dim)
            if want is None:
                continue
            got: str = getattr(c, dim)
            ok = got == want
            seen[dim] += 1
            right[dim] += ok
            ls[dim] = ls.get(dim, 0) + 1
            lr[dim] = lr.get(dim, 0) + ok
            row = self.confusion[dim].setdefault(want, {})
            row[got] = row.get(got, 0) + 1
            expected[dim], predicted[dim] = want, got
            wrong = wrong or not ok
        if ex.complexity is not None and ex.category is not None:
            both = c.complexity == ex.complexity and c.category == ex.category
            seen[BOTH] += 1
            right[BOTH] += both
            ls[BOTH] = ls.get(BOTH, 0) + 1
            lr[BOTH] = lr.get(BOTH, 0) + both
        ls["n"] = ls.get("n", 0) + 1
        if wrong:
            report.misclassified.append(Misclassification(ex.prompt, language, expected, predicted, c.signals))

    def report(self) -> EvalReport:
        report = self.out
        report.labelled = {d: n for d, n in self.seen.items() if n}
        report.accuracy = {d: self.right[d] / n for d, n in self.seen.items() if n}
        for language in sorted(self.lang_seen):
            ls, lr = self.lang_seen[language], self.lang_right[language]
            lang_row: dict[str, float] = {"n": float(ls["n"])}
            for dim, n in ls.items():
                if dim != "n":
                    lang_row[dim] = lr.get(dim, 0) / n
            report.per_language[language] = lang_row
        report.confusion = {d: m for d, m in self.confusion.items() if m}
        return report


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value * 100:5.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return lines


def format_report(report: EvalReport, *, max_errors: int = 20) -> str:
    """Render an :class:`EvalReport` as plain text for people.

    Args:
        report: the report to render.
        max_errors: how many misclassified prompts to list (0 for none).

    Returns:
        The text, ending without a newline.
    """
    lines = [f"Examples: {report.total}"]
    order = (BOTH, "complexity", "category", "task_type", "tier")
    for dim in order:
        if dim in report.accuracy:
            right = round(report.accuracy[dim] * report.labelled[dim])
            lines.append(f"  {dim:<20} {_pct(report.accuracy[dim])}%  ({right}/{report.labelled[dim]})")
    if report.per_language:
        cols = [d for d in order if d in report.accuracy]
        rows = [
            [lang, str(int(row["n"])), *(_pct(row.get(d)) for d in cols)] for lang, row in report.per_language.items()
        ]
        lines += ["", "Per language (% right):", *_table(["lang", "n", *cols], rows)]
    for dim, matrix in report.confusion.items():
        labels = [v for v in DIMENSION_LABELS[dim] if v in matrix or any(v in r for r in matrix.values())]
        rows = [[want, *(str(matrix.get(want, {}).get(got, 0)) for got in labels)] for want in labels]
        lines += ["", f"Confusion {dim} (rows expected, columns predicted):", *_table(["", *labels], rows)]
    if report.misclassified and max_errors > 0:
        lines += [
            "",
            f"Misclassified ({len(report.misclassified)}, first {min(max_errors, len(report.misclassified))}):",
        ]
        for m in report.misclassified[:max_errors]:
            diffs = ", ".join(
                f"{d} {m.expected[d]}->{m.predicted[d]}" for d in m.expected if m.expected[d] != m.predicted[d]
            )
            prompt = " ".join(m.prompt.split())
            lines.append(f"  [{m.language}] {diffs}: {prompt[:100]}{'...' if len(prompt) > 100 else ''}")
    return "\n".join(lines)
