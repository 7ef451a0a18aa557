"""Phrase and cue matching in the quality gates: the compiled matchers against plain reference definitions.

The gates find refusal and hedging phrases (and a prompt's size and wording cues) with regexes compiled from the
phrase lists and a few fast paths. These tests hold them to the simplest statement of what they must find: split
the folded text into words, take the longest phrase at each word of the lead, skip past it, keep the first of
each kind.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrouter._config import QualityConfig
from asyncrouter._quality import (
    _FOLD,
    _SEPARATORS,
    GateInput,
    GateResult,
    QualityGates,
    _fold,
    _gapped,
    _PhraseIndex,
    _words,
)

PROPERTY = settings(max_examples=300, deadline=None)
_GATES = QualityGates(QualityConfig())
LONG = (
    "Rayleigh scattering makes the sky blue: air molecules scatter short wavelengths of sunlight far more "
    "strongly than long ones, so blue light reaches our eyes from every direction of the sky. At sunset the "
    "light crosses much more air, the blue is scattered away before it arrives, and reds and oranges remain. "
)


def check(content: str, prompt: str = "Tell me something.", task: str = "general", **kw: Any) -> GateResult:
    kw.setdefault("finish_reason", "stop")
    return _GATES.check(GateInput(prompt=prompt, task_type=task, content=content, **kw))


# --- the reference -----------------------------------------------------------------------------------------------

_GAP = re.compile(r"[\s" + re.escape(_SEPARATORS) + "]+")


def reference_words(text: str) -> list[str]:
    return [w for w in _GAP.split(_fold(text)) if w]


def reference_first_of_each(phrases: list[tuple[str, str]], lead: str, tail: str) -> dict[str, str]:
    """The first phrase of each kind starting at a word of ``lead``: the longest at each word, none overlapping."""
    table: dict[tuple[str, ...], str] = {}
    for phrase, kind in phrases:
        table.setdefault(tuple(reference_words(phrase)), kind)
    longest = max(map(len, table))
    lead_words = reference_words(lead)
    words = lead_words + reference_words(tail)  # folded apart: a cut inside a word splits it in two
    found: dict[str, str] = {}
    i = 0
    while i < len(lead_words):
        for n in range(min(longest, len(words) - i), 0, -1):
            hit = table.get(tuple(words[i : i + n]))
            if hit is not None:
                found.setdefault(hit, " ".join(words[i : i + n]))
                i += n
                break
        else:
            i += 1
    return found


# Overlapping phrases of two kinds: prefixes of one another, a shared middle, a word that starts a longer word.
PHRASES = [
    ("I can't", "hedging"),
    ("I can't help", "refusal"),
    ("I can't help you with", "refusal"),
    ("can't help", "hedging"),
    ("help you", "hedging"),
    ("I cannot", "refusal"),
    ("не могу", "hedging"),
    ("не могу помочь", "refusal"),
    ("no sé", "hedging"),
    ("no se", "refusal"),
    ("je ne sais pas", "hedging"),
    ("ne sais", "refusal"),
    ("100% sure", "hedging"),
    ("As an AI, I can't", "refusal"),
    ("as an AI", "hedging"),
]
_INDEX = _PhraseIndex(PHRASES)
_WORD_POOL = sorted(
    {w for phrase, _ in PHRASES for w in re.split(r"[\s,']+", phrase) if w}
    | {"helpful", "cannot", "canto", "sé", "Sé", "NO", "I", "s", "t", "AI", "x", "42", "$", "😀", "İ", "ΣΟΦΟΣ", "中文"}
)
_GAP_POOL = [" ", " ", " ", "  ", "\n", "\t", "\u00a0", "\u3000", "\u2028", "\x85", ",", ", ", "...", "-", "—", "’",
             "'", "«", "» ", "“", "”", "、", "，", "(", ""]  # fmt: skip
_texts = st.lists(st.tuples(st.sampled_from(_WORD_POOL), st.sampled_from(_GAP_POOL)), max_size=25).map(
    lambda parts: "".join(w + g for w, g in parts)
)


@PROPERTY
@given(text=_texts, split=st.integers(min_value=0, max_value=400))
def test_phrase_index_finds_what_the_reference_finds(text: str, split: int) -> None:
    lead, tail = text[:split], text[split:]
    assert _INDEX.first_of_each(lead, tail) == reference_first_of_each(PHRASES, lead, tail)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("i can't help you with that", {"refusal": "i can t help you with"}, id="longest-wins"),
        pytest.param("i can't helpful", {"hedging": "i can t"}, id="a-word-is-not-the-start-of-a-longer-one"),
        pytest.param("i can't help you", {"refusal": "i can t help"}, id="no-overlap-after-a-match"),
        pytest.param("as an AI, I can’t", {"refusal": "as an ai i can t"}, id="longest-across-kinds"),
        pytest.param("as an AI, I cannot", {"hedging": "as an ai", "refusal": "i cannot"}, id="both-kinds"),
        pytest.param("je ne sais pas", {"hedging": "je ne sais pas"}, id="longest-not-the-inner-phrase"),
        pytest.param("not 100% sure", {"hedging": "100% sure"}, id="a-symbol-inside-a-word"),
        pytest.param("no\u00a0se\u2028ok", {"refusal": "no se"}, id="unicode-whitespace"),
        pytest.param("NO SÉ", {"hedging": "no sé"}, id="upper-case-accent"),
        pytest.param("xno se", {}, id="glued-in-front"),
    ],
)
def test_phrase_index_examples(text: str, found: dict[str, str]) -> None:
    assert _INDEX.first_of_each(text) == found == reference_first_of_each(PHRASES, text, "")


def test_a_phrase_may_run_on_from_the_lead_into_the_tail() -> None:
    assert _INDEX.first_of_each("well, I can't ", "help you with it") == {"refusal": "i can t help you with"}
    assert _INDEX.first_of_each("well, fine. ", "I can't help") == {}  # it starts in the tail
    # A lead cut inside a word splits it: "hel" + "p" are two words, neither of them "help".
    assert _INDEX.first_of_each("I can't hel", "p") == {"hedging": "i can t"}


def test_many_and_long_custom_phrases_compile_and_match() -> None:
    many = tuple(f"alpha beta gamma {i} delta" for i in range(2000))
    long_phrase = " ".join(f"w{i}" for i in range(300))
    g = QualityGates(QualityConfig(hedging_phrases=(*many, long_phrase)))
    reply = GateInput("q", "general", "Alpha, beta-gamma 1999 delta! Then more.", "stop")
    assert g.check(reply).reason == "gate hedging: 'Alpha, beta-gamma 1999 delta'"
    assert g.check(GateInput("q", "general", long_phrase.upper(), "stop")).failed_gates == ("hedging",)
    assert g.check(GateInput("q", "general", long_phrase[:-1], "stop")).passed  # one letter short


# --- folding and words -------------------------------------------------------------------------------------------

_FOLDABLE = "".join(chr(c) for c in _FOLD)
_any_text = st.text(alphabet=st.sampled_from(_FOLDABLE + "aZ' -.İΣσς\u00a0中é\ud800"), max_size=60) | st.text(
    max_size=60
)


@PROPERTY
@given(text=_any_text)
def test_fold_is_the_translation_then_lower(text: str) -> None:
    assert _fold(text) == text.translate(_FOLD).lower()


@PROPERTY
@given(text=_any_text | _texts)
def test_words_and_gapped_text_agree_with_a_split_on_gaps(text: str) -> None:
    folded = _fold(text)
    words = re.sub("[" + re.escape(_SEPARATORS) + "]", " ", folded).split()
    assert _words(folded) == words
    gapped = _gapped(folded)
    assert gapped.split() == words
    assert gapped[0] == gapped[-1] == " "
    if folded.isascii():  # offsets kept, and no whitespace but the space
        assert len(gapped) == len(folded) + 2
        assert all(ch == " " or not ch.isspace() for ch in gapped)


# --- the reply: lead window and fast path ---------------------------------------------------------------------------


def phrase_failures(result: GateResult) -> list[tuple[str, str]]:
    return [(f.gate, f.detail) for f in result.failures if f.gate in ("refusal", "hedging")]


_ascii_texts = st.lists(
    st.tuples(st.sampled_from([w for w in _WORD_POOL if w.isascii()]), st.sampled_from([" ", "\n", ", ", "-", "("])),
    max_size=25,
).map(lambda parts: "".join(w + g for w, g in parts))


@PROPERTY
@given(text=_ascii_texts, filler=st.sampled_from(["", LONG * 3]), at_end=st.booleans())
def test_ascii_and_non_ascii_replies_are_read_alike(text: str, filler: str, at_end: bool) -> None:
    # ASCII replies take a fast path. A separator outside ASCII, after everything the gates read (past the short
    # and lead windows), sends the same reply down the general path: the phrases found must not change.
    content = (filler + text if at_end else text + filler).strip() or "x"
    assert len(content) <= 296 or len(content) >= 700
    assert phrase_failures(check(content)) == phrase_failures(check(content + " »"))


@pytest.mark.parametrize("text", ["abcd " * 29, "abcd " * 29 + "I’m"])
def test_a_phrase_that_starts_before_the_lead_cut_counts(text: str) -> None:
    # The lead window (150 chars) is cut at the next whitespace: the phrase starts at 145, before it.
    content = text[:145] + "I'm not sure what the rest is. " + LONG
    assert check(content).failed_gates == ("hedging",)


def test_a_phrase_that_starts_after_the_lead_cut_does_not() -> None:
    content = "abcd " * 31 + "I'm not sure what the rest is. " + LONG  # cut at the space at 154; phrase at 155
    assert check(content).passed
    assert check(content.replace("'", "’")).passed


@pytest.mark.parametrize("apostrophe", ["'", "’"])
def test_a_lead_cut_inside_a_long_word(apostrophe: str) -> None:
    # No whitespace within 40 characters of the cut: it splits the long word, and the phrase before it counts.
    content = "w" * 120 + f" I{apostrophe}m not sure " + "v" * 80 + " " + LONG
    assert check(content).failed_gates == ("hedging",)
    assert check("w" * 200 + f" I{apostrophe}m not sure " + LONG).passed


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("I’M NOT SURE\n《 the rest", id="newline-then-cjk-bracket"),
        pytest.param("I\u00a0can’t\u2028help with that", id="nbsp-and-line-separator"),
        pytest.param("«I’m not sure» — maybe", id="guillemets-and-dash"),
        pytest.param("I'm not sure\u3000 — it depends", id="ideographic-space"),
    ],
)
def test_phrases_between_unicode_gaps(content: str) -> None:
    assert check(content).failed_gates in (("hedging",), ("refusal",))


# --- the prompt: size and wording cues ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "task", "expected"),
    [
        pytest.param("Answer yes\u00a0or\u00a0no: is it raining?", "factual", (1, "terse answer requested"),
                     id="terse-across-nbsp"),
        pytest.param("Write 300–500\u00a0words on rain.", "creative", (900, "asked for 300 words"),
                     id="range-across-a-dash"),
        pytest.param("List «three» ideas for dinner", "general", (22, "asked for 3 items"), id="quoted-count"),
        pytest.param("Describe Rome — in under\u00a010 words.", "general", (1, "asked for at most 10 words"),
                     id="cap-across-a-dash"),
        pytest.param("Summarise the plot of Hamlet in two sentences.", "summarisation", (60, "asked for 2 sentences"),
                     id="number-word"),
        pytest.param("Write a couple of paragraphs.", "creative", (300, "asked for 2 paragraphs"), id="multi-word"),
        pytest.param("Suggest three names for a bakery.", "creative", (22, "asked for 3 items"), id="items"),
        pytest.param("Why is the sky blue?", "reasoning", (1, "judged against the question"), id="no-cue"),
        pytest.param("Write 1,000 words", "creative", (3000, "asked for 1000 words"), id="thousands"),
    ],
)  # fmt: skip
def test_min_length_reads_cues_through_any_gaps(prompt: str, task: str, expected: tuple[int, str]) -> None:
    assert _GATES.min_length(GateInput(prompt=prompt, task_type=task, content="", finish_reason="stop")) == expected


def test_a_system_prompt_without_cues_changes_nothing() -> None:
    base = GateInput(prompt="Write a poem in at most 50 words", task_type="creative", content="", finish_reason="stop")
    with_system = GateInput(**{**_fields(base), "system": "You are a helpful assistant."})
    assert _GATES.min_length(with_system) == _GATES.min_length(base) == (30, "asked for at most 50 words")


def test_without_cues_no_task_but_translation_asks_more_than_ten_times_min_chars() -> None:
    prompt = "Summarise this: " + "Rome was not built in a day. " * 400
    for task in ("code", "reasoning", "creative", "summarisation", "factual", "general"):
        required, _ = _GATES.min_length(GateInput(prompt=prompt, task_type=task, content="", finish_reason="stop"))
        assert required <= 20 * 10
    # A summary of a long text asks exactly that much: a reply one character shorter fails.
    assert check("x" * 200, prompt=prompt, task="summarisation").passed
    assert check("x" * 199, prompt=prompt, task="summarisation").reason == "gate too_short: 199 chars < 200 (summary)"
    # A translation may ask for more.
    assert _GATES.min_length(
        GateInput(prompt="Translate: " + "Rome. " * 400, task_type="translation", content="", finish_reason="stop")
    ) == (719, "translation")


def _fields(gi: GateInput) -> dict[str, Any]:
    return {name: getattr(gi, name) for name in GateInput.__slots__}
