"""Quality gates: decide whether a model's reply is good enough to return, or the cascade should escalate.

The built-in gates are pure and synchronous (:meth:`QualityGates.check`); the user's own gates are async
callables run by :meth:`QualityGates.acheck`. Each failed gate names itself in :attr:`GateResult.reason`.

Built-in gates, in reporting order:

``empty``
    No text and no tool calls.
``too_short``
    The reply is shorter than what the prompt asked for. Lengths are counted in *weighted characters*: a CJK
    ideograph, kana or hangul syllable counts :data:`DEFAULT_WIDE_CHAR_WEIGHT` characters, since one carries about
    as much as a short Latin word. The minimum comes from the prompt first and the task type second:

    1. an explicit size, in the prompt or the system prompt ("500 words", "in 3 sentences", "list 10 ideas",
       "两段", "500字") asks for :data:`DEFAULT_SIZE_TOLERANCE` of it; "one word", "a number" and other sizes
       below :data:`DEFAULT_TINY_REQUEST_CHARS` ask for any non-empty text. An upper bound ("in under 50 words",
       "100字以内") asks for nothing by itself: it caps what the other rules ask at :data:`DEFAULT_CAP_TOLERANCE`
       of the bound;
    2. a terse answer ("yes or no", "just the number", "no explanation", "一言で") asks for any non-empty text;
    3. a translation asks for :data:`DEFAULT_TRANSLATION_RATIO` of the text to translate (the quoted part, or what
       follows the first colon or line break, else the prompt less :data:`DEFAULT_TRANSLATION_OVERHEAD`);
    4. a summary asks for :data:`DEFAULT_SUMMARY_RATIO` of the prompt, at least ``min_chars`` and at most
       :data:`DEFAULT_SUMMARY_CAP_FACTOR` times it;
    5. a long-form request (a verb such as "write", "implement", "explain", "compare", or an essay, story or
       article, in any of the classifier's languages, and not marked "briefly") asks for ``min_chars``, and
       :data:`DEFAULT_LONG_FORM_FACTOR` times it for ``code`` and ``creative``. A ``code`` or ``creative`` prompt
       that is not a question counts as long-form too;
    6. anything else (a short factual question, a greeting) is judged against the question:
       :data:`DEFAULT_QUESTION_RATIO` of the prompt's length, between 1 and ``min_chars``. So "4" answers
       "What is 2+2?" and "Paris" answers "Capital of France?".

    Size cues are read from the first :data:`DEFAULT_SCAN_HEAD` and last :data:`DEFAULT_SCAN_TAIL` characters of a
    prompt, where instructions sit. A reply with tool calls, or one requested as JSON, is not judged by length.
``refusal`` and ``hedging``
    Phrase lists in English, Chinese, Japanese, Korean, Russian, German, Spanish, Portuguese, French, Hindi and
    Arabic (:data:`REFUSAL_PHRASES`, :data:`HEDGING_PHRASES`), extended, never replaced, by
    ``quality.refusal_phrases`` and ``quality.hedging_phrases``. Matching is case-insensitive and on whole words for
    space-separated scripts (so "I cannot overstate" is not "I cannot help", and "with" does not match "without");
    punctuation between words and hyphens are ignored; CJK phrases match anywhere, with optional spaces. Curly
    apostrophes match straight ones; Arabic diacritics, tatweel and hamza forms of alef are ignored.

    A phrase only counts when it *dominates* the reply: it starts within the first :data:`DEFAULT_LEAD_CHARS`
    weighted characters (the window is stretched to the end of the word it cuts), or the whole reply is at most
    :data:`DEFAULT_SHORT_REPLY_CHARS` long. So a long correct
    answer that ends with "I'm not sure if you also want X" passes. A refusal is the stronger failure: when
    ``refusal`` fails, ``hedging`` is not reported. For a translation, a phrase of the same list that the prompt
    itself contains is not held against the reply (the reply is likely its translation). A reply with tool calls
    is judged by its tool calls.
``truncated``
    ``finish_reason`` is ``"length"`` (or Anthropic's ``"max_tokens"``).
``invalid_json``
    ``response_format`` asks for ``json_object`` or ``json_schema`` and the content is not JSON. The real APIs
    return bare JSON in these modes, so only surrounding whitespace is tolerated: a reply fenced in ```json is a
    model that ignored JSON mode, and the caller's ``json.loads`` would fail on it too. ``json_object`` needs an
    object; ``json_schema`` checks the schema's top-level ``type``, its ``required`` keys, the ``type`` of each
    top-level property and ``additionalProperties: false``.
``missing_tool_call``
    The request required a tool call (``tool_choice`` ``"required"``/``"any"`` or a named function) and none came.

Scores rank replies when every model fails and the router returns the best one: 1.0 for a clean pass, else the
product over the failures of :data:`DEFAULT_GATE_SCORES` (empty 0, refusal 0.1, missing tool call 0.2, invalid
JSON 0.3, truncated 0.4, too short 0.45 to 0.55 by how short, hedging 0.6), or :data:`DEFAULT_CUSTOM_GATE_SCORE`
for a failed custom gate.

Custom gates (:class:`QualityGate`) run after the built-ins and only when they pass (a reply that is already
rejected need not cost a judge call), one at a time in the order given; the first failure ends the check. A gate
returns ``True`` or ``None`` to pass, ``False`` or a reason string to fail. Its exceptions propagate unchanged.
``quality.enabled: false`` turns off the built-in gates; custom gates, passed in code, still run. Any gate,
built-in or custom, can be turned off by name in ``quality.disabled``.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

from ._config import QualityConfig
from ._exceptions import ConfigError
from ._models import ChatRequest, ChatResponse
from ._tokens import WIDE_RE, message_text

__all__ = [
    "BUILTIN_GATES",
    "DEFAULT_CUSTOM_GATE_SCORE",
    "DEFAULT_GATE_SCORES",
    "DEFAULT_LEAD_CHARS",
    "DEFAULT_SHORT_REPLY_CHARS",
    "HEDGING_PHRASES",
    "REFUSAL_PHRASES",
    "CustomGate",
    "GateFailure",
    "GateInput",
    "GateResult",
    "GateVerdict",
    "QualityGate",
    "QualityGates",
]

#: Names of the built-in gates, in the order their failures are reported.
BUILTIN_GATES: Final = ("empty", "too_short", "hedging", "refusal", "truncated", "invalid_json", "missing_tool_call")
#: A hedging or refusal phrase starting within this many weighted characters of the reply dominates it.
DEFAULT_LEAD_CHARS: Final = 150
#: In a reply at most this long (weighted characters) a hedging or refusal phrase dominates wherever it is.
DEFAULT_SHORT_REPLY_CHARS: Final = 300
#: Weight of one CJK ideograph, kana or hangul syllable when measuring length.
DEFAULT_WIDE_CHAR_WEIGHT: Final = 3
#: Share of an explicitly requested size that a reply must reach.
DEFAULT_SIZE_TOLERANCE: Final = 0.5
#: Share of a requested *upper bound* ("under 50 words") that caps the minimum.
DEFAULT_CAP_TOLERANCE: Final = 0.1
#: A requested size in words or characters below this many characters asks for any non-empty text.
DEFAULT_TINY_REQUEST_CHARS: Final = 10
#: ``min_chars`` is multiplied by this for long-form ``code`` and ``creative`` requests.
DEFAULT_LONG_FORM_FACTOR: Final = 2
#: A question with no size cue needs this share of its own length (capped at ``min_chars``).
DEFAULT_QUESTION_RATIO: Final = 0.05
#: A translation needs this share of the length of the text to translate.
DEFAULT_TRANSLATION_RATIO: Final = 0.3
#: Characters of instruction assumed in a translation prompt whose source text cannot be located.
DEFAULT_TRANSLATION_OVERHEAD: Final = 40
#: A summary needs this share of the prompt's length, at least ``min_chars``...
DEFAULT_SUMMARY_RATIO: Final = 0.02
#: ...and at most this many times ``min_chars``.
DEFAULT_SUMMARY_CAP_FACTOR: Final = 10
#: No prompt can ask for more than this many characters: output limits make more unreachable anyway.
DEFAULT_MAX_REQUIRED_CHARS: Final = 10_000
#: Size and wording cues are read from this many characters at the start of a prompt...
DEFAULT_SCAN_HEAD: Final = 400
#: ...and this many at its end (a pasted document in between is not instructions).
DEFAULT_SCAN_TAIL: Final = 200
#: Score factor of each failed built-in gate; a reply's score is the product over its failures.
DEFAULT_GATE_SCORES: Final[Mapping[str, float]] = MappingProxyType(
    {
        "empty": 0.0,
        "refusal": 0.1,
        "missing_tool_call": 0.2,
        "invalid_json": 0.3,
        "truncated": 0.4,
        "too_short": 0.5,
        "hedging": 0.6,
    }
)
#: Score factor of a failed custom gate.
DEFAULT_CUSTOM_GATE_SCORE: Final = 0.5

GateVerdict: TypeAlias = bool | str | None


@dataclass(frozen=True, slots=True)
class GateInput:
    """A reply, with what the gates need to know about the request that produced it.

    Attributes:
        prompt: the text of the last user message.
        task_type: the classifier's task type: ``code``, ``reasoning``, ``creative``, ``translation``,
            ``summarisation``, ``factual`` or ``general`` (anything else is judged as ``general``).
        content: the reply text.
        finish_reason: the normalised finish reason: ``"stop"``, ``"length"``, ``"tool_calls"``,
            ``"content_filter"`` or ``None``.
        tool_calls: the reply's tool calls.
        tools_expected: the request required a tool call (``tool_choice`` ``"required"`` or a named function).
        response_format: the request's ``response_format`` (OpenAI shape), if any.
        system: the system prompt, if any (a size instruction there counts too).

    .. versionadded:: 0.1
    """

    prompt: str
    task_type: str
    content: str
    finish_reason: str | None
    tool_calls: Sequence[Mapping[str, Any]] = ()
    tools_expected: bool = False
    response_format: Mapping[str, Any] | None = None
    system: str | None = None

    @classmethod
    def from_chat(cls, request: ChatRequest, response: ChatResponse, *, task_type: str) -> GateInput:
        """Build the gates' input from a provider request and its reply.

        Args:
            request: what the provider was asked.
            response: what it answered.
            task_type: the classifier's task type for the request.

        Returns:
            The :class:`GateInput` for that exchange.
        """
        prompt = ""
        systems: list[str] = []
        for message in request.messages:
            role = message.get("role")
            if role in ("system", "developer"):
                systems.append(message_text(message))
            elif role == "user":
                prompt = message_text(message)
        if not prompt and request.messages:
            prompt = message_text(request.messages[-1])
        return cls(
            prompt=prompt,
            task_type=task_type,
            content=response.content,
            finish_reason=response.finish_reason,
            tool_calls=tuple(response.tool_calls),
            tools_expected=bool(request.tools) and _requires_tool(request.tool_choice),
            response_format=request.response_format,
            system="\n".join(systems) or None,
        )


def _requires_tool(tool_choice: Any) -> bool:
    # OpenAI: "required" or {"type": "function", "function": {...}}; Anthropic: {"type": "any"} or
    # {"type": "tool", "name": ...}. "auto", "none" and {"type": "auto"} leave the choice to the model.
    if isinstance(tool_choice, str):
        return tool_choice in ("required", "any")
    if isinstance(tool_choice, Mapping):
        return tool_choice.get("type") in ("function", "tool", "any")
    return False


@dataclass(frozen=True, slots=True)
class GateFailure:
    """One failed gate.

    Attributes:
        gate: the gate's name: a built-in (see :data:`BUILTIN_GATES`) or a custom gate's name.
        detail: why it failed, e.g. ``"3 chars < 40 (code request)"`` or ``"'I'm not sure'"``.

    .. versionadded:: 0.1
    """

    gate: str
    detail: str


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gates' verdict on one reply.

    Attributes:
        passed: whether every gate passed.
        score: 0 to 1, higher is better, 1.0 for a pass; ranks replies when every model fails.
        failures: each failed gate, in reporting order.

    .. versionadded:: 0.1
    """

    passed: bool
    score: float
    failures: tuple[GateFailure, ...] = ()

    @property
    def reason(self) -> str:
        """The failures as text, e.g. ``"gate too_short: 3 chars < 40 (code request); gate hedging: 'Not sure'"``."""
        return "; ".join(f"gate {f.gate}: {f.detail}" for f in self.failures)

    @property
    def failed_gates(self) -> tuple[str, ...]:
        """The names of the failed gates."""
        return tuple(f.gate for f in self.failures)


