"""Anthropic's prompt-cache marks in an OpenAI-format request: kept for OpenRouter, which forwards them to the
models that cache, and left out for the rest of the family, where they are unknown fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from asyncrouter._config import ModelConfig
from asyncrouter._models import ChatRequest
from asyncrouter.providers._openai import OpenAIFormat

EPH = {"type": "ephemeral"}
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": EPH}]},
    {"role": "user", "content": "hello"},
    {"role": "tool", "tool_call_id": "t1", "content": "a.py", "cache_control": EPH},
]


def build(kind: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    cfg = ModelConfig(name="m", model_id="m-1", provider=kind, api_keys=["sk-test"], base_url="http://127.0.0.1:1/v1")
    return OpenAIFormat(kind).build_request(ChatRequest(model_id="m-1", messages=messages), cfg)


@pytest.mark.parametrize("kind", ["openai", "huggingface", "google", "openai_compatible", "ollama"])
def test_marks_are_left_out_for_the_family(kind: str) -> None:
    original = copy.deepcopy(MESSAGES)
    body = build(kind, MESSAGES)
    assert body["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "hello"},
        {"role": "tool", "tool_call_id": "t1", "content": "a.py"},
    ]
    assert original == MESSAGES  # the caller's messages are not changed


def test_openrouter_keeps_them() -> None:
    assert build("openrouter", MESSAGES)["messages"] == MESSAGES


def test_unmarked_messages_go_as_they_are() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert build("openai", messages)["messages"] is messages
