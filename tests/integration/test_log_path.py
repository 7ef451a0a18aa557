"""routeforge's ``log_path``: the tracker's JSON Lines run log, against real files and databases."""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asyncrouter import Response, Router
from asyncrouter._config import TrackerConfig, load_config
from asyncrouter._exceptions import ConfigError
from asyncrouter._models import Attempt, RequestRecord
from asyncrouter._store import ATTEMPT_FIELDS, DEFAULT_LOG_FILE_MODE, LOG_FIELDS, Tracker
from asyncrouter.testing import FakeClock, FakeProviderServer, default_fleet

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ROUTEFORGE_FIELDS = (
    "timestamp",
    "prompt_preview",
    "model",
    "provider",
    "routing_layer",
    "routing_reason",
    "task_type",
    "complexity_score",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "estimated_cost_usd",
)
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def make_record(i: int, **overrides: Any) -> RequestRecord:
    attempts = overrides.pop("attempts", None)
    if attempts is None:
        attempts = [
            Attempt(
                model="mini",
                provider="openai",
                outcome="ok",
                latency_ms=98.5,
                input_tokens=40 + i,
                output_tokens=12,
                cost_usd=0.000125,
            )
        ]
    fields: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "timestamp": T0 + i * 1.25,
        "status": "ok",
        "prompt_preview": f"Write a FastAPI endpoint number {i} that streams SSE events",
        "prompt_hash": f"{i:032x}",
        "task_type": "code",
        "tier": "medium",
        "complexity": "medium",
        "category": "code",
        "complexity_score": 0.61,
        "routing_layer": "task_classifier",
        "routing_reason": "Task detected as 'code'; selected by complexity (0.61)",
        "model": "mini",
        "provider": "openai",
        "input_tokens": 40 + i,
        "output_tokens": 12,
        "latency_ms": 100.0 + i / 8,
        "cost_usd": 0.000125,
        "attempts": attempts,
    }
    fields.update(overrides)
    return RequestRecord(**fields)


def varied_records(n: int) -> list[RequestRecord]:
    """Accepted, escalated and failed requests, with and without optional fields."""
    out = []
    for i in range(n):
        if i % 5 == 3:
            out.append(
                make_record(
                    i,
                    model="strong",
                    provider="anthropic",
                    tier="complex",
                    complexity="complex",
                    category="reasoning",
                    task_type="reasoning",
                    profile="premium",
                    attempts=[
                        Attempt(
                            model="mini",
                            provider="openai",
                            outcome="gate_failed",
                            reason="gate hedging: 'I'm not sure'",
                            gate_score=0.25,
                        ),
                        Attempt(model="strong", provider="anthropic", outcome="ok", latency_ms=900.5, cost_usd=0.01),
                    ],
                    cost_usd=0.010125,
                )
            )
        elif i % 5 == 4:
            out.append(
                make_record(
                    i,
                    status="error",
                    model=None,
                    provider=None,
                    error_type="AllProvidersFailed",
                    quality_passed=False,
                    tokens_estimated=True,
                    attempts=[
                        Attempt(
                            model="mini",
                            provider="openai",
                            outcome="error",
                            reason="ProviderServerError: HTTP 503",
                            error_type="ProviderServerError",
                            status_code=503,
                            retries=1,
                        )
                    ],
                )
            )
        else:
            out.append(make_record(i, prompt_preview='Résumé en français, s\'il vous plaît: «"quotes"»\n\ttabs'))
    return out


def iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def expected_line(stored: RequestRecord) -> dict[str, Any]:
    """What the run log must say about a row, built from that row as the database gives it back."""
    return {
        "timestamp": iso_ms(stored.timestamp),
        "prompt_preview": stored.prompt_preview,
        "model": stored.model,
        "provider": stored.provider,
        "routing_layer": stored.routing_layer,
        "routing_reason": stored.routing_reason,
        "task_type": stored.task_type,
        "complexity_score": stored.complexity_score,
        "input_tokens": stored.input_tokens,
        "output_tokens": stored.output_tokens,
        "latency_ms": finite(stored.latency_ms),
        "estimated_cost_usd": finite(stored.cost_usd),
        "request_id": stored.request_id,
        "status": stored.status,
        "tier": stored.tier,
        "complexity": stored.complexity,
        "category": stored.category,
        "error_type": stored.error_type,
        "profile": stored.profile,
        "quality_passed": stored.quality_passed,
        "tokens_estimated": stored.tokens_estimated,
        "escalated": stored.escalated,
        "prompt_hash": stored.prompt_hash,
        "attempts": [{k: finite(v) for k, v in a.to_dict().items()} for a in stored.attempts],
    }


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stored_ids(db: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT request_id FROM requests ORDER BY id")]


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def swap(path: Path, *, for_directory: bool) -> None:
    """Replace the file at *path* by a directory, or remove that directory."""
    if for_directory:
        path.unlink()
        path.mkdir()
    else:
        path.rmdir()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=["file", "memory"])
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "tracker.db") if request.param == "file" else ":memory:"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "runs.json"  # the parent does not exist yet


def tracker_for(db: str, log: Path, clock: FakeClock, **config: Any) -> Tracker:
    return Tracker(TrackerConfig(path=db, log_path=str(log), **config), clock=clock)


# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------

MODELS = [{"name": "mini", "model_id": "gpt-4o-mini", "provider": "ollama"}]


def test_routeforge_log_path_is_the_trackers(tmp_path: Path) -> None:
    runs = str(tmp_path / "runs.json")
    config = load_config({"default_model": "mini", "log_path": runs, "models": MODELS})
    assert (config.log_path, config.tracker.log_path, config.tracker.path) == (runs, runs, "asyncrouter.db")
    nested = load_config({"models": MODELS, "tracker": {"path": ":memory:", "log_path": runs}})
    assert (nested.log_path, nested.tracker.log_path) == (runs, runs)
    both = load_config({"models": MODELS, "log_path": runs, "tracker": {"log_path": runs}})
    assert both.tracker.log_path == runs
    assert load_config({"models": MODELS}).tracker.log_path is None


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        pytest.param(
            {"log_path": "runs.json", "tracker": {"path": None}}, "log_path", "tracker.path is null", id="off"
        ),
        pytest.param(
            {"tracker": {"path": None, "log_path": "runs.json"}},
            "tracker.log_path",
            "tracker.path is null",
            id="nested-off",
        ),
        pytest.param({"log_path": "a.json", "tracker": {"log_path": "b.json"}}, "log_path", "differs", id="two-values"),
        pytest.param({"log_path": " "}, "log_path", "empty path", id="empty"),
        pytest.param({"log_path": "t.db", "tracker": {"path": "t.db"}}, "log_path", "database itself", id="same-file"),
    ],
)
def test_a_log_path_that_cannot_work_is_a_config_error_naming_it(data: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"models": MODELS, **data})
    assert info.value.path == path
    assert words in str(info.value)