_PASSED: Final = GateResult(passed=True, score=1.0)


class QualityGate(Protocol):
    """A user-supplied gate: an async callable with a name.

    Return ``True`` or ``None`` to pass the reply, ``False`` or a reason string to fail it. Exceptions propagate
    to the caller unchanged. A plain ``async def`` function works too (its ``__name__`` names it), and so does a
    synchronous callable.

    .. versionadded:: 0.1
    """

    name: str

    async def __call__(self, reply: GateInput, /) -> GateVerdict: ...


#: What :class:`QualityGates` accepts as a custom gate.
CustomGate: TypeAlias = QualityGate | Callable[[GateInput], Awaitable[GateVerdict] | GateVerdict]


# --- text folding and phrase matching --------------------------------------------------------------------------

# Curly and look-alike apostrophes become "'"; dashes become spaces (so "500–word" reads as "500 word"); Arabic
# diacritics (harakat, tanwin, superscript alef) and tatweel are dropped and hamza forms of alef become a bare
# alef, because writers use them inconsistently.
_FOLD: Final = str.maketrans(
    {
        **dict.fromkeys("\u2019\u2018\u02bc\uff07\u2032\u00b4", "'"),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", " "),
        **dict.fromkeys([chr(c) for c in (*range(0x064B, 0x0660), 0x0670, 0x0640)], None),
        **dict.fromkeys("\u0623\u0625\u0622\u0671", "\u0627"),
    }
)
# Punctuation: Latin, CJK, Devanagari (danda) and Arabic. Between words it separates them like a space does.
_STRIP: Final = ".,;:!?…\"'()[]{}<>«»“”„‚*_`~|/\\·•、，。！？；：「」『』（）【】《》〈〉।॥،؛؟"
# Word separators besides whitespace: punctuation, hyphens and apostrophes ("can't" reads as "can t", in a phrase
# and in a reply alike, so the two always agree).
_SEPARATORS: Final = _STRIP + "-'"
# The gaps between words as the phrase matchers see them (see _gapped): in ASCII text a translation table makes
# each gap character a space (a str table, which takes str.translate's fast path); in other text a regex makes each
# separator one (character by character: faster than by runs, which are short).
_ASCII_GAPS: Final = "".join(" " if chr(c).isspace() or chr(c) in _SEPARATORS else chr(c) for c in range(128))
_SEPARATORS_RE: Final = re.compile("[" + re.escape(_SEPARATORS) + "]")
_THOUSANDS_RE: Final = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Any character _FOLD changes: most non-ASCII text has none or a few, so replacing those beats a translation, which
# looks every character up in a dict.
_FOLDABLE_RE: Final = re.compile("[" + "".join(re.escape(chr(c)) for c in _FOLD) + "]")
_FOLDED: Final[Mapping[str, str]] = MappingProxyType({chr(c): v or "" for c, v in _FOLD.items()})
# Runs of wide characters: CJK text is one long run, so counting runs beats counting characters.
_WIDE_RUN_RE: Final = re.compile(f"(?:{WIDE_RE.pattern})+")
_WS_RE: Final = re.compile(r"\s")
_NO_MATCH: Final = re.compile(r"\A(?!)")  # stands in for the regex of an empty phrase list
_CUT_SLIDE: Final = 40  # how far a lead cut may move to reach whitespace, so that it does not split a word
_COMMAS: Final = ",，、،"
_KIND: Final = ""  # trie key of the kind of phrase ending at a node; words are never empty, so it cannot clash
_Trie: TypeAlias = dict[str, Any]


def _fold(text: str) -> str:
    """Text as the phrase matchers see it: normalised as in ``_FOLD`` and lower-cased."""
    # str.isascii() is O(1) in CPython, so plain ASCII text skips the search. No replacement is itself replaced,
    # so replacing each character in turn is the same as translating them all at once.
    if not text.isascii():
        for ch in set(_FOLDABLE_RE.findall(text)):
            text = text.replace(ch, _FOLDED[ch])
    return text.lower()


def _gapped(folded: str) -> str:
    """Folded text as the word-phrase regexes read it: its gaps made whitespace, and framed by spaces.

    A gap is whitespace, punctuation, a hyphen or an apostrophe (see ``_SEPARATORS``), so the ``split()`` of gapped
    text is the words of the text, and gapped text that is ASCII has no whitespace but spaces (see
    :meth:`_PhraseIndex.regex_for`). Each separator becomes one space, so a character at offset ``i`` of ``folded``
    is at ``i + 1``.
    """
    if folded.isascii():
        return " " + folded.translate(_ASCII_GAPS) + " "
    text = _SEPARATORS_RE.sub(" ", folded)
    if text.isascii():  # English with curly quotes, say: now plain ASCII, whose other whitespace the table turns
        text = text.translate(_ASCII_GAPS)
    return " " + text + " "


def _words(folded: str) -> list[str]:
    """The words of folded text: split on whitespace, punctuation, hyphens and apostrophes."""
    return _gapped(folded).split()


def _is_wide_phrase(folded: str) -> bool:
    """Whether a phrase has CJK letters (CJK punctuation alone does not count)."""
    return not folded.isascii() and WIDE_RE.search(_wide_key(folded)) is not None


def _has_words(phrase: str) -> bool:
    folded = _fold(phrase)
    return bool(_words(folded)) or bool(_wide_key(folded))


def _weighted_len(text: str, limit: int | None = None) -> int:
    """Length in weighted characters; stops counting once it is known to reach ``limit``."""
    n = len(text)
    if text.isascii() or (limit is not None and n >= limit):
        return n
    first = WIDE_RE.search(text)
    if first is None:
        return n
    return n + (DEFAULT_WIDE_CHAR_WEIGHT - 1) * sum(map(len, _WIDE_RUN_RE.findall(text, first.start())))


def _wide_key(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and ch not in _STRIP)


def _wide_atoms(phrase: str) -> list[str]:
    atoms: list[str] = []
    for ch in phrase:
        if ch.isspace():
            continue  # the gap between atoms allows any whitespace, or none
        if ch in _COMMAS:
            atoms.append(f"[{_COMMAS}]?")
        elif ch in _STRIP:
            atoms.append(re.escape(ch) + "?")
        else:
            atoms.append(re.escape(ch))
    return atoms


