"""The embeddings classifier's pure parts: the kNN index (fit, vote, save, load, errors), batching and the
train/eval split with an in-test embedder, the OpenAI embeddings reply parser, and the fake server's vectors."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.lowlevel
import pytest

from asyncrouter._config import ModelConfig
from asyncrouter._embeddings import (
    DEFAULT_K,
    INDEX_FORMAT,
    EmbeddingIndex,
    embed_texts,
    train_index,
)
from asyncrouter._eval import EvalExample
from asyncrouter._exceptions import ConfigError, MalformedResponse, ProviderServerError
from asyncrouter._tokens import estimate_tokens
from asyncrouter.providers._openai import OpenAIFormat
from asyncrouter.testing._formats import Invalid
from asyncrouter.testing._vectors import fake_embedding, parse_embeddings_request

# Three tight clusters in 3-D, one per (complexity, category) cell.
X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
CELLS = {X: ("simple", "factual"), Y: ("medium", "reasoning"), Z: ("complex", "code")}


def jitter(base: tuple[float, float, float], i: int) -> list[float]:
    return [b * 3.0 + 0.05 * ((i * (j + 2)) % 5 - 2) for j, b in enumerate(base)]


def cluster_index(**kwargs: Any) -> EmbeddingIndex:
    vectors = [jitter(base, i) for base in CELLS for i in range(5)]
    labels = [CELLS[base] for base in CELLS for _ in range(5)]
    return EmbeddingIndex.fit(vectors, labels, model_id="emb-1", **kwargs)


def cos(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


# ------------------------------------------------------------------------------------------------ fit/predict


def test_predict_takes_the_nearest_cluster_with_full_confidence() -> None:
    index = cluster_index(k=5)
    assert (len(index), index.dim, index.k, index.model_id) == (15, 3, 5, "emb-1")
    assert index.complexity_labels == ("complex", "medium", "simple")
    assert index.category_labels == ("code", "factual", "reasoning")
    vote = index.predict([0.1, 2.0, 0.2])  # unnormalised query near Y
    assert (vote.complexity, vote.category) == ("medium", "reasoning")
    assert vote.confidence == pytest.approx(1.0)
    assert vote.complexity_confidence == vote.category_confidence == pytest.approx(1.0)
    assert len(vote.neighbours) == 5
    sims = [n.similarity for n in vote.neighbours]
    assert sims == sorted(sims, reverse=True)
    assert all(5 <= n.position < 10 for n in vote.neighbours)  # Y's examples were fitted 6th to 10th
    assert sims[0] == pytest.approx(cos([0.1, 2.0, 0.2], jitter(Y, vote.neighbours[0].position - 5)), abs=1e-6)


def test_votes_are_weighted_by_similarity() -> None:
    # one very near "code" example outvotes two barely similar "factual" ones
    index = EmbeddingIndex.fit(
        [[1.0, 0.0], [0.1, 1.0], [0.1, -1.0]],
        [("complex", "code"), ("simple", "factual"), ("simple", "factual")],
        model_id="m",
        k=3,
    )
    vote = index.predict([1.0, 0.0])
    near, far = 1.0, 0.1 / math.sqrt(1.01)
    assert (vote.complexity, vote.category) == ("complex", "code")
    assert vote.complexity_confidence == pytest.approx(near / (near + 2 * far), rel=1e-5)
    assert vote.confidence == pytest.approx(vote.complexity_confidence * vote.category_confidence)


def test_confidence_multiplies_the_two_dimensions() -> None:
    # the three neighbours agree on complexity, split 2:1 on category (equal similarities)
    index = EmbeddingIndex.fit(
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [-1.0, 0.0]],
        [("simple", "factual"), ("simple", "factual"), ("simple", "code"), ("complex", "creative")],
        model_id="m",
        k=3,
    )
    vote = index.predict([1.0, 1.0])
    assert (vote.complexity, vote.category) == ("simple", "factual")
    assert vote.complexity_confidence == pytest.approx(1.0)
    assert vote.category_confidence == pytest.approx(2 / 3)
    assert vote.confidence == pytest.approx(2 / 3)


def test_a_tie_goes_to_the_nearer_neighbour() -> None:
    # both neighbours point away from the queries, so each votes once: a 1:1 tie every time
    index = EmbeddingIndex.fit(
        [[-1.0, 0.2], [-1.0, -0.2]], [("simple", "code"), ("medium", "factual")], model_id="m", k=2
    )
    up, down = index.predict([1.0, 0.1]), index.predict([1.0, -0.1])
    assert (up.complexity, up.category, up.complexity_confidence) == ("simple", "code", 0.5)
    assert (down.complexity, down.category, down.complexity_confidence) == ("medium", "factual", 0.5)


def test_without_positive_similarity_each_neighbour_votes_once() -> None:
    index = EmbeddingIndex.fit(
        [[-1.0, 0.1], [-1.0, 0.0], [-1.0, -0.1]],
        [("complex", "code"), ("simple", "factual"), ("simple", "factual")],
        model_id="m",
        k=3,
    )
    vote = index.predict([1.0, 0.0])
    assert all(n.similarity < 0 for n in vote.neighbours)
    assert (vote.complexity, vote.category) == ("simple", "factual")
    assert vote.complexity_confidence == pytest.approx(2 / 3)


def test_k_is_capped_by_the_examples_and_overridable() -> None:
    index = cluster_index()
    assert index.k == DEFAULT_K
    assert len(index.predict(X).neighbours) == DEFAULT_K
    assert len(index.predict(X, k=1).neighbours) == 1
    assert len(index.predict(X, k=100).neighbours) == 15
    # with all 15 voting, the cluster nearest still wins, but only with its share of the weight
    vote = index.predict(X, k=15)
    assert vote.complexity == "simple"
    assert vote.confidence < 1.0


def test_scaling_the_inputs_changes_nothing() -> None:
    a = cluster_index()
    b = EmbeddingIndex.fit(
        [[x * 1000 for x in jitter(base, i)] for base in CELLS for i in range(5)],
        [CELLS[base] for base in CELLS for _ in range(5)],
        model_id="emb-1",
    )
    for query in ([0.3, 0.9, 0.1], [5.0, 5.0, 0.1], [0.0, 0.2, -3.0]):
        va, vb = a.predict(query), b.predict([q * 0.001 for q in query])
        assert (va.complexity, va.category) == (vb.complexity, vb.category)
        assert [n.position for n in va.neighbours] == [n.position for n in vb.neighbours]
        assert va.confidence == pytest.approx(vb.confidence, abs=1e-6)


@pytest.mark.parametrize(
    ("vectors", "labels", "kwargs", "message"),
    [
        pytest.param([], [], {}, "at least one example", id="empty"),
        pytest.param([[1.0]], [("a", "b"), ("a", "b")], {}, "1 vectors but 2 labels", id="count"),
        pytest.param([[1.0, 0.0], [1.0]], [("a", "b")] * 2, {}, r"vectors\[1\] has 1 dimensions", id="ragged"),
        pytest.param([[0.0, 0.0]], [("a", "b")], {}, "all zeros", id="zero"),
        pytest.param([[math.nan, 1.0]], [("a", "b")], {}, "finite", id="nan"),
        pytest.param([[1.0]], [("", "b")], {}, r"labels\[0\]", id="empty-label"),
        pytest.param([[1.0]], [("a", "b")], {"k": 0}, "k must be", id="k"),
        pytest.param([[]], [("a", "b")], {}, "at least one dimension", id="no-dims"),
    ],
)
def test_fit_rejects_bad_input(
    vectors: list[list[float]], labels: list[tuple[str, str]], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EmbeddingIndex.fit(vectors, labels, model_id="m", **kwargs)


def test_predict_names_a_dimension_mismatch_and_rejects_bad_queries() -> None:
    index = cluster_index()
    with pytest.raises(ConfigError, match=r"4 dimensions for an embedding index of 3 \(trained on 'emb-1'\)"):
        index.predict([1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="all zeros"):
        index.predict([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="k must be"):
        index.predict(X, k=0)


# ------------------------------------------------------------------------------------------------ save/load


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = cluster_index(k=3, metadata={"note": "café", "n": [1, 2]})
    root = index.save(tmp_path / "models" / "custom")
    assert sorted(p.name for p in root.iterdir()) == ["index.json", "labels.u16", "vectors.f32"]
    manifest = json.loads((root / "index.json").read_text(encoding="utf-8"))
    assert manifest["format"] == INDEX_FORMAT
    assert (manifest["version"], manifest["model_id"], manifest["dim"], manifest["k"], manifest["count"]) == (
        1,
        "emb-1",
        3,
        3,
        15,
    )
    assert manifest["complexity_labels"] == ["complex", "medium", "simple"]
    assert (root / "vectors.f32").stat().st_size == 15 * 3 * 4
    assert (root / "labels.u16").stat().st_size == 15 * 2 * 2

    loaded = EmbeddingIndex.load(root, model_id="emb-1")
    assert (len(loaded), loaded.dim, loaded.k, loaded.model_id) == (15, 3, 3, "emb-1")
    assert loaded.metadata == {"note": "café", "n": [1, 2]}
    for query in ([0.3, 0.9, 0.1], [5.0, 5.0, 0.1], [0.0, 0.2, -3.0], [1.0, 1.0, 1.0]):
        assert loaded.predict(query) == index.predict(query)
    # saving what was loaded writes the same bytes: the format is stable
    again = loaded.save(tmp_path / "again")
    for name in ("index.json", "labels.u16", "vectors.f32"):
        assert (again / name).read_bytes() == (root / name).read_bytes()


def test_fitting_and_saving_are_deterministic(tmp_path: Path) -> None:
    a = cluster_index().save(tmp_path / "a")
    b = cluster_index().save(tmp_path / "b")
    for name in ("index.json", "labels.u16", "vectors.f32"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def _rewrite_manifest(root: Path, **changes: Any) -> None:
    path = root / "index.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _corrupt(root: Path, case: str) -> Path:
    """Damage the saved index at *root* one way; return the path the error must name."""
    if case == "not-a-directory":
        (root.parent / "file").write_text("x")
        return root.parent / "file"
    if case == "no-manifest":
        (root / "index.json").unlink()
        return root
    if case == "bad-json":
        (root / "index.json").write_text("{not json", encoding="utf-8")
        return root / "index.json"
    if case == "wrong-format":
        _rewrite_manifest(root, format="something-else")
        return root / "index.json"
    if case == "newer-version":
        _rewrite_manifest(root, version=99)
        return root / "index.json"
    if case == "bad-dim":
        _rewrite_manifest(root, dim="3")
        return root / "index.json"
    if case == "duplicate-labels":
        _rewrite_manifest(root, category_labels=["code", "code", "reasoning"])
        return root / "index.json"
    if case == "no-vectors":
        (root / "vectors.f32").unlink()
        return root / "vectors.f32"
    if case == "short-vectors":
        data = (root / "vectors.f32").read_bytes()
        (root / "vectors.f32").write_bytes(data[:-4])
        return root / "vectors.f32"
    if case == "flipped-byte":
        flipped = bytearray((root / "vectors.f32").read_bytes())
        flipped[5] ^= 0x40
        (root / "vectors.f32").write_bytes(bytes(flipped))
        return root / "vectors.f32"
    if case == "label-out-of-range":
        codes = array("H", (root / "labels.u16").read_bytes())
        codes[0] = 7
        raw = codes.tobytes()
        (root / "labels.u16").write_bytes(raw)
        manifest = json.loads((root / "index.json").read_text(encoding="utf-8"))
        manifest["files"]["labels.u16"]["sha256"] = hashlib.sha256(raw).hexdigest()
        (root / "index.json").write_text(json.dumps(manifest), encoding="utf-8")
        return root / "labels.u16"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        pytest.param("not-a-directory", "not a directory", id="not-a-directory"),
        pytest.param("no-manifest", "index.json is missing", id="no-manifest"),
        pytest.param("bad-json", "not valid JSON", id="bad-json"),
        pytest.param("wrong-format", "not an asyncrouter embedding index", id="wrong-format"),
        pytest.param("newer-version", "version 99 is newer", id="newer-version"),
        pytest.param("bad-dim", "dim must be a positive integer", id="bad-dim"),
        pytest.param("duplicate-labels", "category_labels must be a list of distinct", id="duplicate-labels"),
        pytest.param("no-vectors", "incomplete", id="no-vectors"),
        pytest.param("short-vectors", "176 bytes where the manifest implies 180", id="short-vectors"),
        pytest.param("flipped-byte", "checksum", id="flipped-byte"),
        pytest.param("label-out-of-range", "out of range", id="label-out-of-range"),
    ],
)
def test_load_names_the_path_of_a_broken_index(tmp_path: Path, case: str, message: str) -> None:
    root = cluster_index().save(tmp_path / "idx")
    named = _corrupt(root, case)
    with pytest.raises(ConfigError, match=message) as info:
        EmbeddingIndex.load(named if case == "not-a-directory" else root)
    assert str(info.value).startswith(f"{named}: ")


def test_load_refuses_an_index_of_another_model(tmp_path: Path) -> None:
    root = cluster_index().save(tmp_path / "idx")
    with pytest.raises(ConfigError, match="trained on embeddings of 'emb-1', not 'emb-2'"):
        EmbeddingIndex.load(root, model_id="emb-2")
    assert EmbeddingIndex.load(root).model_id == "emb-1"


def test_save_reports_an_unwritable_place(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a directory")
    with pytest.raises(ConfigError, match="cannot write the embedding index") as info:
        cluster_index().save(tmp_path / "taken" / "idx")
    assert str(tmp_path / "taken") in str(info.value)
    with pytest.raises(ConfigError, match="not JSON-ready"):
        cluster_index(metadata={"x": object()}).save(tmp_path / "ok")


# -------------------------------------------------------------------------------- batching and training


@dataclass
class Reply:
    vectors: list[list[float]]
    input_tokens: int


class HashEmbedder:
    """An embedder that hashes text locally (the fake server's function), recording each batch it gets."""

    model_id = "hash-64"

    def __init__(self, *, fail_on: int | None = None, drop_one: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._fail_on = fail_on
        self._drop_one = drop_one

    async def embed(self, texts: Sequence[str]) -> Reply:
        self.batches.append(list(texts))
        call = len(self.batches)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            if call == self._fail_on:
                raise ProviderServerError("scripted failure", provider="test", model="hash", status_code=500)
            vectors = [fake_embedding(t, dim=64) for t in texts]
            return Reply(vectors[:-1] if self._drop_one else vectors, sum(len(t) for t in texts))
        finally:
            self.in_flight -= 1


async def test_embed_texts_batches_keeps_order_and_sums_tokens() -> None:
    texts = [f"text number {i}" for i in range(10)]
    embedder = HashEmbedder()
    vectors, tokens = await embed_texts(embedder, texts, batch_size=3, concurrency=2)
    assert [len(b) for b in embedder.batches] == [3, 3, 3, 1]
    assert sorted(t for b in embedder.batches for t in b) == sorted(texts)
    assert vectors == [fake_embedding(t, dim=64) for t in texts]
    assert tokens == sum(len(t) for t in texts)
    assert embedder.max_in_flight == 2
    assert await embed_texts(embedder, []) == ([], 0)
    assert len(embedder.batches) == 4  # no texts, no call


async def test_embed_texts_raises_the_first_failure_itself() -> None:
    with pytest.raises(ProviderServerError, match="scripted failure"):
        await embed_texts(HashEmbedder(fail_on=2), [f"t{i}" for i in range(8)], batch_size=2, concurrency=1)
    with pytest.raises(MalformedResponse, match="returned 1 vectors for 2 texts"):
        await embed_texts(HashEmbedder(drop_one=True), ["a b", "c d"])
    with pytest.raises(ValueError, match="at least 1"):
        await embed_texts(HashEmbedder(), ["a"], batch_size=0)


def examples() -> list[EvalExample]:
    out = []
    for i in range(12):
        out.append(EvalExample(f"what is the capital of country {i}", complexity="simple", category="factual"))
        out.append(
            EvalExample(f"write a python function number {i} that parses json and returns a dict", "medium", "code")
        )
    out.append(EvalExample("no labels at all"))
    out.append(EvalExample("only complexity", complexity="simple"))
    return out


async def test_train_index_splits_by_cell_and_measures() -> None:
    index, report = await train_index(HashEmbedder(), examples(), eval_split=0.25, seed=3, k=3)
    assert (report.train_size, report.eval_size, report.skipped) == (18, 6, 2)
    assert len(index) == 18
    assert index.k == report.k == 3
    assert (report.model_id, report.dim) == ("hash-64", 64)
    assert report.input_tokens == sum(len(e.prompt) for e in examples() if e.complexity and e.category)
    # two far-apart templates: the held-out examples are all classified right
    assert report.accuracy == {"complexity": 1.0, "category": 1.0, "complexity+category": 1.0}
    assert index.metadata["train_report"] == report.to_dict()
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()
    # each cell gave 3 of its 12 examples to evaluation
    train_labels = [(n.complexity, n.category) for n in index.predict(fake_embedding("x", dim=64), k=18).neighbours]
    assert train_labels.count(("simple", "factual")) == train_labels.count(("medium", "code")) == 9


async def test_train_index_is_deterministic_by_seed(tmp_path: Path) -> None:
    a, _ = await train_index(HashEmbedder(), examples(), seed=1)
    b, _ = await train_index(HashEmbedder(), examples(), seed=1)
    c, _ = await train_index(HashEmbedder(), examples(), seed=2)
    files = [x.save(tmp_path / name) / "vectors.f32" for x, name in ((a, "a"), (b, "b"), (c, "c"))]
    assert files[0].read_bytes() == files[1].read_bytes()
    assert files[0].read_bytes() != files[2].read_bytes()


async def test_train_index_without_a_split_fits_everything() -> None:
    index, report = await train_index(HashEmbedder(), examples(), eval_split=0.0)
    assert (report.train_size, report.eval_size, report.accuracy) == (24, 0, {})
    assert len(index) == 24


async def test_train_index_keeps_one_example_of_every_cell_for_training() -> None:
    data = [EvalExample("lonely", "complex", "creative"), *examples()]
    index, report = await train_index(HashEmbedder(), data, eval_split=0.9)
    assert "creative" in index.category_labels
    assert report.eval_size == 2 * 11  # 11 of each 12, the lone example stays in training


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        pytest.param([EvalExample("x")], {}, "no example has both", id="unlabelled"),
        pytest.param(examples(), {"eval_split": 1.0}, "eval_split", id="split-1"),
        pytest.param(examples(), {"eval_split": -0.1}, "eval_split", id="split-negative"),
        pytest.param(examples(), {"k": 0}, "k must be", id="k"),
    ],
)
async def test_train_index_rejects_bad_arguments(data: list[EvalExample], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await train_index(HashEmbedder(), data, **kwargs)


# ------------------------------------------------------------------------------- the wire format (pure)

MODEL = ModelConfig.model_validate({"name": "emb", "model_id": "text-embedding-3-small", "provider": "openai"})
FMT = OpenAIFormat("openai")


def test_embeddings_request_and_url() -> None:
    assert FMT.build_embeddings_request(("a", "b"), MODEL) == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "float",
    }
    assert FMT.build_embeddings_request(["a"], MODEL, dimensions=64)["dimensions"] == 64
    assert FMT.embeddings_url(MODEL) == "https://api.openai.com/v1/embeddings"
    ollama = ModelConfig.model_validate(
        {"name": "o", "model_id": "nomic-embed-text", "provider": "ollama", "base_url": "http://127.0.0.1:11434"}
    )
    assert OpenAIFormat("ollama").embeddings_url(ollama) == "http://127.0.0.1:11434/v1/embeddings"