async def test_a_log_path_that_cannot_be_opened_fails_the_open_and_leaks_nothing(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    tracker = tracker_for(str(tmp_path / "t.db"), directory, fake_clock)
    with pytest.raises(ConfigError) as info:
        await tracker.aopen()
    assert info.value.path == "log_path"
    assert "cannot open the JSON run log" in str(info.value)
    assert tracker.queued == 0  # never opened (its database connections are closed: no ResourceWarning)
    orphan = Tracker(TrackerConfig(path=None, log_path=str(tmp_path / "x.json")), clock=fake_clock)
    with pytest.raises(ConfigError, match="needs the tracker"):
        await orphan.aopen()


# ---------------------------------------------------------------------------------------------------------
# What is written
# ---------------------------------------------------------------------------------------------------------


async def test_every_committed_record_is_one_line_mirroring_its_row(
    db_path: str, log: Path, fake_clock: FakeClock
) -> None:
    records = varied_records(40)
    async with tracker_for(db_path, log, fake_clock, batch_size=16) as tracker:
        for record in records:
            await tracker.record(record)
        await tracker.flush()
        lines = read_lines(log)  # written by the time flush() returns
        stored = (await tracker.logs(last_n=None))[::-1]  # oldest first
        counters = tracker.counters
    assert [r.request_id for r in stored] == [r.request_id for r in records]
    assert lines == [expected_line(r) for r in stored]
    assert all(list(line) == list(LOG_FIELDS) for line in lines)  # routeforge's fields first, in its order
    assert LOG_FIELDS[: len(ROUTEFORGE_FIELDS)] == ROUTEFORGE_FIELDS
    assert list(lines[3]["attempts"][0]) == list(ATTEMPT_FIELDS)
    first = lines[0]
    assert ISO_MS_Z.match(first["timestamp"])
    assert first["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert (first["estimated_cost_usd"], first["complexity_score"], first["latency_ms"]) == (0.000125, 0.61, 100.0)
    assert lines[4]["model"] is None
    assert lines[4]["status"] == "error"
    assert lines[3]["escalated"] is True
    assert (counters.log_written, counters.log_errors, counters.log_failed) == (40, 0, 0)
    assert read_bytes(log).endswith(b"}\n")


async def test_timestamps_are_utc_iso_with_milliseconds_as_datetime_writes_them(
    log: Path, fake_clock: FakeClock
) -> None:
    moments = [T0, T0 + 0.0005, T0 + 0.0015, T0 + 0.9995, T0 + 0.99949, T0 + 59.9999996, 0.0, 1e9 + 0.123456]
    moments += [T0 + i * 0.0137 for i in range(300)]
    records = [make_record(i, timestamp=ts) for i, ts in enumerate(moments)]
    async with tracker_for(":memory:", log, fake_clock) as tracker:
        for record in records:
            await tracker.record(record)
    written = [line["timestamp"] for line in read_lines(log)]
    assert written == [iso_ms(ts) for ts in moments]
    assert all(ISO_MS_Z.match(ts) for ts in written)


@pytest.mark.parametrize("chars", [0, 12])
async def test_the_preview_is_what_the_database_keeps(log: Path, fake_clock: FakeClock, chars: int) -> None:
    async with tracker_for(":memory:", log, fake_clock, prompt_preview_chars=chars) as tracker:
        await tracker.record(make_record(0))
        stored = (await tracker.logs())[0].prompt_preview
    assert read_lines(log)[0]["prompt_preview"] == stored == make_record(0).prompt_preview[:chars]


async def test_no_api_key_reaches_the_file(tmp_path: Path, log: Path, fake_clock: FakeClock) -> None:
    shaped = "sk-test-" + "Zx9Qw8Er7Ty6Ui5Op4"
    configured = "local-" + "token-8d1f0c2b7a"
    leaky = [
        make_record(0, prompt_preview=f"my key is {shaped} please"),
        make_record(1, routing_reason=f"retried with Bearer {shaped}"),
        make_record(
            2,
            status="error",
            attempts=[
                Attempt(model="mini", provider="openai", outcome="error", reason=f"401: invalid key {shaped}"),
                Attempt(model="local", provider="openai_compatible", outcome="error", reason=f"{configured} refused"),
            ],
        ),
        *(make_record(i) for i in range(3, 30)),
    ]
    config = TrackerConfig(path=str(tmp_path / "keys.db"), log_path=str(log))
    async with Tracker(config, clock=fake_clock, secrets=[shaped, configured]) as tracker:
        for record in leaky:
            await tracker.record(record)
        stored = (await tracker.logs(last_n=None))[::-1]
    lines = read_lines(log)
    assert lines == [expected_line(r) for r in stored]  # scrubbed exactly as the rows are
    assert lines[0]["prompt_preview"] == "my key is *** please"
    assert [a["reason"] for a in lines[2]["attempts"]] == ["401: invalid key ***", "*** refused"]
    data = read_bytes(log)
    assert shaped.encode() not in data
    assert configured.encode() not in data
    assert re.search(rb"sk-[A-Za-z0-9_\-]{6,}", data) is None


async def test_records_the_database_did_not_store_never_reach_the_file(
    tmp_path: Path, log: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "t.db")
    no_id = make_record(1, request_id=None)
    nan_time = make_record(2, timestamp=math.nan)
    unencodable = make_record(3)
    unencodable.attempts = [object()]  # type: ignore[list-item]
    non_finite = make_record(
        4,
        latency_ms=math.nan,
        cost_usd=math.inf,
        attempts=[Attempt(model="mini", provider="openai", outcome="ok", latency_ms=math.nan, gate_score=1)],
    )
    async with tracker_for(db, log, fake_clock) as tracker:
        with caplog.at_level(logging.ERROR, logger="asyncrouter.tracker"):
            for record in (make_record(0), no_id, nan_time, unencodable, non_finite, make_record(5)):
                await tracker.record(record)
            await tracker.flush()
            # A batch the database refuses as a whole (a trigger added from outside): none of it is logged.
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON requests WHEN NEW.request_id LIKE 'bad-%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
                )
            await tracker.record(make_record(6, request_id="bad-6"))
            await tracker.record(make_record(7, request_id="ok-7"))
            await tracker.flush()
            await tracker.record(make_record(8))
        stored = {r.request_id: r for r in await tracker.logs(last_n=None)}
        counters = tracker.counters
    lines = read_lines(log)
    assert (
        [line["request_id"] for line in lines]
        == stored_ids(db)
        == ["req-000000", "req-000004", "req-000005", "req-000008"]
    )
    assert lines[1] == expected_line(stored["req-000004"])
    assert (lines[1]["latency_ms"], lines[1]["estimated_cost_usd"]) == (None, None)  # JSON has no NaN
    assert (lines[1]["attempts"][0]["latency_ms"], lines[1]["attempts"][0]["gate_score"]) == (None, 1)
    assert (counters.written, counters.write_errors, counters.log_written, counters.log_failed) == (4, 1, 4, 0)
    assert "refused by test trigger" in caplog.text


async def test_a_new_file_is_private_and_an_existing_one_is_appended_to(tmp_path: Path, fake_clock: FakeClock) -> None:
    new, old, torn = tmp_path / "new.json", tmp_path / "old.json", tmp_path / "torn.json"
    old.write_text('{"earlier":"run"}\n', encoding="utf-8")
    old.chmod(0o644)
    torn.write_text('{"cut short', encoding="utf-8")  # e.g. a crash mid-write
    for path in (new, old, torn):
        async with tracker_for(":memory:", path, fake_clock) as tracker:
            await tracker.record(make_record(0))
        async with tracker_for(":memory:", path, fake_clock) as tracker:  # a second run appends
            await tracker.record(make_record(1))
    assert mode_of(new) == DEFAULT_LOG_FILE_MODE == 0o600
    assert mode_of(old) == 0o644
    assert [line["request_id"] for line in read_lines(new)] == ["req-000000", "req-000001"]
    assert read_lines(old)[0] == {"earlier": "run"}
    assert [line["request_id"] for line in read_lines(old)[1:]] == ["req-000000", "req-000001"]
    head, *rest = torn.read_text(encoding="utf-8").splitlines()
    assert head == '{"cut short'
    assert [json.loads(line)["request_id"] for line in rest] == ["req-000000", "req-000001"]


async def test_closing_writes_every_queued_record_even_when_the_body_is_cancelled(
    db_path: str, log: Path, fake_clock: FakeClock
) -> None:
    records = varied_records(700)
    with anyio.CancelScope() as scope:
        async with tracker_for(db_path, log, fake_clock, batch_size=64, flush_interval=60) as tracker:
            for record in records:
                assert tracker.record_nowait(record)
            scope.cancel()
            await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert [line["request_id"] for line in read_lines(log)] == [r.request_id for r in records]
    assert tracker.counters.log_written == 700


async def test_io_errors_are_counted_logged_once_per_streak_and_cost_no_row(
    tmp_path: Path, log: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "t.db")
    async with tracker_for(db, log, fake_clock) as tracker:
        await tracker.record(make_record(0))
        await tracker.flush()
        swap(log, for_directory=True)  # every append now fails with IsADirectoryError
        with caplog.at_level(logging.DEBUG, logger="asyncrouter.tracker"):
            for i in range(1, 4):  # three batches, three failures, one report
                assert await tracker.record(make_record(i))
                await tracker.flush()
            failing = tracker.counters
            swap(log, for_directory=False)
            await tracker.record(make_record(4))
            await tracker.flush()
        counters = tracker.counters
        assert [r.request_id for r in await tracker.logs(last_n=None)][::-1] == [f"req-{i:06d}" for i in range(5)]
    assert (failing.written, failing.log_written, failing.log_errors, failing.log_failed) == (4, 1, 3, 3)
    assert (counters.written, counters.log_written, counters.log_errors, counters.log_failed) == (5, 2, 3, 3)
    reports = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in reports] == ["ERROR", "WARNING"]
    assert "cannot append to the JSON run log" in reports[0].getMessage()
    assert "IsADirectoryError" in reports[0].getMessage()
    assert "again, after 3 failed batch(es): 3 record(s) are in the database only" in reports[1].getMessage()
    # The file is started afresh (private again), with the records committed since it came back.
    assert [line["request_id"] for line in read_lines(log)] == ["req-000004"]
    assert mode_of(log) == 0o600


