"""Quality gates: every built-in gate, phrase lists in every language, task-dependent lengths, custom gates."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncrouter._quality
from asyncrouter import ConfigError
from asyncrouter._config import QualityConfig
from asyncrouter._models import ChatRequest, ChatResponse, Usage
from asyncrouter._quality import (
    BUILTIN_GATES,
    DEFAULT_CUSTOM_GATE_SCORE,
    DEFAULT_MAX_REQUIRED_CHARS,
    HEDGING_PHRASES,
    REFUSAL_PHRASES,
    GateFailure,
    GateInput,
    GateResult,
    QualityGates,
)

PROPERTY = settings(max_examples=150, deadline=None)
TASKS = ("code", "reasoning", "creative", "translation", "summarisation", "factual", "general")
LONG = (
    "Rayleigh scattering makes the sky blue: air molecules scatter short wavelengths of sunlight far more "
    "strongly than long ones, so blue light reaches our eyes from every direction of the sky. At sunset the "
    "light crosses much more air, the blue is scattered away before it arrives, and reds and oranges remain. "
)  # 300+ characters of a plain, correct answer


def gates(**config: Any) -> QualityGates:
    return QualityGates(QualityConfig(**config))


def reply(content: str, prompt: str = "Tell me something.", task: str = "general", **kw: Any) -> GateInput:
    kw.setdefault("finish_reason", "stop")
    return GateInput(prompt=prompt, task_type=task, content=content, **kw)


def check(content: str, prompt: str = "Tell me something.", task: str = "general", **kw: Any) -> GateResult:
    return gates().check(reply(content, prompt, task, **kw))


# --- refusal and hedging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "gate"),
    [
        pytest.param("I can't help with that.", "refusal", id="en-refusal"),
        pytest.param("I'm sorry, but I cannot assist with this request.", "refusal", id="en-sorry-refusal"),
        pytest.param("As an AI language model, I cannot browse the web.", "refusal", id="en-as-an-ai-refusal"),
        pytest.param("I must decline to answer.", "refusal", id="en-decline"),
        pytest.param("I'm not sure, but it might be 42.", "hedging", id="en-hedging"),
        pytest.param("It is hard to say without more data.", "hedging", id="en-hard-to-say"),
        pytest.param("抱歉，我无法帮助你完成这个请求。", "refusal", id="zh-refusal"),
        pytest.param("對不起，我無法回答這個問題。", "refusal", id="zh-hant-refusal"),
        pytest.param("我不确定，可能是42。", "hedging", id="zh-hedging"),
        pytest.param("申し訳ありませんが、お手伝いできません。", "refusal", id="ja-refusal"),
        pytest.param("よくわかりませんが、たぶん42です。", "hedging", id="ja-hedging"),
        pytest.param("죄송하지만 도와드릴 수 없습니다.", "refusal", id="ko-refusal"),
        pytest.param("죄송하지만 도와드릴수 없습니다.", "refusal", id="ko-refusal-unspaced"),
        pytest.param("잘 모르겠습니다. 아마 42일 거예요.", "hedging", id="ko-hedging"),
        pytest.param("Извините, но я не могу помочь с этим.", "refusal", id="ru-refusal"),
        pytest.param("Я не уверен, но, возможно, это 42.", "hedging", id="ru-hedging"),
        pytest.param("Es tut mir leid, aber ich kann dabei nicht helfen.", "refusal", id="de-refusal"),
        pytest.param("Ich bin mir nicht sicher, vielleicht 42.", "hedging", id="de-hedging"),
        pytest.param("Ich weiss es nicht.", "hedging", id="de-hedging-ss"),
        pytest.param("Lo siento, pero no puedo ayudarte con eso.", "refusal", id="es-refusal"),
        pytest.param("No estoy seguro, tal vez 42.", "hedging", id="es-hedging"),
        pytest.param("Desculpe, mas não posso ajudar com isso.", "refusal", id="pt-refusal"),
        pytest.param("Não tenho certeza, talvez 42.", "hedging", id="pt-hedging"),
        pytest.param("Désolé, mais je ne peux pas vous aider.", "refusal", id="fr-refusal"),
        pytest.param("Je ne suis pas sûr, peut-être 42.", "hedging", id="fr-hedging"),
        pytest.param("Je ne peux pas t’aider avec ça.", "refusal", id="fr-curly-apostrophe"),
        pytest.param("क्षमा करें, मैं इसमें मदद नहीं कर सकता।", "refusal", id="hi-refusal"),
        pytest.param("मुझे नहीं पता, शायद 42।", "hedging", id="hi-hedging"),
        pytest.param("عذراً، لا يمكنني المساعدة في ذلك.", "refusal", id="ar-refusal"),
        pytest.param("لست متأكدًا، ربما 42.", "hedging", id="ar-hedging-with-tanwin"),
        pytest.param("لا اعرف، ربما 42.", "hedging", id="ar-hedging-bare-alef"),
    ],
)
def test_phrases_in_every_language(content: str, gate: str) -> None:
    result = check(content, prompt="What is the answer?", task="factual")
    assert result.failed_gates == (gate,)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("I can’t help with that.", id="right-single-quote"),
        pytest.param("I can‘t help with that.", id="left-single-quote"),
        pytest.param("I canʼt help with that.", id="modifier-letter-apostrophe"),
        pytest.param("I can't help with that.", id="straight"),
        pytest.param("I CAN'T HELP WITH THAT.", id="upper-case"),
        pytest.param("I  can't\n help   with that.", id="odd-whitespace"),
    ],
)
def test_apostrophes_and_case_all_match(content: str) -> None:
    assert check(content).failed_gates == ("refusal",)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("I cannot overstate how important testing is for reliable software.", id="cannot-overstate"),
        pytest.param("I can't help but notice that the loop never terminates.", id="cant-help-but"),
        pytest.param("I can't help without more details about your setup, which OS is it?", id="with-vs-without"),
        pytest.param("I don't knowingly store any of your data; here is how it works.", id="know-vs-knowingly"),
        pytest.param("No señor, la respuesta correcta es cuatro.", id="no-se-vs-no-senor"),
        pytest.param("The AI can't help with homework unless configured, says the manual.", id="not-first-person"),
        pytest.param("Sure! The capital of France is Paris.", id="plain-answer"),
    ],
)
def test_word_boundaries_keep_ordinary_text_clean(content: str) -> None:
    assert check(content).passed


def test_hedge_near_the_end_of_a_long_answer_passes() -> None:
    assert check(LONG + "I'm not sure if you also want the maths behind it.").passed


def test_hedge_near_the_start_of_a_long_answer_fails() -> None:
    assert check("I'm not sure, but here is my understanding. " + LONG).failed_gates == ("hedging",)


def test_hedge_after_the_lead_window_of_a_long_answer_passes() -> None:
    content = LONG[:200] + " I don't know the exact figure. " + LONG
    assert len(content) > 300
    assert check(content).passed


def test_hedge_anywhere_in_a_short_reply_fails() -> None:
    result = check("The capital is Paris, I think, but I'm not sure.", prompt="Capital of France?", task="factual")
    assert result.failed_gates == ("hedging",)
    assert result.reason == "gate hedging: 'I'm not sure'"


def test_detail_quotes_the_reply_as_written() -> None:
    assert check("I can’t help with that.").reason == "gate refusal: 'I can’t help with'"


def test_cjk_lead_window_is_weighted() -> None:
    # 100 ideographs weigh 300: a hedge after them is past the lead window of a long reply.
    body = "这是一个很长的正确回答，解释了天空为什么是蓝色的。" * 12
    assert check(body + "我不确定您是否还需要公式。" + body).passed
    assert check("我不确定，" + body).failed_gates == ("hedging",)


def test_refusal_is_reported_instead_of_hedging() -> None:
    result = check("As an AI language model, I can't help with that, and I'm not sure anyone can.")
    assert result.failed_gates == ("refusal",)


def test_translation_of_a_hedge_is_not_a_hedge() -> None:
    assert check("No lo sé.", prompt="Translate 'I don't know' to Spanish", task="translation").passed
    assert check("I can't help you.", prompt="把「我无法帮助你」翻译成英文", task="translation").passed


def test_translation_that_refuses_still_fails() -> None:
    result = check("I can't help with that.", prompt="Translate 'good morning' to Spanish", task="translation")
    assert result.failed_gates == ("refusal",)


def test_tool_calls_are_judged_by_the_call_not_the_text() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]
    assert check("I'm not sure, let me look it up.", tool_calls=calls, tools_expected=True).passed


def test_config_phrases_extend_the_built_ins() -> None:
    g = gates(hedging_phrases=("Perhaps maybe",), refusal_phrases=("Computer says no’",))
    assert g.check(reply("Perhaps, maybe it is 4.")).failed_gates == ("hedging",)
    assert g.check(reply("Computer says no.")).failed_gates == ("refusal",)
    assert g.check(reply("I'm not sure.")).failed_gates == ("hedging",)  # built-ins still there
    assert g.check(reply("I can't help with that.")).failed_gates == ("refusal",)


def test_config_phrases_in_cjk_match_without_spaces() -> None:
    g = gates(refusal_phrases=("这个 我 不做",))
    assert g.check(reply("这个我不做。")).failed_gates == ("refusal",)


@pytest.mark.parametrize("phrase", ["", "   ", "...", "，"])
def test_a_phrase_without_words_is_a_config_error(phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        gates(hedging_phrases=("fine", phrase))
    assert info.value.path == "quality.hedging_phrases[1]"


def test_no_refusal_phrase_is_the_start_of_a_longer_hedging_phrase() -> None:
    # Matching takes the longest phrase at each position; were a refusal the prefix of a hedge, the hedge would
    # hide it. Checked on the folded word sequences the matcher uses.
    fold = asyncrouter._quality._fold
    words = asyncrouter._quality._words
    refusals = {tuple(words(fold(p))) for ps in REFUSAL_PHRASES.values() for p in ps}
    hedges = {tuple(words(fold(p))) for ps in HEDGING_PHRASES.values() for p in ps}
    assert all(r for r in refusals)
    assert not [(r, h) for r in refusals for h in hedges if len(h) > len(r) and h[: len(r)] == r]


def test_phrase_tables_cover_the_classifier_languages() -> None:
    languages = {"en", "zh", "ja", "ko", "ru", "de", "es", "pt", "fr", "hi", "ar"}
    assert set(REFUSAL_PHRASES) == languages
    assert set(HEDGING_PHRASES) == languages


# --- too_short -------------------------------------------------------------------------------------------------

ESSAY = "The revolution began in 1789. " * 60  # about 1,800 characters
CODE = "```python\ndef reverse(text: str) -> str:\n    return text[::-1]\n```"


@pytest.mark.parametrize(
    ("prompt", "task", "content", "passes"),
    [
        pytest.param("What is 2+2?", "factual", "4", True, id="sum-one-digit"),
        pytest.param("What is 2+2?", "reasoning", "4", True, id="sum-labelled-reasoning"),
        pytest.param("Capital of France?", "factual", "Paris", True, id="capital"),
        pytest.param("Translate 'cat' to Spanish", "translation", "gato", True, id="translate-one-word"),
        pytest.param("法国的首都是哪里？", "factual", "巴黎", True, id="zh-capital"),
        pytest.param("hi", "general", "Hello!", True, id="greeting"),
        pytest.param("Write a 500-word essay on the French Revolution", "creative", "It was a big revolution.",
                     False, id="essay-five-words"),
        pytest.param("Write a 500-word essay on the French Revolution", "creative", ESSAY, True, id="essay-full"),
        pytest.param("Write a Python function that reverses a string", "code", "Use slicing to reverse it.",
                     False, id="code-five-words"),
        pytest.param("Write a Python function that reverses a string", "code", CODE, True, id="code-full"),
        pytest.param("Python function to reverse a string", "code", "s[::-1]", False, id="code-without-verb"),
        pytest.param("What does len([1, 2]) return?", "code", "2", True, id="code-short-question"),
        pytest.param("Is 17 prime? Answer yes or no.", "reasoning", "Yes", True, id="yes-or-no"),
        pytest.param("Describe Paris in one word.", "creative", "Lumière", True, id="in-one-word"),
        pytest.param("Explain recursion in 3 sentences.", "code", "A function calling itself.", False,
                     id="three-sentences-short"),
        pytest.param("Explain recursion in 3 sentences.", "code",
                     "Recursion is when a function calls itself. Each call works on a smaller input. A base case "
                     "stops the chain.", True, id="three-sentences"),
        pytest.param("List 10 ideas for a birthday party", "creative", "Cake.", False, id="list-ten"),
        pytest.param("Answer in under 50 words: what is DNS?", "factual", "The internet's phone book.", True,
                     id="upper-bound-allows-short"),
        pytest.param("Briefly explain what DNS is.", "general", "Name-to-address lookup.", True, id="briefly"),
        pytest.param("Explain what DNS is.", "general", "Lookup.", False, id="explain"),
        pytest.param("写一篇500字的文章，介绍长城。", "creative", "长城很长。", False, id="zh-500-characters"),
        pytest.param("用一句话解释什么是递归。", "general", "函数调用自己。", False, id="zh-one-sentence-short"),
        pytest.param("用一句话解释什么是递归。", "general", "递归就是函数在执行过程中直接或间接地调用自己。", True,
                     id="zh-one-sentence"),
        pytest.param("再帰を3文で説明してください。", "general", "関数です。", False, id="ja-three-sentences"),
        pytest.param("Erkläre Rekursion in 3 Sätzen.", "general", "Selbstaufruf.", False, id="de-three-sentences"),
        pytest.param("Translate to French: The weather is lovely today and we are going to the beach.",
                     "translation", "Oui.", False, id="translation-too-short"),
        pytest.param("Translate to French: The weather is lovely today and we are going to the beach.",
                     "translation", "Il fait beau aujourd'hui et nous allons à la plage.", True, id="translation"),
        pytest.param("Summarise this report:\n" + "Revenue grew in every region last quarter. " * 40,
                     "summarisation", "Revenue grew.", False, id="summary-of-long-text"),
    ],
)  # fmt: skip
def test_minimum_length_depends_on_the_task_and_the_prompt(prompt: str, task: str, content: str, passes: bool) -> None:
    result = check(content, prompt=prompt, task=task)
    assert result.passed is passes, result.reason
    if not passes:
        assert result.failed_gates == ("too_short",)


@pytest.mark.parametrize(
    ("prompt", "task", "required", "why"),
    [
        pytest.param("Write a 500-word essay on Rome", "creative", 1500, "asked for 500 words", id="500-words"),
        pytest.param("Write 300-500 words on Rome", "creative", 900, "asked for 300 words", id="range-lower-bound"),
        pytest.param("Write 1,000 words on Rome", "creative", 3000, "asked for 1000 words", id="thousands"),
        pytest.param("Write three paragraphs about Rome", "creative", 450, "asked for 3 paragraphs", id="three-paras"),
        pytest.param("Write a paragraph about Rome", "creative", 150, "asked for 1 paragraph", id="a-paragraph"),
        pytest.param("Give me a few sentences on Rome", "general", 90, "asked for 3 sentences", id="a-few"),
        pytest.param("List 10 facts about Rome", "factual", 75, "asked for 10 items", id="ten-items"),
        pytest.param("列出10个关于罗马的事实", "factual", 75, "asked for 10 items", id="zh-ten-items"),
        pytest.param("写一篇500字的文章", "creative", 750, "asked for 500 characters", id="zh-500-chars"),
        pytest.param("写三段关于罗马的文字", "creative", 450, "asked for 3 paragraphs", id="zh-han-numeral"),
        pytest.param("로마에 대해 5가지 사실을 알려 주세요", "factual", 37, "asked for 5 items", id="ko-items"),
        pytest.param("Escribe un ensayo de 400 palabras sobre Roma", "creative", 1200, "asked for 400 words",
                     id="es-words"),
        pytest.param("Напиши эссе на 300 слов о Риме", "creative", 900, "asked for 300 words", id="ru-words"),
        pytest.param("Write a function that parses dates", "code", 40, "code request", id="code-write"),
        pytest.param("写一个解析日期的函数", "code", 40, "code request", id="zh-one-function-is-not-a-list"),
        pytest.param("Explain closures", "general", 20, "long-form request", id="explain"),
        pytest.param("What is 2+2?", "factual", 1, "judged against the question", id="short-question"),
        pytest.param("Summarise the plot of Hamlet", "summarisation", 20, "summary", id="summary"),
        pytest.param("Write a 500-word essay. Answer in under 50 words.", "creative", 1500, "asked for 500 words",
                     id="a-lower-bound-beats-an-upper-bound"),
        pytest.param("Write a poem in at most 50 words", "creative", 30, "asked for at most 50 words",
                     id="upper-bound-caps"),
        pytest.param("Write a story in under 300 words", "creative", 40, "creative request",
                     id="upper-bound-above-the-rule"),
    ],
)  # fmt: skip
def test_min_length_explains_itself(prompt: str, task: str, required: int, why: str) -> None:
    assert gates().min_length(reply("", prompt, task)) == (required, why)


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        pytest.param("Write " + "9" * 400 + " words", "creative", id="huge-number"),
        pytest.param("写" + "9" * 500 + "字", "creative", id="huge-cjk-number"),
        pytest.param("Write 1," + "000," * 50 + "000 words", "creative", id="huge-thousands"),
    ],
)
def test_absurd_sizes_are_capped(prompt: str, task: str) -> None:
    assert gates().min_length(reply("", prompt, task))[0] == DEFAULT_MAX_REQUIRED_CHARS


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param(" 'a" * 20_000, id="unmatched-single-quotes"),
        pytest.param('"a' * 20_000, id="unmatched-double-quotes"),
        pytest.param("Translate: " + "x" * 200_000, id="huge-source"),
    ],
)
def test_pathological_translation_prompts_are_handled(prompt: str) -> None:
    required, why = gates().min_length(reply("", prompt, "translation"))
    assert why == "translation"
    assert 1 <= required <= DEFAULT_MAX_REQUIRED_CHARS


def test_min_chars_scales_long_form_requests() -> None:
    g = gates(min_chars=50)
    assert g.min_length(reply("", "Write a story about a cat", "creative")) == (100, "creative request")
    assert g.min_length(reply("", "Explain closures", "general")) == (50, "long-form request")
    assert g.min_length(reply("", "What is 2+2?", "factual"))[0] == 1


def test_system_prompt_size_instruction_counts() -> None:
    r = reply("Paris", "Write about the capital of France", "creative", system="Answer with a single word.")
    assert gates().check(r).passed
    r = reply("Paris is nice.", "Tell me about Paris", "general", system="Always answer in at least 200 words.")
    assert gates().check(r).failed_gates == ("too_short",)


def test_shorter_too_short_reply_scores_lower() -> None:
    prompt = "Write a Python function that reverses a string"
    one = check("Use [::-1].", prompt=prompt, task="code")
    two = check("Use slicing with [::-1].", prompt=prompt, task="code")
    assert one.failed_gates == two.failed_gates == ("too_short",)
    assert 0.4 < one.score < two.score < 0.6


def test_too_short_reason_names_the_numbers() -> None:
    result = check("def f", prompt="Write a Python function that reverses a string", task="code")
    assert result.reason == "gate too_short: 5 chars < 40 (code request)"


# --- empty, truncated, JSON, tools -----------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "   \n\t "])
def test_empty_reply(content: str) -> None:
    result = check(content)
    assert result.failed_gates == ("empty",)
    assert result.score == 0.0


@pytest.mark.parametrize(
    ("finish_reason", "truncated"),
    [("length", True), ("max_tokens", True), ("stop", False), ("tool_calls", False), (None, False)],
)
def test_truncated(finish_reason: str | None, truncated: bool) -> None:
    result = check(LONG, finish_reason=finish_reason)
    assert result.failed_gates == (("truncated",) if truncated else ())
    if truncated:
        assert result.reason == f"gate truncated: finish_reason {finish_reason}"


JSON_OBJECT = {"type": "json_object"}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "required": ["name", "age"],
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array"}},
            "additionalProperties": False,
        },
    },
}


@pytest.mark.parametrize(
    ("response_format", "content", "problem"),
    [
        pytest.param(JSON_OBJECT, '{"a": 1}', None, id="object"),
        pytest.param(JSON_OBJECT, '  \n{"a": 1}\n ', None, id="surrounding-whitespace"),
        pytest.param(JSON_OBJECT, "{}", None, id="empty-object-is-not-too-short"),
        pytest.param(JSON_OBJECT, '```json\n{"a": 1}\n```', "not JSON", id="fenced-block"),
        pytest.param(JSON_OBJECT, '{"a": 1', "not JSON", id="truncated"),
        pytest.param(JSON_OBJECT, "[1, 2]", "not an object", id="array-is-not-an-object"),
        pytest.param(JSON_OBJECT, "[" * 50_000, "nested too deeply", id="deep-nesting"),
        pytest.param(SCHEMA, '{"name": "Ada", "age": 36}', None, id="schema-ok"),
        pytest.param(SCHEMA, '{"name": "Ada"}', "missing required key(s) 'age'", id="schema-required"),
        pytest.param(SCHEMA, '["Ada", 36]', "top-level value is list", id="schema-top-level-type"),
        pytest.param(SCHEMA, '{"name": "Ada", "age": "36"}', "key 'age' is str", id="schema-property-type"),
        pytest.param(SCHEMA, '{"name": "Ada", "age": true}', "key 'age' is bool", id="bool-is-not-integer"),
        pytest.param(SCHEMA, '{"name": "Ada", "age": 36, "x": 1}', "unexpected key(s) 'x'", id="schema-extra-key"),
        pytest.param({"type": "json_schema", "json_schema": {"name": "any"}}, "[1]", None, id="schema-without-schema"),
        pytest.param({"type": "text"}, "not json at all, and that is fine", None, id="text-format"),
    ],
)  # fmt: skip
def test_invalid_json(response_format: Mapping[str, Any], content: str, problem: str | None) -> None:
    result = check(content, response_format=response_format)
    if problem is None:
        assert result.passed, result.reason
    else:
        assert result.failed_gates == ("invalid_json",)
        assert problem in result.reason


def test_missing_tool_call() -> None:
    result = check("It is sunny in Paris today, about 24 degrees.", prompt="Weather in Paris?", tools_expected=True)
    assert result.failed_gates == ("missing_tool_call",)
    calls = [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]
    assert check("", prompt="Weather in Paris?", tools_expected=True, tool_calls=calls).passed


def test_empty_reply_that_needed_a_tool_fails_both() -> None:
    assert check("", tools_expected=True).failed_gates == ("empty", "missing_tool_call")


# --- scores ----------------------------------------------------------------------------------------------------


def test_scores_rank_failures_by_severity() -> None:
    code_prompt = "Write a Python function that reverses a string"
    ranked = [
        check(""),
        check("I can't help with that."),
        check("It is sunny in Paris today, about 24 degrees.", tools_expected=True),
        check("not json", response_format=JSON_OBJECT),
        check(LONG, finish_reason="length"),
        check("Use slicing.", prompt=code_prompt, task="code"),
        check("I'm not sure. " + LONG),
        check(LONG),
    ]
    scores = [r.score for r in ranked]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)
    assert scores[0] == 0.0
    assert scores[-1] == 1.0


def test_several_failures_multiply() -> None:
    one = check("I'm not sure. " + LONG)
    two = check("I'm not sure. " + LONG, finish_reason="length")
    assert two.failed_gates == ("hedging", "truncated")
    assert two.score == pytest.approx(one.score * 0.4)
    assert two.reason == "gate hedging: 'I'm not sure'; gate truncated: finish_reason length"


def test_a_pass_has_no_reason() -> None:
    result = check(LONG)
    assert result == GateResult(passed=True, score=1.0, failures=())
    assert result.reason == ""


# --- configuration ---------------------------------------------------------------------------------------------


def test_disabled_gates_are_skipped() -> None:
    g = gates(disabled=("hedging", "truncated"))
    assert g.check(reply("I'm not sure.", finish_reason="length")).passed
    assert g.check(reply("I can't help with that.")).failed_gates == ("refusal",)
    assert g.enabled_gates == ("empty", "too_short", "refusal", "invalid_json", "missing_tool_call")


def test_disabling_every_builtin_passes_anything() -> None:
    g = gates(enabled=False)
    assert g.check(reply("", finish_reason="length", tools_expected=True)).passed
    assert g.enabled_gates == ()


def test_unknown_disabled_gate_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        gates(disabled=("hedging", "hedgin"))
    assert info.value.path == "quality.disabled[1]"
    assert "hedgin" in str(info.value)


def test_builtin_gate_names() -> None:
    assert BUILTIN_GATES == (
        "empty", "too_short", "hedging", "refusal", "truncated", "invalid_json", "missing_tool_call"
    )  # fmt: skip


# --- custom gates ----------------------------------------------------------------------------------------------


async def no_lorem(reply: GateInput) -> bool:
    return "lorem ipsum" not in reply.content.lower()


async def always_none(reply: GateInput) -> None:
    return None


async def explains(reply: GateInput) -> str | None:
    return None if "because" in reply.content else "gives no reason"


class Recorder:
    """A named gate (the protocol's shape) that remembers what it judged."""

    def __init__(self, name: str, verdict: bool | str | None) -> None:
        self.name = name
        self.verdict = verdict
        self.seen: list[str] = []

    async def __call__(self, reply: GateInput, /) -> bool | str | None:
        self.seen.append(reply.content)
        return self.verdict


class Boom(Exception):
    pass


async def explodes(reply: GateInput) -> bool:
    raise Boom("judge unavailable")


async def test_custom_gates_pass() -> None:
    g = QualityGates(QualityConfig(), custom=[no_lorem, always_none])
    assert await g.acheck(reply(LONG)) == GateResult(passed=True, score=1.0)


async def test_custom_gate_false_fails_with_its_name() -> None:
    g = QualityGates(QualityConfig(), custom=[no_lorem])
    result = await g.acheck(reply("Lorem ipsum dolor sit amet. " + LONG))
    assert result.failures == (GateFailure("no_lorem", "failed"),)
    assert result.score == DEFAULT_CUSTOM_GATE_SCORE
    assert result.reason == "gate no_lorem: failed"


async def test_custom_gate_string_is_the_reason() -> None:
    g = QualityGates(QualityConfig(), custom=[explains])
    assert (await g.acheck(reply(LONG.replace("because", "")))).reason == "gate explains: gives no reason"
    assert (await g.acheck(reply(LONG + " It is so because of physics."))).passed


async def test_custom_gate_exception_propagates_unchanged() -> None:
    g = QualityGates(QualityConfig(), custom=[explodes])
    with pytest.raises(Boom, match="judge unavailable"):
        await g.acheck(reply(LONG))


async def test_custom_gates_run_in_order_and_stop_at_the_first_failure() -> None:
    first, second, third = Recorder("first", True), Recorder("second", "too vague"), Recorder("third", True)
    g = QualityGates(QualityConfig(), custom=[first, second, third])
    result = await g.acheck(reply(LONG))
    assert result.failures == (GateFailure("second", "too vague"),)
    assert (first.seen, second.seen, third.seen) == ([LONG], [LONG], [])


async def test_custom_gates_only_run_when_builtins_pass() -> None:
    judge = Recorder("judge", True)
    g = QualityGates(QualityConfig(), custom=[judge])
    result = await g.acheck(reply("I can't help with that."))
    assert result.failed_gates == ("refusal",)
    assert judge.seen == []


async def test_custom_gates_still_run_with_builtins_off() -> None:
    judge = Recorder("judge", False)
    g = QualityGates(QualityConfig(enabled=False), custom=[judge])
    assert (await g.acheck(reply(""))).failed_gates == ("judge",)
    assert g.enabled_gates == ("judge",)


async def test_custom_gate_disabled_by_name() -> None:
    judge = Recorder("judge", False)
    g = QualityGates(QualityConfig(disabled=("judge",)), custom=[judge])
    assert (await g.acheck(reply(LONG))).passed
    assert judge.seen == []


async def test_sync_callable_is_accepted() -> None:
    def short_lines(reply: GateInput) -> bool:
        return all(len(line) < 80 for line in reply.content.splitlines())

    g = QualityGates(QualityConfig(), custom=[short_lines])
    assert (await g.acheck(reply("Fine.\nShort lines.", prompt="Hi"))).passed
    assert (await g.acheck(reply("x" * 100, prompt="Hi"))).failed_gates == ("short_lines",)


async def test_custom_gate_bad_return_type_is_a_type_error() -> None:
    async def returns_int(reply: GateInput) -> Any:
        return 1

    g = QualityGates(QualityConfig(), custom=[returns_int])
    with pytest.raises(TypeError, match="returns_int"):
        await g.acheck(reply(LONG))


@pytest.mark.parametrize(
    "custom",
    [
        pytest.param(lambda: [Recorder("hedging", True)], id="clashes-with-builtin"),
        pytest.param(lambda: [Recorder("judge", True), Recorder("judge", False)], id="duplicate"),
    ],
)
def test_custom_gate_names_must_be_unique(custom: Any) -> None:
    with pytest.raises(ConfigError, match="already taken"):
        QualityGates(QualityConfig(), custom=custom())


# --- GateInput from a provider exchange ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "tool_choice", "expected"),
    [
        pytest.param([{"type": "function"}], "required", True, id="openai-required"),
        pytest.param([{"type": "function"}], {"type": "function", "function": {"name": "f"}}, True, id="named"),
        pytest.param([{"type": "function"}], {"type": "any"}, True, id="anthropic-any"),
        pytest.param([{"type": "function"}], {"type": "tool", "name": "f"}, True, id="anthropic-named"),
        pytest.param([{"type": "function"}], "auto", False, id="auto"),
        pytest.param([{"type": "function"}], None, False, id="unset"),
        pytest.param(None, "required", False, id="no-tools"),
    ],
)
def test_gate_input_from_chat(tools: Any, tool_choice: Any, expected: bool) -> None:
    request = ChatRequest(
        model_id="m",
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
        tools=tools,
        tool_choice=tool_choice,
        response_format={"type": "json_object"},
    )
    response = ChatResponse(content='{"answer": 4}', usage=Usage(3, 4), finish_reason="stop")
    gi = GateInput.from_chat(request, response, task_type="factual")
    assert gi == GateInput(
        prompt="What is 2+2?",
        task_type="factual",
        content='{"answer": 4}',
        finish_reason="stop",
        tool_calls=(),
        tools_expected=expected,
        response_format={"type": "json_object"},
        system="Be terse.",
    )


