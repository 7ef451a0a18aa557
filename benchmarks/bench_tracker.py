"""Tracker throughput: records/s through ``Tracker.record()`` into SQLite, against raw ``executemany``.

Every run writes the same pre-built records to a fresh WAL database file (``synchronous=NORMAL``):

* ``tracker``: ``await tracker.record(r)`` for each record, then ``await tracker.flush()``: queueing, the
  writer's batching, row encoding (attempts to JSON, preview truncation, key scrubbing) and the inserts;
* ``tracker_log``: the same with routeforge's ``log_path`` set: every committed row also appended to a JSON
  Lines file;
* ``raw_sqlite3``: the same 24 column values per row, already encoded, through plain :mod:`sqlite3`
  ``executemany`` in batches of ``batch_size``, one commit per batch: no encoding, no queue, no thread;
* ``raw_aiosqlite``: the same rows and batches through ``aiosqlite`` ``executemany`` + ``commit``;
* ``encode``: the tracker's row encoding alone, and ``insert_only``: the tracker's statements (its dimension
  rows, then one multi-row INSERT per batch) on the encoded rows through plain sqlite3;
* ``sqlite3_cli``: the floor in C: the ``sqlite3`` command-line shell inserting the same rows from a staging
  table, ``INSERT ... SELECT`` one batch per statement (skipped without the binary). No binding, no Python.

Each figure is the best of ``--repeat`` runs, variants interleaved (the machine is shared); ratios compare
figures of the same run. Usage::

    python benchmarks/bench_tracker.py [--n 200000] [--batch-size 256] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from asyncrouter._clock import AnyioClock
from asyncrouter._config import TrackerConfig
from asyncrouter._models import Attempt, RequestRecord
from asyncrouter._store import (
    _DIM_INSERT,
    _INSERT_COLUMNS,
    _MAX_ROWS_PER_STATEMENT,
    _PREVIEW,
    _ROW_WIDTH,
    Tracker,
    _Batch,
    _insert_statements,
    _prepare_writer,
    _RowEncoder,
    migrate,
)

TARGET_RPS = 150_000
_MODELS = (("mini", "openai", 0.00015, 0.0006), ("medium", "anthropic", 0.003, 0.015), ("strong", "openai", 0.01, 0.03))
_PROMPTS = (
    "Write a FastAPI endpoint that streams SSE events to the browser and retries on disconnect",
    "Summarise the attached quarterly report in three bullet points for the board",
    "Translate 'the meeting moved to Thursday' into German and Japanese",
    "Why does my recursive Fibonacci implementation blow the stack for n > 1000?",
)


def make_records(n: int, *, seed: int = 0) -> list[RequestRecord]:
    """A realistic mix: 80% answered by the first model, 15% escalated once, 5% failed after two errors."""
    rng = random.Random(seed)
    out: list[RequestRecord] = []
    for i in range(n):
        kind = rng.random()
        tokens_in = rng.randint(20, 2000)
        tokens_out = rng.randint(10, 800)
        first = _MODELS[0]
        attempts = [
            Attempt(
                model=first[0],
                provider=first[1],
                outcome="ok",
                latency_ms=rng.uniform(80, 900),
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_usd=tokens_in * first[2] / 1000 + tokens_out * first[3] / 1000,
            )
        ]
        status = "ok"
        accepted: tuple[str, str, float, float] | None = first
        if 0.80 <= kind < 0.95:
            attempts[0].outcome = "gate_failed"
            attempts[0].reason = "gate hedging: 'I'm not sure'"
            attempts[0].gate_score = 0.2
            second = _MODELS[rng.randint(1, 2)]
            attempts.append(
                Attempt(
                    model=second[0],
                    provider=second[1],
                    outcome="ok",
                    latency_ms=rng.uniform(300, 3000),
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=tokens_in * second[2] / 1000 + tokens_out * second[3] / 1000,
                )
            )
            accepted = second
        elif kind >= 0.95:
            status = "error"
            accepted = None
            attempts[0].outcome = "error"
            attempts[0].reason = "ProviderServerError: HTTP 503"
            attempts[0].error_type = "ProviderServerError"
            attempts[0].status_code = 503
            attempts.append(
                Attempt(model="medium", provider="anthropic", outcome="error", reason="ProviderTimeout: 30 s")
            )
        out.append(
            RequestRecord(
                request_id=f"req-{seed:04x}-{i:08x}",
                timestamp=1_767_225_600.0 + i * 0.005,
                status=status,  # type: ignore[arg-type]
                prompt_preview=rng.choice(_PROMPTS)[:80],
                prompt_hash=f"{rng.getrandbits(128):032x}",
                task_type=rng.choice(("code", "summarisation", "translation", "reasoning", "general")),
                tier=rng.choice(("simple", "medium", "complex")),
                complexity=rng.choice(("simple", "medium", "complex")),
                category=rng.choice(("factual", "reasoning", "creative", "code")),
                complexity_score=rng.random(),
                routing_layer=rng.choice(("task_classifier", "complexity", "default")),
                routing_reason="complexity 0.52 >= threshold 0.45",
                model=accepted[0] if accepted else None,
                provider=accepted[1] if accepted else None,
                input_tokens=sum(a.input_tokens for a in attempts),
                output_tokens=sum(a.output_tokens for a in attempts),
                latency_ms=sum(a.latency_ms for a in attempts) + rng.uniform(0.1, 2.0),
                cost_usd=sum(a.cost_usd for a in attempts),
                attempts=attempts,
                error_type="AllProvidersFailed" if status == "error" else None,
            )
        )
    return out


def _fresh_db(directory: Path, name: str) -> str:
    path = directory / name
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    conn.close()
    return str(path)


def encode_all(records: list[RequestRecord], batch_size: int) -> list[_Batch]:
    """The tracker's encoding of *records*, batch by batch, as its writer does it."""
    encoder = _RowEncoder(preview_chars=80)
    return [encoder.encode(records[i : i + batch_size]) for i in range(0, len(records), batch_size)]