async def test_big_batches_and_a_churning_dimension_table_are_logged_exactly(
    db_path: str, log: Path, fake_clock: FakeClock
) -> None:
    # 2500 rows in one batch: several INSERT statements in one transaction. Then more distinct (task type,
    # model, ...) combinations than the writer keeps, over small pipelined batches.
    big = [make_record(i) for i in range(2500)]
    churn = [
        make_record(
            i,
            task_type=f"task-{i % 7}",
            model=None if i % 11 == 0 else f"model-{i % 5}",
            provider="" if i % 13 == 0 else f"prov-{i % 2}",
            profile=None if i % 6 else "eco",
            quality_passed=i % 9 != 0,
        )
        for i in range(2500, 2800)
    ]
    config = TrackerConfig(path=db_path, log_path=str(log), batch_size=3000, queue_size=3000, flush_interval=60)
    async with Tracker(config, clock=fake_clock, max_dimensions=4) as tracker:
        for record in big:
            assert tracker.record_nowait(record)
        await tracker.flush()
        assert tracker.flushes == 1
        for record in churn:
            await tracker.record(record)
            if record.request_id.endswith("7"):
                await tracker.flush()  # many small batches
        await tracker.flush()
        stored = (await tracker.logs(last_n=None))[::-1]
    assert len(stored) == 2800
    assert read_lines(log) == [expected_line(r) for r in stored]


