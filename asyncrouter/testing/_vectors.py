"""The fake embeddings endpoint: deterministic text vectors, request parsing and the OpenAI reply body.

:func:`fake_embedding` hashes a text's features into a fixed number of dimensions (the "hashing trick"):
lower-cased word unigrams and bigrams, character trigrams inside each word (so unsegmented CJK text and
inflected words still overlap) and punctuation marks (code is full of them). Each feature adds a signed weight
to one bucket and the sum is L2-normalised; then a coarse length signal is mixed in (log-scale buckets of the
estimated token count), as real embedding models place a one-line question apart from a long brief. Texts that
share words share buckets, so their cosine similarity is high, which is all a nearest-neighbour classifier
needs: it is a bag-of-words model, not a language model, but it is deterministic across runs, platforms and
processes (``blake2b``, never Python's salted ``hash``).

Everything here is pure; :mod:`._server` serves it at ``POST /v1/embeddings``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from asyncrouter._tokens import estimate_tokens

from ._behaviour import DEFAULT_EMBEDDING_DIM
from ._formats import Invalid

__all__ = [
    "DEFAULT_EMBEDDING_DIM",
    "MAX_EMBEDDING_INPUTS",
    "EmbeddingsRequest",
    "embeddings_body",
    "fake_embedding",
    "parse_embeddings_request",
]

#: OpenAI's limit on inputs in one request.
MAX_EMBEDDING_INPUTS: Final = 2048
#: Largest ``dimensions`` a fake model accepts when its own is larger (OpenAI's text-embedding-3-large: 3072).
MAX_EMBEDDING_DIM: Final = 8192

# Feature weights, chosen by kNN accuracy on the bundled hold-out set: whole words carry most of the meaning,
# word pairs some word order, character trigrams the overlap between inflections and across unsegmented (CJK)
# scripts, punctuation the look of code. The length signal lifted complexity accuracy from about 0.46 to 0.77.
_UNIGRAM_WEIGHT: Final = 1.0
_BIGRAM_WEIGHT: Final = 0.25
_TRIGRAM_WEIGHT: Final = 0.8
_SYMBOL_WEIGHT: Final = 1.0
#: weight of the (unit) length part against the (unit) text part
_LENGTH_WEIGHT: Final = 0.6
#: length buckets per doubling of the token count
_LENGTH_BUCKETS_PER_OCTAVE: Final = 2
_WORD_RE: Final = re.compile(r"\w+")
_SYMBOL_RE: Final = re.compile(r"[^\w\s]")
_BIG_ENDIAN: Final = sys.byteorder == "big"


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """The bucket of *feature* and the sign it adds with (signed hashing keeps collisions unbiased)."""
    h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
    return h % dim, (1.0 if h >> 63 else -1.0)


def fake_embedding(text: str, *, dim: int = DEFAULT_EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector for *text*: hashed words, word pairs, in-word character trigrams,
    punctuation, and a coarse length signal.

    Args:
        text: the input; case is ignored.
        dim: the number of dimensions (at least 1).

    Returns:
        A list of *dim* floats with an L2 norm of 1 (to float precision); never all zeros.

    Raises:
        ValueError: ``dim`` is below 1.

    .. versionadded:: 0.1
    """
    if dim < 1:
        raise ValueError("dim must be at least 1")
    words = _WORD_RE.findall(text.lower())
    features: list[tuple[str, float]] = []
    for i, word in enumerate(words):
        features.append(("w:" + word, _UNIGRAM_WEIGHT))
        if i:
            features.append((f"b:{words[i - 1]} {word}", _BIGRAM_WEIGHT))
        padded = f" {word} "
        features.extend(("c:" + padded[j : j + 3], _TRIGRAM_WEIGHT) for j in range(len(padded) - 2))
    features.extend(("s:" + mark, _SYMBOL_WEIGHT) for mark in _SYMBOL_RE.findall(text))
    if not features:
        features.append(("t:" + text, 1.0))
    text_part = _unit(_hashed(features, dim))
    # the length bucket and, at half weight, its two neighbours: lengths a bucket apart stay a little alike
    octaves = math.log2(1 + estimate_tokens(text))
    bucket = int(octaves * _LENGTH_BUCKETS_PER_OCTAVE)
    length_part = _unit(_hashed([(f"l:{bucket + d}", 1.0 if d == 0 else 0.5) for d in (-1, 0, 1)], dim))
    mixed = _unit([t + _LENGTH_WEIGHT * n for t, n in zip(text_part, length_part, strict=True)])
    if not any(mixed):
        # both parts' signed features cancelled out in their buckets (only plausible in a handful of dimensions)
        mixed[0] = 1.0
    return mixed


