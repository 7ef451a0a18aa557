"""Tracker.stats breakdowns by UTC day, complexity and category (mmrouter's ``stats --detailed``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from asyncrouter._config import TrackerConfig
from asyncrouter._models import Attempt, RequestRecord
from asyncrouter._store import NO_KEY, GroupStats, Stats, Tracker, TrackerCounters
from asyncrouter.testing import FakeClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0


def record(
    i: int,
    ts: float,
    *,
    cost: float,
    complexity: str,
    category: str,
    status: str = "ok",
    latency_ms: float = 100.0,
    escalated: bool = False,
    tokens: tuple[int, int] = (100, 50),
) -> RequestRecord:
    ok = Attempt(model="mini", provider="openai", outcome="ok" if status == "ok" else "error")
    attempts = [Attempt(model="nano", provider="openai", outcome="gate_failed"), ok] if escalated else [ok]
    return RequestRecord(
        request_id=f"req-{i:03d}",
        timestamp=ts,
        status=status,  # type: ignore[arg-type]
        prompt_preview="p",
        prompt_hash="h",
        task_type="general",
        tier=complexity,
        complexity=complexity,
        category=category,
        complexity_score=0.5,
        routing_layer="complexity",
        routing_reason="r",
        model="mini" if status == "ok" else None,
        provider="openai" if status == "ok" else None,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        latency_ms=latency_ms,
        cost_usd=cost,
        attempts=attempts,
    )


# Binary-exact costs and latencies, over three UTC days with a gap, both sides of midnight.
RECORDS = [
    record(0, T0 + 10, cost=0.25, complexity="simple", category="factual", latency_ms=10.0),
    record(1, T0 + DAY - 0.001, cost=0.5, complexity="medium", category="code", latency_ms=30.0, escalated=True),
    record(2, T0 + DAY, cost=1.0, complexity="complex", category="reasoning", latency_ms=50.0),  # midnight: day 2
    record(3, T0 + DAY + 3600, cost=0.125, complexity="simple", category="factual", status="error", tokens=(8, 0)),
    record(4, T0 + 3 * DAY + 5, cost=2.0, complexity="complex", category="code", latency_ms=70.0, escalated=True),
    record(5, T0 + 3 * DAY + 6, cost=0.0, complexity="simple", category="creative", status="cancelled", tokens=(0, 0)),
]


@pytest.fixture(params=["file", "memory"])
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "stats.db") if request.param == "file" else ":memory:"


def summary(groups: dict[str, GroupStats]) -> dict[str, tuple[Any, ...]]:
    return {k: (g.requests, g.ok, g.errors, g.cancelled, g.escalations, g.cost_usd) for k, g in groups.items()}


async def test_daily_complexity_and_category_breakdowns(db_path: str, fake_clock: FakeClock) -> None:
    async with Tracker(TrackerConfig(path=db_path), clock=fake_clock) as tracker:
        for r in reversed(RECORDS):  # insertion order is not day order
            await tracker.record(r)
        stats = await tracker.stats()
        day_two = await tracker.stats(since=T0 + DAY, until=T0 + 2 * DAY)
        empty = await tracker.stats(since=T0 + 10 * DAY)

    assert list(stats.by_day) == ["2026-01-01", "2026-01-02", "2026-01-04"]  # UTC days, oldest first
    assert summary(stats.by_day) == {
        "2026-01-01": (2, 2, 0, 0, 1, 0.75),
        "2026-01-02": (2, 1, 1, 0, 0, 1.125),
        "2026-01-04": (2, 1, 0, 1, 1, 2.0),
    }
    first = stats.by_day["2026-01-01"]
    assert (first.input_tokens, first.output_tokens, first.avg_latency_ms) == (200, 100, 20.0)
    assert stats.by_day["2026-01-02"].error_rate == 0.5
    assert summary(stats.by_complexity) == {
        "simple": (3, 1, 1, 1, 0, 0.375),
        "medium": (1, 1, 0, 0, 1, 0.5),
        "complex": (2, 2, 0, 0, 1, 3.0),
    }
    assert summary(stats.by_category) == {
        "factual": (2, 1, 1, 0, 0, 0.375),
        "code": (2, 2, 0, 0, 2, 2.5),
        "reasoning": (1, 1, 0, 0, 0, 1.0),
        "creative": (1, 0, 0, 1, 0, 0.0),
    }
    for groups in (stats.by_day, stats.by_complexity, stats.by_category):  # each partitions the window
        assert sum(g.requests for g in groups.values()) == stats.requests == 6
        assert sum(g.cost_usd for g in groups.values()) == stats.cost_usd == 3.875
    assert NO_KEY not in stats.by_day

    assert summary(day_two.by_day) == {"2026-01-02": (2, 1, 1, 0, 0, 1.125)}
    assert set(day_two.by_category) == {"reasoning", "factual"}
    assert (empty.by_day, empty.by_complexity, empty.by_category) == ({}, {}, {})

    data = stats.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-ready
    assert data["by_day"]["2026-01-02"]["error_rate"] == 0.5
    assert data["by_day"]["2026-01-04"]["cost_usd"] == 2.0
    assert data["by_complexity"]["complex"]["requests"] == 2
    assert data["by_category"]["code"]["escalations"] == 2
    assert list(data["by_day"]) == ["2026-01-01", "2026-01-02", "2026-01-04"]


async def test_stats_without_tracking_have_empty_breakdowns(fake_clock: FakeClock) -> None:
    async with Tracker(TrackerConfig(path=None), clock=fake_clock) as tracker:
        stats = await tracker.stats()
    assert (stats.requests, stats.by_day, stats.by_complexity, stats.by_category) == (0, {}, {}, {})


def test_stats_built_without_the_new_breakdowns_still_work() -> None:
    # Code written before by_day/by_complexity/by_category existed constructs Stats without them.
    stats = Stats(
        since=None,
        until=None,
        requests=0,
        ok=0,
        errors=0,
        cancelled=0,
        escalations=0,
        input_tokens=0,
        output_tokens=0,
        cost_usd=0.0,
        avg_latency_ms=0.0,
        p50_latency_ms=0.0,
        p95_latency_ms=0.0,
        by_model={},
        by_task_type={},
        by_tier={},
        by_routing_layer={},
        by_provider={},
        savings=None,
        tracker=TrackerCounters(),
    )
    assert (stats.by_day, stats.by_complexity, stats.by_category) == ({}, {}, {})
    assert stats.to_dict()["by_day"] == {}
    assert [f.name for f in dataclasses.fields(Stats)][-3:] == ["by_day", "by_complexity", "by_category"]
