"""The pure halves of every wire format: request building, reply parsing and stream decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncrouter import MalformedResponse, ProviderOverloaded, ProviderServerError, StreamInterrupted
from asyncrouter._config import ModelConfig
from asyncrouter._models import ChatDelta, ChatRequest, ChatResponse
from asyncrouter.providers import AnthropicFormat, OllamaNativeFormat, OpenAIFormat, provider_for
from asyncrouter.providers._base import StreamDecoder


def model(provider: str, **kw: Any) -> ModelConfig:
    keys = [] if provider in ("ollama", "openai_compatible") else ["sk-test-1234567890"]
    return ModelConfig(name="m", model_id="mid", provider=provider, api_keys=keys, **kw)  # type: ignore[arg-type]


def req(**kw: Any) -> ChatRequest:
    msgs = kw.pop("messages", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    return ChatRequest(model_id="mid", messages=msgs, **kw)


def feed_all(dec: StreamDecoder, data: bytes, step: int = 7) -> tuple[str, ChatResponse]:
    text = []
    for i in range(0, len(data), step):
        for ev in dec.feed(data[i : i + step]):
            assert isinstance(ev, ChatDelta)
            text.append(ev.text)
    return "".join(text), dec.close()


# -- URLs and headers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "kw", "url"),
    [
        pytest.param("openai", {}, "https://api.openai.com/v1/chat/completions", id="openai"),
        pytest.param("openrouter", {}, "https://openrouter.ai/api/v1/chat/completions", id="openrouter"),
        pytest.param("huggingface", {}, "https://router.huggingface.co/v1/chat/completions", id="huggingface"),
        pytest.param("ollama", {}, "http://localhost:11434/v1/chat/completions", id="ollama-openai"),
        pytest.param("ollama", {"api": "native"}, "http://localhost:11434/api/chat", id="ollama-native"),
        pytest.param(
            "ollama", {"api": "native", "base_url": "http://h:1/v1"}, "http://h:1/api/chat", id="ollama-native-v1-base"
        ),
        pytest.param(
            "openai_compatible",
            {"base_url": "http://vllm:8000/v1/"},
            "http://vllm:8000/v1/chat/completions",
            id="compat",
        ),
        pytest.param("anthropic", {}, "https://api.anthropic.com/v1/messages", id="anthropic"),
        pytest.param(
            "anthropic", {"base_url": "http://127.0.0.1:9/v1"}, "http://127.0.0.1:9/v1/messages", id="anthropic-v1-base"
        ),
    ],
)
def test_urls(provider: str, kw: dict[str, Any], url: str) -> None:
    m = model(provider, **kw)
    assert provider_for(m).url(m, stream=False) == url


def test_headers() -> None:
    m = model("openrouter", http_referer="https://app.example", app_title="My App")
    h = provider_for(m).headers(m, "sk-or-k")
    assert h["Authorization"] == "Bearer sk-or-k"
    assert h["HTTP-Referer"] == "https://app.example"
    assert h["X-Title"] == "My App"
    a = model("anthropic")
    ha = provider_for(a).headers(a, "sk-ant-k")
    assert ha["x-api-key"] == "sk-ant-k"
    assert ha["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in ha
    o = model("ollama")
    assert "Authorization" not in provider_for(o).headers(o, None)


# -- OpenAI family ------------------------------------------------------------------------------------------------


def test_openai_request_passes_parameters_through() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = OpenAIFormat("openai").build_request(
        req(
            max_tokens=50,
            temperature=0.2,
            top_p=0.9,
            stop=["END"],
            tools=tools,
            tool_choice="required",
            response_format={"type": "json_object"},
            seed=7,
            user="u1",
            stream=True,
            extra={"logprobs": True},
        ),
        model("openai"),
    )
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop"] == ["END"]
    assert body["tools"] == tools
    assert body["tool_choice"] == "required"
    assert body["response_format"] == {"type": "json_object"}
    assert body["seed"] == 7
    assert body["user"] == "u1"
    assert body["logprobs"] is True
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert OpenAIFormat("openrouter").build_request(req(max_tokens=5), model("openrouter"))["max_tokens"] == 5


def test_openai_parse_with_and_without_usage() -> None:
    fmt, m = OpenAIFormat("openai"), model("openai")
    data = {
        "model": "gpt-x",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Hi there",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    r = fmt.parse_response(data, model=m, request=req())
    assert r.content == "Hi there"
    assert r.usage.input_tokens == 12
    assert r.usage.output_tokens == 3
    assert not r.usage.estimated
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls[0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    del data["usage"]
    r2 = fmt.parse_response(data, model=m, request=req())
    assert r2.usage.estimated
    assert r2.usage.input_tokens > 0
    assert r2.usage.output_tokens > 0
    with pytest.raises(MalformedResponse):
        fmt.parse_response({"nope": 1}, model=m, request=req())


def sse(*objs: Any, done: bool = True, comments: bool = False) -> bytes:
    out = b""
    for o in objs:
        if comments:
            out += b": OPENROUTER PROCESSING\n\n"
        out += b"data: " + json.dumps(o).encode() + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    d = dict(delta)
    if content is not None:
        d["content"] = content
    return {"id": "c", "model": "gpt-x", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


@pytest.mark.parametrize("step", [1, 3, 7, 64, 10_000])
def test_openai_stream_any_chunking(step: int) -> None:
    data = sse(
        chunk(role="assistant", content=""),
        chunk("Héllo "),
        chunk("wörld ✓"),
        chunk(finish="stop"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
        comments=True,
    )
    text, final = feed_all(
        OpenAIFormat("openrouter").stream_decoder(model=model("openrouter"), request=req(), secrets=()), data, step
    )
    assert text == "Héllo wörld ✓" == final.content
    assert final.usage.input_tokens == 9
    assert final.usage.output_tokens == 4
    assert not final.usage.estimated
    assert final.finish_reason == "stop"


def test_openai_stream_tool_call_deltas() -> None:
    def tc(**f: Any) -> dict[str, Any]:
        return chunk(tool_calls=[{"index": 0, **f}])

    data = sse(
        tc(id="call_1", type="function", function={"name": "get_weather", "arguments": ""}),
        tc(function={"arguments": '{"city":'}),
        tc(function={"arguments": '"Paris"}'}),
        chunk(finish="tool_calls"),
    )
    text, final = feed_all(
        OpenAIFormat("openai").stream_decoder(model=model("openai"), request=req(), secrets=()), data
    )
    assert text == ""
    assert final.tool_calls == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert final.usage.estimated  # no usage chunk


def test_openai_stream_errors() -> None:
    dec = OpenAIFormat("openrouter").stream_decoder(model=model("openrouter"), request=req(), secrets=())
    assert dec.feed(sse(chunk("partial"), done=False))
    with pytest.raises(ProviderServerError) as info:
        dec.feed(b'data: {"error": {"code": 502, "message": "upstream died"}}\n\n')
    assert info.value.status_code == 502
    dec2 = OpenAIFormat("openai").stream_decoder(model=model("openai"), request=req(), secrets=())
    dec2.feed(sse(chunk("partial"), done=False))
    with pytest.raises(StreamInterrupted):
        dec2.close()
    dec3 = OpenAIFormat("openai").stream_decoder(model=model("openai"), request=req(), secrets=())
    with pytest.raises(MalformedResponse):
        dec3.feed(b"data: {not json\n\n")


# -- Anthropic ----------------------------------------------------------------------------------------------------


def test_anthropic_request_shape() -> None:
    msgs = [
        {"role": "system", "content": "Sys A"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "function": {"name": "w", "arguments": '{"c":"P"}'}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    tools = [{"type": "function", "function": {"name": "w", "description": "d", "parameters": {"type": "object"}}}]
    body = AnthropicFormat().build_request(
        req(
            messages=msgs,
            tools=tools,
            tool_choice="required",
            stop=["X"],
            temperature=1.5,
            response_format={"type": "json_object"},
        ),
        model("anthropic"),
    )
    assert body["max_tokens"] == 4096  # required by the API
    assert body["system"].startswith("Sys A")
    assert "JSON" in body["system"]
    assert body["messages"][0] == {"role": "user", "content": "Weather?"}
    assert body["messages"][1]["content"][0] == {"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "P"}}
    assert body["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}
    assert body["tools"][0] == {"name": "w", "description": "d", "input_schema": {"type": "object"}}
    assert body["tool_choice"] == {"type": "any"}
    assert body["stop_sequences"] == ["X"]
    assert body["temperature"] == 1.0
    assert (
        AnthropicFormat().build_request(req(max_tokens=10), model("anthropic", max_output_tokens=99))["max_tokens"]
        == 10
    )
    assert AnthropicFormat().build_request(req(), model("anthropic", max_output_tokens=99))["max_tokens"] == 99


def test_anthropic_parse() -> None:
    data = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-x",
        "stop_reason": "max_tokens",
        "content": [
            {"type": "text", "text": "Hello"},
            {"type": "tool_use", "id": "tu1", "name": "f", "input": {"x": 1}},
        ],
        "usage": {"input_tokens": 20, "output_tokens": 5},
    }
    r = AnthropicFormat().parse_response(data, model=model("anthropic"), request=req())
    assert r.content == "Hello"
    assert r.finish_reason == "length"
    assert r.usage.input_tokens == 20
    assert not r.usage.estimated
    assert json.loads(r.tool_calls[0]["function"]["arguments"]) == {"x": 1}


def anthropic_sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(f"event: {e}\ndata: {json.dumps(d)}\n\n".encode() for e, d in events)


def test_anthropic_stream() -> None:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 25, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "tu", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
            },
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "2}"}},
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    text, final = feed_all(
        AnthropicFormat().stream_decoder(model=model("anthropic"), request=req(), secrets=()), anthropic_sse(events), 5
    )
    assert text == "Bonjour"
    assert final.content == "Bonjour"
    assert final.usage.input_tokens == 25
    assert final.usage.output_tokens == 15
    assert final.finish_reason == "stop"
    assert json.loads(final.tool_calls[0]["function"]["arguments"]) == {"a": 2}
    # error event mid-stream
    dec = AnthropicFormat().stream_decoder(model=model("anthropic"), request=req(), secrets=())
    dec.feed(anthropic_sse(events[:4]))
    with pytest.raises(ProviderOverloaded):
        dec.feed(
            anthropic_sse(
                [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]
            )
        )
    # truncated: no message_stop
    dec2 = AnthropicFormat().stream_decoder(model=model("anthropic"), request=req(), secrets=())
    dec2.feed(anthropic_sse(events[:5]))
    with pytest.raises(StreamInterrupted):
        dec2.close()


# -- Ollama native -----------------------------------------------------------------------------------------------


def test_ollama_native_request_and_parse() -> None:
    body = OllamaNativeFormat().build_request(
        req(max_tokens=9, temperature=0.1, stop=["x"], seed=3, response_format={"type": "json_object"}),
        model("ollama", api="native"),
    )
    assert body["options"] == {"temperature": 0.1, "num_predict": 9, "stop": ["x"], "seed": 3}
    assert body["format"] == "json"
    assert body["stream"] is False
    data = {
        "model": "llama3",
        "message": {"role": "assistant", "content": "Yo"},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 11,
        "eval_count": 2,
    }
    r = OllamaNativeFormat().parse_response(data, model=model("ollama", api="native"), request=req())
    assert (r.content, r.usage.input_tokens, r.usage.output_tokens, r.finish_reason) == ("Yo", 11, 2, "length")


def test_ollama_native_stream() -> None:
    lines = [
        {"model": "l", "message": {"role": "assistant", "content": "Hal"}, "done": False},
        {"model": "l", "message": {"role": "assistant", "content": "lo"}, "done": False},
        {
            "model": "l",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 7,
            "eval_count": 2,
        },
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    text, final = feed_all(
        OllamaNativeFormat().stream_decoder(model=model("ollama", api="native"), request=req(), secrets=()), data, 4
    )
    assert text == "Hallo"
    assert final.usage.input_tokens == 7
    assert final.usage.output_tokens == 2
    dec = OllamaNativeFormat().stream_decoder(model=model("ollama", api="native"), request=req(), secrets=())
    dec.feed(json.dumps(lines[0]).encode() + b"\n")
    with pytest.raises(StreamInterrupted):
        dec.close()
    dec2 = OllamaNativeFormat().stream_decoder(model=model("ollama", api="native"), request=req(), secrets=())
    with pytest.raises(MalformedResponse):
        dec2.feed(b"{broken\n")