def _wide_pattern(phrases: Iterable[str]) -> str:
    """One regex for phrases in unspaced scripts, factored into a trie: spaces optional, punctuation optional."""
    root: _Trie = {}
    for phrase in phrases:
        node = root
        for atom in _wide_atoms(phrase):
            node = node.setdefault(atom, {})
        node[_KIND] = {}

    def emit(node: _Trie) -> str:
        branches = [atom + emit(child) for atom, child in sorted(node.items()) if atom != _KIND]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return r"\s*" + (f"(?:{body})?" if _KIND in node else body)

    # The first character must be literal, so the regex engine can skip to candidate positions by character set.
    return emit(root).removeprefix(r"\s*")


def _words_pattern(root: _Trie, space: str) -> str | None:
    """One regex for the phrases of a trie of words, over gapped text (see ``_gapped``).

    A match starts at the ``space`` (" " for gapped ASCII, else ``\\s``) before a phrase's first word and ends with
    its last word, which must be followed by a space: whole words only. The words of each trie level are factored
    into a trie of characters, so that the regex engine tries one branch per distinct character, and the space in
    front lets it skip from gap to gap (a literal space, the fastest: a plain character search).

    At each word the longest phrase wins, as in a walk of the trie that keeps the deepest phrase it passed: the
    regex tries to go on to a next word before it settles for a phrase ending here. A word followed by another must
    be followed by a gap; the last one is checked once, at the end: if it was only the start of a longer word ("help"
    in "helpful"), the regex backs off to a shorter phrase.
    """
    word_gap = f"{space}+"

    def words(node: _Trie) -> str:
        chars: _Trie = {}
        for word, child in node.items():
            if word != _KIND:
                at = chars
                for ch in word:
                    at = at.setdefault(ch, {})
                at[_KIND] = after(child)
        return alternatives(chars)

    def alternatives(chars: _Trie) -> str:
        branches = [rest if ch == _KIND else re.escape(ch) + alternatives(rest) for ch, rest in sorted(chars.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    def after(node: _Trie) -> str:
        if len(node) == 1 and _KIND in node:
            return ""
        more = word_gap + words(node)
        return f"(?:{more})?" if _KIND in node else more

    return f"{space}{words(root)}(?={space})" if root else None


class _PhraseIndex:
    """Finds phrases of several kinds in folded text.

    Phrases in space-separated scripts go into a trie of words, compiled into one regex over gapped text (see
    ``_words_pattern``): whole-word matching, and the whole scan in C. A second regex of only the ASCII phrases
    serves ASCII text, which no other phrase can match, with fewer branches to try at each word. Phrases containing
    CJK characters, which have no spaces to split on, go into a regex of their own; it only runs on text that is
    not ASCII.
    """

    __slots__ = ("_wide_kinds", "_wide_re", "ascii_regex", "kinds", "longest", "regex")

    def __init__(self, phrases: Iterable[tuple[str, str]]) -> None:
        root: _Trie = {}
        ascii_root: _Trie = {}
        self.kinds: dict[str, str] = {}  # a phrase's words, joined by a space -> its kind
        self._wide_kinds: dict[str, str] = {}
        wide: list[str] = []
        #: Length of the longest phrase, in characters.
        self.longest = 0
        for phrase, kind in phrases:
            text = _fold(phrase).strip()
            self.longest = max(self.longest, len(text))
            if _is_wide_phrase(text):
                # Matches are told apart by their text without spaces and punctuation, both optional in the regex.
                self._wide_kinds.setdefault(_wide_key(text), kind)
                wide.append(text)
                continue
            words = _words(text)
            if not words:
                raise ValueError(f"phrase {phrase!r} has no words")
            self.kinds.setdefault(" ".join(words), kind)  # the first list to claim a phrase keeps it
            for trie in (root, ascii_root) if text.isascii() else (root,):
                node = trie
                for word in words:
                    node = node.setdefault(word, {})
                node[_KIND] = {}
        pattern, ascii_pattern = _words_pattern(root, r"\s"), _words_pattern(ascii_root, " ")
        #: The word phrases' regex for gapped text, and the ASCII phrases' for gapped ASCII (see regex_for).
        self.regex = re.compile(pattern) if pattern is not None else None
        self.ascii_regex = re.compile(ascii_pattern) if ascii_pattern is not None else None
        self._wide_re = re.compile(_wide_pattern(wide)) if wide else None

    def regex_for(self, gapped: str) -> re.Pattern[str] | None:
        """The regex of the word phrases to run over ``gapped`` text (see ``_gapped``), or None if there are none.

        Gapped ASCII gets the regex of the ASCII phrases, with spaces for gaps: it has no other whitespace, and no
        other phrase can match it. A match runs from the gap before a phrase's first word to the end of its last
        word, and is the longest phrase at the first word where one starts; ``finditer`` resumes after it, so
        matches never overlap.
        """
        return self.ascii_regex if gapped.isascii() else self.regex

    def words_and_kind(self, match: re.Match[str]) -> tuple[str, str]:
        """The words of a phrase that a :meth:`regex_for` regex matched, joined by a space, and its kind."""
        words = " ".join(match.group().split())
        return words, self.kinds[words]

    def wide_scan(self, folded: str, start_limit: int) -> list[tuple[int, int, str]]:
        """``(start, end, kind)`` of each CJK phrase starting before character ``start_limit``."""
        if self._wide_re is None or folded.isascii():
            return []
        hits: list[tuple[int, int, str]] = []
        for m in self._wide_re.finditer(folded):
            if m.start() >= start_limit:
                break
            kind = self._wide_kinds.get(_wide_key(m.group()))
            if kind is not None:
                hits.append((m.start(), m.end(), kind))
        return hits

    def first_of_each(self, lead: str, tail: str = "") -> dict[str, str]:
        """The first phrase of each kind that starts in ``lead`` (it may run on into ``tail``), as folded text."""
        folded = _fold(lead)
        gapped = _gapped(folded)
        # The words of the lead sit before this offset in the gapped text, those of the tail after it.
        lead_end = len(gapped)
        lead_chars = len(folded)
        if tail:
            folded_tail = _fold(tail)
            gapped += _gapped(folded_tail)
            folded += folded_tail
        found: dict[str, str] = {}
        regex = self.regex_for(gapped)
        if regex is not None:
            m = regex.search(gapped)
            while m is not None and m.start() < lead_end:
                words, kind = self.words_and_kind(m)
                found.setdefault(kind, words)
                m = regex.search(gapped, m.end())
        if self._wide_re is not None and not folded.isascii():
            for start, end, kind in self.wide_scan(folded, lead_chars):
                found.setdefault(kind, folded[start:end])
        return found


def _original(text: str, folded_match: str) -> str:
    """The span of ``text`` that a folded match came from (for quoting it), else the folded match itself."""
    folded = _fold(text)
    if len(folded) == len(text):  # folding kept offsets: true unless Arabic diacritics were dropped
        pattern = r"[\W_]*".join(re.escape(part) for part in folded_match.split())
        m = re.search(pattern, folded)
        if m is not None:
            return text[m.start() : m.end()]
    return folded_match


def _cross(subjects: Sequence[str], tails: Sequence[str]) -> list[str]:
    return [f"{s} {t}" for s in subjects for t in tails]


_EN_REFUSAL_SUBJECTS: Final = (
    "I can't", "I cannot", "I can not", "I'm unable to", "I am unable to", "I'm not able to", "I am not able to",
    "I won't be able to", "I will not be able to", "I'm not allowed to", "I am not allowed to", "I won't", "I will not",
)  # fmt: skip
_EN_REFUSAL_ACTIONS: Final = (
    "help with", "help you with", "help you", "assist with", "assist you with", "assist you", "provide", "comply",
    "fulfill", "fulfil", "do that", "do this", "answer that", "answer this", "create that", "generate that",
    "write that", "support that", "engage in", "engage with", "share", "continue with",
)  # fmt: skip

#: Built-in refusal phrases by language.
REFUSAL_PHRASES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "en": (
            *_cross(_EN_REFUSAL_SUBJECTS, _EN_REFUSAL_ACTIONS),
            "I must decline", "I have to decline", "I need to decline", "I must refuse", "I have to refuse",
            "I'm afraid I can't", "I'm afraid I cannot", "I am afraid I cannot",
            "I'm sorry, but I can't", "I'm sorry, but I cannot", "I am sorry, but I cannot", "I'm sorry, I can't",
            "I'm sorry, I cannot", "Sorry, but I can't", "Sorry, I can't", "Sorry, I cannot",
            "I apologize, but I can't", "I apologize, but I cannot", "I apologise, but I can't",
            "I apologise, but I cannot",
            "As an AI language model, I cannot", "As an AI language model, I can't", "As an AI, I cannot",
            "As an AI, I can't", "As a language model, I cannot", "As a language model, I can't",
            "that's not something I can help with", "that is not something I can help with",
            "this is not something I can help with", "I can't and won't", "I cannot and will not",
        ),
        "zh": (
            "我无法帮助", "我不能帮助", "我无法帮你", "我不能帮你", "我无法提供", "我不能提供", "我无法协助",
            "我不能协助", "我无法回答", "我不能回答", "我无法满足", "我无法完成这个请求", "抱歉，我无法",
            "抱歉，我不能",
            "对不起，我无法", "对不起，我不能", "很抱歉，我无法", "很抱歉，我不能", "我必须拒绝",
            "我無法幫助", "我不能幫助", "我無法幫你", "我無法提供", "我不能提供", "我無法協助", "我無法回答",
            "我不能回答", "抱歉，我無法", "對不起，我無法", "對不起，我不能",
        ),
        "ja": (
            "お手伝いできません", "お手伝いすることはできません", "お手伝いいたしかねます", "お答えできません",
            "お答えすることはできません", "回答できません", "回答することはできません", "提供できません",
            "提供することはできません", "対応できません", "お応えできません", "ご要望にはお応えできません",
            "お断りします",
        ),
        "ko": (
            "도와드릴 수 없습니다", "도와드릴 수 없어요", "도움을 드릴 수 없습니다", "도움을 드릴 수 없어요",
            "답변드릴 수 없습니다", "답변할 수 없습니다", "답변해 드릴 수 없습니다", "제공할 수 없습니다",
            "제공해 드릴 수 없습니다", "응할 수 없습니다", "거절해야 합니다",
        ),
        "ru": (
            "я не могу помочь", "я не могу с этим помочь", "я не могу вам помочь", "я не могу тебе помочь",
            "я не могу выполнить", "я не могу предоставить", "я не могу ответить на", "я не могу это сделать",
            "я не могу этого сделать", "извините, но я не могу", "простите, но я не могу", "к сожалению, я не могу",
            "я не в состоянии помочь", "я вынужден отказать", "я должен отказать", "я вынуждена отказать",
        ),
        "de": (
            "ich kann dabei nicht helfen", "ich kann Ihnen dabei nicht helfen", "ich kann dir dabei nicht helfen",
            "ich kann nicht helfen", "ich kann Ihnen nicht helfen", "ich kann dir nicht helfen",
            "das kann ich nicht tun", "ich kann diese Anfrage nicht", "es tut mir leid, aber ich kann",
            "leider kann ich nicht", "leider kann ich Ihnen nicht", "leider kann ich dir nicht",
            "ich muss ablehnen", "ich bin nicht in der Lage",
        ),
        "es": (
            "no puedo ayudar", "no puedo ayudarte", "no puedo ayudarle", "no puedo ayudarlo", "no puedo ayudarla",
            "no puedo proporcionar", "no puedo cumplir", "no puedo hacer eso", "no puedo responder a eso",
            "no puedo responder esa", "lo siento, pero no puedo", "lo siento, no puedo", "no me es posible ayudar",
            "no estoy en condiciones de", "debo rechazar",
        ),
        "pt": (
            "não posso ajudar", "não consigo ajudar", "não posso te ajudar", "não posso lhe ajudar",
            "não posso fornecer", "não posso atender", "não posso fazer isso", "não posso responder a isso",
            "desculpe, mas não posso", "lamento, mas não posso", "sinto muito, mas não posso",
            "não me é possível ajudar", "devo recusar",
        ),
        "fr": (
            "je ne peux pas vous aider", "je ne peux pas t'aider", "je ne peux pas aider", "je ne peux pas répondre",
            "je ne peux pas fournir", "je ne peux pas faire cela", "je ne peux pas faire ça",
            "je ne suis pas en mesure de", "désolé, mais je ne peux pas", "désolée, mais je ne peux pas",
            "je regrette, mais je ne peux pas", "je dois refuser", "il m'est impossible de",
        ),
        "hi": (
            "मैं मदद नहीं कर सकता", "मैं मदद नहीं कर सकती", "मैं इसमें मदद नहीं कर सकता",
            "मैं इसमें मदद नहीं कर सकती", "मैं आपकी मदद नहीं कर सकता", "मैं आपकी मदद नहीं कर सकती",
            "मैं यह नहीं कर सकता", "मैं यह नहीं कर सकती", "मैं इसका उत्तर नहीं दे सकता",
            "मैं इसका उत्तर नहीं दे सकती", "मैं यह जानकारी प्रदान नहीं कर सकता", "क्षमा करें, लेकिन मैं नहीं कर सकता",
        ),
        "ar": (
            "لا أستطيع المساعدة", "لا يمكنني المساعدة", "لا يمكنني مساعدتك", "لا أستطيع مساعدتك",
            "لا يمكنني تقديم", "لا أستطيع تقديم", "لا يمكنني الإجابة", "لا أستطيع الإجابة", "لا يمكنني القيام بذلك",
            "عذرا، لا يمكنني", "آسف، لا أستطيع", "أعتذر، لا يمكنني", "يجب أن أرفض",
        ),
    }
)  # fmt: skip

