"""The routing classifier: table-driven checks of every label, language, override and matching rule."""

from __future__ import annotations

import ast
import dataclasses
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from asyncrouter._classifier import (
    _PTS_COMPLEX_FROM,
    _PTS_LENGTH,
    _PTS_SIMPLE_BELOW,
    _PTS_TERMS,
    DEFAULT_COMPLEX_THRESHOLD,
    DEFAULT_HUGE_PROMPT_TOKENS,
    DEFAULT_SCAN_CHARS,
    DEFAULT_SIMPLE_THRESHOLD,
    DIMENSIONS,
    Classification,
    Classifier,
    _trie_pattern,
)
from asyncrouter._eval import evaluate, load_eval_data
from asyncrouter._exceptions import ConfigError
from asyncrouter._tokens import estimate_messages_tokens, estimate_tokens, message_text

ROOT = Path(__file__).resolve().parents[2]
DEV_SET = ROOT / "asyncrouter" / "data" / "dev_set.yaml"
HOLDOUT = ROOT / "asyncrouter" / "data" / "holdout_v2.yaml"  # shipped in the package: `asyncrouter eval`'s default


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier()


def signal_value(c: Classification, name: str) -> float:
    """The weight a ``name:value`` signal reports, 0 when absent."""
    for s in c.signals:
        key, _, value = s.partition(":")
        if key == name and value:
            return float(value)
    return 0.0


# --- task types (routeforge) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "task_type"),
    [
        pytest.param("Write a Python function that merges two sorted lists.", "code", id="code"),
        pytest.param("Prove that the square root of 2 is irrational.", "reasoning", id="reasoning-proof"),
        pytest.param("Calculate 15% of 240.", "reasoning", id="reasoning-math"),
        pytest.param("Write a poem about the sea at dawn.", "creative", id="creative"),
        pytest.param("Translate 'good morning' into French.", "translation", id="translation"),
        pytest.param("Summarise the plot of Hamlet in three sentences.", "summarisation", id="summarisation"),
        pytest.param("Who invented the telephone?", "factual", id="factual-who"),
        pytest.param("Explain how a refrigerator works.", "factual", id="factual-explain"),
        pytest.param("ok", "general", id="general"),
    ],
)
def test_task_type(clf: Classifier, prompt: str, task_type: str) -> None:
    c = clf.classify_text(prompt)
    assert c.task_type == task_type
    assert c.task_matched is (task_type != "general")


# --- complexity x category (mmrouter) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "complexity", "category"),
    [
        pytest.param("What is the capital of Peru?", "simple", "factual", id="simple-factual"),
        pytest.param("Give me an overview of the history of the Silk Road.", "medium", "factual", id="medium-factual"),
        pytest.param(
            "Write a comprehensive guide to the history of the Ottoman Empire covering its founding, major sultans, "
            "economy, military, religion and decline, with dates for each period and a summary table.",
            "complex",
            "factual",
            id="complex-factual",
        ),
        pytest.param("Is 97 a prime number?", "simple", "reasoning", id="simple-reasoning"),
        pytest.param("Why do leaves change colour in autumn?", "medium", "reasoning", id="medium-reasoning"),
        pytest.param(
            "Analyse in depth the trade-offs between nuclear, wind and solar power for a mid-sized country, "
            "considering cost, reliability, land use, emissions and public acceptance, and recommend a mix.",
            "complex",
            "reasoning",
            id="complex-reasoning",
        ),
        pytest.param("Suggest a name for my hamster.", "simple", "creative", id="simple-creative"),
        pytest.param("Write a short poem about a rainy afternoon.", "medium", "creative", id="medium-creative"),
        pytest.param(
            "Write a 3,000-word fantasy short story with three narrators, a heist in a floating city, a betrayal "
            "in the middle and a bittersweet ending.",
            "complex",
            "creative",
            id="complex-creative",
        ),
        pytest.param("How do I delete a git branch?", "simple", "code", id="simple-code"),
        pytest.param(
            "Write a JavaScript function that debounces another function.", "medium", "code", id="medium-code"
        ),
        pytest.param(
            "Design and implement a REST API in Go for a library system with authentication, PostgreSQL storage, "
            "pagination, rate limiting and tests, and explain the architecture.",
            "complex",
            "code",
            id="complex-code",
        ),
    ],
)
def test_complexity_and_category(clf: Classifier, prompt: str, complexity: str, category: str) -> None:
    c = clf.classify_text(prompt)
    assert (c.complexity, c.category) == (complexity, category)


