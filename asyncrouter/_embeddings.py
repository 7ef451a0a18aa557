"""A nearest-neighbour classifier over embeddings of labelled prompts: mmrouter's "embeddings" strategy.

Training embeds labelled prompts (:class:`~asyncrouter._eval.EvalExample` with ``complexity`` and ``category``)
through a provider's embeddings endpoint, keeps the unit vectors, and measures itself on a held-out share::

    index, report = await train_index(client, load_eval_data("my_data.yaml"), eval_split=0.2)
    index.save("models/custom")                  # index.json + vectors.f32 + labels.u16; no pickle
    ...
    index = EmbeddingIndex.load("models/custom", model_id="text-embedding-3-small")
    vectors, _ = await embed_texts(client, [prompt])
    vote = index.predict(vectors[0])             # complexity, category, confidence, neighbours

The index is pure Python: vectors are stored as ``array('f')`` rows and compared by cosine similarity (rows are
normalised once, at fit time, so a similarity is one dot product). No numpy: at 500 examples a query costs
about 7 ms at 256 dimensions and about 33 ms at 1,536 (see :class:`EmbeddingIndex`); embedding models that take
``dimensions`` (OpenAI's text-embedding-3) can be asked for 256.

Pure apart from the files :meth:`EmbeddingIndex.save` and :meth:`EmbeddingIndex.load` are given and the
embeddings calls made through the client passed in.

.. versionadded:: 0.1
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import operator
import os
import random
import sys
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import anyio
from anyio.abc import TaskGroup

from ._eval import BOTH, EvalExample
from ._exceptions import ConfigError, MalformedResponse

__all__ = [
    "DEFAULT_EMBED_BATCH",
    "DEFAULT_EMBED_CONCURRENCY",
    "DEFAULT_EVAL_SPLIT",
    "DEFAULT_K",
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "Embedder",
    "EmbeddingIndex",
    "EmbeddingResult",
    "EmbeddingVote",
    "Neighbour",
    "TrainReport",
    "embed_texts",
    "train_index",
]

#: Neighbours that vote on a prediction.
DEFAULT_K: Final = 7
#: Texts per embeddings call (OpenAI accepts up to 2,048; smaller batches keep each call well inside timeouts).
DEFAULT_EMBED_BATCH: Final = 128
#: Embeddings calls in flight at once while embedding a data set.
DEFAULT_EMBED_CONCURRENCY: Final = 4
#: Share of the labelled examples held out to measure the index.
DEFAULT_EVAL_SPLIT: Final = 0.2
#: ``format`` written in ``index.json``.
INDEX_FORMAT: Final = "asyncrouter-embedding-index"
#: Version of the on-disk layout; :meth:`EmbeddingIndex.load` refuses newer ones.
INDEX_VERSION: Final = 1

_MANIFEST: Final = "index.json"
_VECTORS: Final = "vectors.f32"
_LABELS: Final = "labels.u16"
#: label codes are stored as uint16
_MAX_LABELS: Final = 65_535
_BIG_ENDIAN: Final = sys.byteorder == "big"

_mul: Callable[[float, float], float] = operator.mul
# math.sumprod (Python 3.12+) computes a dot product in C, several times faster than summing map(mul, ...).
_sumprod: Any = getattr(math, "sumprod", None)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(map(_mul, a, b))


_DOT: Final = _sumprod if _sumprod is not None else _dot


class EmbeddingResult(Protocol):
    """What an embeddings call returns (:class:`asyncrouter.providers._base.EmbeddingReply` is one)."""

    @property
    def vectors(self) -> Sequence[Sequence[float]]: ...

    @property
    def input_tokens(self) -> int: ...


class Embedder(Protocol):
    """Anything that embeds a batch of texts: :class:`asyncrouter.providers.ModelClient` is one.

    .. versionadded:: 0.1
    """

    @property
    def model_id(self) -> str:
        """The provider's name of the embeddings model (recorded in a trained index)."""
        ...

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        """One vector per text, in order."""
        ...


class Neighbour(NamedTuple):
    """One labelled example near a query.

    .. versionadded:: 0.1
    """

    #: position of the example in the index (the order it was fitted in)
    position: int
    #: cosine similarity to the query, -1.0 to 1.0
    similarity: float
    complexity: str
    category: str