#: Built-in hedging phrases by language.
HEDGING_PHRASES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "en": (
            "I'm not sure", "I am not sure", "I'm not entirely sure", "I am not entirely sure",
            "I'm not completely sure",
            "I'm not 100% sure", "I'm not certain", "I am not certain", "I'm not entirely certain", "I'm unsure",
            "I am unsure", "I don't know", "I do not know", "I don't really know", "I'm not confident",
            "I am not confident", "I can't be sure", "I cannot be sure", "I can't be certain", "I cannot be certain",
            "I can't say for sure", "I cannot say for sure", "I can't say for certain", "I cannot say for certain",
            "it's hard to say", "it is hard to say", "it's difficult to say", "it is difficult to say",
            "it's hard to tell", "it is hard to tell", "I might be wrong", "I may be wrong", "I could be wrong",
            "I might be mistaken", "I may be mistaken", "I don't have enough information",
            "I do not have enough information", "I don't have access to", "I do not have access to",
            "I don't have real-time", "I do not have real-time", "as of my last update", "as of my knowledge cutoff",
            "my knowledge cutoff", "as an AI language model", "as a language model", "as an AI model", "I'm just an AI",
            "I am just an AI", "I'm only an AI", "I'm not an expert", "I am not an expert", "I'm not familiar with",
            "I am not familiar with", "I couldn't find", "I could not find", "my best guess", "I would guess",
            "I'd guess",
        ),
        "zh": (
            "我不确定", "我不太确定", "我不是很确定", "我不清楚", "我不太清楚", "我不知道", "我无法确定", "我不能确定",
            "很难说", "我可能错了", "我可能是错的", "作为一个人工智能语言模型", "作为人工智能语言模型",
            "作为AI语言模型",
            "作为一个AI语言模型", "我不確定", "我不太確定", "我無法確定", "我可能錯了", "作為一個人工智慧語言模型",
        ),
        "ja": (
            "よくわかりません", "よく分かりません", "わかりません", "分かりません", "確信がありません",
            "確信が持てません", "はっきりとはわかりません", "定かではありません", "自信がありません",
            "断言できません", "言語モデルとして",
        ),
        "ko": (
            "잘 모르겠습니다", "잘 모르겠어요", "모르겠습니다", "확실하지 않습니다", "확실하지 않아요",
            "확실히 알 수 없습니다", "정확히 알 수 없습니다", "확신할 수 없습니다", "언어 모델로서",
        ),
        "ru": (
            "я не уверен", "я не уверена", "я не знаю", "затрудняюсь ответить", "трудно сказать", "сложно сказать",
            "я не могу точно сказать", "точно не знаю", "не могу сказать точно", "как языковая модель",
            "как модель ИИ", "возможно, я ошибаюсь",
        ),
        "de": (
            "ich bin mir nicht sicher", "ich bin nicht sicher", "ich weiß es nicht", "ich weiss es nicht",
            "ich weiß nicht", "ich weiss nicht", "schwer zu sagen", "ich kann es nicht genau sagen",
            "ich kann das nicht mit Sicherheit sagen", "als KI-Sprachmodell", "als Sprachmodell",
            "ich könnte mich irren",
        ),
        "es": (
            "no estoy seguro", "no estoy segura", "no lo sé", "no lo se", "no sé", "no tengo certeza",
            "es difícil decir", "es difícil saber", "como modelo de lenguaje", "como un modelo de lenguaje",
            "puede que me equivoque", "podría estar equivocado",
        ),
        "pt": (
            "não tenho certeza", "não tenho a certeza", "não sei", "não estou certo", "não estou seguro",
            "não estou segura", "é difícil dizer", "como modelo de linguagem", "como um modelo de linguagem",
            "posso estar enganado", "posso estar errado",
        ),
        "fr": (
            "je ne suis pas sûr", "je ne suis pas sûre", "je ne suis pas sur", "je ne suis pas certain",
            "je ne suis pas certaine", "je ne sais pas", "difficile à dire", "il est difficile de dire",
            "en tant que modèle de langage", "en tant qu'IA", "je pourrais me tromper", "je peux me tromper",
        ),
        "hi": (
            "मुझे यकीन नहीं है", "मुझे पक्का नहीं पता", "मुझे नहीं पता", "मैं निश्चित नहीं हूं", "मैं निश्चित नहीं हूँ",
            "मुझे निश्चित रूप से नहीं पता", "कहना मुश्किल है", "एक एआई भाषा मॉडल के रूप में",
        ),
        "ar": (
            "لست متأكدا", "لست متأكدة", "لا أعرف", "لا أعلم", "لا أدري", "من الصعب القول", "لست واثقا",
            "بصفتي نموذج لغة", "كنموذج لغوي", "قد أكون مخطئا",
        ),
    }
)  # fmt: skip


# --- what a prompt asks for ------------------------------------------------------------------------------------

