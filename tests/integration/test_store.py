"""The SQLite tracker against real databases: files on tmp_path and ":memory:"."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio import BrokenResourceError, EndOfStream

from asyncrouter._config import TrackerConfig, load_config
from asyncrouter._exceptions import ConfigError
from asyncrouter._models import Attempt, RequestRecord
from asyncrouter._store import (
    ATTEMPT_FIELDS,
    CSV_COLUMNS,
    DEFAULT_CHECKPOINT_ROWS,
    MIGRATIONS,
    NO_KEY,
    SCHEMA_VERSION,
    Tracker,
    _Queue,
    migrate,
)
from asyncrouter.testing import FakeClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, FakeClock's default start


def make_record(
    i: int,
    *,
    ts: float | None = None,
    model: str | None = "mini",
    provider: str | None = "openai",
    status: str = "ok",
    latency_ms: float = 100.0,
    cost_usd: float = 0.25,
    input_tokens: int = 100,
    output_tokens: int = 50,
    attempts: list[Attempt] | None = None,
    **overrides: Any,
) -> RequestRecord:
    if attempts is None:
        attempts = [
            Attempt(
                model=model or "mini",
                provider=provider or "openai",
                outcome="ok" if status == "ok" else "error" if status == "error" else "cancelled",
                reason="" if status == "ok" else "ProviderServerError: HTTP 503",
                latency_ms=latency_ms - 1.5,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd,
                status_code=None if status == "ok" else 503,
            )
        ]
    fields: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "timestamp": T0 + i if ts is None else ts,
        "status": status,
        "prompt_preview": f"prompt number {i}",
        "prompt_hash": f"{i:032x}",
        "task_type": "code",
        "tier": "simple",
        "complexity": "simple",
        "category": "code",
        "complexity_score": 0.25,
        "routing_layer": "complexity",
        "routing_reason": "complexity 0.25 < threshold 0.45",
        "model": model,
        "provider": provider,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "latency_ms": latency_ms,
        "cost_usd": cost_usd,
        "attempts": attempts,
        "error_type": None if status == "ok" else "AllProvidersFailed",
    }
    fields.update(overrides)
    return RequestRecord(**fields)


def by_id(records: list[RequestRecord]) -> list[RequestRecord]:
    return sorted(records, key=lambda r: r.request_id)


@pytest.fixture(params=["file", "memory"])
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "tracker.db") if request.param == "file" else ":memory:"


@pytest.fixture
def file_path(tmp_path: Path) -> str:
    return str(tmp_path / "tracker.db")


def tracker_for(path: str, clock: FakeClock, **config: Any) -> Tracker:
    return Tracker(TrackerConfig(path=path, **config), clock=clock)


def count_rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def file_size(path: str) -> int:
    return os.path.getsize(path)


def read_database_files(directory: Path, name: str) -> bytes:
    """The bytes of a database and of its -wal/-shm companions, if any are left."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.name.startswith(name))


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll (real time, bounded) for something the writer thread does; no timing is asserted."""
    with anyio.fail_after(10):
        while not predicate():  # noqa: ASYNC110 - the writer's thread signals nothing we could wait on
            await anyio.sleep(0.002)


# ---------------------------------------------------------------------------------------------------------
# Recording, cancellation, backpressure
# ---------------------------------------------------------------------------------------------------------


async def test_concurrent_records_land_even_when_callers_are_cancelled(db_path: str, fake_clock: FakeClock) -> None:
    n = 300
    records = [make_record(i) for i in range(n)]
    scopes: list[anyio.CancelScope] = []
    returned: list[bool] = []

    async def caller(record: RequestRecord) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            returned.append(await tracker.record(record))

    async with tracker_for(db_path, fake_clock, queue_size=4, batch_size=8) as tracker:
        async with anyio.create_task_group() as tg:
            for record in records:
                tg.start_soon(caller, record)
            # Let every caller reach record(): most are now blocked on the full queue.
            with anyio.fail_after(10):
                while tracker.waiting < 100:
                    await anyio.lowlevel.checkpoint()
            for scope in scopes[::2]:
                scope.cancel()
        await tracker.flush()
        stored = await tracker.logs(last_n=None)

    cancelled_mid_wait = sum(scope.cancelled_caught for scope in scopes)
    assert cancelled_mid_wait > 0  # the cancellation reached callers that were waiting inside record()
    assert len(returned) == n - cancelled_mid_wait  # they raised instead of returning...
    assert all(returned)
    assert by_id(stored) == by_id(records)  # ...but every record was written, exactly once
    assert tracker.dropped == 0
    assert tracker.written == n


async def test_exit_drains_everything_queued(file_path: str, fake_clock: FakeClock) -> None:
    records = [make_record(i) for i in range(1000)]
    async with tracker_for(file_path, fake_clock, batch_size=64) as tracker:
        for record in records:
            assert tracker.record_nowait(record)
        # no flush: leaving the context must write all of it
    assert tracker.written == 1000
    assert count_rows(file_path) == 1000
    # a second tracker on the same file sees the same rows, newest first
    async with tracker_for(file_path, fake_clock) as reopened:
        assert [r.request_id for r in await reopened.logs(last_n=3)] == ["req-000999", "req-000998", "req-000997"]


async def test_exit_drains_when_the_body_raises(db_path: str, fake_clock: FakeClock) -> None:
    tracker = tracker_for(db_path, fake_clock)

    async def failing_body() -> None:
        async with tracker:
            for i in range(500):
                await tracker.record(make_record(i))
            raise LookupError("the body failed")

    with pytest.raises(LookupError):
        await failing_body()
    assert tracker.written == 500
    if db_path != ":memory:":
        assert count_rows(db_path) == 500


async def test_exit_drains_when_the_body_is_cancelled(file_path: str, fake_clock: FakeClock) -> None:
    tracker = tracker_for(file_path, fake_clock, batch_size=32)
    with anyio.CancelScope() as outer:
        async with tracker:
            for i in range(700):
                tracker.record_nowait(make_record(i))
            outer.cancel()  # cancels the body *and* the writer task inside the same scope
            await anyio.lowlevel.checkpoint()
            pytest.fail("not cancelled")  # pragma: no cover
    assert outer.cancelled_caught
    assert tracker.written == 700
    assert count_rows(file_path) == 700


@pytest.mark.parametrize("cancel_after", [pytest.param(n, id=f"after-{n}-checkpoints") for n in range(0, 90, 3)])
async def test_no_accepted_record_is_lost_whenever_the_owner_is_cancelled(
    tmp_path: Path, fake_clock: FakeClock, cancel_after: int
) -> None:
    # The writer is somewhere different at each cancellation point: waiting, lingering, encoding,
    # waiting for the insert in flight, or handing a batch to a task that has not started yet.
    path = str(tmp_path / "cancel.db")
    accepted: list[str] = []
    tracker = tracker_for(path, fake_clock, batch_size=16, queue_size=64, flush_interval=0.001)

    async def produce() -> None:
        i = 0
        while True:
            record = make_record(i)
            if tracker.record_nowait(record):
                accepted.append(record.request_id)
            i += 1
            if i % 5 == 0:
                await anyio.lowlevel.checkpoint()

    with anyio.CancelScope() as outer:
        async with tracker, anyio.create_task_group() as tg:
            tg.start_soon(produce)
            for _ in range(cancel_after):
                await anyio.lowlevel.checkpoint()
            outer.cancel()
    assert accepted  # the producer ran
    with sqlite3.connect(path) as conn:
        stored = [row[0] for row in conn.execute("SELECT request_id FROM requests ORDER BY id")]
    assert stored == accepted  # all of them, once each, in order
    assert tracker.written == len(accepted)


async def test_drop_policy_drops_and_counts(db_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(db_path, fake_clock, queue_size=5, batch_size=100, on_full="drop") as tracker:
        records = [make_record(i) for i in range(20)]
        # No await yields between these calls, so the writer cannot make room in between.
        accepted = [r for r in records if await tracker.record(r)]
        assert 5 <= len(accepted) <= 6  # the queue's 5 (+1 handed straight to a writer already waiting)
        assert tracker.dropped == 20 - len(accepted)
        assert tracker.counters.queued <= 5
        await tracker.flush()
        stats = await tracker.stats()
        stored = await tracker.logs(last_n=None)
    assert by_id(stored) == by_id(accepted)
    assert stats.tracker.dropped == 20 - len(accepted)
    assert stats.tracker.written == len(accepted)
    assert stats.tracker.queued == 0


async def test_record_nowait_drops_on_a_full_queue_even_under_wait(file_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(file_path, fake_clock, queue_size=3, on_full="wait") as tracker:
        results = [tracker.record_nowait(make_record(i)) for i in range(10)]
        assert results.count(True) in (3, 4)
        assert tracker.dropped == results.count(False)
        await tracker.flush()
        assert tracker.written == results.count(True)


async def test_waiting_callers_are_backpressured_then_written(file_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(file_path, fake_clock, queue_size=2, batch_size=4) as tracker:
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(tracker.record, make_record(i))
        await tracker.flush()
        assert tracker.written == 50
        assert tracker.dropped == 0
        assert tracker.flushes >= 50 // 4  # never more than batch_size rows in one transaction


async def test_records_outside_the_open_window_are_refused(file_path: str, fake_clock: FakeClock) -> None:
    tracker = tracker_for(file_path, fake_clock)
    assert not tracker.record_nowait(make_record(0))  # not open yet
    with pytest.raises(RuntimeError, match="not open"):
        await tracker.logs()
    async with tracker:
        assert await tracker.record(make_record(1))
    assert not await tracker.record(make_record(2))  # closed
    assert tracker.dropped == 2
    assert tracker.written == 1
    with pytest.raises(RuntimeError, match="opened once"):
        await tracker.aopen()
    await tracker.aclose()  # idempotent


async def test_a_partial_batch_is_flushed_after_the_interval_without_moving_the_clock(
    file_path: str, fake_clock: FakeClock
) -> None:
    before = fake_clock.time()
    async with tracker_for(file_path, fake_clock, batch_size=1000, flush_interval=0.01) as tracker:
        await tracker.record(make_record(0))
        await wait_until(lambda: tracker.written == 1)  # no flush(): the interval ended the batch
        assert tracker.flushes == 1
    # The interval is a deadline on the event loop's clock: the shared fake clock was left alone.
    assert fake_clock.time() == before
    assert fake_clock.sleeps == []


async def test_a_batch_keeps_lingering_when_the_insert_before_it_ends(file_path: str, fake_clock: FakeClock) -> None:
    # Records that arrive while an insert is in flight wait for a fuller batch (or the interval, or a flush):
    # the insert ending must not cut their linger short, or a steady low rate is written a record or two per
    # transaction.
    big = 20_000  # an insert long enough to record into while it runs
    async with tracker_for(file_path, fake_clock, batch_size=50_000, queue_size=50_000, flush_interval=60) as tracker:
        for i in range(big):
            assert tracker.record_nowait(make_record(i))
        async with anyio.create_task_group() as tg:
            tg.start_soon(tracker.flush)  # the writer takes all of them, encodes them and launches the insert
            await wait_until(lambda: tracker.queued == 0)
            for i in (big, big + 1):
                await tracker.record(make_record(i))  # arrive while the big insert runs
        await anyio.sleep(0.2)  # the big insert has ended by now (the flush returned)
        assert (tracker.flushes, tracker.written) == (1, big)  # the two newcomers still linger
        await tracker.flush()
        assert (tracker.flushes, tracker.written) == (2, big + 2)
    assert count_rows(file_path) == big + 2


async def test_queries_see_what_was_recorded_before_them(db_path: str, fake_clock: FakeClock, tmp_path: Path) -> None:
    # A batch that would linger for a minute: only the queries' own flush can make these rows visible.
    async with tracker_for(db_path, fake_clock, batch_size=1000, flush_interval=60) as tracker:
        await tracker.record(make_record(0, cost_usd=0.5))
        assert [r.request_id for r in await tracker.logs()] == ["req-000000"]
        await tracker.record(make_record(1, cost_usd=0.25))
        assert (await tracker.stats()).requests == 2
        await tracker.record(make_record(2, cost_usd=0.125))
        assert await tracker.spent_between(T0, T0 + 10) == 0.875
        await tracker.record(make_record(3))
        assert await tracker.export_jsonl(tmp_path / "x.jsonl") == 4


async def test_tracking_off_discards_quietly(fake_clock: FakeClock, tmp_path: Path) -> None:
    async with Tracker(TrackerConfig(path=None), clock=fake_clock) as tracker:
        assert not tracker.enabled
        assert not await tracker.record(make_record(0))
        assert not tracker.record_nowait(make_record(1))
        await tracker.flush()
        assert await tracker.logs() == []
        assert await tracker.spent_between(0, 2 * T0) == 0.0
        stats = await tracker.stats(baseline=("strong", 1.0, 1.0))
        assert stats.requests == 0
        assert await tracker.export_jsonl(tmp_path / "out.jsonl") == 0
    assert tracker.dropped == 0
    assert not (tmp_path / "out.jsonl").exists()


# ---------------------------------------------------------------------------------------------------------
# Write errors and odd records
# ---------------------------------------------------------------------------------------------------------


async def test_a_failing_batch_is_logged_counted_and_the_writer_goes_on(
    file_path: str, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with tracker_for(file_path, fake_clock) as tracker:
        await tracker.record(make_record(0))
        await tracker.flush()
        # A real SQLite error: a trigger added from outside refuses some rows.
        with sqlite3.connect(file_path) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON requests WHEN NEW.request_id LIKE 'bad-%' "
                "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
            )
        with caplog.at_level(logging.ERROR, logger="asyncrouter.tracker"):
            await tracker.record(make_record(1, request_id="bad-1"))
            await tracker.flush()
        assert tracker.counters.write_errors == 1
        assert tracker.counters.failed == 1
        assert "refused by test trigger" in caplog.text
        await tracker.record(make_record(2))
        await tracker.flush()
        assert [r.request_id for r in await tracker.logs()] == ["req-000002", "req-000000"]
    assert tracker.written == 2


async def test_a_bad_record_is_skipped_not_its_batch(
    db_path: str, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    unencodable = make_record(1)
    unencodable.attempts = [object()]  # type: ignore[list-item]
    nan_attempt = make_record(2, attempts=[Attempt(model="mini", provider="openai", outcome="ok", latency_ms=math.nan)])
    nan_totals = make_record(3, latency_ms=math.nan, cost_usd=math.inf * 0)
    no_timestamp = make_record(4, ts=None)
    no_timestamp.timestamp = None  # type: ignore[assignment]
    batch = [make_record(0), unencodable, nan_attempt, nan_totals, no_timestamp, make_record(5)]
    async with tracker_for(db_path, fake_clock) as tracker:
        with caplog.at_level(logging.ERROR, logger="asyncrouter.tracker"):
            for record in batch:
                await tracker.record(record)
            await tracker.flush()
        stored = {r.request_id: r for r in await tracker.logs(last_n=None)}
        stats = await tracker.stats()
        assert (tracker.counters.failed, tracker.counters.write_errors, tracker.written) == (2, 0, 4)
        assert await tracker.export_jsonl(tmp_path / "nan.jsonl") == 4
        assert await tracker.export_csv(tmp_path / "nan.csv") == 4
    exported = [json.loads(line) for line in (tmp_path / "nan.jsonl").read_text().splitlines()]
    assert exported[2]["latency_ms"] is None  # JSON has no NaN
    assert exported[1]["attempts"][0]["latency_ms"] is None
    assert "cannot encode record 'req-000001'" in caplog.text
    assert "1 of 5 records lacked a request_id, timestamp or status" in caplog.text
    assert sorted(stored) == ["req-000000", "req-000002", "req-000003", "req-000005"]
    # Non-finite numbers are stored as null (JSON) or NULL (SQL) and come back as NaN; the records are kept.
    assert math.isnan(stored["req-000002"].attempts[0].latency_ms)
    assert stored["req-000002"].attempts[0].gate_score is None
    assert math.isnan(stored["req-000003"].latency_ms)
    assert math.isnan(stored["req-000003"].cost_usd)
    assert (stats.requests, stats.avg_latency_ms, stats.p50_latency_ms, stats.cost_usd) == (4, 100.0, 100.0, 0.75)


# ---------------------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------------------


async def test_logs_filters_and_order(db_path: str, fake_clock: FakeClock) -> None:
    records = [
        make_record(0, ts=T0 + 10, model="mini"),
        make_record(1, ts=T0 + 30, model="strong", provider="anthropic"),
        make_record(2, ts=T0 + 20, model="mini", status="error"),
        make_record(3, ts=T0 + 40, model=None, provider=None, status="error"),
        make_record(4, ts=T0 + 50, model="mini", status="cancelled"),
        make_record(5, ts=T0 + 20, model="strong"),  # same second as req-000002, written later
    ]
    async with tracker_for(db_path, fake_clock) as tracker:
        for record in records:
            await tracker.record(record)
        await tracker.flush()

        async def ids(**kwargs: Any) -> list[str]:
            return [r.request_id[-1] for r in await tracker.logs(**kwargs)]

        assert await ids() == ["4", "3", "1", "5", "2", "0"]  # newest first; ties: last written first
        assert await ids(last_n=2) == ["4", "3"]
        assert await ids(last_n=0) == []
        assert await ids(model="mini") == ["4", "2", "0"]
        assert await ids(status="error") == ["3", "2"]
        assert await ids(model="mini", status="error") == ["2"]
        assert await ids(since=T0 + 20) == ["4", "3", "1", "5", "2"]
        assert await ids(since=T0 + 20, until=T0 + 40) == ["1", "5", "2"]  # until is exclusive
        assert await ids(since=datetime.fromtimestamp(T0 + 30, tz=UTC)) == ["4", "3", "1"]
        fake_clock.advance(60)  # now = T0 + 60
        assert await ids(since=timedelta(seconds=25)) == ["4", "3"]
        assert (await tracker.logs(model="strong", last_n=1))[0] == records[1]
        with pytest.raises(ValueError, match="status"):
            await tracker.logs(status="done")
        with pytest.raises(ValueError, match="last_n"):
            await tracker.logs(last_n=-1)
        with pytest.raises(TypeError, match="since"):
            await tracker.logs(since="yesterday")  # type: ignore[arg-type]


async def test_spent_between_is_half_open(db_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(db_path, fake_clock) as tracker:
        for i, cost in enumerate((0.5, 0.25, 0.125, 2.0)):
            await tracker.record(make_record(i, ts=T0 + 100 * i, cost_usd=cost))
        await tracker.flush()
        assert await tracker.spent_between(T0, T0 + 300) == 0.875
        assert await tracker.spent_between(T0 + 100, T0 + 301) == 2.375
        assert await tracker.spent_between(T0 + 301, T0 + 400) == 0.0


def hand_built_set() -> list[RequestRecord]:
    """Ten requests with binary-exact numbers, inserted in an order unrelated to their latency."""
    mini_fail = Attempt(model="mini", provider="openai", outcome="gate_failed", reason="gate too_short")

    def escalated(i: int, **kw: Any) -> RequestRecord:
        ok = Attempt(model="strong", provider="anthropic", outcome="ok")
        return make_record(i, model="strong", provider="anthropic", attempts=[mini_fail, ok], **kw)

    return [
        make_record(0, latency_ms=70.0, cost_usd=0.25, input_tokens=100, output_tokens=50, tier="simple"),
        make_record(1, latency_ms=10.0, cost_usd=0.25, input_tokens=100, output_tokens=50, tier="simple"),
        escalated(2, latency_ms=100.0, cost_usd=1.5, input_tokens=300, output_tokens=200, tier="complex"),
        make_record(3, latency_ms=40.0, cost_usd=0.25, input_tokens=100, output_tokens=50, tier="medium"),
        make_record(4, latency_ms=20.0, cost_usd=0.5, input_tokens=100, output_tokens=100, status="error"),
        make_record(
            5,
            latency_ms=90.0,
            cost_usd=0.0,
            input_tokens=0,
            output_tokens=0,
            model=None,
            provider=None,
            status="error",
            routing_layer="default",
        ),
        escalated(
            6,
            latency_ms=60.0,
            cost_usd=1.5,
            input_tokens=300,
            output_tokens=200,
            tier="complex",
            routing_layer="task_classifier",
            task_type="reasoning",
        ),
        make_record(7, latency_ms=30.0, cost_usd=0.25, input_tokens=100, output_tokens=50, status="cancelled"),
        make_record(8, latency_ms=80.0, cost_usd=0.25, input_tokens=100, output_tokens=50),
        make_record(9, latency_ms=50.0, cost_usd=0.25, input_tokens=100, output_tokens=50, tier="medium"),
    ]


async def test_stats_match_hand_computed_values(db_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(db_path, fake_clock) as tracker:
        for record in hand_built_set():
            await tracker.record(record)
        await tracker.flush()
        stats = await tracker.stats(baseline=("strong", 2.0, 4.0))
        window = await tracker.stats(since=T0 + 2, until=T0 + 5)  # requests 2, 3, 4

    # escalated: 2 and 6 moved on from a failed gate to another model; 4 and 5 failed on their only model
    assert (stats.requests, stats.ok, stats.errors, stats.cancelled, stats.escalations) == (10, 7, 2, 1, 2)
    assert (stats.input_tokens, stats.output_tokens) == (1300, 800)
    assert stats.cost_usd == 5.0
    assert stats.avg_latency_ms == 55.0  # (10 + 20 + ... + 100) / 10
    # nearest rank over 10 sorted latencies: p50 is the 5th (50.0), p95 the 10th (100.0)
    assert (stats.p50_latency_ms, stats.p95_latency_ms) == (50.0, 100.0)
    assert (stats.error_rate, stats.escalation_rate) == (0.2, 0.2)

    mini = stats.by_model["mini"]
    assert (mini.requests, mini.ok, mini.errors, mini.cancelled, mini.escalations) == (7, 5, 1, 1, 0)
    assert (mini.input_tokens, mini.output_tokens, mini.cost_usd) == (700, 400, 2.0)
    assert mini.avg_latency_ms == 300.0 / 7
    strong = stats.by_model["strong"]
    assert (strong.requests, strong.escalations, strong.cost_usd, strong.avg_latency_ms) == (2, 2, 3.0, 80.0)
    none = stats.by_model[NO_KEY]
    assert (none.requests, none.errors, none.error_rate) == (1, 1, 1.0)
    assert set(stats.by_model) == {"mini", "strong", NO_KEY}
    assert {k: g.requests for k, g in stats.by_tier.items()} == {"simple": 6, "medium": 2, "complex": 2}
    assert {k: g.requests for k, g in stats.by_task_type.items()} == {"code": 9, "reasoning": 1}
    assert {k: g.requests for k, g in stats.by_routing_layer.items()} == {
        "complexity": 8,
        "default": 1,
        "task_classifier": 1,
    }
    assert {k: g.cost_usd for k, g in stats.by_provider.items()} == {"openai": 2.0, "anthropic": 3.0, NO_KEY: 0.0}

    # baseline: 1300 * 2.0 / 1000 + 800 * 4.0 / 1000 = 2.6 + 3.2 = 5.8 against 5.0 spent
    assert stats.savings is not None
    assert stats.savings.baseline_model == "strong"
    assert stats.savings.baseline_cost_usd == 1300 * 2.0 / 1000 + 800 * 4.0 / 1000
    assert stats.savings.actual_cost_usd == 5.0
    assert stats.savings.savings_usd == stats.savings.baseline_cost_usd - 5.0
    assert stats.savings.savings_pct == pytest.approx(100 * 0.8 / 5.8, rel=1e-12)

    assert (window.requests, window.errors, window.escalations, window.cost_usd) == (3, 1, 1, 2.25)
    assert (window.p50_latency_ms, window.p95_latency_ms) == (40.0, 100.0)  # ranks 2 and 3 of [20, 40, 100]
    assert window.savings is None
    assert window.since == T0 + 2

    data = stats.to_dict()
    json.dumps(data)  # JSON-ready
    assert data["error_rate"] == 0.2
    assert data["by_model"]["mini"]["requests"] == 7
    assert data["savings"]["baseline_model"] == "strong"
    assert data["tracker"]["written"] == 10


async def test_stats_savings_exact_percentage(file_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(file_path, fake_clock) as tracker:
        await tracker.record(make_record(0, input_tokens=1000, output_tokens=1000, cost_usd=1.0))
        await tracker.flush()
        stats = await tracker.stats(baseline=("premium", 1.5, 2.5))  # 1.5 + 2.5 = 4.0
        empty = await tracker.stats(since=T0 + 1, baseline=("premium", 1.5, 2.5))
    assert stats.savings is not None
    assert (stats.savings.baseline_cost_usd, stats.savings.savings_usd, stats.savings.savings_pct) == (4.0, 3.0, 75.0)
    assert (empty.requests, empty.p50_latency_ms, empty.avg_latency_ms, empty.by_model) == (0, 0.0, 0.0, {})
    assert empty.savings is not None
    assert empty.savings.savings_pct is None  # nothing to compare against


# ---------------------------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------------------------


def _from_csv_cell(name: str, cell: str) -> Any:
    types = {f.name: str(f.type) for f in dataclasses.fields(RequestRecord)}
    kind = types.get(name, "bool")
    if cell == "" and "None" in kind:
        return None
    if name == "attempts":
        return RequestRecord.attempts_from(json.loads(cell))
    if kind == "bool":
        return {"true": True, "false": False}[cell]
    if kind == "int":
        return int(cell)
    if kind == "float":
        return float(cell)
    return cell


async def test_exports_round_trip(db_path: str, fake_clock: FakeClock, tmp_path: Path) -> None:
    records = hand_built_set()
    records[3].prompt_preview = 'quotes " and, commas\nand a newline, ünïcödé'
    records[4].profile = "eco"
    records[5].tokens_estimated = True
    async with tracker_for(db_path, fake_clock) as tracker:
        for record in records:
            await tracker.record(record)
        await tracker.flush()
        assert await tracker.export_jsonl(tmp_path / "all.jsonl") == 10
        assert await tracker.export_csv(tmp_path / "all.csv") == 10
        assert await tracker.export_jsonl(tmp_path / "some.jsonl", since=T0 + 8) == 2
        assert await tracker.export_csv(tmp_path / "errors.csv", status="error") == 2

    lines = (tmp_path / "all.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in records]  # the documented shape
    from_jsonl = []
    for line in lines:
        data = json.loads(line)
        assert data.pop("escalated") == (data["request_id"][-1] in "26")
        data["attempts"] = RequestRecord.attempts_from(data["attempts"])
        from_jsonl.append(RequestRecord(**data))
    assert from_jsonl == records  # oldest first, every field, attempts nested

    with (tmp_path / "all.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    from_csv = []
    for row in rows:
        row.pop("escalated")
        from_csv.append(RequestRecord(**{name: _from_csv_cell(name, cell) for name, cell in row.items()}))
    assert from_csv == records

    some = [json.loads(line)["request_id"] for line in (tmp_path / "some.jsonl").read_text().splitlines()]
    assert some == ["req-000008", "req-000009"]
    with (tmp_path / "errors.csv").open(encoding="utf-8", newline="") as f:
        assert [row["request_id"] for row in csv.DictReader(f)] == ["req-000004", "req-000005"]


async def test_export_streams_more_rows_than_one_chunk(file_path: str, fake_clock: FakeClock, tmp_path: Path) -> None:
    async with tracker_for(file_path, fake_clock, batch_size=512) as tracker:
        for i in range(2500):  # DEFAULT_EXPORT_CHUNK is 1000: three fetches
            tracker.record_nowait(make_record(i))
        await tracker.flush()
        assert await tracker.export_jsonl(tmp_path / "big.jsonl") == 2500
    ids = [json.loads(line)["request_id"] for line in (tmp_path / "big.jsonl").read_text().splitlines()]
    assert ids == [f"req-{i:06d}" for i in range(2500)]


# ---------------------------------------------------------------------------------------------------------
# What is stored
# ---------------------------------------------------------------------------------------------------------


async def test_preview_limit_is_enforced_and_zero_stores_no_text(file_path: str, fake_clock: FakeClock) -> None:
    long = make_record(0, prompt_preview="x" * 500)
    async with tracker_for(file_path, fake_clock, prompt_preview_chars=12) as tracker:
        await tracker.record(long)
        await tracker.flush()
        assert (await tracker.logs())[0].prompt_preview == "x" * 12
    zero_path = file_path + ".zero"
    secret_prompt = "the quarterly numbers nobody may see"
    async with tracker_for(zero_path, fake_clock, prompt_preview_chars=0) as tracker:
        await tracker.record(make_record(1, prompt_preview=secret_prompt))
        await tracker.flush()
        assert (await tracker.logs())[0].prompt_preview == ""
    with sqlite3.connect(zero_path) as conn:
        assert conn.execute("SELECT prompt_preview FROM requests").fetchall() == [(None,)]
    assert secret_prompt.encode() not in await anyio.Path(zero_path).read_bytes()


async def test_no_api_key_reaches_the_database(tmp_path: Path, fake_clock: FakeClock) -> None:
    shaped = "sk-test-" + "Zx9Qw8Er7Ty6Ui5Op4"
    plain = "local-" + "token-8d1f0c2b7a"
    env = {"TEST_OPENAI_KEY": shaped, "TEST_LOCAL_KEY": plain}
    db = tmp_path / "keys.db"
    config = load_config(
        {
            "models": [
                {"name": "mini", "model_id": "gpt-4o-mini", "provider": "openai", "api_keys": ["${TEST_OPENAI_KEY}"]},
                {
                    "name": "local",
                    "model_id": "llama3",
                    "provider": "openai_compatible",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_keys": ["${TEST_LOCAL_KEY}"],
                },
            ],
            "tracker": {"path": str(db)},
        },
        env=env,
    )
    secrets = [key for model in config.models for key in model.key_values()]
    assert set(secrets) == {shaped, plain}
    # Records are not meant to carry keys; these leak them the ways a careless caller could.
    leaky = [
        make_record(0, prompt_preview=f"my key is {shaped} please"),
        make_record(1, routing_reason=f"retried with Bearer {shaped}"),
        make_record(
            2,
            status="error",
            attempts=[
                Attempt(model="mini", provider="openai", outcome="error", reason=f"401: invalid key {shaped}"),
                Attempt(model="local", provider="openai_compatible", outcome="error", reason=f"token {plain} refused"),
                Attempt(model="mini", provider="openai", outcome="error", reason="echoed Bearer\tOpaqueTok3nValue"),
            ],
        ),
    ]
    async with Tracker(config.tracker, clock=fake_clock, secrets=secrets) as tracker:
        for record in [*leaky, *(make_record(i) for i in range(3, 50))]:
            await tracker.record(record)
        await tracker.flush()
        stored = {r.request_id: r for r in await tracker.logs(last_n=None)}
    assert len(stored) == 50
    assert stored["req-000000"].prompt_preview == "my key is *** please"
    assert "***" in stored["req-000001"].routing_reason
    assert [a.reason for a in stored["req-000002"].attempts] == [
        "401: invalid key ***",
        "token *** refused",
        "echoed ***",
    ]

    data = read_database_files(tmp_path, "keys.db")
    assert b"gpt-4o-mini" not in data  # sanity: nothing from the config but what records carry...
    assert b"req-000049" in data  # ...while the records themselves are there
    assert shaped.encode() not in data
    assert plain.encode() not in data
    assert b"OpaqueTok3nValue" not in data
    assert re.search(rb"sk-[A-Za-z0-9_\-]{6,}", data) is None


async def test_schema_wal_indexes_and_attempt_layout(file_path: str, fake_clock: FakeClock) -> None:
    record = make_record(
        0,
        attempts=[
            Attempt(model="mini", provider="openai", outcome="gate_failed", reason="hedging", gate_score=0.25),
            Attempt(model="strong", provider="anthropic", outcome="ok", latency_ms=12.75, retries=1),
        ],
    )
    async with tracker_for(file_path, fake_clock) as tracker:
        await tracker.record(record)
        await tracker.flush()
        with sqlite3.connect(file_path) as conn:  # a second process-level reader while the tracker is open
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS) == 2
            indexes = {row[1]: row for row in conn.execute("PRAGMA index_list(requests)")}
            assert [c[2] for c in conn.execute("PRAGMA index_info(requests_ts)")] == ["ts"]
            assert [c[2] for c in conn.execute("PRAGMA index_info(requests_model_ts)")] == ["model", "ts"]
            assert {"requests_ts", "requests_model_ts", "requests_request_id"} <= set(indexes)
            assert conn.execute("SELECT escalated FROM requests").fetchone() == (1,)
            view = conn.execute(
                "SELECT attempt_index, attempt_model, outcome, gate_score, latency_ms, retries "
                "FROM request_attempts ORDER BY attempt_index"
            ).fetchall()
            assert view == [(0, "mini", "gate_failed", 0.25, 0.0, 0), (1, "strong", "ok", None, 12.75, 1)]
        assert (await tracker.logs())[0] == record
    assert set(ATTEMPT_FIELDS) == {f.name for f in dataclasses.fields(Attempt)}  # every Attempt field is stored


# ---------------------------------------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------------------------------------


async def test_reopening_is_idempotent(file_path: str, fake_clock: FakeClock) -> None:
    for i in range(3):
        async with tracker_for(file_path, fake_clock) as tracker:
            await tracker.record(make_record(i))
    with sqlite3.connect(file_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 3
        tables = conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall()
    assert sorted(tables) == [("table", "feedback"), ("table", "requests"), ("view", "request_attempts")]


async def test_an_older_database_is_migrated_in_place(file_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(file_path, fake_clock) as tracker:  # a database of this version, with data
        await tracker.record(make_record(0))
    calls: list[int] = []

    def add_region(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE requests ADD COLUMN region TEXT NOT NULL DEFAULT 'eu'")

    conn = sqlite3.connect(file_path, isolation_level=None)
    try:
        assert migrate(conn, (*MIGRATIONS, add_region)) == 3
        assert migrate(conn, (*MIGRATIONS, add_region)) == 3  # already there: not run again
        assert calls == [1]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.execute("SELECT request_id, region FROM requests").fetchall() == [("req-000000", "eu")]
    finally:
        conn.close()


async def test_a_version_1_database_gains_the_feedback_table(file_path: str, fake_clock: FakeClock) -> None:
    conn = sqlite3.connect(file_path, isolation_level=None)
    try:
        assert migrate(conn, MIGRATIONS[:1]) == 1  # as asyncrouter wrote it before feedback existed
    finally:
        conn.close()
    async with tracker_for(file_path, fake_clock) as tracker:
        await tracker.record(make_record(0))
        await tracker.flush()
        vote = await tracker.add_feedback("req-000000", -1, comment="wrong")
        assert await tracker.feedback_counts() == [(vote.task_type, vote.model, 0, 1)]
    with sqlite3.connect(file_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_fresh_database_gets_every_step_and_a_failing_step_changes_nothing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrate(conn) == SCHEMA_VERSION

        def broken(conn: sqlite3.Connection) -> None:
            conn.execute("ALTER TABLE requests ADD COLUMN half_done TEXT")
            conn.execute("THIS IS NOT SQL")

        with pytest.raises(ConfigError, match="cannot migrate"):
            migrate(conn, (*MIGRATIONS, broken))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(requests)")]
        assert "half_done" not in columns
        assert not conn.in_transaction
    finally:
        conn.close()


async def test_a_newer_or_foreign_database_is_refused(tmp_path: Path, fake_clock: FakeClock) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    tracker = tracker_for(str(newer), fake_clock)
    with pytest.raises(ConfigError, match="newer than this asyncrouter") as info:
        await tracker.aopen()
    assert info.value.path == "tracker.path"

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE requests (anything TEXT)")
    with pytest.raises(ConfigError, match="cannot migrate"):
        await tracker_for(str(foreign), fake_clock).aopen()

    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(ConfigError, match="tracker"):
        await tracker_for(str(not_a_db), fake_clock).aopen()


async def test_missing_parent_directories_are_created(tmp_path: Path, fake_clock: FakeClock) -> None:
    path = tmp_path / "a" / "b" / "tracker.db"
    async with tracker_for(str(path), fake_clock) as tracker:
        await tracker.record(make_record(0))
    assert count_rows(str(path)) == 1


# ---------------------------------------------------------------------------------------------------------
# The write path's internals, observed through what they store
# ---------------------------------------------------------------------------------------------------------


async def test_many_distinct_dimension_values_are_stored_exactly(file_path: str, fake_clock: FakeClock) -> None:
    # Far more distinct (task type, tier, model, ...) combinations than the tracker keeps in its per-connection
    # table, spread over many small pipelined batches: the table is started afresh many times while batches
    # that refer to older entries are still on their way.
    records = [
        make_record(
            i,
            task_type=f"task-{i % 7}",
            tier=("simple", "medium", "complex")[i % 3],
            model=None if i % 11 == 0 else f"model-{i % 5}",
            provider=None if i % 11 == 0 else "" if i % 13 == 0 else f"prov-{i % 2}",
            error_type="" if i % 4 else "AllProvidersFailed",
            profile=None if i % 6 else "eco",
            quality_passed=i % 9 != 0,
            tokens_estimated=i % 10 == 0,
        )
        for i in range(600)
    ]
    config = TrackerConfig(path=file_path, batch_size=16, flush_interval=0.001)
    async with Tracker(config, clock=fake_clock, max_dimensions=4) as tracker:
        for record in records:
            await tracker.record(record)
        await tracker.flush()
        stored = await tracker.logs(last_n=None)
    assert tracker.counters.failed == 0
    expected = []
    for r in records:  # '' is stored as NULL in these columns, as before
        expected.append(
            dataclasses.replace(r, provider=r.provider or None, error_type=r.error_type or None, profile=r.profile)
        )
    assert stored[::-1] == expected  # every field, in order
    with sqlite3.connect(file_path) as conn:
        flags = conn.execute(
            "SELECT DISTINCT typeof(quality_passed), typeof(tokens_estimated) FROM requests"
        ).fetchall()
    assert flags == [("integer", "integer")]


async def test_a_record_whose_text_column_holds_an_unstorable_value_is_skipped_alone(
    db_path: str, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    odd = make_record(1, task_type=["not", "text"])
    unhashable = make_record(2, tier={"a": 1})
    async with tracker_for(db_path, fake_clock) as tracker:
        with caplog.at_level(logging.ERROR, logger="asyncrouter.tracker"):
            for record in (make_record(0), odd, unhashable, make_record(3)):
                await tracker.record(record)
            await tracker.flush()
        stored = [r.request_id for r in await tracker.logs(last_n=None)]
    assert stored == ["req-000003", "req-000000"]
    assert (tracker.counters.failed, tracker.counters.write_errors) == (2, 0)
    assert "cannot encode record 'req-000001'" in caplog.text
    assert "cannot encode record 'req-000002'" in caplog.text


async def test_key_shaped_text_in_any_case_is_scrubbed_and_only_where_it_is(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    db = tmp_path / "mixed.db"
    batch = [make_record(i) for i in range(40)]
    batch[7] = make_record(7, routing_reason="sent BeArEr Zx9Qw8Er7Ty6 upstream")
    batch[23] = make_record(
        23, attempts=[Attempt(model="mini", provider="openai", outcome="error", reason="echo hf_AbCdEf123456 back")]
    )
    async with tracker_for(str(db), fake_clock, batch_size=64) as tracker:
        for record in batch:
            assert tracker.record_nowait(record)
        await tracker.flush()
        stored = {r.request_id: r for r in await tracker.logs(last_n=None)}
    assert stored["req-000007"].routing_reason == "sent *** upstream"
    assert stored["req-000023"].attempts[0].reason == "echo *** back"
    untouched = [r for r in batch if r.request_id not in ("req-000007", "req-000023")]
    assert [stored[r.request_id] for r in untouched] == untouched  # the rest of the batch is stored as given
    data = read_database_files(tmp_path, "mixed.db")
    assert b"Zx9Qw8Er7Ty6" not in data
    assert b"AbCdEf123456" not in data


async def test_batches_larger_than_one_statement_are_one_transaction_each(db_path: str, fake_clock: FakeClock) -> None:
    # More rows than one INSERT statement takes: the writer splits the batch inside one transaction.
    records = [make_record(i) for i in range(2500)]
    async with tracker_for(db_path, fake_clock, batch_size=3000, queue_size=3000, flush_interval=60) as tracker:
        for record in records:
            assert tracker.record_nowait(record)
        await tracker.flush()
        assert tracker.flushes == 1
        stored = await tracker.logs(last_n=None)
    assert stored[::-1] == records


async def test_waiting_callers_are_written_in_the_order_they_called(file_path: str, fake_clock: FakeClock) -> None:
    async with tracker_for(file_path, fake_clock, queue_size=2, batch_size=3) as tracker:
        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(tracker.record, make_record(i))
                await anyio.lowlevel.checkpoint()  # each caller has called record() before the next starts
        await tracker.flush()
    with sqlite3.connect(file_path) as conn:
        ids = [row[0] for row in conn.execute("SELECT request_id FROM requests ORDER BY id")]
    assert ids == [f"req-{i:06d}" for i in range(60)]


async def test_the_wal_is_checkpointed_in_the_background_while_writing(file_path: str, fake_clock: FakeClock) -> None:
    # Below the writer's own checkpoint threshold, only the background checkpoint moves pages from the WAL
    # into the database file before the tracker closes.
    async with tracker_for(file_path, fake_clock, batch_size=256) as tracker:
        size_before = file_size(file_path)
        for i in range(DEFAULT_CHECKPOINT_ROWS + 300):
            await tracker.record(make_record(i))
        await tracker.flush()
        await wait_until(lambda: file_size(file_path) > size_before + 1_000_000)
        assert count_rows(file_path) == DEFAULT_CHECKPOINT_ROWS + 300
    assert count_rows(file_path) == DEFAULT_CHECKPOINT_ROWS + 300


async def test_the_queue_admits_waiting_senders_in_order_withdraws_cancelled_ones_and_fails_the_rest() -> None:
    queue = _Queue(2)
    r = [make_record(i) for i in range(6)]
    assert queue.put_nowait(r[0])
    assert queue.put_nowait(r[1])
    assert not queue.put_nowait(r[2])  # full
    outcomes: dict[str, str] = {}

    async def sender(record: RequestRecord, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await queue.put(record)
                outcomes[record.request_id] = "queued"
            except BrokenResourceError:
                outcomes[record.request_id] = "broken"
        if scope.cancelled_caught:
            outcomes[record.request_id] = "withdrawn"

    scopes = [anyio.CancelScope() for _ in range(4)]
    async with anyio.create_task_group() as tg:
        for record, scope in zip(r[2:], scopes, strict=True):
            tg.start_soon(sender, record, scope)
            await anyio.lowlevel.checkpoint()
        assert queue.waiting == 4
        scopes[1].cancel()  # r3 gives up while waiting
        await anyio.lowlevel.checkpoint()
        assert queue.waiting == 3
        held: list[RequestRecord] = []
        markers: list[Any] = []
        queue.take_into(held, markers, 2)  # makes room for two waiting senders, oldest first
        assert held == r[:2]
        queue.close()  # the writer is gone: r5, still waiting, fails
        assert [queue.get_nowait(), queue.get_nowait()] == [r[2], r[4]]  # r3 was withdrawn
    assert outcomes == {
        "req-000002": "queued",
        "req-000003": "withdrawn",
        "req-000004": "queued",
        "req-000005": "broken",
    }
    with pytest.raises(BrokenResourceError):
        queue.put_nowait(r[0])
    sealed = _Queue(2)
    assert sealed.put_nowait(r[0])
    sealed.seal()
    assert await sealed.get() is r[0]
    with pytest.raises(EndOfStream):
        await sealed.get()


# ---------------------------------------------------------------------------------------------------------
# Crash safety
# ---------------------------------------------------------------------------------------------------------

_CHILD = """
import sys
import anyio
from asyncrouter._clock import AnyioClock
from asyncrouter._config import TrackerConfig
from asyncrouter._models import Attempt, RequestRecord
from asyncrouter._store import Tracker