# --- tiers (smart-llm-router) --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        pytest.param("What's the capital of Japan?", "simple", id="simple"),
        pytest.param("Explain how vaccines train the immune system.", "medium", id="medium"),
        pytest.param(
            "Design a scalable event-driven architecture for a ride-sharing platform: services, data stores, "
            "messaging, failure handling, observability and a phased migration from the current monolith.",
            "complex",
            id="complex",
        ),
        pytest.param("Prove step by step that there are infinitely many primes.", "reasoning", id="reasoning"),
    ],
)
def test_tier(clf: Classifier, prompt: str, tier: str) -> None:
    assert clf.classify_text(prompt).tier == tier


def test_the_lowest_possible_points_still_score_above_zero(clf: Classifier) -> None:
    # A simple score is clamped from above only: the negative weights are capped and the length term bottoms out,
    # so even the most negative evidence there can be maps onto a score above 0.
    lowest = -_PTS_LENGTH + sum(w * cap for w, cap in _PTS_TERMS.values() if w < 0)
    band = DEFAULT_COMPLEX_THRESHOLD - DEFAULT_SIMPLE_THRESHOLD
    assert DEFAULT_SIMPLE_THRESHOLD + (lowest - _PTS_SIMPLE_BELOW) / (_PTS_COMPLEX_FROM - _PTS_SIMPLE_BELOW) * band > 0
    c = clf.classify_text("Translate 'hi' briefly: just one word, quick, yes or no, short.")
    assert c.complexity == "simple"
    assert 0.0 < c.complexity_score < DEFAULT_SIMPLE_THRESHOLD


def test_complexity_score_agrees_with_label(clf: Classifier) -> None:
    for prompt in ("Hi, who wrote Dune?", "Explain why the sky is blue.", "Prove Fermat's little theorem rigorously."):
        c = clf.classify_text(prompt)
        assert 0.0 <= c.complexity_score <= 1.0
        assert 0.0 <= c.confidence <= 1.0
        if c.complexity == "simple":
            assert c.complexity_score < DEFAULT_SIMPLE_THRESHOLD
        elif c.complexity == "complex":
            assert c.complexity_score >= DEFAULT_COMPLEX_THRESHOLD
        else:
            assert DEFAULT_SIMPLE_THRESHOLD <= c.complexity_score < DEFAULT_COMPLEX_THRESHOLD


# --- languages -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "language", "category"),
    [
        pytest.param("What is the boiling point of water?", "en", "factual", id="en"),
        pytest.param("用Python写一个函数，判断一个数是不是质数。", "zh", "code", id="zh"),
        pytest.param("桜についての短い詩を書いてください。", "ja", "creative", id="ja"),
        pytest.param("왜 하늘은 파란가요?", "ko", "reasoning", id="ko"),
        pytest.param("Докажи, что корень из двух иррационален.", "ru", "reasoning", id="ru"),
        pytest.param("Wer hat die Relativitätstheorie entwickelt?", "de", "factual", id="de"),
        pytest.param("Escribe un poema sobre la luna.", "es", "creative", id="es"),
        pytest.param("Como faço para ordenar uma lista em Python?", "pt", "code", id="pt"),
        pytest.param("Compare le train et l'avion pour aller de Paris à Lyon.", "fr", "reasoning", id="fr"),
        pytest.param("भारत की राजधानी क्या है?", "hi", "factual", id="hi"),
        pytest.param("اكتب قصيدة قصيرة عن البحر.", "ar", "creative", id="ar"),
    ],
)
def test_languages(clf: Classifier, prompt: str, language: str, category: str) -> None:
    c = clf.classify_text(prompt)
    assert (c.language, c.category) == (language, category)
    assert f"lang:{language}" in c.signals