# ---------------------------------------------------------------------------------------------------------
# Through the Router
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(models=default_fleet(speed=0, faults=False), seed=5) as srv:
        srv.set_behaviour("fake-cheap", hedge_rate=0.0, refusal_rate=0.0)
        yield srv


async def test_a_routeforge_config_logs_every_route_call(fleet: FakeProviderServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs.json"
    config = fleet.config_dict(default_model="fake-cheap", log_path=str(runs), retries={"max_attempts": 1})
    prompts = [
        "Write a FastAPI endpoint that streams SSE events",
        "Translate 'good morning' into French",
        "What is the capital of France?",
        "My key is fake-key, what is the capital of Italy?",  # the fleet's configured API key
    ]
    async with Router.from_dict(config) as router:
        responses: list[Response] = []
        for i, prompt in enumerate(prompts):
            fleet.set_behaviour("fake-cheap", hedge_rate=1.0 if i == 2 else 0.0)  # one escalation
            responses.append(await router.aroute(prompt))
    lines = {line["request_id"]: line for line in read_lines(runs)}
    assert list(lines) == [r.meta.request_id for r in responses]
    for r in responses:
        line = lines[r.meta.request_id]
        meta = r.meta
        assert [line[k] for k in ROUTEFORGE_FIELDS[2:]] == [
            meta.model,
            meta.provider,
            meta.routing_layer,
            meta.routing_reason,
            meta.task_type,
            meta.complexity_score,
            meta.input_tokens,
            meta.output_tokens,
            meta.latency_ms,
            meta.estimated_cost_usd,
        ]
        assert (line["tier"], line["status"]) == (meta.tier, "ok")
        assert [(a["model"], a["outcome"]) for a in line["attempts"]] == [(a.model, a.outcome) for a in meta.attempts]
        assert ISO_MS_Z.match(line["timestamp"])
    escalated = lines[responses[2].meta.request_id]
    assert escalated["escalated"] is True
    assert escalated["attempts"][0]["outcome"] == "gate_failed"
    assert lines[responses[3].meta.request_id]["prompt_preview"] == "My key is ***, what is the capital of Italy?"
    assert b"fake-key" not in runs.read_bytes()
    assert mode_of(runs) == 0o600