@dataclass(frozen=True, slots=True)
class EmbeddingVote:
    """The nearest neighbours' verdict on one query.

    Each neighbour votes for its complexity and its category with a weight equal to its similarity (a neighbour
    at or below zero similarity does not vote; when none has a positive similarity, each of the ``k`` votes
    once). In each dimension the label with the most weight wins, a tie going to the label of the nearer
    neighbour.

    Attributes:
        complexity: the winning complexity label (mmrouter: ``simple``, ``medium``, ``complex``).
        category: the winning category label (``factual``, ``reasoning``, ``creative``, ``code``).
        complexity_confidence: the winning complexity's share of the vote weight, 0.0 to 1.0.
        category_confidence: the winning category's share of the vote weight.
        confidence: the two shares multiplied: an estimate of the chance that both labels are right when the
            votes are independent; 1.0 only when every voting neighbour agrees on both.
        neighbours: the ``k`` nearest examples, nearest first.

    .. versionadded:: 0.1
    """

    complexity: str
    category: str
    confidence: float
    complexity_confidence: float
    category_confidence: float
    neighbours: tuple[Neighbour, ...]

    def to_dict(self) -> dict[str, Any]:
        """The vote as plain JSON-ready data."""
        return {
            "complexity": self.complexity,
            "category": self.category,
            "confidence": self.confidence,
            "complexity_confidence": self.complexity_confidence,
            "category_confidence": self.category_confidence,
            "neighbours": [n._asdict() for n in self.neighbours],
        }