def test_the_system_prompt_votes_for_the_language_at_its_weight(clf: Classifier) -> None:
    german = "Du bist ein hilfreicher Assistent und antwortest auf die Fragen der Nutzer."
    # Nothing in "Paris" names a language, so the system prompt's German stop words decide...
    assert clf.classify_text("Paris").language == "en"
    assert clf.classify_text("Paris", system=german).language == "de"
    # ...but at a fraction of the weight of the user's own words.
    c = clf.classify_text("What is the capital of France?", system=german)
    assert c.language == "en"
    assert "lang:en" in c.signals


def test_the_latin_language_is_settled_on_first_read_and_kept(clf: Classifier) -> None:
    prompt = "Was ist der Unterschied zwischen TCP und UDP?"  # ASCII German: told apart by its stop words
    c = clf.classify_text(prompt)
    assert c.language == "de"
    assert c.language is c.language
    signals_first = clf.classify_text(prompt)
    assert signals_first.signals[-1] == "lang:de"
    assert signals_first.language == "de"
    assert signals_first == c
    assert pickle.loads(pickle.dumps(clf.classify_text(prompt))).language == "de"


def test_arabic_attached_conjunction_still_matches(clf: Classifier) -> None:
    # "وعيوب" is "and disadvantages": the conjunction is written onto the word.
    c = clf.classify_text("ما هي مزايا وعيوب العمل عن بعد؟")
    assert c.category == "reasoning"
    assert signal_value(c, "analysis") >= 2.0


# --- overrides -----------------------------------------------------------------------------------------------------


def test_two_reasoning_markers_force_reasoning_tier(clf: Classifier) -> None:
    c = clf.classify_text("Derive the formula step by step.")
    assert c.tier == "reasoning"
    assert "override:reasoning_markers" in c.signals
    one = clf.classify_text("What is a theorem?")
    assert one.tier != "reasoning"


def test_the_system_prompts_reasoning_markers_do_not_force_the_tier(clf: Classifier) -> None:
    c = clf.classify_text("What is the capital of France?", system="Prove every claim rigorously, step by step.")
    assert "override:reasoning_markers" not in c.signals
    assert c.tier != "reasoning"
    assert signal_value(c, "reasoning_markers") > 0  # they still add their (system) weight


def test_huge_prompt_is_at_least_complex(clf: Classifier) -> None:
    filler = "The meeting is on Tuesday. " * 500  # about 3,400 estimated tokens of plain text
    c = clf.classify_text("TL;DR please:\n\n" + filler)
    assert c.input_tokens > DEFAULT_HUGE_PROMPT_TOKENS
    assert c.complexity == "complex"
    assert c.complexity_score >= DEFAULT_COMPLEX_THRESHOLD


@pytest.mark.parametrize(
    "system",
    [
        pytest.param("Answer only with a JSON object.", id="json"),
        pytest.param("Follow this schema: {name: string}.", id="schema"),
    ],
)
def test_json_system_prompt_floors_at_medium(clf: Classifier, system: str) -> None:
    plain = clf.classify_text("Paris")
    assert plain.complexity == "simple"
    c = clf.classify_text("Paris", system=system)
    assert c.complexity == "medium"
    assert c.tier == "medium"
    assert "override:json_floor" in c.signals


@pytest.mark.parametrize("rf_type", ["json_object", "json_schema"])
def test_json_response_format_floors_at_medium(clf: Classifier, rf_type: str) -> None:
    c = clf.classify([{"role": "user", "content": "Paris"}], response_format={"type": rf_type})
    assert c.complexity == "medium"
    assert f"response_format:{rf_type}" in c.signals
    text = clf.classify([{"role": "user", "content": "Paris"}], response_format={"type": "text"})
    assert text.complexity == "simple"


def test_tools_are_a_signal(clf: Classifier) -> None:
    messages = [{"role": "user", "content": "Check the weather in Oslo and book a table for two."}]
    without = clf.classify(messages)
    with_tools = clf.classify(messages, tools=True)
    assert "tools" in with_tools.signals
    assert "tools" not in without.signals
    assert with_tools.complexity_score > without.complexity_score


# --- turns ---------------------------------------------------------------------------------------------------------