_TERSE_CUES: Final = (
    "one word", "one-word", "a single word", "single word", "in a word", "yes or no", "yes/no", "true or false",
    "true/false", "just the number", "only the number", "just a number", "a number only", "number only",
    "just the answer", "only the answer", "answer only", "just the name", "only the name", "just the result",
    "only the result", "just the final answer", "only the final answer", "no explanation", "without explanation",
    "without any explanation", "don't explain", "do not explain", "one letter", "a single letter",
    "一个词", "一個詞", "一个字", "一個字", "是或否", "是还是否", "只回答", "只需回答", "只要答案", "只给出答案",
    "不要解释", "不用解释", "不要解釋", "只写数字", "一言で", "一語で", "はいかいいえ", "数字だけ", "答えだけ",
    "説明不要", "説明は不要", "한 단어로", "예 또는 아니오", "예/아니오", "숫자만", "답만", "설명 없이",
    "одним словом", "да или нет", "только число", "только ответ", "без объяснений", "без пояснений",
    "in einem Wort", "mit einem Wort", "ja oder nein", "nur die Zahl", "nur die Antwort", "ohne Erklärung",
    "en una palabra", "con una palabra", "sí o no", "si o no", "solo el número", "sólo el número",
    "solo la respuesta", "sólo la respuesta", "sin explicación", "em uma palavra", "numa palavra",
    "com uma palavra", "sim ou não", "apenas o número", "só o número", "apenas a resposta", "só a resposta",
    "sem explicação", "en un mot", "en un seul mot", "oui ou non", "seulement le nombre", "uniquement le nombre",
    "juste le nombre", "seulement la réponse", "uniquement la réponse", "juste la réponse", "sans explication",
    "एक शब्द में", "हाँ या नहीं", "हां या नहीं", "केवल संख्या", "सिर्फ संख्या", "केवल उत्तर", "सिर्फ उत्तर",
    "बिना व्याख्या", "بكلمة واحدة", "نعم أو لا", "الرقم فقط", "الإجابة فقط", "بدون شرح",
)  # fmt: skip
_ONE_SENTENCE_CUES: Final = (
    "一句话", "一句話", "一文で", "한 문장으로", "في جملة واحدة", "بجملة واحدة",
)  # fmt: skip
_BRIEF_CUES: Final = (
    "briefly", "brief", "in brief", "short answer", "be concise", "concisely", "concise", "tl;dr", "tldr",
    "in short", "in a nutshell", "quick answer", "简要", "简短", "簡短", "簡要", "简单回答", "簡單回答", "简而言之",
    "簡潔に", "手短に", "簡単に", "간단히", "짧게", "간결하게", "кратко", "вкратце", "коротко", "kurz", "knapp",
    "in Kürze", "brevemente", "en breve", "de forma concisa", "resumidamente", "brièvement", "en bref",
    "de façon concise", "succinctement", "संक्षेप में", "संक्षिप्त", "باختصار", "بإيجاز",
)  # fmt: skip
_LONG_FORM_CUES: Final = (
    "write", "rewrite", "implement", "create", "build", "generate", "compose", "draft", "develop", "design",
    "refactor", "explain", "describe", "compare", "contrast", "analyse", "analyze", "discuss", "elaborate",
    "outline", "prove", "derive", "justify", "evaluate", "critique", "tell me about", "walk me through",
    "step by step", "in detail", "detailed", "essay", "story", "article", "blog post", "report", "tutorial",
    "写", "編寫", "编写", "实现", "實現", "解释", "解釋", "描述", "比较", "比較", "分析", "讨论", "討論", "详细",
    "詳細", "证明", "證明", "创作", "創作", "设计", "設計", "文章", "故事", "作文", "论文", "論文",
    "書いて", "書け", "書きなさい", "作成", "実装", "説明", "詳しく", "証明", "物語", "記事", "エッセイ",
    "작성", "써 줘", "써 주세요", "구현", "설명", "비교", "분석", "자세히", "증명", "설계", "에세이",
    "напиши", "напишите", "реализуй", "реализуйте", "объясни", "объясните", "опиши", "опишите", "сравни",
    "сравните", "проанализируй", "проанализируйте", "создай", "создайте", "докажи", "докажите", "подробно",
    "эссе", "рассказ", "статью",
    "schreibe", "schreib", "schreiben Sie", "implementiere", "erstelle", "erkläre", "erklären Sie", "beschreibe",
    "beschreiben Sie", "vergleiche", "vergleichen Sie", "analysiere", "analysieren Sie", "beweise", "entwirf",
    "ausführlich", "detailliert", "Aufsatz", "Essay", "Artikel",
    "escribe", "escriba", "escríbeme", "implementa", "implemente", "redacta", "redacte", "explica", "explique",
    "explícame", "describa", "compara", "analiza", "analice", "demuestra", "diseña", "en detalle", "detallado",
    "detallada", "ensayo", "cuento", "artículo",
    "escreva", "escreve", "crie", "redija", "descreva", "analise", "demonstre", "em detalhe", "detalhado",
    "redação", "ensaio", "conto", "artigo",
    "écris", "écrivez", "rédige", "rédigez", "implémente", "implémentez", "crée", "créez", "expliquez", "décris",
    "décrivez", "comparez", "analysez", "démontre", "démontrez", "en détail", "détaillé", "détaillée",
    "dissertation", "essai",
    "लिखें", "लिखो", "लिखिए", "समझाएं", "समझाइए", "समझाओ", "वर्णन करें", "तुलना करें", "विश्लेषण करें",
    "बनाएं", "बनाइए", "विस्तार से", "निबंध", "कहानी", "लेख",
    "اكتب", "اشرح", "قارن", "حلل", "أنشئ", "بالتفصيل", "مقال", "مقالة", "قصة",
)  # fmt: skip
# Words naming a unit of length, by unit, in the space-separated languages.
_UNIT_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "word": "word words mot mots palabra palabras palavra palavras wort worte worten wörter wörtern слово слова "
        "слов शब्द शब्दों كلمة كلمات",
        "char": "character characters char chars символ символа символов zeichen carácter caracteres caractère "
        "caractères अक्षर अक्षरों حرف حرفا أحرف",
        "sentence": "sentence sentences phrase phrases frase frases oración oraciones satz sätze sätzen предложение "
        "предложения предложений предложениями वाक्य वाक्यों جملة جمل",
        "paragraph": "paragraph paragraphs paragraphe paragraphes párrafo párrafos parágrafo parágrafos absatz "
        "absätze absätzen абзац абзаца абзацев абзацах पैराग्राफ अनुच्छेद فقرة فقرات",
        "line": "line lines ligne lignes línea líneas linha linhas zeile zeilen строка строки строк строчек पंक्ति "
        "पंक्तियाँ पंक्तियों سطر أسطر",
        "page": "page pages página páginas seite seiten страница страницы страниц पृष्ठ صفحة صفحات",
        "item": "item items example examples idea ideas reasons ways tips steps facts names options points bullets "
        "suggestions questions things ejemplos razones consejos formas maneras exemplos ideias razões dicas "
        "maneiras exemples idées raisons conseils façons beispiele ideen gründe tipps punkte примеров примера "
        "идей идеи причин причины советов способов пунктов उदाहरण विचार कारण सुझाव तरीके أمثلة أفكار أسباب "
        "نصائح طرق",
    }
)
# CJK units follow a number directly: "500字", "三段", "3文で", "5가지".
_CJK_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(("文字", "字", "자"), "wchar"),
        **dict.fromkeys(("个单词", "個單詞", "单词", "單詞", "词", "詞", "語", "단어"), "word"),
        **dict.fromkeys(("句话", "句話", "句", "文", "문장"), "sentence"),
        **dict.fromkeys(("段落", "段", "문단", "단락"), "paragraph"),
        **dict.fromkeys(("行", "줄"), "line"),
        **dict.fromkeys(("页", "頁", "ページ", "페이지"), "page"),
        **dict.fromkeys(("个", "個", "条", "條", "つ", "項目", "개", "가지"), "item"),
    }
)
# Latin-script characters per unit (CJK character units count weighted characters).
_UNIT_CHARS: Final[Mapping[str, int]] = MappingProxyType(
    {"word": 6, "char": 1, "wchar": DEFAULT_WIDE_CHAR_WEIGHT, "sentence": 60, "paragraph": 300, "line": 30,
     "page": 2500, "item": 15}
)  # fmt: skip
_UNIT_NAMES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {"word": ("word", "words"), "char": ("character", "characters"), "wchar": ("character", "characters"),
     "sentence": ("sentence", "sentences"), "paragraph": ("paragraph", "paragraphs"), "line": ("line", "lines"),
     "page": ("page", "pages"), "item": ("item", "items")}
)  # fmt: skip
# "One word" asks for any text; "a sentence" still asks for a sentence.
_TINY_UNITS: Final = frozenset({"word", "char", "wchar"})
# "a sentence", "une phrase", "ein Absatz" are sizes; "a page", "an example" rarely are ("create a page with...").
_ARTICLE_UNITS: Final = frozenset({"word", "sentence", "paragraph"})
# Lists start at three: "write a function" / "写一个函数" / "an example" are not list lengths.
_MIN_ITEMS: Final = 3
_ARTICLES: Final = frozenset(
    {"a", "an", "un", "une", "una", "uno", "um", "uma", "ein", "eine", "einem", "einen", "einer"}
)
_NUMBER_WORDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
        "fifty": 50, "hundred": 100, "few": 3, "several": 3, "dozen": 12,
        "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "diez": 10, "dois": 2, "duas": 2, "três": 3, "quatro": 4,
        "dez": 10, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "dix": 10, "zwei": 2, "drei": 3, "vier": 4,
        "fünf": 5, "zehn": 10, "один": 1, "одно": 1, "одна": 1, "одним": 1, "одном": 1, "одной": 1, "два": 2,
        "две": 2, "три": 3, "четыре": 4, "пять": 5, "десять": 10, "एक": 1, "दो": 2, "तीन": 3, "चार": 4, "पांच": 5,
        "पाँच": 5, "दस": 10,
    }
)  # fmt: skip
_MULTI_NUMBERS: Final[Mapping[tuple[str, ...], int]] = MappingProxyType(
    {("a", "few"): 3, ("a", "couple", "of"): 2, ("a", "couple"): 2, ("couple", "of"): 2, ("a", "hundred"): 100,
     ("a", "single"): 1, ("a", "dozen"): 12}
)  # fmt: skip
_MULTI_NUMBER_ENDS: Final = frozenset(words[-1] for words in _MULTI_NUMBERS)
_RANGE_WORDS: Final = frozenset({"to", "or", "a", "à", "o", "ou", "bis", "oder", "до", "или", "से", "الى"})
_CAP_BEFORE: Final = (
    "under", "below", "less than", "fewer than", "at most", "no more than", "not more than", "max", "maximum",
    "up to", "within", "not exceeding", "shorter than", "menos de", "no más de", "como máximo", "máximo",
    "no máximo", "até", "moins de", "au plus", "au maximum", "pas plus de", "weniger als", "höchstens", "maximal",
    "nicht mehr als", "bis zu", "не более", "не больше", "менее", "меньше", "максимум", "до", "अधिकतम", "أقل من",
    "لا يزيد عن", "بحد أقصى", "كحد أقصى",
)  # fmt: skip
_CAP_AFTER: Final = (
    "or less", "or fewer", "max", "maximum", "at most", "से कम", "या कम", "или меньше", "au maximum", "como máximo",
    "no máximo", "höchstens",
)  # fmt: skip
_CAP_BEFORE_WORDS: Final = frozenset(tuple(_words(_fold(p))) for p in _CAP_BEFORE)
_CAP_AFTER_WORDS: Final = frozenset(tuple(_words(_fold(p))) for p in _CAP_AFTER)
_CJK_CAP_BEFORE: Final = ("不超过", "不超過", "最多", "少于", "少於")
_CJK_CAP_AFTER: Final = ("以内", "以內", "以下", "이내", "이하")
_HAN_DIGITS: Final[Mapping[str, int]] = MappingProxyType(
    {"零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
)
_HAN_UNITS: Final[Mapping[str, int]] = MappingProxyType({"十": 10, "百": 100, "千": 1000})
_CJK_NUMERAL: Final = "\\d" + "".join(_HAN_DIGITS) + "".join(_HAN_UNITS)
# The pattern starts with a character class, which lets the regex engine skip to candidate positions.
_CJK_SIZE_RE: Final = re.compile(
    rf"(?P<num>[{_CJK_NUMERAL}][{_CJK_NUMERAL}]*)(?:\s*[~〜]\s*\d+)?\s*(?:个|個)?\s*"
    rf"(?P<unit>{'|'.join(sorted(_CJK_UNITS, key=len, reverse=True))})"
)
_CUE_INDEX: Final = _PhraseIndex(
    [
        *((p, "terse") for p in _TERSE_CUES),
        *((p, "one_sentence") for p in _ONE_SENTENCE_CUES),
        *((w, f"unit:{unit}") for unit, words in _UNIT_WORDS.items() for w in words.split()),
        *((p, "brief") for p in _BRIEF_CUES),
        *((p, "long") for p in _LONG_FORM_CUES),
    ]
)
_CUE_ASCII_RE: Final = _CUE_INDEX.ascii_regex or _NO_MATCH
_CUE_RE: Final = _CUE_INDEX.regex or _NO_MATCH
# Quoted spans are bounded in length, and searched for only near the start, so that a pathological prompt full of
# unmatched quotes costs a bounded amount of backtracking.
_QUOTED_RE: Final = re.compile(
    r"\"([^\"\n]{1,500})\"|“([^”]{1,500})”|«([^»]{1,500})»|「([^」]{1,500})」|『([^』]{1,500})』"
    r"|„([^“”]{1,500})[“”]|(?<!\w)'(.{1,500}?)'(?!\w)",
    re.DOTALL,
)
_QUOTES_WITHIN: Final = 2000
_SOURCE_START_RE: Final = re.compile(r"[:：\n]")
_SOURCE_START_WITHIN: Final = 200
# Beyond this many characters of source a translation's minimum is capped anyway.
_MAX_SOURCE_CHARS: Final = int(DEFAULT_MAX_REQUIRED_CHARS / DEFAULT_TRANSLATION_RATIO) + 1
_MAX_COUNT: Final = 1_000_000
_QUESTION_MARKS: Final = ("?", "？", "؟")


# Named tuples rather than frozen dataclasses: every request reads a prompt's cues, and these build several times
# faster.
class _Size(NamedTuple):
    required: int
    capped: bool
    why: str


class _Cues(NamedTuple):
    size: _Size | None = None
    terse: bool = False
    brief: bool = False
    long_form: bool = False


_NO_CUES: Final = _Cues()
_SCAN_WINDOW: Final = DEFAULT_SCAN_HEAD + DEFAULT_SCAN_TAIL


def _make_size(n: int, unit: str, capped: bool) -> _Size:
    n = min(n, _MAX_COUNT)
    raw = n * _UNIT_CHARS[unit] * (DEFAULT_CAP_TOLERANCE if capped else DEFAULT_SIZE_TOLERANCE)
    if unit in _TINY_UNITS and raw < DEFAULT_TINY_REQUEST_CHARS:
        required = 1
    else:
        required = max(1, min(int(raw), DEFAULT_MAX_REQUIRED_CHARS))
    name = _UNIT_NAMES[unit][0 if n == 1 else 1]
    return _Size(required, capped, f"asked for {'at most ' if capped else ''}{n} {name}")


def _better(a: _Size | None, b: _Size) -> _Size:
    # A lower bound beats an upper bound; between two of a kind, the larger ask wins.
    if a is None or (not b.capped, b.required) > (not a.capped, a.required):
        return b
    return a


def _word_number(word: str, unit: str) -> int | None:
    if word.isdecimal():
        # int() reads any Unicode decimal digits ("５００", "५००", "٥٠٠"); absurdly long numbers are clamped first.
        return int(word) if len(word) <= len(str(_MAX_COUNT)) else _MAX_COUNT
    if word in _ARTICLES:
        return 1 if unit in _ARTICLE_UNITS else None
    return _NUMBER_WORDS.get(word)


def _number_before(words: Sequence[str], i: int, unit: str) -> tuple[int, int] | None:
    """The count written just before the unit word ``words[i]``, and the index of its first word."""
    if i == 0:
        return None
    if words[i - 1] in _MULTI_NUMBER_ENDS:
        for size in (3, 2):
            if i - size >= 0 and tuple(words[i - size : i]) in _MULTI_NUMBERS:
                return _MULTI_NUMBERS[tuple(words[i - size : i])], i - size
    n = _word_number(words[i - 1], unit)
    if n is None:
        return None
    start = i - 1
    # A range asks for its lower bound: "300-500 words" (the dash is a space by now), "3 to 5 sentences".
    if start >= 1 and words[start - 1].isdecimal():
        n, start = int(words[start - 1]), start - 1
    elif start >= 2 and words[start - 1] in _RANGE_WORDS:
        low = _word_number(words[start - 2], unit)
        if low is not None:
            n, start = low, start - 2
    return n, start


def _capped(words: Sequence[str], first: int, end: int) -> bool:
    """Whether an upper-bound phrase ("under", "at most", "or less") sits just before ``first`` or at ``end``."""
    before = words[max(0, first - 3) : first]
    return (
        tuple(before[-1:]) in _CAP_BEFORE_WORDS
        or tuple(before[-2:]) in _CAP_BEFORE_WORDS
        or tuple(before) in _CAP_BEFORE_WORDS
        or tuple(words[end : end + 1]) in _CAP_AFTER_WORDS
        or tuple(words[end : end + 2]) in _CAP_AFTER_WORDS
    )


def _han_number(text: str) -> int:
    total, current = 0, 0
    for ch in text:
        if ch.isdecimal():
            current = current * 10 + int(ch)
        elif ch in _HAN_DIGITS:
            current = _HAN_DIGITS[ch]
        else:
            total += (current or 1) * _HAN_UNITS[ch]
            current = 0
    return total + current


def _read_cues(text: str) -> _Cues:
    """What the wording of a prompt asks for: an explicit size, a terse or brief answer, a long-form one."""
    if len(text) > _SCAN_WINDOW:  # instructions sit at the start and the end, not in a pasted document
        text = text[:DEFAULT_SCAN_HEAD] + "\n" + text[-DEFAULT_SCAN_TAIL:]
    folded = text.lower() if text.isascii() else _fold(text)  # _fold(), inlined for ASCII
    if "," in folded:
        folded = _THOUSANDS_RE.sub("", folded)  # "1,000 words"
    if folded.isascii():
        gapped = " " + folded.translate(_ASCII_GAPS) + " "  # _gapped(), inlined: this runs on every request
        regex = _CUE_ASCII_RE
        m = regex.search(gapped)
        if m is None:
            return _NO_CUES  # most prompts: no cue at all, and nothing to build
    else:
        gapped = _gapped(folded)
        regex = _CUE_ASCII_RE if gapped.isascii() else _CUE_RE  # _CUE_INDEX.regex_for(gapped)
        m = regex.search(gapped)
    words: list[str] | None = None
    size: _Size | None = None
    kinds: set[str] = set()
    while m is not None:
        phrase = " ".join(m.group().split())  # _CUE_INDEX.words_and_kind(m), inlined
        kind = _CUE_INDEX.kinds[phrase]
        if kind.startswith("unit:"):
            unit = kind[5:]
            if words is None:
                words = gapped.split()
            first = len(gapped[: m.start()].split())  # the index of the unit's word in words
            found = _number_before(words, first, unit)
            if found is not None and (unit != "item" or found[0] >= _MIN_ITEMS):
                end = first + phrase.count(" ") + 1
                size = _better(size, _make_size(found[0], unit, _capped(words, found[1], end)))
        else:
            kinds.add(kind)
        m = regex.search(gapped, m.end())
    if not folded.isascii():
        for _, _, kind in _CUE_INDEX.wide_scan(folded, len(folded)):
            kinds.add(kind)
        for m in _CJK_SIZE_RE.finditer(folded):
            unit = _CJK_UNITS[m.group("unit")]
            n = _han_number(m.group("num"))
            if n <= 0 or (unit == "item" and n < _MIN_ITEMS):
                continue
            capped = folded[max(0, m.start() - 3) : m.start()].endswith(_CJK_CAP_BEFORE) or folded[
                m.end() :
            ].lstrip().startswith(_CJK_CAP_AFTER)
            size = _better(size, _make_size(n, unit, capped))
    if "one_sentence" in kinds:
        size = _better(size, _make_size(1, "sentence", False))
    if size is None and not kinds:
        return _NO_CUES
    return _Cues(size=size, terse="terse" in kinds, brief="brief" in kinds, long_form="long" in kinds)


def _translation_source_len(prompt: str) -> int:
    prompt = prompt[:_MAX_SOURCE_CHARS]
    # Each alternative of the regex has one group, so the group that matched is the last (and only) one.
    quoted = [m.group(m.lastindex or 0) for m in _QUOTED_RE.finditer(prompt, 0, _QUOTES_WITHIN)]
    if quoted:
        return sum(_weighted_len(q) for q in quoted)
    m = _SOURCE_START_RE.search(prompt, 0, _SOURCE_START_WITHIN)
    if m is not None and prompt[m.end() :].strip():
        return _weighted_len(prompt[m.end() :].strip())
    return max(0, _weighted_len(prompt) - DEFAULT_TRANSLATION_OVERHEAD)


# --- JSON ------------------------------------------------------------------------------------------------------

_JSON_TYPES: Final[Mapping[str, tuple[type, ...]]] = MappingProxyType(
    {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
     "boolean": (bool,), "null": (type(None),)}
)  # fmt: skip


def _json_mode(response_format: Mapping[str, Any] | None) -> str | None:
    if not response_format:
        return None
    kind = response_format.get("type")
    return kind if kind in ("json_object", "json_schema") else None


def _schema_of(response_format: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else response_format.get("schema")
    return schema if isinstance(schema, Mapping) else None


def _type_matches(value: Any, expected: Any) -> bool:
    names = [expected] if isinstance(expected, str) else expected if isinstance(expected, list) else []
    if not names:
        return True  # no type constraint we understand
    for name in names:
        types = _JSON_TYPES.get(name) if isinstance(name, str) else None
        if types is None:
            return True
        # bool is an int subclass in Python, but true is not a JSON number.
        if isinstance(value, bool) and name != "boolean":
            continue
        if isinstance(value, types):
            return True
    return False


def _schema_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    expected = schema.get("type")
    if expected is not None and not _type_matches(value, expected):
        return f"top-level value is {type(value).__name__}, the schema wants {expected}"
    if not isinstance(value, dict):
        return None
    required = schema.get("required")
    if isinstance(required, list):
        missing = [k for k in required if isinstance(k, str) and k not in value]
        if missing:
            return f"missing required key(s) {', '.join(map(repr, missing))}"
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            if key not in value or not isinstance(sub, Mapping) or "type" not in sub:
                continue
            if not _type_matches(value[key], sub["type"]):
                return f"key {key!r} is {type(value[key]).__name__}, the schema wants {sub['type']}"
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in properties]
            if extra:
                return f"unexpected key(s) {', '.join(map(repr, extra))}"
    return None


def _json_problem(content: str, mode: str, response_format: Mapping[str, Any]) -> str | None:
    try:
        value = json.loads(content)
    except RecursionError:  # "[[[[..." nested deeper than the parser can go
        return "not JSON (nested too deeply)"
    except ValueError as exc:
        return f"not JSON ({exc})"
    if mode == "json_object":
        return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"
    schema = _schema_of(response_format)
    return None if schema is None else _schema_problem(value, schema)


# --- the gates -------------------------------------------------------------------------------------------------

_TRUNCATED_REASONS: Final = frozenset({"length", "max_tokens"})
# How many characters of a translation prompt are checked for an echoed phrase.
_ECHO_SCAN_CHARS: Final = 20_000


@functools.lru_cache(maxsize=16)
def _reply_index(extra_refusal: tuple[str, ...], extra_hedging: tuple[str, ...]) -> _PhraseIndex:
    # Shared by every router with the same phrase lists: building the index takes milliseconds, checking microseconds.
    return _PhraseIndex(
        [
            *((p, "refusal") for phrases in REFUSAL_PHRASES.values() for p in phrases),
            *((p, "refusal") for p in extra_refusal),
            *((p, "hedging") for phrases in HEDGING_PHRASES.values() for p in phrases),
            *((p, "hedging") for p in extra_hedging),
        ]
    )


def _gate_name(gate: CustomGate) -> str:
    name = getattr(gate, "name", None)
    if isinstance(name, str) and name:
        return name
    name = getattr(gate, "__name__", None)
    return name if isinstance(name, str) and name else type(gate).__name__


def _verdict_failure(name: str, verdict: object) -> str | None:
    """The failure detail of a custom gate's verdict, or None when it passed."""
    if verdict is True or verdict is None:
        return None
    if verdict is False:
        return "failed"
    if isinstance(verdict, str):
        return verdict.strip() or "failed"
    raise TypeError(f"quality gate {name!r} returned {type(verdict).__name__}; expected bool, str or None")


class QualityGates:
    """The quality gates of one router: the built-ins configured by :class:`QualityConfig`, plus custom gates.

    Args:
        config: the ``quality`` section of the configuration.
        custom: the user's own gates, run in order by :meth:`acheck` after the built-ins pass.
        lead_chars: a hedging or refusal phrase starting within this many weighted characters dominates the reply.
        short_reply_chars: in a reply at most this long, a hedging or refusal phrase dominates wherever it is.

    Raises:
        ConfigError: a hedging or refusal phrase without a word, an unknown gate name in ``disabled``, or a custom
            gate whose name is taken (by a built-in or another custom gate).

    Example::

        gates = QualityGates(config.quality, custom=[no_lorem_ipsum])
        result = await gates.acheck(GateInput(prompt=..., task_type="code", content=reply, finish_reason="stop"))
        if not result.passed:
            log.info("escalating: %s (score %.2f)", result.reason, result.score)

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_ascii_phrases",
        "_custom",
        "_enabled",
        "_lead_chars",
        "_length_gate",
        "_min_chars",
        "_phrase_gates",
        "_phrases",
        "_question_scan",
        "_short_reply_chars",
        "_slack",
        "_summary_cap",
        "_summary_scan",
        "_task_bound",
    )

    def __init__(
        self,
        config: QualityConfig,
        *,
        custom: Sequence[CustomGate] = (),
        lead_chars: int = DEFAULT_LEAD_CHARS,
        short_reply_chars: int = DEFAULT_SHORT_REPLY_CHARS,
    ) -> None:
        for field_name in ("refusal_phrases", "hedging_phrases"):
            for i, phrase in enumerate(getattr(config, field_name)):
                if not _has_words(phrase):
                    raise ConfigError("a phrase needs at least one word", path=f"quality.{field_name}[{i}]")
        named: list[tuple[str, CustomGate]] = []
        for gate in custom:
            name = _gate_name(gate)
            if name in BUILTIN_GATES or any(name == n for n, _ in named):
                raise ConfigError(f"the quality gate name {name!r} is already taken", path="quality")
            named.append((name, gate))
        known = {*BUILTIN_GATES, *(n for n, _ in named)}
        for i, name in enumerate(config.disabled):
            if name not in known:
                raise ConfigError(f"unknown gate {name!r} (known: {sorted(known)})", path=f"quality.disabled[{i}]")
        disabled = set(config.disabled)
        self._enabled = frozenset(g for g in BUILTIN_GATES if config.enabled and g not in disabled)
        self._custom = tuple((n, g) for n, g in named if n not in disabled)
        self._min_chars = config.min_chars
        self._lead_chars = lead_chars
        self._short_reply_chars = short_reply_chars
        self._phrases = _reply_index(config.refusal_phrases, config.hedging_phrases)
        # How far past the lead window a phrase that starts inside it may run.
        self._slack = 2 * self._phrases.longest + 16
        # Precomputed for check(), which runs on every reply.
        self._ascii_phrases = self._phrases.regex_for("") or _NO_MATCH
        self._phrase_gates = "refusal" in self._enabled or "hedging" in self._enabled
        self._length_gate = "too_short" in self._enabled
        # How much of a prompt _task_minimum measures: no more than can change its answer.
        self._question_scan = int(self._min_chars / DEFAULT_QUESTION_RATIO) + 1
        self._summary_cap = self._min_chars * DEFAULT_SUMMARY_CAP_FACTOR
        self._summary_scan = int(self._summary_cap / DEFAULT_SUMMARY_RATIO) + 1
        # The most that _task_minimum can ask, bar translations.
        self._task_bound = max(1, self._min_chars * DEFAULT_LONG_FORM_FACTOR, self._summary_cap)

    @property
    def enabled_gates(self) -> tuple[str, ...]:
        """The names of the gates that run: the enabled built-ins, then the custom gates."""
        return (*(g for g in BUILTIN_GATES if g in self._enabled), *(n for n, _ in self._custom))

    def check(self, reply: GateInput) -> GateResult:
        """Run the built-in gates (pure and synchronous).

        Args:
            reply: the reply and its request.

        Returns:
            The verdict: every failed built-in gate with its detail, and the score.
        """
        on = self._enabled
        if not on:
            return _PASSED
        content = reply.content.strip()
        tool_calls = reply.tool_calls
        # gate -> (detail, score factor); the factors multiply in this order, so it stays fixed.
        failures: dict[str, tuple[str, float]] = {}
        if content:
            response_format = reply.response_format
            mode = _json_mode(response_format) if response_format else None
            if not tool_calls:
                if self._phrase_gates:
                    found = self._dominant_phrases(reply, content)
                    if found:
                        if "refusal" in on and "refusal" in found:
                            failures["refusal"] = (found["refusal"], DEFAULT_GATE_SCORES["refusal"])
                        elif "hedging" in on and "hedging" in found:
                            failures["hedging"] = (found["hedging"], DEFAULT_GATE_SCORES["hedging"])
                if self._length_gate and mode is None:
                    cues = self._cues(reply) if reply.system else _read_cues(reply.prompt)
                    # Without cues, no task but a translation asks for more than _task_bound: a reply that long
                    # passes, and what it was asked for need not be worked out.
                    if cues is not _NO_CUES or len(content) < self._task_bound or reply.task_type == "translation":
                        required, why = self._minimum(reply, cues)
                    else:
                        required, why = 0, ""
                    # A weighted length is never below the plain one, so only a reply this short needs measuring.
                    if len(content) < required:
                        length = _weighted_len(content, required)
                        if length < required:
                            # Spread over +-0.05 around the gate's factor, so that of two short replies the longer
                            # ranks higher while the gate keeps its place between "truncated" and "hedging".
                            factor = DEFAULT_GATE_SCORES["too_short"] - 0.05 + 0.1 * (length / required)
                            failures["too_short"] = (f"{length} chars < {required} ({why})", factor)
            if mode is not None and "invalid_json" in on and response_format is not None:
                problem = _json_problem(content, mode, response_format)
                if problem is not None:
                    failures["invalid_json"] = (problem, DEFAULT_GATE_SCORES["invalid_json"])
        elif not tool_calls and "empty" in on:
            failures["empty"] = ("no text and no tool calls", DEFAULT_GATE_SCORES["empty"])
        if "truncated" in on and reply.finish_reason in _TRUNCATED_REASONS:
            failures["truncated"] = (f"finish_reason {reply.finish_reason}", DEFAULT_GATE_SCORES["truncated"])
        if "missing_tool_call" in on and reply.tools_expected and not tool_calls:
            failures["missing_tool_call"] = (
                "the request required a tool call and the reply has none",
                DEFAULT_GATE_SCORES["missing_tool_call"],
            )
        if not failures:
            return _PASSED
        score = 1.0
        for _, factor in failures.values():
            score *= factor
        return GateResult(
            passed=False,
            score=score,
            failures=tuple(GateFailure(g, failures[g][0]) for g in BUILTIN_GATES if g in failures),
        )

    async def acheck(self, reply: GateInput) -> GateResult:
        """Run the built-in gates, then, if they pass, each custom gate in order until one fails.

        Args:
            reply: the reply and its request.

        Returns:
            The verdict. A failed custom gate is reported under its name, with its reason, and scores
            :data:`DEFAULT_CUSTOM_GATE_SCORE`.

        Raises:
            TypeError: a custom gate returned something other than ``bool``, ``str`` or ``None``.
            Exception: whatever a custom gate raised, unchanged.
        """
        result = self.check(reply)
        if not result.passed:
            return result
        for name, gate in self._custom:
            verdict = gate(reply)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            detail = _verdict_failure(name, verdict)
            if detail is not None:
                return GateResult(passed=False, score=DEFAULT_CUSTOM_GATE_SCORE, failures=(GateFailure(name, detail),))
        return result

    def min_length(self, reply: GateInput) -> tuple[int, str]:
        """The length, in weighted characters, that the ``too_short`` gate asks of this reply, and why.

        Returns:
            ``(weighted characters, explanation)``, e.g. ``(40, "code request")`` or
            ``(1500, "asked for 500 words")``.
        """
        return self._minimum(reply, self._cues(reply))

    # --- private ------------------------------------------------------------------------------------------------

    @staticmethod
    def _cues(reply: GateInput) -> _Cues:
        """The size and wording cues of the prompt and, bar ``long_form``, of the system prompt."""
        cues = _read_cues(reply.prompt)
        if reply.system:
            system = _read_cues(reply.system)
            if system is not _NO_CUES:
                cues = _Cues(
                    size=cues.size or system.size,
                    terse=cues.terse or system.terse,
                    brief=cues.brief or system.brief,
                    long_form=cues.long_form,  # "You are an assistant that writes..." is not this request's verb
                )
        return cues

    def _minimum(self, reply: GateInput, cues: _Cues) -> tuple[int, str]:
        """:meth:`min_length` given the request's cues."""
        translation = reply.task_type == "translation"
        # In a translation the counts ("translate a sentence") describe the source; its length is the measure.
        size = None if translation else cues.size
        if size is not None and not size.capped:
            return size.required, size.why
        if cues.terse:
            return 1, "terse answer requested"
        required, why = self._task_minimum(reply, cues)
        if size is not None and size.required < required:
            return size.required, size.why  # an upper bound only ever lowers the minimum
        return required, why

    def _task_minimum(self, reply: GateInput, cues: _Cues) -> tuple[int, str]:
        """Rules 3 to 6 of the module docstring: what the task type and the prompt's wording ask for."""
        base = self._min_chars
        prompt = reply.prompt
        task = reply.task_type
        if task == "translation":
            source = _translation_source_len(_fold(prompt[:_MAX_SOURCE_CHARS]))
            return max(1, min(int(source * DEFAULT_TRANSLATION_RATIO), DEFAULT_MAX_REQUIRED_CHARS)), "translation"
        if task == "summarisation":
            limit = self._summary_cap
            wanted = int(_weighted_len(prompt, self._summary_scan) * DEFAULT_SUMMARY_RATIO)
            return max(base, min(wanted, limit)), "summary"
        if not cues.brief:
            if task in ("code", "creative") and (cues.long_form or not prompt.rstrip().endswith(_QUESTION_MARKS)):
                return base * DEFAULT_LONG_FORM_FACTOR, f"{task} request"
            if cues.long_form:
                return base, "long-form request"
        wanted = int(_weighted_len(prompt, self._question_scan) * DEFAULT_QUESTION_RATIO)
        return max(1, min(wanted, base)), "judged against the question"

    def _dominant_phrases(self, reply: GateInput, content: str) -> dict[str, str]:
        """The first refusal and hedging phrases that dominate the reply, quoted from it."""
        if content.isascii():
            # Most replies hold no phrase. In ASCII text one regex search over the reply's head shows it: folding is
            # a lower(), and a lead cut at whitespace changes no word, so the head need not be split at the cut.
            cut = len(content)
            head: str | None = content
            if cut > self._short_reply_chars:
                cut = self._lead_chars
                space = _WS_RE.search(content, cut, cut + _CUT_SLIDE)
                if space is None:
                    head = None  # the lead cut splits a word: the general case below
                else:
                    cut = space.start()
                    head = content[: cut + self._slack]
            if head is not None:
                m = self._ascii_phrases.search(" " + head.lower().translate(_ASCII_GAPS) + " ")
                if m is None or m.start() >= cut:  # the match's offset is that of its first word in content
                    return {}
        short = self._short_reply_chars
        if len(content) <= short and _weighted_len(content) <= short:
            lead, tail = content, ""
        else:
            cut = self._lead_chars
            if not content[:cut].isascii():
                weighted = _weighted_len(content[:cut])
                cut = cut * cut // weighted if weighted > cut else cut
            # Move the cut to the next whitespace, so it never splits a word (unless there is none close by).
            space = _WS_RE.search(content, cut, cut + _CUT_SLIDE)
            if space is not None:
                cut = space.start()
            lead, tail = content[:cut], content[cut : cut + self._slack]
        found = self._phrases.first_of_each(lead, tail)
        if not found:
            return found
        if reply.task_type == "translation":
            # A phrase the prompt says too is most likely being translated, not said by the model.
            for kind in self._phrases.first_of_each(reply.prompt[:_ECHO_SCAN_CHARS]):
                found.pop(kind, None)
        return {kind: "'" + " ".join(_original(lead + tail, text).split()) + "'" for kind, text in found.items()}