def _unit(vector: Sequence[float], what: str) -> list[float]:
    """*vector* scaled to length 1."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if not math.isfinite(norm):
        raise ValueError(f"{what} has a value that is not a finite number")
    if norm == 0.0:
        raise ValueError(f"{what} is all zeros: it has no direction to compare")
    return [x / norm for x in vector]


def _winner(weights: dict[str, float]) -> tuple[str, float]:
    """The label with the most weight and its share; dicts keep insertion order, so ties go to the nearest."""
    total = sum(weights.values())
    label = max(weights, key=weights.__getitem__)
    return label, weights[label] / total


class EmbeddingIndex:
    """Labelled unit vectors and a cosine k-nearest-neighbour vote over them.

    Build one with :meth:`fit` (or :func:`train_index`) and persist it with :meth:`save` / :meth:`load`.
    Queries cost one dot product per stored example, ``sum(map(mul, query, row))`` over float32 rows: measured
    with Python 3.11 on a shared 2-core machine, about 6-7 ms at 500 examples x 256 dimensions and 31-35 ms at
    500 x 1,536; linear in both. On Python 3.12+ ``math.sumprod`` does the dot product in C instead.

    Attributes:
        model_id: the embeddings model the vectors came from; queries must be embedded by the same model.
        dim: the vector length.
        k: neighbours that vote by default.
        complexity_labels: the complexity labels seen in training, sorted.
        category_labels: the category labels seen in training, sorted.
        metadata: free JSON-ready data saved with the index (:func:`train_index` puts its report here).

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_categories",
        "_complexities",
        "_rows",
        "category_labels",
        "complexity_labels",
        "dim",
        "k",
        "metadata",
        "model_id",
    )

    def __init__(
        self,
        *,
        rows: list[array[float]],
        complexities: array[int],
        categories: array[int],
        complexity_labels: tuple[str, ...],
        category_labels: tuple[str, ...],
        model_id: str,
        k: int,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        # Internal: use fit() or load(), which validate what they are given.
        self._rows = rows
        self._complexities = complexities
        self._categories = categories
        self.complexity_labels = complexity_labels
        self.category_labels = category_labels
        self.model_id = model_id
        self.dim = len(rows[0])
        self.k = k
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"EmbeddingIndex(model_id={self.model_id!r}, examples={len(self)}, dim={self.dim}, k={self.k})"

    @classmethod
    def fit(
        cls,
        vectors: Sequence[Sequence[float]],
        labels: Sequence[tuple[str, str]],
        *,
        model_id: str,
        k: int = DEFAULT_K,
        metadata: Mapping[str, Any] | None = None,
    ) -> EmbeddingIndex:
        """An index over *vectors* labelled ``(complexity, category)``; each vector is normalised here.

        Args:
            vectors: one embedding per example, all of the same length.
            labels: ``(complexity, category)`` of each example, aligned with *vectors*.
            model_id: the embeddings model that produced the vectors.
            k: neighbours that vote by default (at least 1).
            metadata: JSON-ready data to keep (and save) with the index.

        Raises:
            ValueError: no vectors, a length mismatch between vectors and labels or among the vectors, an
                all-zero or non-finite vector, an empty label, ``k`` below 1, or more than 65,535 labels.

        .. versionadded:: 0.1
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        if not vectors:
            raise ValueError("an embedding index needs at least one example")
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors but {len(labels)} labels")
        dim = len(vectors[0])
        if dim == 0:
            raise ValueError("vectors must have at least one dimension")
        rows: list[array[float]] = []
        for i, vector in enumerate(vectors):
            if len(vector) != dim:
                raise ValueError(f"vectors[{i}] has {len(vector)} dimensions, vectors[0] has {dim}")
            rows.append(array("f", _unit(vector, f"vectors[{i}]")))
        for i, pair in enumerate(labels):
            if len(pair) != 2 or not all(isinstance(label, str) and label for label in pair):
                raise ValueError(f"labels[{i}] must be a (complexity, category) pair of non-empty strings")
        complexity_labels = tuple(sorted({c for c, _ in labels}))
        category_labels = tuple(sorted({g for _, g in labels}))
        if max(len(complexity_labels), len(category_labels)) > _MAX_LABELS:
            raise ValueError(f"at most {_MAX_LABELS} distinct labels per dimension")
        c_code = {label: i for i, label in enumerate(complexity_labels)}
        g_code = {label: i for i, label in enumerate(category_labels)}
        return cls(
            rows=rows,
            complexities=array("H", [c_code[c] for c, _ in labels]),
            categories=array("H", [g_code[g] for _, g in labels]),
            complexity_labels=complexity_labels,
            category_labels=category_labels,
            model_id=model_id,
            k=k,
            metadata=metadata,
        )

    def predict(self, vector: Sequence[float], *, k: int | None = None) -> EmbeddingVote:
        """The similarity-weighted vote of the *k* examples nearest to *vector* (see :class:`EmbeddingVote`).

        Args:
            vector: the query's embedding, from the index's :attr:`model_id`; it need not be normalised.
            k: neighbours that vote; defaults to the index's :attr:`k` (capped at the number of examples).

        Raises:
            ConfigError: *vector* has a different length from the index's vectors: it was embedded by another
                model (or with other ``dimensions``) than the index was trained with.
            ValueError: *vector* is all zeros or not finite, or ``k`` is below 1.

        .. versionadded:: 0.1
        """
        if len(vector) != self.dim:
            raise ConfigError(
                f"a query vector of {len(vector)} dimensions for an embedding index of {self.dim} "
                f"(trained on {self.model_id!r}): embed queries with the model the index was trained with, "
                "or train the index again"
            )
        k = self.k if k is None else k
        if k < 1:
            raise ValueError("k must be at least 1")
        # a list, not an array: its floats are boxed once here instead of once per row in the loop below
        query = _unit(vector, "the query vector")
        dot = _DOT
        sims = [dot(query, row) for row in self._rows]
        nearest = heapq.nlargest(k, range(len(sims)), key=sims.__getitem__)
        neighbours = tuple(
            Neighbour(
                i,
                sims[i],
                self.complexity_labels[self._complexities[i]],
                self.category_labels[self._categories[i]],
            )
            for i in nearest
        )
        voters = [(n, n.similarity) for n in neighbours if n.similarity > 0.0] or [(n, 1.0) for n in neighbours]
        c_weights: dict[str, float] = {}
        g_weights: dict[str, float] = {}
        for n, weight in voters:
            c_weights[n.complexity] = c_weights.get(n.complexity, 0.0) + weight
            g_weights[n.category] = g_weights.get(n.category, 0.0) + weight
        complexity, c_share = _winner(c_weights)
        category, g_share = _winner(g_weights)
        return EmbeddingVote(
            complexity=complexity,
            category=category,
            confidence=c_share * g_share,
            complexity_confidence=c_share,
            category_confidence=g_share,
            neighbours=neighbours,
        )

    # -------------------------------------------------------------------------------------------- files

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to *directory* (created if missing; the index files in it are replaced).

        Three files: ``index.json`` (format, version, model_id, dim, k, example count, label sets, the binary
        files' SHA-256 and the metadata), ``vectors.f32`` (little-endian float32 rows) and ``labels.u16``
        (little-endian uint16 label codes, complexity then category per example). The manifest is written
        last, through a temporary file, so a reader never sees a manifest that does not match its files.

        Returns:
            The directory.

        Raises:
            ConfigError: the directory or a file cannot be written; the message names the path.

        .. versionadded:: 0.1
        """
        root = Path(directory)
        vectors = array("f")
        for row in self._rows:
            vectors.extend(row)
        labels = array("H")
        for c, g in zip(self._complexities, self._categories, strict=True):
            labels.append(c)
            labels.append(g)
        if _BIG_ENDIAN:
            vectors.byteswap()
            labels.byteswap()
        vector_bytes, label_bytes = vectors.tobytes(), labels.tobytes()
        manifest = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "model_id": self.model_id,
            "dim": self.dim,
            "k": self.k,
            "count": len(self),
            "complexity_labels": list(self.complexity_labels),
            "category_labels": list(self.category_labels),
            "files": {
                _VECTORS: {"dtype": "float32-le", "sha256": hashlib.sha256(vector_bytes).hexdigest()},
                _LABELS: {"dtype": "uint16-le", "sha256": hashlib.sha256(label_bytes).hexdigest()},
            },
            "metadata": self.metadata,
        }
        try:
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the index metadata is not JSON-ready: {exc}", path=str(root)) from exc
        target = root
        try:
            root.mkdir(parents=True, exist_ok=True)
            target = root / _VECTORS
            target.write_bytes(vector_bytes)
            target = root / _LABELS
            target.write_bytes(label_bytes)
            target = root / _MANIFEST
            partial = root / (_MANIFEST + ".tmp")
            partial.write_text(text, encoding="utf-8")
            partial.replace(target)
        except OSError as exc:
            raise ConfigError(f"cannot write the embedding index: {exc.strerror or exc}", path=str(target)) from exc
        return root

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, model_id: str | None = None) -> EmbeddingIndex:
        """Read an index written by :meth:`save`, checking every file against the manifest.

        Args:
            directory: the index directory.
            model_id: when given, the embeddings model the caller will embed queries with; an index trained
                on another model is refused (its vectors live in another space).

        Raises:
            ConfigError: the directory or a file is missing or unreadable, the manifest is not an asyncrouter
                embedding index of a known version, a file does not match the manifest (size, checksum, label
                codes), or the index was trained on another model than *model_id*. The message names the path.

        .. versionadded:: 0.1
        """
        root = Path(directory)
        manifest_path = root / _MANIFEST
        if not root.is_dir():
            raise ConfigError("no embedding index here: not a directory", path=str(root))
        try:
            raw = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"no embedding index here: {_MANIFEST} is missing (write one with `train`)", path=str(root)
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(manifest_path)) from exc
        except ValueError as exc:
            raise ConfigError(f"not valid JSON: {exc}", path=str(manifest_path)) from exc
        m = _Manifest.check(raw, str(manifest_path))
        if model_id is not None and model_id != m.model_id:
            raise ConfigError(
                f"the index was trained on embeddings of {m.model_id!r}, not {model_id!r}: use that model for "
                "queries or train the index again",
                path=str(root),
            )
        vector_bytes = _read_checked(root / _VECTORS, m.count * m.dim * 4, m.sha256[_VECTORS])
        label_bytes = _read_checked(root / _LABELS, m.count * 2 * 2, m.sha256[_LABELS])
        vectors = array("f")
        vectors.frombytes(vector_bytes)
        codes = array("H")
        codes.frombytes(label_bytes)
        if _BIG_ENDIAN:
            vectors.byteswap()
            codes.byteswap()
        complexities, categories = codes[0::2], codes[1::2]
        if max(complexities) >= len(m.complexity_labels) or max(categories) >= len(m.category_labels):
            raise ConfigError("a label code is out of range of the label sets", path=str(root / _LABELS))
        if not math.isfinite(math.fsum(vectors)):
            raise ConfigError("a vector holds a value that is not a finite number", path=str(root / _VECTORS))
        dim = m.dim
        rows = [vectors[i * dim : (i + 1) * dim] for i in range(m.count)]
        return cls(
            rows=rows,
            complexities=complexities,
            categories=categories,
            complexity_labels=m.complexity_labels,
            category_labels=m.category_labels,
            model_id=m.model_id,
            k=m.k,
            metadata=m.metadata,
        )