def test_last_user_turn_dominates(clf: Classifier) -> None:
    messages = [
        {"role": "user", "content": "Write a 3,000-word epic poem about the fall of Troy with twelve cantos."},
        {"role": "assistant", "content": "Sing, goddess, of the walls that would not stand..."},
        {"role": "user", "content": "What is the capital of Greece?"},
    ]
    c = clf.classify(messages)
    assert (c.complexity, c.category) == ("simple", "factual")
    alone = clf.classify_text("What is the capital of Greece?")
    assert c.input_tokens > alone.input_tokens  # earlier turns still count towards the input estimate


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "user", "content": "What is the capital of France?"}], id="ascii"),
        pytest.param([{"role": "user", "content": ""}], id="empty"),
        pytest.param([{"role": "user", "content": "abc"}], id="three-characters"),
        pytest.param([{"role": "user", "content": "法国的首都是哪里？"}], id="cjk"),
        pytest.param([{"role": "user", "content": "Столица Франции?"}], id="cyrillic"),
        pytest.param([{"role": "user", "content": "\u212a is a Kelvin sign"}], id="lowercases-to-ascii"),
        pytest.param(
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], id="parts"
        ),
        pytest.param(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello there"},
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "content": "Why is the sky blue?"},
            ],
            id="history",
        ),
    ],
)
def test_token_counts_are_the_shared_estimates(clf: Classifier, messages: list[dict[str, Any]]) -> None:
    # classify inlines estimate_tokens for a single ASCII prompt: it must agree with the shared estimate.
    c = clf.classify(messages)
    assert c.input_tokens == estimate_messages_tokens(messages)
    last = next(m for m in reversed(messages) if m["role"] == "user")
    assert signal_value(c, "length") == estimate_tokens(message_text(last))


def test_content_parts_are_read(clf: Classifier) -> None:
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Write a haiku"}, {"type": "text", "text": "about snow"}]}
    ]
    assert clf.classify(parts).category == "creative"


def test_system_prompt_adds_signals_but_not_the_task(clf: Classifier) -> None:
    c = clf.classify_text("What is the capital of Chile?", system="You are a senior Python engineer.")
    assert c.category == "factual"
    assert 0 < signal_value(c, "code_presence") < 1.0  # seen, at the system prompt's reduced weight


# --- matching rules ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "absent"),
    [
        pytest.param(
            "It is important to know: what is the capital of Peru?", "code_presence", id="important-not-import"
        ),
        pytest.param("Classify these animals as mammals or birds: cat, eagle, whale.", "code_presence", id="classify"),
        pytest.param("Write a description of a sunset over the sea.", "code_presence", id="description-not-script"),
        pytest.param("When is the best season to visit Provence?", "reasoning_markers", id="provence-not-prove"),
        pytest.param("She was proverbially late.", "reasoning_markers", id="proverbially"),
    ],
)
def test_words_match_on_word_boundaries(clf: Classifier, prompt: str, absent: str) -> None:
    assert signal_value(clf.classify_text(prompt), absent) == 0.0


@pytest.mark.parametrize(
    ("prompt", "present"),
    [
        pytest.param("import numpy fails, why?", "code_presence", id="import-as-word"),
        pytest.param("Write a class in Java", "code_presence", id="class-as-word"),
        pytest.param("Write a bash script to rename files", "code_presence", id="script-as-word"),
        pytest.param("Explain step-by-step", "reasoning_markers", id="hyphenated-phrase"),
        pytest.param("TL;DR this thread", "summarisation", id="punctuated-keyword"),
    ],
)
def test_keywords_found_as_whole_words(clf: Classifier, prompt: str, present: str) -> None:
    assert signal_value(clf.classify_text(prompt), present) > 0.0


def test_a_repeated_keyword_counts_once(clf: Classifier) -> None:
    once = clf.classify_text("python")
    many = clf.classify_text("python python python python")
    assert signal_value(once, "code_presence") == signal_value(many, "code_presence") > 0


def test_a_keyword_listed_twice_counts_once() -> None:
    single = Classifier(extra_keywords={"creative_markers": ["villanelle"]})
    doubled = Classifier(extra_keywords={"creative_markers": ["villanelle", "villanelle", "Villanelle"]})
    prompt = "a villanelle about winter"
    assert signal_value(single.classify_text(prompt), "creative_markers") == 1.0
    assert signal_value(doubled.classify_text(prompt), "creative_markers") == 1.0