def full_rows(batches: list[_Batch]) -> list[tuple[Any, ...]]:
    """Every row with all 24 column values (``_INSERT_COLUMNS`` order) as the tracker stores them."""
    dims = {d[0]: d[1:] for batch in batches for d in batch.dims}
    rows = []
    for batch in batches:
        for row in batch.rows:
            values = list(row[1:])
            if values[_PREVIEW - 1] == "":
                values[_PREVIEW - 1] = None  # the tracker's NULLIF
            rows.append((*values, *dims[row[0]]))
    return rows


def _raw_sql() -> str:
    return f"INSERT INTO requests ({', '.join(_INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})"


def bench_raw_sqlite3(rows: list[tuple[Any, ...]], path: str, batch_size: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = NORMAL")
    sql = _raw_sql()
    start = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        conn.executemany(sql, rows[i : i + batch_size])
        conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bench_insert_only(batches: list[_Batch], path: str) -> float:
    """The tracker's own statements (dimension rows, one multi-row INSERT per batch) through plain sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    _prepare_writer(conn, lambda: 1)
    max_rows = min(_MAX_ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _ROW_WIDTH)
    start = time.perf_counter()
    for batch in batches:
        if batch.dims:
            conn.executemany(_DIM_INSERT, batch.dims)
        statements = _insert_statements(batch.rows, max_rows)
        if len(statements) > 1:
            conn.execute("BEGIN")
        for sql, params in statements:
            conn.execute(sql, params)
        if len(statements) > 1:
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def bench_raw_aiosqlite(rows: list[tuple[Any, ...]], path: str, batch_size: int) -> float:
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA synchronous = NORMAL")
        sql = _raw_sql()
        start = time.perf_counter()
        for i in range(0, len(rows), batch_size):
            await db.executemany(sql, rows[i : i + batch_size])
            await db.commit()
        return time.perf_counter() - start


async def bench_tracker(
    records: list[RequestRecord], path: str, *, batch_size: int, queue_size: int, log_path: str | None = None
) -> float:
    config = TrackerConfig(path=path, batch_size=batch_size, queue_size=queue_size, log_path=log_path)
    async with Tracker(config, clock=AnyioClock()) as tracker:
        record = tracker.record
        start = time.perf_counter()
        for r in records:
            await record(r)
        await tracker.flush()
        elapsed = time.perf_counter() - start
        if tracker.written != len(records):
            raise RuntimeError(f"tracker wrote {tracker.written} of {len(records)} records")
    return elapsed


def make_staging(rows: list[tuple[Any, ...]], path: Path) -> None:
    """A table ``s`` holding *rows* (``_INSERT_COLUMNS``), for the CLI floor."""
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE s ({', '.join(_INSERT_COLUMNS)})")
    conn.executemany(f"INSERT INTO s VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})", rows)
    conn.commit()
    conn.close()


def bench_sqlite3_cli(cli: str, staging: Path, n: int, path: str, batch_size: int) -> float:
    """The sqlite3 shell copies the staging rows in, one ``INSERT ... SELECT`` (one transaction) per batch.

    The shell's start-up and the ``ATTACH`` are timed separately and subtracted.
    """
    columns = ", ".join(_INSERT_COLUMNS)
    setup = [".bail on", "PRAGMA synchronous = NORMAL;", f"ATTACH '{staging}' AS st;", "SELECT count(*) FROM st.s;"]
    inserts = [
        f"INSERT INTO requests ({columns}) SELECT {columns} FROM st.s WHERE rowid > {i} AND rowid <= {i + batch_size};"
        for i in range(0, n, batch_size)
    ]
    script = Path(path + ".sql")
    empty = Path(path + ".empty.sql")
    script.write_text("\n".join(setup + inserts) + "\n", encoding="utf-8")
    empty.write_text("\n".join(setup) + "\n", encoding="utf-8")

    def timed(sql_file: Path) -> float:
        start = time.perf_counter()
        subprocess.run([cli, path, f".read {sql_file}"], check=True, capture_output=True)
        return time.perf_counter() - start

    overhead = timed(empty)
    return max(timed(script) - overhead, 1e-9)


def run(
    *, n: int = 200_000, batch_size: int = 256, queue_size: int = 10_000, repeat: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Run every variant *repeat* times on *n* records and return the best rates (records/s) and ratios."""
    records = make_records(n, seed=seed)
    batches = encode_all(records, batch_size)
    rows = full_rows(batches)
    cli = shutil.which("sqlite3")
    names = ["tracker", "tracker_log", "raw_sqlite3", "raw_aiosqlite", "encode", "insert_only"]
    names += ["sqlite3_cli"] if cli else []
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-tracker-") as tmp:
        directory = Path(tmp)
        staging = directory / "staging.db"
        if cli:
            make_staging(rows, staging)
        for attempt in range(repeat):
            gc.collect()
            tracker_db = str(directory / f"tracker-{attempt}.db")
            times["tracker"].append(
                anyio.run(partial(bench_tracker, records, tracker_db, batch_size=batch_size, queue_size=queue_size))
            )
            gc.collect()
            times["tracker_log"].append(
                anyio.run(
                    partial(
                        bench_tracker,
                        records,
                        str(directory / f"tracker-log-{attempt}.db"),
                        batch_size=batch_size,
                        queue_size=queue_size,
                        log_path=str(directory / f"runs-{attempt}.jsonl"),
                    )
                )
            )
            gc.collect()
            times["raw_sqlite3"].append(bench_raw_sqlite3(rows, _fresh_db(directory, f"raw-{attempt}.db"), batch_size))
            gc.collect()
            times["raw_aiosqlite"].append(
                anyio.run(bench_raw_aiosqlite, rows, _fresh_db(directory, f"aio-{attempt}.db"), batch_size)
            )
            gc.collect()
            start = time.perf_counter()
            encode_all(records, batch_size)
            times["encode"].append(time.perf_counter() - start)
            gc.collect()
            times["insert_only"].append(bench_insert_only(batches, _fresh_db(directory, f"insert-{attempt}.db")))
            if cli:
                times["sqlite3_cli"].append(
                    bench_sqlite3_cli(cli, staging, n, _fresh_db(directory, f"cli-{attempt}.db"), batch_size)
                )
    rates = {name: n / min(values) for name, values in times.items()}
    return {
        "n": n,
        "batch_size": batch_size,
        "queue_size": queue_size,
        "repeat": repeat,
        "sqlite_version": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
        "records_per_s": {name: round(rate) for name, rate in rates.items()},
        "tracker_vs_raw_sqlite3": round(rates["tracker"] / rates["raw_sqlite3"], 3),
        "tracker_vs_raw_aiosqlite": round(rates["tracker"] / rates["raw_aiosqlite"], 3),
        "tracker_log_vs_tracker": round(rates["tracker_log"] / rates["tracker"], 3),
        "tracker_vs_sqlite3_cli": round(rates["tracker"] / rates["sqlite3_cli"], 3) if cli else None,
        "target_records_per_s": TARGET_RPS,
        "tracker_vs_target": round(rates["tracker"] / TARGET_RPS, 3),
        "meets_target": rates["tracker"] >= TARGET_RPS,
    }


_LABELS = {
    "tracker": "Tracker.record + flush",
    "tracker_log": "Tracker + log_path (JSONL)",
    "raw_sqlite3": "raw sqlite3 executemany",
    "raw_aiosqlite": "raw aiosqlite executemany",
    "encode": "tracker encoding alone",
    "insert_only": "tracker INSERTs alone",
    "sqlite3_cli": "sqlite3 CLI (C floor)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200_000, help="records per run (default 200000)")
    parser.add_argument("--batch-size", type=int, default=256, help="tracker batch size and raw batch size")
    parser.add_argument("--queue-size", type=int, default=10_000, help="tracker queue size")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the best counts (default 3)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    result = run(n=args.n, batch_size=args.batch_size, queue_size=args.queue_size, repeat=args.repeat)
    rates = result["records_per_s"]
    raw = rates["raw_sqlite3"]
    print(
        f"records: {result['n']:,}, batch {result['batch_size']}, best of {result['repeat']}, "
        f"SQLite {result['sqlite_version']}, Python {result['python']}"
    )
    for name, label in _LABELS.items():
        if name in rates:
            print(f"  {label:<27} {rates[name]:>10,} records/s  {rates[name] / raw:5.2f}x raw executemany")
    verdict = "meets" if result["meets_target"] else "misses"
    print(
        f"  tracker {rates['tracker']:,}/s = {result['tracker_vs_raw_sqlite3']:.2f}x raw sqlite3 executemany "
        f"({raw:,}/s); target {TARGET_RPS:,}/s: {verdict} ({result['tracker_vs_target']:.2f}x)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