@dataclass(frozen=True, slots=True)
class _Manifest:
    model_id: str
    dim: int
    k: int
    count: int
    complexity_labels: tuple[str, ...]
    category_labels: tuple[str, ...]
    sha256: dict[str, str]
    metadata: dict[str, Any]

    @classmethod
    def check(cls, raw: Any, path: str) -> _Manifest:
        def bad(message: str) -> ConfigError:
            return ConfigError(message, path=path)

        if not isinstance(raw, dict) or raw.get("format") != INDEX_FORMAT:
            raise bad(f'not an asyncrouter embedding index (no "format": {INDEX_FORMAT!r})')
        version = raw.get("version")
        if type(version) is not int or version < 1:
            raise bad("the index has no valid format version")
        if version > INDEX_VERSION:
            raise bad(f"index format version {version} is newer than this asyncrouter reads ({INDEX_VERSION})")
        model_id = raw.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise bad("model_id must be a non-empty string")
        ints: dict[str, int] = {}
        for name in ("dim", "k", "count"):
            value = raw.get(name)
            if type(value) is not int or value < 1:
                raise bad(f"{name} must be a positive integer, not {value!r}")
            ints[name] = value
        sets: dict[str, tuple[str, ...]] = {}
        for name in ("complexity_labels", "category_labels"):
            value = raw.get(name)
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) and v for v in value)
                or len(set(value)) != len(value)
                or len(value) > _MAX_LABELS
            ):
                raise bad(f"{name} must be a list of distinct non-empty strings")
            sets[name] = tuple(value)
        files = raw.get("files")
        sha256: dict[str, str] = {}
        for name in (_VECTORS, _LABELS):
            entry = files.get(name) if isinstance(files, dict) else None
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            if not isinstance(digest, str):
                raise bad(f"files.{name}.sha256 is missing")
            sha256[name] = digest
        metadata = raw.get("metadata", {})
        if not isinstance(metadata, dict):
            raise bad("metadata must be a mapping")
        return cls(
            model_id=model_id,
            dim=ints["dim"],
            k=ints["k"],
            count=ints["count"],
            complexity_labels=sets["complexity_labels"],
            category_labels=sets["category_labels"],
            sha256=sha256,
            metadata=metadata,
        )


