"""Shared aliases, literals, protocols and the NOT_GIVEN sentinel.

This module sits at the bottom of the import graph: it imports nothing from asyncrouter.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "NOT_GIVEN",
    "Category",
    "Clock",
    "ComplexityLabel",
    "JSONObject",
    "MessageDict",
    "NotGiven",
    "ProviderName",
    "RoutingLayer",
    "TaskType",
    "Tier",
]

ProviderName: TypeAlias = Literal[
    "openai", "anthropic", "openrouter", "huggingface", "ollama", "google", "openai_compatible"
]
TaskType: TypeAlias = Literal["code", "reasoning", "creative", "translation", "summarisation", "factual", "general"]
Tier: TypeAlias = Literal["simple", "medium", "complex", "reasoning"]
ComplexityLabel: TypeAlias = Literal["simple", "medium", "complex"]
Category: TypeAlias = Literal["factual", "reasoning", "creative", "code"]
RoutingLayer: TypeAlias = Literal["pinned", "task_classifier", "complexity", "meta_router", "default"]

JSONObject: TypeAlias = dict[str, Any]
MessageDict: TypeAlias = Mapping[str, Any]


class NotGiven(enum.Enum):
    """The type of :data:`NOT_GIVEN`: "not passed", distinct from ``None`` ("passed as null")."""

    NOT_GIVEN = enum.auto()

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = NotGiven.NOT_GIVEN


@runtime_checkable
class Clock(Protocol):
    """The only source of time and the only way to sleep inside asyncrouter.

    ``monotonic()`` measures durations (breaker timeouts, cool-downs, latency); ``time()`` is wall-clock
    seconds since the epoch (the budget's day boundary, record timestamps). ``sleep()`` waits on the clock's
    own time line, so a fake clock makes backoff and cool-downs instant in tests.
    """

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...
