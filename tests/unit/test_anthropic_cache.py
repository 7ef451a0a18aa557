"""Anthropic prompt caching, the pure halves: cache_control on the wire, cache usage parsed, priced, configured."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from asyncrouter import ConfigError
from asyncrouter._config import ModelConfig, PricingConfig, load_config
from asyncrouter._models import ChatDelta, ChatRequest, ChatResponse, Usage
from asyncrouter._pricing import (
    DEFAULT_CACHE_READ_MULTIPLIER,
    DEFAULT_CACHE_WRITE_MULTIPLIER,
    Price,
    cost_usd,
    resolve_price,
    usage_cost_usd,
)
from asyncrouter._tokens import estimate_messages_tokens
from asyncrouter.providers._anthropic import MAX_CACHE_BREAKPOINTS, AnthropicFormat

EPH = {"type": "ephemeral"}
LONG_SYSTEM = "You are a careful assistant. " * 50
TOOL = {"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {"type": "object"}}}


def model(**kw: Any) -> ModelConfig:
    kw.setdefault("name", "claude")
    kw.setdefault("model_id", "claude-sonnet-4-5")
    kw.setdefault("provider", "anthropic")
    kw.setdefault("api_keys", ["sk-test"])
    return ModelConfig(**kw)


def req(messages: list[dict[str, Any]], **kw: Any) -> ChatRequest:
    return ChatRequest(model_id="claude-sonnet-4-5", messages=messages, **kw)


def build(messages: list[dict[str, Any]], *, caching: bool = False, **kw: Any) -> dict[str, Any]:
    return AnthropicFormat().build_request(req(messages, **kw), model(prompt_caching=caching))


def marks(body: dict[str, Any]) -> int:
    """How many blocks of a request body carry cache_control, wherever they are."""
    n = sum("cache_control" in t for t in body.get("tools", []))
    system = body.get("system")
    if isinstance(system, list):
        n += sum("cache_control" in b for b in system)
    for m in body["messages"]:
        if isinstance(m["content"], list):
            n += sum("cache_control" in b for b in m["content"])
    return n


# ------------------------------------------------------------------------------------------------ pass-through


def test_plain_requests_keep_the_wire_they_always_had() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "Sys A"},
        {"role": "system", "content": [{"type": "text", "text": "Sys "}, {"type": "text", "text": "B"}]},
        {"role": "user", "content": "Hello"},
    ]
    body = build(msgs)
    assert body["system"] == "Sys A\n\nSys B"
    assert body["messages"] == [{"role": "user", "content": "Hello"}]
    assert marks(body) == 0


def test_system_parts_keep_their_cache_control() -> None:
    msgs: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": LONG_SYSTEM, "cache_control": EPH},
                {"type": "text", "text": "Today is Monday."},
            ],
        },
        {"role": "user", "content": "Hi"},
    ]
    body = build(msgs)
    assert body["system"] == [
        {"type": "text", "text": LONG_SYSTEM, "cache_control": EPH},
        {"type": "text", "text": "Today is Monday."},
    ]


def test_a_ttl_in_cache_control_is_passed_as_given() -> None:
    hour = {"type": "ephemeral", "ttl": "1h"}
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": hour}]},
        {"role": "user", "content": "q"},
    ]
    assert build(msgs)["system"] == [{"type": "text", "text": "S", "cache_control": hour}]


def test_message_parts_keep_their_cache_control() -> None:
    msgs: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "A long document", "cache_control": EPH}, "and a question"],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "An answer", "cache_control": EPH}]},
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Next?"}]},
    ]
    body = build(msgs)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "A long document", "cache_control": EPH},
                {"type": "text", "text": "and a question"},  # a bare string part becomes a text block
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "An answer", "cache_control": EPH}]},
        {"role": "user", "content": [{"type": "text", "text": "Next?"}]},  # Anthropic rejects empty text blocks
    ]


def test_message_level_cache_control_marks_the_last_block() -> None:
    # LiteLLM also accepts cache_control on the message itself, with plain string content.
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": LONG_SYSTEM, "cache_control": EPH},
        {"role": "user", "content": "Long context", "cache_control": EPH},
        {"role": "user", "content": "Question"},
    ]
    body = build(msgs)
    assert body["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPH}]
    assert body["messages"][0] == {
        "role": "user",
        "content": [{"type": "text", "text": "Long context", "cache_control": EPH}],
    }
    assert body["messages"][1] == {"role": "user", "content": "Question"}


def test_tool_turns_keep_cache_control() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Let me look.", "cache_control": EPH}],
            "tool_calls": [{"id": "t1", "function": {"name": "lookup", "arguments": '{"c": "P"}'}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "sunny", "cache_control": EPH}]},
    ]
    body = build(msgs, tools=[{**TOOL, "cache_control": EPH}])
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look.", "cache_control": EPH},
        {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"c": "P"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny", "cache_control": EPH}
    ]
    assert body["tools"] == [
        {"name": "lookup", "description": "d", "input_schema": {"type": "object"}, "cache_control": EPH}
    ]


def test_cache_control_inside_the_function_object_is_found_too() -> None:
    tool = {"type": "function", "function": {**TOOL["function"], "cache_control": EPH}}  # type: ignore[dict-item]
    assert build([{"role": "user", "content": "q"}], tools=[tool])["tools"][0]["cache_control"] == EPH


# ------------------------------------------------------------------------------------------- prompt_caching


def test_prompt_caching_marks_the_system_prompt_and_the_tools() -> None:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "Hi"}]
    body = build(msgs, caching=True, tools=[TOOL, {**TOOL, "function": {"name": "second"}}])
    assert body["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPH}]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][1]["cache_control"] == EPH
    assert body["messages"] == [{"role": "user", "content": "Hi"}]  # the conversation is left alone


def test_prompt_caching_marks_only_the_last_system_block() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "Part one"},
        {"role": "developer", "content": "Part two"},
        {"role": "user", "content": "Hi"},
    ]
    body = build(msgs, caching=True)
    assert body["system"] == [
        {"type": "text", "text": "Part one"},
        {"type": "text", "text": "Part two", "cache_control": EPH},
    ]


def test_prompt_caching_off_sends_no_cache_control() -> None:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "Hi"}]
    body = build(msgs, caching=False, tools=[TOOL])
    assert body["system"] == LONG_SYSTEM
    assert marks(body) == 0


def test_prompt_caching_without_system_or_tools_marks_nothing() -> None:
    body = build([{"role": "user", "content": "Hi"}], caching=True)
    assert "system" not in body
    assert marks(body) == 0


def test_prompt_caching_keeps_the_callers_own_mark() -> None:
    hour = {"type": "ephemeral", "ttl": "1h"}
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": hour}]},
        {"role": "user", "content": "q"},
    ]
    assert build(msgs, caching=True)["system"] == [{"type": "text", "text": "S", "cache_control": hour}]


@pytest.mark.parametrize(
    ("caller_marks", "expected_total", "system_marked", "tools_marked"),
    [
        pytest.param(2, 4, True, True, id="room-for-both"),
        pytest.param(3, 4, True, False, id="room-for-the-system-only"),
        pytest.param(4, 4, False, False, id="no-room"),
    ],
)
def test_prompt_caching_never_exceeds_the_breakpoint_limit(
    caller_marks: int, expected_total: int, system_marked: bool, tools_marked: bool
) -> None:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": LONG_SYSTEM}]
    for i in range(caller_marks):
        msgs.append({"role": "user", "content": [{"type": "text", "text": f"doc {i}", "cache_control": EPH}]})
        msgs.append({"role": "assistant", "content": "ok"})
    msgs.append({"role": "user", "content": "q"})
    body = build(msgs, caching=True, tools=[TOOL])
    assert marks(body) == expected_total <= MAX_CACHE_BREAKPOINTS
    assert isinstance(body["system"], list) is system_marked
    assert ("cache_control" in body["tools"][0]) is tools_marked


def test_json_instruction_goes_after_the_cached_system_prompt() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": LONG_SYSTEM},
        {"role": "user", "content": "List three colours"},
    ]
    body = build(msgs, caching=True, response_format={"type": "json_object"})
    first, second = body["system"]
    assert first == {"type": "text", "text": LONG_SYSTEM, "cache_control": EPH}
    assert "cache_control" not in second
    assert "JSON" in second["text"]


def test_the_callers_messages_are_not_modified() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "S"}]},
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
    ]
    tools = [copy.deepcopy(TOOL)]
    before = copy.deepcopy((msgs, tools))
    build(msgs, caching=True, tools=tools)
    assert (msgs, tools) == before


# ---------------------------------------------------------------------------------------------------- usage


def reply_data(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "claude-x",
        "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "Hello"}],
        "usage": usage,
    }


def test_usage_adds_cache_tokens_to_the_input() -> None:
    usage = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 2000,
        "output_tokens": 5,
    }
    r = AnthropicFormat().parse_response(
        reply_data(usage), model=model(), request=req([{"role": "user", "content": "q"}])
    )
    assert r.usage == Usage(2312, 5, False, cache_creation_input_tokens=300, cache_read_input_tokens=2000)
    assert r.usage.uncached_input_tokens == 12
    assert r.usage.total_tokens == 2317


@pytest.mark.parametrize(
    "cache",
    [
        pytest.param({}, id="absent"),
        pytest.param({"cache_creation_input_tokens": None, "cache_read_input_tokens": None}, id="null"),
        pytest.param({"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}, id="zero"),
    ],
)
def test_usage_without_cache_tokens_is_unchanged(cache: dict[str, Any]) -> None:
    data = reply_data({"input_tokens": 20, "output_tokens": 5, **cache})
    r = AnthropicFormat().parse_response(data, model=model(), request=req([{"role": "user", "content": "q"}]))
    assert r.usage == Usage(20, 5, False)


def test_cache_tokens_with_no_input_count_are_an_estimate_covering_them() -> None:
    request = req([{"role": "user", "content": "a short question"}])
    data = reply_data({"cache_read_input_tokens": 900, "output_tokens": 5})
    r = AnthropicFormat().parse_response(data, model=model(), request=request)
    assert r.usage.estimated
    assert estimate_messages_tokens(request.messages) < 900
    assert r.usage.input_tokens == 900  # never fewer than the cached part the provider reported
    assert r.usage.cache_read_input_tokens == 900


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def stream_events(start_usage: dict[str, Any], delta_usage: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": start_usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        {"type": "message_stop"},
    ]


def decode(events: list[dict[str, Any]]) -> ChatResponse:
    dec = AnthropicFormat().stream_decoder(model=model(), request=req([{"role": "user", "content": "q"}]), secrets=())
    deltas = dec.feed(sse(events))
    assert deltas == [ChatDelta("Hi")]
    return dec.close()


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        pytest.param(
            {"input_tokens": 7, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 0, "output_tokens": 1},
            {"output_tokens": 9},
            Usage(1507, 9, False, 1500, 0),
            id="counts-in-message_start",
        ),
        pytest.param(
            {"input_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1},
            {"input_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1500, "output_tokens": 9},
            Usage(1508, 9, False, 0, 1500),
            id="cumulative-counts-in-message_delta",
        ),
        pytest.param(
            {"input_tokens": 7, "cache_creation_input_tokens": 40, "cache_read_input_tokens": 1500, "output_tokens": 1},
            {"output_tokens": 9, "cache_creation_input_tokens": None, "cache_read_input_tokens": None},
            Usage(1547, 9, False, 40, 1500),
            id="null-in-message_delta-keeps-the-start-counts",
        ),
        pytest.param(
            {"input_tokens": 7, "output_tokens": 1},
            {"output_tokens": 9},
            Usage(7, 9, False),
            id="no-cache",
        ),
    ],
)
def test_streamed_usage(start: dict[str, Any], delta: dict[str, Any], expected: Usage) -> None:
    assert decode(stream_events(start, delta)).usage == expected


def test_usage_stays_positionally_compatible() -> None:
    u = Usage(3, 4, True)
    assert (u.input_tokens, u.output_tokens, u.estimated) == (3, 4, True)
    assert (u.cache_creation_input_tokens, u.cache_read_input_tokens, u.uncached_input_tokens) == (0, 0, 3)


# -------------------------------------------------------------------------------------------------- pricing

PRICE = Price(3.0, 15.0, "config")  # USD per 1k: easy arithmetic


def test_cache_tokens_are_priced_at_anthropics_rates_by_default() -> None:
    # 1000 uncached at 3.0, 2000 written at 3.75, 4000 read at 0.3, 100 out at 15.0 (per 1k)
    cost = cost_usd(PRICE, 7000, 100, cache_write_tokens=2000, cache_read_tokens=4000)
    assert cost == pytest.approx(3.0 + 7.5 + 1.2 + 1.5)
    assert (DEFAULT_CACHE_WRITE_MULTIPLIER, DEFAULT_CACHE_READ_MULTIPLIER) == (1.25, 0.1)


def test_configured_cache_prices_are_used() -> None:
    price = Price(3.0, 15.0, "config", cache_write_per_1k=6.0, cache_read_per_1k=0.5)
    assert cost_usd(price, 7000, 0, cache_write_tokens=2000, cache_read_tokens=4000) == pytest.approx(3.0 + 12.0 + 2.0)


def test_usage_cost_matches_cost_usd() -> None:
    usage = Usage(7000, 100, False, cache_creation_input_tokens=2000, cache_read_input_tokens=4000)
    assert usage_cost_usd(PRICE, usage) == cost_usd(PRICE, 7000, 100, cache_write_tokens=2000, cache_read_tokens=4000)
    plain = Usage(7000, 100)
    assert usage_cost_usd(PRICE, plain) == cost_usd(PRICE, 7000, 100) == pytest.approx(21.0 + 1.5)


def test_a_cache_hit_costs_less_and_a_write_more_than_no_cache() -> None:
    plain = cost_usd(PRICE, 5000, 100)
    assert (
        cost_usd(PRICE, 5000, 100, cache_read_tokens=4000) < plain < cost_usd(PRICE, 5000, 100, cache_write_tokens=4000)
    )


def test_nonsense_cache_counts_never_cost_below_zero() -> None:
    # more cached tokens than input tokens: the uncached part is zero, not negative
    assert cost_usd(PRICE, 100, 0, cache_read_tokens=1000) == pytest.approx(0.3)
    assert cost_usd(PRICE, 100, 0, cache_write_tokens=-5, cache_read_tokens=-5) == cost_usd(PRICE, 100, 0)


def test_resolve_price_carries_configured_cache_prices() -> None:
    m = model(cost_per_1k_input=3.0, cost_per_1k_output=15.0, cost_per_1k_cache_write=3.75, cost_per_1k_cache_read=0.3)
    assert resolve_price(m, PricingConfig()) == Price(3.0, 15.0, "config", 3.75, 0.3)
    only_read = model(cost_per_1k_input=3.0, cost_per_1k_output=15.0, cost_per_1k_cache_read=0.25)
    price = resolve_price(only_read, PricingConfig())
    assert (price.cache_write_per_1k, price.cache_read_per_1k) == (None, 0.25)
    assert cost_usd(price, 3000, 0, cache_write_tokens=1000, cache_read_tokens=1000) == pytest.approx(3.0 + 3.75 + 0.25)


def test_resolve_price_without_cache_prices_is_unchanged() -> None:
    m = model(cost_per_1k_input=3.0, cost_per_1k_output=15.0)
    assert resolve_price(m, PricingConfig()) == Price(3.0, 15.0, "config")


# --------------------------------------------------------------------------------------------------- config


def config(**entry: Any) -> dict[str, Any]:
    base = {"name": "m", "model_id": "x", "provider": "anthropic", "api_keys": ["k"]}
    return {"models": [{"name": "other", "model_id": "y", "provider": "ollama"}, {**base, **entry}]}


def test_prompt_caching_loads_for_anthropic() -> None:
    cfg = load_config(config(prompt_caching=True, cost_per_1k_cache_write=0.00375, cost_per_1k_cache_read=0.0003))
    m = cfg.model("m")
    assert m.prompt_caching
    assert (m.cost_per_1k_cache_write, m.cost_per_1k_cache_read) == (0.00375, 0.0003)
    assert not cfg.model("other").prompt_caching


@pytest.mark.parametrize("provider", ["openai", "openrouter", "huggingface", "ollama"])
def test_prompt_caching_elsewhere_is_an_error_naming_the_field(provider: str) -> None:
    with pytest.raises(ConfigError, match="anthropic") as info:
        load_config(config(provider=provider, prompt_caching=True))
    assert info.value.path == "models[1].prompt_caching"


def test_prompt_caching_false_is_accepted_anywhere() -> None:
    assert not load_config(config(provider="openai", prompt_caching=False)).model("m").prompt_caching


@pytest.mark.parametrize("field", ["cost_per_1k_cache_write", "cost_per_1k_cache_read"])
def test_negative_cache_prices_are_rejected(field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config(**{field: -1}))
    assert info.value.path == f"models[1].{field}"


def test_a_misspelt_option_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown key") as info:
        load_config(config(prompt_cache=True))
    assert info.value.path == "models[1].prompt_cache"