BATCH = int(sys.argv[2])

def make(i):
    return RequestRecord(
        request_id=f"req-{i:08d}", timestamp=1767225600.0 + i, status="ok", prompt_preview="p" * 60,
        prompt_hash="h", task_type="code", tier="simple", complexity="simple", category="code",
        complexity_score=0.5, routing_layer="complexity", routing_reason="r", model="mini", provider="openai",
        input_tokens=1, output_tokens=2, latency_ms=3.0, cost_usd=0.5,
        attempts=[Attempt(model="mini", provider="openai", outcome="ok")],
    )

async def main():
    config = TrackerConfig(path=sys.argv[1], batch_size=BATCH, flush_interval=0.001)
    async with Tracker(config, clock=AnyioClock()) as tracker:
        i = 0
        while True:
            for _ in range(BATCH):
                await tracker.record(make(i))
                i += 1
            await tracker.flush()
            print(i, flush=True)  # every record below i is committed

anyio.run(main)
"""


def test_sigkill_mid_batch_leaves_a_clean_database_with_every_confirmed_record(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    batch = 50
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as child:
        watchdog = threading.Timer(60, child.kill)
        watchdog.start()
        try:
            assert child.stdout is not None
            confirmed = 0
            while confirmed < 3000:
                line = child.stdout.readline()
                if not line:
                    pytest.fail(f"the child stopped early: {child.stderr.read() if child.stderr else ''}")
                confirmed = int(line)
            os.kill(child.pid, signal.SIGKILL)  # the child is still writing: the kill lands mid-stream
            rest = child.stdout.read()  # lines printed before the kill
            child.wait()
        finally:
            watchdog.cancel()
    confirmed = max([confirmed, *(int(x) for x in rest.split())])
    assert child.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [row[0] for row in conn.execute("SELECT request_id FROM requests ORDER BY id")]
    finally:
        conn.close()
    # Every confirmed record is there; beyond them at most the one batch that was in flight.
    assert confirmed <= len(ids) <= confirmed + batch
    assert ids == [f"req-{i:08d}" for i in range(len(ids))]  # a prefix, in order: no gaps, no duplicates