def _read_checked(path: Path, size: int, sha256: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("missing: the index directory is incomplete", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc
    if len(data) != size:
        raise ConfigError(f"{len(data)} bytes where the manifest implies {size}", path=str(path))
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ConfigError("the file does not match the checksum in the manifest (corrupt or replaced)", path=str(path))
    return data


# ------------------------------------------------------------------------------------------------- training


async def embed_texts(
    client: Embedder,
    texts: Sequence[str],
    *,
    batch_size: int = DEFAULT_EMBED_BATCH,
    concurrency: int = DEFAULT_EMBED_CONCURRENCY,
) -> tuple[list[list[float]], int]:
    """Embed *texts* in batches, up to *concurrency* calls at a time.

    Args:
        client: the embedder, e.g. a :class:`~asyncrouter.providers.ModelClient`.
        texts: the texts; no texts, no call.
        batch_size: texts per call.
        concurrency: calls in flight at once.

    Returns:
        The vectors in the order of *texts*, and the input tokens summed over every call.

    Raises:
        ValueError: ``batch_size`` or ``concurrency`` below 1.
        ProviderError: a call failed (the first failure; the other calls in flight are cancelled).
        MalformedResponse: a call returned a different number of vectors than texts it was given.

    .. versionadded:: 0.1
    """
    if batch_size < 1 or concurrency < 1:
        raise ValueError("batch_size and concurrency must be at least 1")
    texts = list(texts)
    batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    results: list[EmbeddingResult | None] = [None] * len(batches)
    failures: list[Exception] = []
    limiter = anyio.Semaphore(concurrency)

    async def run(i: int, tg: TaskGroup) -> None:
        async with limiter:
            try:
                results[i] = await client.embed(batches[i])
            except Exception as exc:
                # keep the first error itself (a task group would wrap it in an ExceptionGroup) and stop the rest
                failures.append(exc)
                tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for i in range(len(batches)):
            tg.start_soon(run, i, tg)
    if failures:
        raise failures[0]
    vectors: list[list[float]] = []
    tokens = 0
    for batch, result in zip(batches, results, strict=True):
        assert result is not None  # every task finished without failing
        if len(result.vectors) != len(batch):
            raise MalformedResponse(
                f"the embeddings call returned {len(result.vectors)} vectors for {len(batch)} texts",
                provider=str(getattr(client, "provider", "")),
                model=str(getattr(client, "name", "")),
            )
        vectors.extend(list(v) for v in result.vectors)
        tokens += result.input_tokens
    return vectors, tokens


@dataclass(slots=True)
class TrainReport:
    """What :func:`train_index` did and measured.

    Attributes:
        model_id: the embeddings model.
        dim: the vector length.
        k: neighbours that vote.
        seed: the seed of the train/eval split.
        eval_split: the share asked to be held out.
        train_size: examples the index was fitted on.
        eval_size: examples held out and predicted.
        skipped: examples without both a complexity and a category label (not used).
        input_tokens: tokens the embeddings calls consumed (as the provider counted them, or estimated).
        accuracy: ``complexity``, ``category`` and ``complexity+category`` (both right) accuracy on the held-out
            examples; empty when none were held out.

    .. versionadded:: 0.1
    """

    model_id: str
    dim: int
    k: int
    seed: int
    eval_split: float
    train_size: int
    eval_size: int
    skipped: int
    input_tokens: int
    accuracy: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "model_id": self.model_id,
            "dim": self.dim,
            "k": self.k,
            "seed": self.seed,
            "eval_split": self.eval_split,
            "train_size": self.train_size,
            "eval_size": self.eval_size,
            "skipped": self.skipped,
            "input_tokens": self.input_tokens,
            "accuracy": dict(self.accuracy),
        }


def _split(labels: Sequence[tuple[str, str]], eval_split: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, eval) positions: each (complexity, category) cell shuffled by *seed* and cut at *eval_split*,
    keeping at least one example of every cell for training. Both lists in input order."""
    cells: dict[tuple[str, str], list[int]] = {}
    for i, cell in enumerate(labels):
        cells.setdefault(cell, []).append(i)
    rng = random.Random(seed)
    held: list[int] = []
    for cell in sorted(cells):
        members = cells[cell]
        rng.shuffle(members)
        n_eval = min(len(members) - 1, int(len(members) * eval_split + 0.5))
        held.extend(members[:n_eval])
    held_set = set(held)
    return [i for i in range(len(labels)) if i not in held_set], sorted(held)


async def train_index(
    client: Embedder,
    examples: Sequence[EvalExample],
    *,
    eval_split: float = DEFAULT_EVAL_SPLIT,
    seed: int = 0,
    k: int = DEFAULT_K,
    batch_size: int = DEFAULT_EMBED_BATCH,
) -> tuple[EmbeddingIndex, TrainReport]:
    """Embed labelled examples, fit an index on a training share and measure it on the rest.

    Examples need both ``complexity`` and ``category``; others are skipped and counted. The split is
    stratified: every (complexity, category) cell gives about *eval_split* of its examples to evaluation (and
    always keeps one for training), chosen by *seed*, so the same data and seed give the same index. Every
    example is embedded once, in one pass.

    Args:
        client: the embedder; its ``model_id`` is recorded in the index.
        examples: the labelled data, e.g. from :func:`~asyncrouter._eval.load_eval_data`.
        eval_split: the share held out, 0.0 (fit on everything, measure nothing) up to but not including 1.0.
        seed: the seed of the split.
        k: neighbours that vote.
        batch_size: texts per embeddings call.

    Returns:
        The index (its ``metadata["train_report"]`` holds the report) and the :class:`TrainReport`.

    Raises:
        ValueError: *eval_split* outside [0, 1), ``k`` below 1, or no example with both labels.
        ProviderError: an embeddings call failed.

    .. versionadded:: 0.1
    """
    if not 0.0 <= eval_split < 1.0:
        raise ValueError("eval_split must be at least 0 and less than 1")
    if k < 1:
        raise ValueError("k must be at least 1")
    labelled = [e for e in examples if e.complexity and e.category]
    if not labelled:
        raise ValueError("no example has both a complexity and a category label")
    labels = [(e.complexity or "", e.category or "") for e in labelled]
    vectors, tokens = await embed_texts(client, [e.prompt for e in labelled], batch_size=batch_size)
    train, held = _split(labels, eval_split, seed)
    model_id = client.model_id
    index = EmbeddingIndex.fit([vectors[i] for i in train], [labels[i] for i in train], model_id=model_id, k=k)
    accuracy: dict[str, float] = {}
    if held:
        right = {"complexity": 0, "category": 0, BOTH: 0}
        for i in held:
            vote = index.predict(vectors[i])
            c_ok, g_ok = vote.complexity == labels[i][0], vote.category == labels[i][1]
            right["complexity"] += c_ok
            right["category"] += g_ok
            right[BOTH] += c_ok and g_ok
        accuracy = {name: count / len(held) for name, count in right.items()}
    report = TrainReport(
        model_id=model_id,
        dim=index.dim,
        k=k,
        seed=seed,
        eval_split=eval_split,
        train_size=len(train),
        eval_size=len(held),
        skipped=len(examples) - len(labelled),
        input_tokens=tokens,
        accuracy=accuracy,
    )
    index.metadata["train_report"] = report.to_dict()
    return index, report