# --- properties ------------------------------------------------------------------------------------------------

_texts = st.text(max_size=400)
_formats = st.sampled_from([None, JSON_OBJECT, SCHEMA, {"type": "text"}, {"type": "json_schema"}])
_inputs = st.builds(
    GateInput,
    prompt=_texts,
    task_type=st.sampled_from((*TASKS, "unknown")),
    content=_texts,
    finish_reason=st.sampled_from([None, "stop", "length", "max_tokens", "tool_calls", "content_filter"]),
    tool_calls=st.sampled_from([(), ({"id": "c1", "type": "function"},)]),
    tools_expected=st.booleans(),
    response_format=_formats,
    system=st.one_of(st.none(), _texts),
)
_GATES = gates()
_REFUSALS = [p for ps in REFUSAL_PHRASES.values() for p in ps]
_HEDGES = [p for ps in HEDGING_PHRASES.values() for p in ps]
_NON_TRANSLATION = [t for t in TASKS if t != "translation"]


@PROPERTY
@given(reply=_inputs)
def test_gates_never_raise_and_are_deterministic(reply: GateInput) -> None:
    first = _GATES.check(reply)
    assert first == _GATES.check(reply) == gates().check(reply)
    assert 0.0 <= first.score <= 1.0
    assert first.passed is (not first.failures)
    assert (first.score == 1.0) is first.passed
    assert set(first.failed_gates) <= set(BUILTIN_GATES)