def test_extra_keywords_extend_tables() -> None:
    base = Classifier().classify_text("terraform plan keeps failing on the vpc module")
    extended = Classifier(extra_keywords={"code_presence": ["terraform:3"]}).classify_text(
        "terraform plan keeps failing on the vpc module"
    )
    assert signal_value(extended, "code_presence") == signal_value(base, "code_presence") + 3.0
    assert extended.category == "code"


def test_extra_substring_keywords_match_in_ascii_prompts() -> None:
    prompt = "Why does myterraformplan fail?"
    assert signal_value(Classifier().classify_text(prompt), "code_presence") == 0.0
    extended = Classifier(extra_keywords={"code_presence": ["~terraform:3"]})
    assert signal_value(extended.classify_text(prompt), "code_presence") == 3.0
    assert signal_value(extended.classify_text(prompt + " ✓"), "code_presence") == 3.0  # and in non-ASCII ones


def test_extra_keywords_reject_unknown_dimension() -> None:
    with pytest.raises(ConfigError, match="unknown classifier dimension") as info:
        Classifier(extra_keywords={"vibes": ["x"]})
    assert info.value.path == "extra_keywords.vibes"


def test_cjk_keywords_match_as_substrings(clf: Classifier) -> None:
    # No spaces anywhere: 证明 (prove) sits inside a longer run of characters.
    c = clf.classify_text("请严格证明根号二是无理数")
    assert signal_value(c, "reasoning_markers") >= 1.0


def test_cjk_length_counts_characters_not_spaces(clf: Classifier) -> None:
    chinese = "请详细分析" + "我们公司在不同市场的销售数据和客户反馈情况" * 15  # ~300 characters, no whitespace
    c = clf.classify_text(chinese)
    assert signal_value(c, "length") >= 300
    assert c.complexity != "simple"
    short = clf.classify_text("法国的首都是哪里？")
    assert 5 <= signal_value(short, "length") <= 12
    assert short.complexity == "simple"


def test_dimensions_are_named_in_signals(clf: Classifier) -> None:
    c = clf.classify_text("Prove this theorem step by step, without using calculus, in exactly 5 steps.")
    names = {s.partition(":")[0] for s in c.signals}
    assert {"reasoning_markers", "constraints", "negation", "large_artefact", "length", "lang"} <= names
    structural = {"length", "lang", "code_block", "code_syntax", "math_syntax", "questions", "tools", "override"}
    assert names <= {*DIMENSIONS, *structural, "system", "response_format"}


# --- generalisation rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("Give me a catchy name for my bakery.", id="en"),
        pytest.param("给我的咖啡店起个名字", id="zh"),
        pytest.param("Придумай хорошее название для блога", id="ru"),
        pytest.param("मेरी दुकान के लिए कोई अच्छा नाम सुझाइए", id="hi"),
    ],
)
def test_a_naming_request_is_creative(clf: Classifier, prompt: str) -> None:
    c = clf.classify_text(prompt)
    assert (c.complexity, c.category) == ("simple", "creative")


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("What is the name of the longest river in Africa?", id="name-of"),
        pytest.param("这首歌的名字是什么？", id="zh-name-of-song"),
    ],
)
def test_asking_for_an_existing_name_is_factual(clf: Classifier, prompt: str) -> None:
    assert clf.classify_text(prompt).category == "factual"


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("Prove that 2 is irrational.", id="en"),
        pytest.param("Démontre que la somme des angles d'un triangle vaut 180 degrés.", id="fr"),
    ],
)
def test_a_short_proof_request_is_complex(clf: Classifier, prompt: str) -> None:
    c = clf.classify_text(prompt)
    assert (c.complexity, c.category, c.tier) == ("complex", "reasoning", "reasoning")
    assert "override:proof" in c.signals  # the length and keywords alone would have said medium


def test_proof_of_concept_code_is_not_a_proof(clf: Classifier) -> None:
    c = clf.classify_text("Write a Python proof of concept that reads a CSV file.")
    assert c.category == "code"
    assert "override:proof" not in c.signals