def test_parse_orders_by_index_and_reads_base64() -> None:
    packed = base64.b64encode(array("f", [0.5, -0.25]).tobytes()).decode()  # little-endian on every CI we run
    data = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 2, "embedding": [3.0, 3.5]},
            {"object": "embedding", "index": 0, "embedding": packed},
            {"object": "embedding", "index": 1, "embedding": [1, 2]},
        ],
        "usage": {"prompt_tokens": 11, "total_tokens": 11},
    }
    reply = FMT.parse_embeddings_response(data, model=MODEL, texts=["a", "b", "c"])
    assert reply.vectors == [[0.5, -0.25], [1.0, 2.0], [3.0, 3.5]]
    assert (reply.input_tokens, reply.estimated, reply.provider_model, reply.dimensions) == (
        11,
        False,
        "text-embedding-3-small",
        2,
    )
    # no index anywhere: positions; no usage: estimated
    bare = {"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}
    reply = FMT.parse_embeddings_response(bare, model=MODEL, texts=["hello world", "ok"])
    assert reply.vectors == [[1.0], [2.0]]
    assert (reply.input_tokens, reply.estimated) == (estimate_tokens("hello world") + estimate_tokens("ok"), True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "no data list", id="not-an-object"),
        pytest.param({"object": "list"}, "no data list", id="no-data"),
        pytest.param({"data": [{"index": 0, "embedding": [1.0]}]}, "1 vectors for 2 inputs", id="count"),
        pytest.param({"data": [{"index": 0, "embedding": [1.0]}, "x"]}, r"data\[1\] is not an object", id="item"),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}, "repeated", id="dup"
        ),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 2, "embedding": [1.0]}]}, "out-of-range", id="range"
        ),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": True, "embedding": [1.0]}]}, "index", id="bool"
        ),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": ["1"]}]}, "finite", id="strings"
        ),
        pytest.param({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": []}]}, "finite", id="empty"),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [math.inf]}]}, "finite", id="inf"
        ),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": "!!notbase64"}]}, "finite", id="b64"
        ),
        pytest.param(
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}, "differ", id="ragged"
        ),
    ],
)
def test_parse_rejects_malformed_replies(data: Any, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message) as info:
        FMT.parse_embeddings_response(data, model=MODEL, texts=["a", "b"])
    assert (info.value.provider, info.value.model) == ("openai", "emb")