@PROPERTY
@given(phrase=st.sampled_from(_REFUSALS), rest=_texts, task=st.sampled_from(_NON_TRANSLATION))
def test_a_leading_refusal_always_fails(phrase: str, rest: str, task: str) -> None:
    assert "refusal" in _GATES.check(reply(phrase + " " + rest, prompt="Help me.", task=task)).failed_gates


@PROPERTY
@given(phrase=st.sampled_from(_HEDGES), rest=_texts, task=st.sampled_from(_NON_TRANSLATION))
def test_a_leading_hedge_always_fails(phrase: str, rest: str, task: str) -> None:
    failed = _GATES.check(reply(phrase + " " + rest, prompt="Help me.", task=task)).failed_gates
    assert "hedging" in failed or "refusal" in failed


_CUE_PARTS = st.sampled_from(
    ["500", "9" * 40, "1,000", "300-500", "words", "word", "sentences", "字", "一百", "三", "段", "under", "at most",
     "a", "few", "list", "10", "个", "ideas", "yes or no", "briefly", "write", "，", "以内", "段落", "两", "零", "?"]
)  # fmt: skip


@PROPERTY
@given(parts=st.lists(_CUE_PARTS, max_size=12), sep=st.sampled_from(["", " ", "-"]), task=st.sampled_from(TASKS))
def test_min_length_is_always_bounded(parts: list[str], sep: str, task: str) -> None:
    required, why = _GATES.min_length(reply("", sep.join(parts), task))
    assert 1 <= required <= DEFAULT_MAX_REQUIRED_CHARS
    assert why


@PROPERTY
@given(rest=_texts)
def test_refusal_anywhere_in_a_short_reply_fails(rest: str) -> None:
    content = rest[:100] + " I can't help with that."
    assert "refusal" in _GATES.check(reply(content)).failed_gates


# --- purity ----------------------------------------------------------------------------------------------------


def test_gates_module_does_no_io() -> None:
    tree = ast.parse(Path(asyncrouter._quality.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "functools", "inspect", "json", "re", "collections", "dataclasses", "types",
                        "typing"}