def test_a_requested_length_of_a_hundred_words_is_at_least_medium(clf: Classifier) -> None:
    # "word" in "250-word" is a length, not a one-word artefact.
    c = clf.classify_text("Write a 250-word fable about a greedy crow.")
    assert (c.complexity, c.category) == ("medium", "creative")
    assert signal_value(c, "small_artefact") == 0.0


def test_commas_between_numbers_are_not_requirements(clf: Classifier) -> None:
    c = clf.classify_text("What comes next: 2, 4, 8, 16, 32, 64, 128?")
    assert (c.complexity, c.category) == ("simple", "reasoning")


def test_figures_in_pasted_material_are_not_a_maths_problem(clf: Classifier) -> None:
    report = "Revenue grew 14% to $8.2M; churn fell from 4.1% to 3.2%. Costs rose 9% and margin held at 72%. " * 3
    c = clf.classify_text("Summarise this report for the board:\n\n" + report)
    assert (c.category, c.task_type) == ("factual", "summarisation")
    assert signal_value(c, "math_syntax") == 0.0


def test_translating_a_paragraph_is_not_simple(clf: Classifier) -> None:
    text = "Our office will be closed next Monday for the public holiday; support replies to urgent emails in a day. "
    c = clf.classify_text("Translate this into French:\n\n" + text * 2)
    assert (c.complexity, c.category, c.task_type) == ("medium", "factual", "translation")


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("Wie funktioniert ein Kühlschrank?", id="de"),
        pytest.param("¿Cómo funciona una vacuna?", id="es"),
        pytest.param("Как работает GPS?", id="ru"),
        pytest.param("为什么喝咖啡会让人睡不着？", id="zh"),
    ],
)
def test_how_does_it_work_is_medium_reasoning_in_every_language(clf: Classifier, prompt: str) -> None:
    c = clf.classify_text(prompt)
    assert (c.complexity, c.category) == ("medium", "reasoning")


def test_inflected_russian_depth_words_count(clf: Classifier) -> None:
    c = clf.classify_text(
        "Разработай полноценный интернет-магазин на Django: каталог, корзина, оплата, личный кабинет, тесты и деплой."
    )
    assert (c.complexity, c.category) == ("complex", "code")
    assert signal_value(c, "depth") > 0


def test_comparing_programming_languages_is_reasoning(clf: Classifier) -> None:
    c = clf.classify_text("Compare Python and Rust for a command-line tool.")
    assert (c.complexity, c.category) == ("medium", "reasoning")
    code = clf.classify_text("Write a Python function that parses command-line flags.")
    assert code.category == "code"


def test_ascii_and_unicode_prompts_find_the_same_keywords(clf: Classifier) -> None:
    # ASCII prompts are tokenised as bytes, others by a regex: the keywords found must not depend on the path.
    plain = clf.classify_text("Write a Python function that reverses a string, step by step")
    accented = clf.classify_text("Write a Python function that reverses a string, step by step ✓")
    for name in ("code_presence", "reasoning_markers", "imperatives", "medium_artefact"):
        assert signal_value(plain, name) == signal_value(accented, name) > 0, name


def test_the_middle_of_a_very_long_prompt_is_not_looked_up(clf: Classifier) -> None:
    filler = "The committee met again and the minutes were read aloud. " * 100  # about 5,800 characters
    assert len(filler) > DEFAULT_SCAN_CHARS
    # Looked up: the first DEFAULT_SCAN_CHARS - 500 characters and the last 500.
    middle = clf.classify_text("Summarise:\n\n" + filler[:4500] + " kubernetes " + filler[4500:])
    tail = clf.classify_text("Summarise:\n\n" + filler + " kubernetes")
    assert signal_value(middle, "code_presence") == 0.0
    assert signal_value(tail, "code_presence") > 0.0


def test_bucketed_trie_matches_like_the_plain_one() -> None:
    keys = ["故事", "小说", "写一首", "代码", "函数", "诗", "调试", "原理", "为什么"]
    text = "请写一首诗，再讲一个小说故事，解释代码里函数的原理，为什么要调试？"
    plain = re.compile(_trie_pattern(keys, bounded=False))
    bucketed = re.compile(_trie_pattern(keys, bounded=False, bucket=2))
    assert bucketed.pattern != plain.pattern
    assert (
        bucketed.findall(text)
        == plain.findall(text)
        == ["写一首", "诗", "小说", "故事", "代码", "函数", "原理", "为什么", "调试"]
    )