# ---------------------------------------------------------------------------------- the fake server's vectors


def test_fake_embedding_is_a_deterministic_unit_vector() -> None:
    v = fake_embedding("Write a Python function that parses JSON")
    assert len(v) == 256
    assert math.fsum(x * x for x in v) == pytest.approx(1.0)
    assert v == fake_embedding("write a python function that parses json")  # case is ignored
    assert len(fake_embedding("hello", dim=32)) == 32
    assert len(fake_embedding("?!", dim=1)) == 1
    assert any(fake_embedding("?!"))  # punctuation only: still a direction
    with pytest.raises(ValueError, match="dim"):
        fake_embedding("x", dim=0)


def test_fake_embeddings_of_texts_sharing_words_are_near() -> None:
    base = fake_embedding("write a python function to parse a csv file")
    near = fake_embedding("write a python function to parse a json file")
    other = fake_embedding("who painted the girl with a pearl earring")  # about as long, no word in common
    long = fake_embedding(
        "Design a distributed rate limiter for a multi-region API gateway, covering consistency, failure modes "
        "and cost, and compare token bucket with sliding window approaches in detail"
    )
    assert cos(base, near) > 0.9
    # the length signal alone keeps texts of a similar length closer than a long brief
    assert 0.3 < cos(base, other) < 0.6
    assert cos(base, long) < 0.2
    # CJK without spaces overlaps through character trigrams
    assert cos(fake_embedding("用Python写一个排序函数"), fake_embedding("用Python写一个搜索函数")) > 0.5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("x", "could not parse the JSON body", id="not-an-object"),
        pytest.param({"input": "x"}, "model parameter", id="no-model"),
        pytest.param({"model": "m"}, "Missing required parameter: 'input'", id="no-input"),
        pytest.param({"model": "m", "input": []}, "empty array", id="empty-list"),
        pytest.param({"model": "m", "input": ["ok", ""]}, r"input\[1\]", id="empty-string"),
        pytest.param({"model": "m", "input": [["a"]]}, "token ids", id="nested-strings"),
        pytest.param({"model": "m", "input": 3}, "expected a string", id="number"),
        pytest.param({"model": "m", "input": ["x"] * 2049}, "maximum length 2048", id="too-many"),
        pytest.param({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format", id="encoding"),
        pytest.param({"model": "m", "input": "x", "dimensions": 0}, "dimensions", id="dimensions"),
    ],
)
def test_fake_server_validates_embeddings_requests(body: Any, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        parse_embeddings_request(body)


def test_fake_server_accepts_every_input_shape() -> None:
    assert parse_embeddings_request({"model": "m", "input": "one"}).inputs == ["one"]
    assert parse_embeddings_request({"model": "m", "input": ["a", "b"]}).inputs == ["a", "b"]
    assert parse_embeddings_request({"model": "m", "input": [1, 2, 3]}).inputs == ["t1 t2 t3"]
    assert parse_embeddings_request({"model": "m", "input": [[1], [2, 3]]}).inputs == ["t1", "t2 t3"]
    req = parse_embeddings_request({"model": "m", "input": "x", "encoding_format": "base64", "dimensions": 8})
    assert (req.encoding_format, req.dimensions) == ("base64", 8)