def _hashed(features: Sequence[tuple[str, float]], dim: int) -> list[float]:
    vec = [0.0] * dim
    for feature, weight in features:
        index, sign = _bucket(feature, dim)
        vec[index] += sign * weight
    return vec


def _unit(vec: list[float]) -> list[float]:
    """*vec* scaled to an L2 norm of 1 (a zero vector stays zero)."""
    norm = math.sqrt(math.fsum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A parsed ``POST /v1/embeddings`` body."""

    model: str
    inputs: list[str]
    encoding_format: Literal["float", "base64"]
    dimensions: int | None


def _token_text(tokens: Sequence[Any], param: str) -> str:
    if not tokens or not all(type(t) is int and t >= 0 for t in tokens):
        raise Invalid(f"Invalid '{param}': expected a non-empty array of token ids.", param=param)
    # Token ids stand for words here: each becomes one "word" of the hashed text.
    return " ".join(f"t{t}" for t in tokens)


def _inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(type(t) is int for t in raw):
        return [_token_text(raw, "input")]
    elif isinstance(raw, list):
        items = raw
    elif raw is None:
        raise Invalid("Missing required parameter: 'input'.", param="input")
    else:
        raise Invalid("Invalid type for 'input': expected a string or an array of strings.", param="input")
    if not items:
        raise Invalid("Invalid 'input': empty array. Expected an array with minimum length 1.", param="input")
    if len(items) > MAX_EMBEDDING_INPUTS:
        raise Invalid(
            f"Invalid 'input': array too long. Expected an array with maximum length {MAX_EMBEDDING_INPUTS}, "
            f"but got an array with length {len(items)} instead.",
            param="input",
        )
    out: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            if not item:
                raise Invalid(f"Invalid 'input[{i}]': string too short. Expected a non-empty string.", param="input")
            out.append(item)
        elif isinstance(item, list):
            out.append(_token_text(item, f"input[{i}]"))
        else:
            raise Invalid(f"Invalid type for 'input[{i}]': expected a string.", param="input")
    return out


def parse_embeddings_request(body: Any, *, max_dim: int = MAX_EMBEDDING_DIM) -> EmbeddingsRequest:
    """Validate an embeddings request body the way OpenAI does (the messages are OpenAI's).

    Args:
        body: the decoded JSON body.
        max_dim: the largest ``dimensions`` the model accepts.

    Raises:
        Invalid: the body is not a valid request.
    """
    if not isinstance(body, Mapping):
        raise Invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Invalid("you must provide a model parameter", param="model")
    inputs = _inputs(body.get("input"))
    encoding = body.get("encoding_format", "float")
    if encoding is None:
        encoding = "float"
    if encoding not in ("float", "base64"):
        raise Invalid(
            f"Invalid value for 'encoding_format': {encoding!r}. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (type(dimensions) is not int or not 1 <= dimensions <= max_dim):
        raise Invalid(
            f"Invalid value for 'dimensions' = {dimensions!r}. Must be an integer between 1 and {max_dim}.",
            param="dimensions",
        )
    return EmbeddingsRequest(model=model, inputs=inputs, encoding_format=encoding, dimensions=dimensions)


def _base64(vec: Sequence[float]) -> str:
    packed = array("f", vec)
    if _BIG_ENDIAN:
        packed.byteswap()  # OpenAI sends little-endian float32
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embeddings_body(
    request: EmbeddingsRequest, vectors: Sequence[Sequence[float]], *, prompt_tokens: int, usage: bool = True
) -> dict[str, Any]:
    """The reply OpenAI sends: ``{"object": "list", "data": [{"index", "embedding"}...], "model", "usage"}``.

    With ``encoding_format: "base64"`` each embedding is the base64 of its little-endian float32 bytes (what
    the ``openai`` SDK asks for by default); otherwise a list of floats.
    """
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _base64(vec) if request.encoding_format == "base64" else [round(x, 8) for x in vec],
        }
        for i, vec in enumerate(vectors)
    ]
    out: dict[str, Any] = {"object": "list", "data": data, "model": request.model}
    if usage:
        out["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return out