# --- the Classification object -------------------------------------------------------------------------------------


def test_signals_are_formatted_on_first_read_and_kept(clf: Classifier) -> None:
    c = clf.classify_text("Prove this theorem step by step.")
    first = c.signals
    assert first is c.signals  # stored, not rebuilt
    assert "override:reasoning_markers" in first
    assert first[-1] == "lang:en"


def test_classification_is_a_frozen_picklable_dataclass(clf: Classifier) -> None:
    c = clf.classify_text("Write a haiku about snow.")
    assert type(c) is Classification
    assert dataclasses.is_dataclass(c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.tier = "complex"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = c.no_such_field  # type: ignore[attr-defined]
    again = pickle.loads(pickle.dumps(c))
    assert again == c
    assert hash(again) == hash(c)
    assert dataclasses.replace(c, tier="complex").signals == c.signals
    built = Classification("code", True, 0.5, "medium", "medium", "code", 0.5, ("code_presence:2",), "en", 9)
    assert built.signals == ("code_presence:2",)


# --- purity --------------------------------------------------------------------------------------------------------


def test_same_input_same_output() -> None:
    messages = [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": "Compare Go and Rust."}]
    a = Classifier().classify(messages, tools=True)
    b = Classifier().classify(messages, tools=True)
    c = Classifier().classify(messages, tools=True)
    assert a == b == c
    assert dataclasses.asdict(a) == a.to_dict() | {"signals": a.signals}


def test_module_does_no_io_and_has_no_async() -> None:
    tree = ast.parse((ROOT / "asyncrouter" / "_classifier.py").read_text(encoding="utf-8"))
    banned = {"anyio", "aiohttp", "asyncio", "time", "socket", "os", "io", "pathlib", "subprocess"}
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
        assert not isinstance(node, ast.AsyncFunctionDef | ast.Await)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open"
    assert not imported & banned


# --- accuracy on the held-out part of the dev set ------------------------------------------------------------------


def test_dev_set_test_split_accuracy_floor(clf: Classifier) -> None:
    examples = load_eval_data(DEV_SET)
    assert len(examples) >= 480
    test = [e for e in examples if e.split == "test"]
    assert len(test) >= 250
    assert len({e.language for e in examples}) >= 11
    report = evaluate(clf, examples, split="test")
    # Floors a little under what the classifier reaches today (91.9 / 95.6 / 87.8; it was fitted on the train
    # split only).
    assert report.accuracy["complexity"] >= 0.90
    assert report.accuracy["category"] >= 0.94
    assert report.accuracy["complexity+category"] >= 0.86
    english = report.per_language["en"]["complexity+category"]
    others = [row["complexity+category"] for lang, row in report.per_language.items() if lang != "en"]
    assert sum(others) / len(others) >= english - 0.05


def test_holdout_v2_accuracy_floor(clf: Classifier) -> None:
    # holdout_v2 was written before the classifier was retuned and was never tuned on: a generalisation check.
    examples = load_eval_data(HOLDOUT)
    assert len(examples) >= 300
    assert all(e.split is None for e in examples)
    per_language: dict[str, int] = {}
    for e in examples:
        assert e.language is not None
        per_language[e.language] = per_language.get(e.language, 0) + 1
    assert set(per_language) == {"en", "zh", "ja", "ko", "ru", "de", "es", "pt", "fr", "hi", "ar"}
    assert min(n for lang, n in per_language.items() if lang != "en") >= 20
    assert len({(e.complexity, e.category) for e in examples}) == 12
    report = evaluate(clf, examples)
    # Floors a little under what the classifier reaches today (96.0 / 96.5 / 93.0; en 89, other languages 88-100).
    assert report.accuracy["complexity"] >= 0.94
    assert report.accuracy["category"] >= 0.94
    assert report.accuracy["complexity+category"] >= 0.90
    english = report.per_language["en"]["complexity+category"]
    for lang, row in report.per_language.items():
        assert row["complexity+category"] >= min(0.85, english - 0.05), lang
