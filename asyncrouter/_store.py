"""The request tracker: one SQLite row per finished request, written by a single batching task.

The request path only enqueues (:meth:`Tracker.record` / :meth:`Tracker.record_nowait`); a writer task owned
by the tracker drains a bounded FIFO queue and inserts whole batches, one transaction per batch, through
aiosqlite. Queries (:meth:`Tracker.logs`, :meth:`Tracker.stats`, exports) use a second
connection, so in WAL mode they proceed while a batch is being written. ``":memory:"`` gets a uniquely named
shared-cache in-memory database and a single connection whose reads and writes are serialised.

This module is the only one that imports :mod:`aiosqlite`.

Schema (``PRAGMA user_version`` 1), table ``requests``, one row per request: ``id`` (insertion order),
``request_id``, ``ts`` (epoch seconds), ``status``, ``prompt_preview`` (NULL when previews are off),
``prompt_hash``, ``task_type``, ``tier``, ``complexity``, ``category``, ``complexity_score``,
``routing_layer``, ``routing_reason``, ``model`` and ``provider`` (the accepted model; NULL when none was),
``input_tokens``, ``output_tokens``, ``tokens_estimated``, ``latency_ms``, ``cost_usd``, ``error_type``,
``profile``, ``quality_passed``, ``escalated`` and ``attempts``: a JSON array with one array per attempt,
positional in the order of :data:`ATTEMPT_FIELDS` (compact and about twice as fast to encode as objects).
The view ``request_attempts`` spreads those arrays into named columns for ad-hoc SQL.

With ``log_path`` (routeforge's run log) every committed row is also appended to a JSON Lines file, one object
per line with the keys of :data:`LOG_FIELDS`: built from the parameters the INSERT bound, for the rows it stored,
by a worker thread the writer hands each batch to after its commit.

The write path, and why it is shaped so (figures from ``benchmarks/bench_tracker.py``): the cost is CPU
under the GIL, so the writer keeps Python's share small and runs SQLite's share in parallel with it.

* One multi-row ``INSERT`` per batch on an autocommit connection: one transaction, one round trip to
  aiosqlite's thread, and SQLite executes it without the GIL while the event loop encodes the next batch.
  The writer waits until SQLite has *started* executing before encoding (:class:`_Handshake`): otherwise
  aiosqlite's thread would wait up to a GIL switch interval to bind, and nothing would overlap.
* Binding costs ~0.6 k instructions per parameter. The twelve low-cardinality columns (status, task type,
  tier, complexity, category, routing layer, model, provider, error type, profile, the two flags) travel
  as one integer into a per-connection TEMP table (the *dimensions*) that the INSERT joins back in C.
* Key scrubbing checks the whole batch's text at once and falls back to field-by-field scrubbing (and to
  per-record error handling) only for a batch that needs it.
* WAL checkpoints run in the background on a connection of their own (PASSIVE), so the writer's commits
  do not stop for their fsyncs; the writer's own automatic checkpoint remains, at a higher threshold, as the
  bound on the WAL's size.

None of it changes what is stored: every column holds exactly what binding it directly would store.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import functools
import io
import json
import logging
import math
import os
import sqlite3
import urllib.parse
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, Final, Literal, TypeAlias

import aiosqlite
import anyio
import anyio.lowlevel
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream, WouldBlock
from anyio.abc import TaskGroup

from ._config import TrackerConfig
from ._exceptions import ConfigError, RouterError, redact
from ._models import Attempt, RequestRecord
from ._types import Clock

__all__ = [
    "ATTEMPT_FIELDS",
    "CSV_COLUMNS",
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_CHECKPOINT_ROWS",
    "DEFAULT_EXPORT_CHUNK",
    "DEFAULT_LOG_FILE_MODE",
    "DEFAULT_MAX_DIMENSIONS",
    "DEFAULT_WAL_AUTOCHECKPOINT_PAGES",
    "LOG_FIELDS",
    "MIGRATIONS",
    "NO_KEY",
    "SCHEMA_VERSION",
    "FeedbackRecord",
    "GroupStats",
    "Migration",
    "Savings",
    "Stats",
    "TimeBound",
    "Tracker",
    "TrackerCounters",
    "UnknownRequest",
    "migrate",
]

logger = logging.getLogger("asyncrouter.tracker")

#: How long a connection waits for another process's write lock before giving up (SQLite ``busy_timeout``).
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
#: Rows fetched per round trip when exporting.
DEFAULT_EXPORT_CHUNK: Final = 1000
#: Page cache per connection, KiB (negative ``cache_size`` means KiB in SQLite).
DEFAULT_CACHE_KIB: Final = 8192
#: The WAL file is truncated back to this size after a checkpoint.
DEFAULT_JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
#: The writer connection checkpoints (and so resets) the WAL itself once it holds this many pages: the bound
#: on its size. Below it, checkpoints run in the background every :data:`DEFAULT_CHECKPOINT_ROWS` rows.
DEFAULT_WAL_AUTOCHECKPOINT_PAGES: Final = 4000
#: Rows committed between two background (PASSIVE) WAL checkpoints.
DEFAULT_CHECKPOINT_ROWS: Final = 4096
#: The group key used in per-group stats for rows whose column is NULL (e.g. a request no model accepted).
NO_KEY: Final = "(none)"

#: A moment for ``since``/``until``: epoch seconds, a :class:`~datetime.datetime` (naive means local time, as
#: :meth:`datetime.timestamp` reads it), or a :class:`~datetime.timedelta` meaning "that long before now" on the
#: tracker's clock.
TimeBound: TypeAlias = float | int | datetime | timedelta | None

#: The order of the positional fields of one attempt in the ``attempts`` JSON column. Changing it needs a
#: migration; new :class:`~asyncrouter.Attempt` fields are appended (older, shorter rows then read as defaults).
ATTEMPT_FIELDS: Final = (
    "model",
    "provider",
    "outcome",
    "reason",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "tokens_estimated",
    "error_type",
    "status_code",
    "retries",
    "gate_score",
)

_OUTCOME: Final = ATTEMPT_FIELDS.index("outcome")
# Attempt fields typed float (not Optional): a JSON null there was a NaN or an infinity.
_ATTEMPT_FLOATS: Final = ("latency_ms", "cost_usd")
_STATUSES: Final = frozenset({"ok", "error", "cancelled"})
_ESCALATING: Final = frozenset({"ok", "gate_failed", "error", "cancelled"})  # outcomes that called a model

# ---------------------------------------------------------------------------------------------------------
# Schema and migrations
# ---------------------------------------------------------------------------------------------------------

#: One schema step. It runs inside the migration's open transaction on a plain :class:`sqlite3.Connection`
#: and must not commit (so no ``executescript``, which commits first).
Migration: TypeAlias = Callable[[sqlite3.Connection], None]


def _migration_1(conn: sqlite3.Connection) -> None:
    """The initial schema: the ``requests`` table, its indexes and the ``request_attempts`` view."""
    conn.execute(
        """
        CREATE TABLE requests (
            id               INTEGER PRIMARY KEY,
            request_id       TEXT NOT NULL,
            ts               REAL NOT NULL,
            status           TEXT NOT NULL,
            prompt_preview   TEXT,
            prompt_hash      TEXT,
            task_type        TEXT,
            tier             TEXT,
            complexity       TEXT,
            category         TEXT,
            complexity_score REAL,
            routing_layer    TEXT,
            routing_reason   TEXT,
            model            TEXT,
            provider         TEXT,
            input_tokens     INTEGER DEFAULT 0,
            output_tokens    INTEGER DEFAULT 0,
            tokens_estimated INTEGER NOT NULL DEFAULT 0,
            latency_ms       REAL DEFAULT 0,
            cost_usd         REAL DEFAULT 0,
            error_type       TEXT,
            profile          TEXT,
            quality_passed   INTEGER NOT NULL DEFAULT 1,
            escalated        INTEGER NOT NULL DEFAULT 0,
            attempts         TEXT NOT NULL DEFAULT '[]'
        )
        """
    )
    # ts serves every time window (logs, stats, spent_between); (model, ts) serves logs(model=...) newest
    # first and the per-model GROUP BY.
    conn.execute("CREATE INDEX requests_ts ON requests (ts)")
    conn.execute("CREATE INDEX requests_model_ts ON requests (model, ts)")
    spread = ",\n".join(
        f"    json_extract(a.value, '$[{i}]') AS {'attempt_' + name if name == 'model' else name}"
        for i, name in enumerate(ATTEMPT_FIELDS)
    )
    conn.execute(
        "CREATE VIEW request_attempts AS\n"
        "SELECT r.id AS row_id, r.request_id, r.ts, CAST(a.key AS INTEGER) AS attempt_index,\n"
        f"{spread}\n"
        "FROM requests AS r, json_each(r.attempts) AS a"
    )


#: Every schema step, in order: ``MIGRATIONS[n - 1]`` takes a database from version ``n - 1`` to ``n``.
#: Migration 2 is one more function appended here.
def _migration_2(conn: sqlite3.Connection) -> None:
    """Users' feedback (one row per vote, with the voted reply's model and task type copied in for the
    aggregates), and an index to find a request by its id."""
    conn.execute(
        """
        CREATE TABLE feedback (
            id         INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            ts         REAL NOT NULL,
            rating     INTEGER NOT NULL CHECK (rating IN (-1, 1)),
            model      TEXT,
            task_type  TEXT,
            comment    TEXT
        )
        """
    )
    conn.execute("CREATE INDEX feedback_task_model ON feedback (task_type, model)")
    conn.execute("CREATE INDEX requests_request_id ON requests (request_id)")


MIGRATIONS: Final[tuple[Migration, ...]] = (_migration_1, _migration_2)
#: The schema version this code writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database behind *conn* to ``len(migrations)``, in place, in one transaction.

    Re-running is a no-op. ``BEGIN IMMEDIATE`` takes the write lock before ``user_version`` is read, so two
    processes opening the same new file cannot both migrate it.

    Args:
        conn: a plain :mod:`sqlite3` connection, not inside a transaction.
        migrations: the steps; ``migrations[n - 1]`` takes version ``n - 1`` to ``n``.

    Returns:
        The schema version the database is at afterwards.

    Raises:
        ConfigError: the database was written by a newer asyncrouter (its version is above ours), or a step
            failed (for example the file holds an unrelated ``requests`` table). Nothing is changed then.

    .. versionadded:: 0.1
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current > target:
            raise ConfigError(
                f"the tracker database has schema version {current}, newer than this asyncrouter "
                f"supports ({target}); upgrade asyncrouter or point tracker.path elsewhere",
                path="tracker.path",
            )
        for version in range(current + 1, target + 1):
            migrations[version - 1](conn)
        if target != current:
            # PRAGMA takes no bound parameters; target is an int we computed.
            conn.execute(f"PRAGMA user_version = {target:d}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise ConfigError(f"cannot migrate the tracker database: {exc}", path="tracker.path") from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target


# ---------------------------------------------------------------------------------------------------------
# Row encoding (the hot path of the writer)
# ---------------------------------------------------------------------------------------------------------
#
# Where the time goes, per record, on the thread that holds the GIL (see benchmarks/bench_tracker.py):
# sqlite3 copies every bound text parameter (~150 ns each; an int or float ~35 ns), and most of a row's
# text columns repeat a handful of values (status, task type, tier, model, ...). Those columns therefore
# travel through a small per-connection TEMP table, the *dimensions*: the writer binds one integer per row
# for all twelve of them and the INSERT joins them back in, in C, on the writer's thread without the GIL.
# What is stored is exactly what binding each column would store.

# Record fields stored through the dimension table: one row there per distinct combination of values.
_DIM_FIELDS: Final = (
    "status",
    "task_type",
    "tier",
    "complexity",
    "category",
    "routing_layer",
    "model",
    "provider",
    "error_type",
    "profile",
    "quality_passed",
    "tokens_estimated",
)
_DIM_TEXT: Final = 6  # the first six are stored as given
_DIM_NULLABLE: Final = 4  # the next four: '' and None are stored as NULL; the last two as 1/0
_DIM_TABLE: Final = "asyncrouter_dims"
_DIM_DDL: Final = f"CREATE TEMP TABLE IF NOT EXISTS {_DIM_TABLE} (id INTEGER PRIMARY KEY, {', '.join(_DIM_FIELDS)})"
_DIM_INSERT: Final = f"INSERT OR REPLACE INTO temp.{_DIM_TABLE} VALUES ({', '.join('?' * (1 + len(_DIM_FIELDS)))})"
_DIM_PRUNE: Final = f"DELETE FROM temp.{_DIM_TABLE} WHERE id < ?"
#: Distinct dimension combinations remembered per writer connection before the table is started afresh.
DEFAULT_MAX_DIMENSIONS: Final = 16384

# Bound per row after the dimension id, in this order; one C-level attrgetter call reads them.
_VALUE_FIELDS: Final = (
    "request_id",
    "timestamp",
    "prompt_hash",
    "complexity_score",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "cost_usd",
)
# ...then these, computed per row. prompt_preview is bound as '' for "none" and turned into NULL by NULLIF:
# binding None takes sqlite3's slow adaptation path.
_COMPUTED_COLUMNS: Final = ("prompt_preview", "routing_reason", "escalated", "attempts")
_ROW_COLUMNS: Final = (*(c if c != "timestamp" else "ts" for c in _VALUE_FIELDS), *_COMPUTED_COLUMNS)
_ROW_WIDTH: Final = 1 + len(_ROW_COLUMNS)  # parameters per row: the dimension id, then _ROW_COLUMNS
_PREVIEW: Final = 1 + _ROW_COLUMNS.index("prompt_preview")
_REASON: Final = 1 + _ROW_COLUMNS.index("routing_reason")
_ATTEMPTS: Final = 1 + _ROW_COLUMNS.index("attempts")
_ROW_PLACEHOLDERS: Final = "(" + ",".join("?" * _ROW_WIDTH) + ")"
#: Every column the tracker's INSERT writes.
_INSERT_COLUMNS: Final = (*_ROW_COLUMNS, *_DIM_FIELDS)
# The handshake function the INSERT calls once when SQLite starts executing it (see _Handshake).
_STARTED_FUNCTION: Final = "asyncrouter_writer_started"
# Never more rows in one statement than this, whatever SQLite would allow: the statement's text and program
# grow with it, and beyond a few hundred rows the gain is nil.
_MAX_ROWS_PER_STATEMENT: Final = 1024


@functools.lru_cache(maxsize=32)
def _insert_sql(rows: int) -> str:
    """A multi-row ``INSERT`` for *rows* rows (cached: a full batch always has the same shape)."""
    # OR IGNORE: a row missing what the table requires (a NULL request_id, ts or status) is skipped, not the
    # whole batch with it; the writer counts the difference. CROSS JOIN makes the VALUES rows the outer loop,
    # so rows are inserted (and numbered) in batch order. The deterministic, argument-less WHERE term is
    # evaluated once, before the first row.
    select = ", ".join(
        [
            f"NULLIF(v.column{i + 2}, '')" if c == "prompt_preview" else f"v.column{i + 2}"
            for i, c in enumerate(_ROW_COLUMNS)
        ]
        + [f"d.{c}" for c in _DIM_FIELDS]
    )
    values = ",".join([_ROW_PLACEHOLDERS] * rows)
    return (
        f"INSERT OR IGNORE INTO requests ({', '.join(_INSERT_COLUMNS)}) SELECT {select} "
        f"FROM (VALUES {values}) AS v CROSS JOIN temp.{_DIM_TABLE} AS d ON d.id = v.column1 "
        f"WHERE {_STARTED_FUNCTION}()"
    )


def _insert_statements(rows: list[tuple[Any, ...]], max_rows: int) -> list[tuple[str, tuple[Any, ...]]]:
    """``(sql, flat parameters)`` statements inserting *rows*, at most *max_rows* rows each.

    One statement per batch is the point: on an autocommit connection it is its own transaction and one
    round trip to aiosqlite's thread, and SQLite steps it once instead of once per row.
    """
    flatten = chain.from_iterable
    return [
        (_insert_sql(len(chunk)), tuple(flatten(chunk)))
        for chunk in (rows[i : i + max_rows] for i in range(0, len(rows), max_rows))
    ]


def _prepare_writer(conn: sqlite3.Connection, started: Callable[[], int]) -> None:
    """Give a plain sqlite3 connection what the tracker's INSERT needs: the dimension table, the handshake."""
    conn.execute(_DIM_DDL)
    conn.create_function(_STARTED_FUNCTION, 0, started, deterministic=True)


# The columns read back, in RequestRecord order (see _record_from_row).
_SELECT_COLUMNS: Final = (
    "request_id, ts, status, prompt_preview, prompt_hash, task_type, tier, complexity, category, "
    "complexity_score, routing_layer, routing_reason, model, provider, input_tokens, output_tokens, "
    "latency_ms, cost_usd, attempts, error_type, profile, quality_passed, tokens_estimated"
)


def _make_json_encoder() -> Callable[[Any], str]:
    """A compact, non-ASCII-escaping, NaN-refusing JSON encoder with the least per-call overhead available.

    ``json.JSONEncoder.encode`` rebuilds its C encoder on every call (~1 µs, a sixth of a row's cost); the
    C encoder is built once here when this Python has it, checked against the plain encoder, which is the
    fallback.
    """
    plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)
    try:
        from json import encoder as _json_encoder

        c_make = getattr(_json_encoder, "c_make_encoder", None)
        c_string = getattr(_json_encoder, "c_encode_basestring", None)
        if c_make is None or c_string is None:  # pragma: no cover - a Python without the C accelerator
            return plain.encode
        c_encode = c_make(None, plain.default, c_string, None, ":", ",", False, False, False)
        join = "".join

        def encode(obj: Any) -> str:
            return join(c_encode(obj, 0))

        probe = [("m", 'q"\u00e9\x00', 1.5, 2, True, None, 1e-05, 123.456789012345)]
        if encode(probe) != plain.encode(probe):  # pragma: no cover - a Python whose internals differ
            return plain.encode
        return encode
    except Exception:  # pragma: no cover - same
        return plain.encode


_encode_json: Final = _make_json_encoder()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_safe(value: Any) -> Any:
    """*value* with every non-finite float replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return _finite(value)


def _encode_lenient(value: Any) -> str:
    try:
        return _encode_json(value)
    except ValueError:
        return _encode_json(_json_safe(value))


def _might_hold_key(text: str) -> bool:
    # The fast test before scrubbing: nearly all text holds none of the prefixes redact() looks for
    # (sk-, sk-ant-, sk-or-, hf_, and "bearer" in any case). A false positive only costs time.
    return "sk-" in text or "hf_" in text or "bearer" in text.lower()


_dim_key: Final = attrgetter(*_DIM_FIELDS)
_STORABLE: Final = (str, int, float)  # what a text dimension may hold besides None (bound as sqlite3 does)
_values: Final = attrgetter(*_VALUE_FIELDS)
_attempt: Final = attrgetter(*ATTEMPT_FIELDS)
# The scrubbed texts of a row (prompt preview, routing reason, attempts JSON), read in one C-level call.
_SCRUBBED: Final = itemgetter(_PREVIEW, _REASON, _ATTEMPTS)


@dataclass(slots=True)
class _Batch:
    """One batch, encoded: insert parameters plus the dimension rows the writer must register first."""

    rows: list[tuple[Any, ...]]
    skipped: int = 0
    #: New dimension rows, ``(id, *values)``, to insert into the TEMP table before ``rows``.
    dims: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    #: Delete dimension rows with a smaller id first (the encoder started its table afresh at this batch).
    prune_below: int | None = None


class _RowEncoder:
    """Turns records into insert parameter tuples: truncates and scrubs text, encodes attempts.

    The common case runs one tight loop per batch with no per-field scrubbing: the texts of the whole batch
    are checked for anything key-shaped in one pass afterwards, and only when that finds something is the
    batch encoded again, field by field, scrubbing where needed (``_careful``). A record that cannot be
    encoded at all is also handled there: it is logged and skipped, not its batch.

    One encoder belongs to one writer connection: it numbers the dimension rows that connection holds.
    """

    __slots__ = ("_dims", "_hint", "_known", "_max_dims", "_new", "_next_id", "_preview_chars")

    def __init__(
        self, *, preview_chars: int, secrets: Sequence[str] = (), max_dims: int = DEFAULT_MAX_DIMENSIONS
    ) -> None:
        # Secrets shorter than 4 characters would scrub ordinary text; redact() ignores them too.
        known = tuple(s for s in secrets if s and len(s) >= 4)

        def might_hold(text: str) -> bool:
            return _might_hold_key(text) or any(secret in text for secret in known)

        self._known = known
        # Without known secrets the check is the substring test alone (no generator per field).
        self._hint: Callable[[str], bool] = might_hold if known else _might_hold_key
        self._preview_chars = preview_chars
        self._dims: dict[tuple[Any, ...], int] = {}
        self._new: list[tuple[Any, ...]] = []
        self._next_id = 1
        self._max_dims = max_dims

    def encode(self, records: Sequence[RequestRecord]) -> _Batch:
        """Encode a batch (see the class docstring)."""
        prune_below = None
        if len(self._dims) >= self._max_dims:
            # Start the table afresh; ids are never reused, so rows an earlier batch still needs keep theirs
            # until this batch's insert, which runs after every earlier one, deletes them.
            self._dims.clear()
            prune_below = self._next_id
        try:
            rows = self._fast(records)
            texts = "\x00".join(chain.from_iterable(map(_SCRUBBED, rows)))
            clean = not self._hint(texts)
        except Exception:
            clean = False
        if clean:
            batch = _Batch(rows)
        else:
            rows, skipped = self._careful(records)
            batch = _Batch(rows, skipped)
        batch.dims, self._new = self._new, []
        batch.prune_below = prune_below
        return batch

    def _dim_id(self, key: tuple[Any, ...]) -> int:
        """The id of a new combination of dimension values, queued for registration."""
        text = key[:_DIM_TEXT]
        nullable = tuple(v or None for v in key[_DIM_TEXT : _DIM_TEXT + _DIM_NULLABLE])
        for value in (*text, *nullable):
            if value is not None and not isinstance(value, _STORABLE):
                raise TypeError(f"cannot store a {type(value).__name__} in a text column")
        flags = tuple(1 if v else 0 for v in key[_DIM_TEXT + _DIM_NULLABLE :])
        dim_id = self._next_id
        self._next_id += 1
        self._dims[key] = dim_id
        self._new.append((dim_id, *text, *nullable, *flags))
        return dim_id

    def _fast(self, records: Sequence[RequestRecord]) -> list[tuple[Any, ...]]:
        """Rows for *records*, scrubbing nothing; raises on a record that cannot be encoded."""
        # Locals, not attribute lookups, in the loop: they are a measurable share of a row's cost.
        dims_get = self._dims.get
        dim_id = self._dim_id
        dim_key = _dim_key
        values = _values
        attempt = _attempt
        encode = _encode_json
        escalating = _ESCALATING
        preview_chars = self._preview_chars
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        for r in records:
            key = dim_key(r)
            dim = dims_get(key)
            if dim is None:
                dim = dim_id(key)
            items = list(map(attempt, r.attempts))
            # escalated: the request moved on from one called model to another (skips are not calls)
            escalated = 0
            if len(items) > 1:
                called = 0
                for item in items:
                    if item[_OUTCOME] in escalating:
                        called += 1
                if called > 1:
                    escalated = 1
            try:
                encoded = encode(items)
            except ValueError:
                # NaN or infinity: store null there rather than lose the record or write invalid JSON.
                encoded = encode([[_finite(v) for v in item] for item in items])
            preview = r.prompt_preview
            if not preview_chars or not preview:
                preview = ""
            elif len(preview) > preview_chars:
                preview = preview[:preview_chars]
            append((dim, *values(r), preview, r.routing_reason, escalated, encoded))
        return rows

    def _careful(self, records: Sequence[RequestRecord]) -> tuple[list[tuple[Any, ...]], int]:
        """Rows for *records*, scrubbing each text field that needs it and skipping (and logging) bad records."""
        rows: list[tuple[Any, ...]] = []
        skipped = 0
        for r in records:
            try:
                row = self._fast((r,))[0]
                rows.append(self._scrub(row, r))
            except Exception:
                skipped += 1
                logger.exception("tracker: cannot encode record %r; skipped", getattr(r, "request_id", "?"))
        return rows, skipped

    def _scrub(self, row: tuple[Any, ...], record: RequestRecord) -> tuple[Any, ...]:
        hint, known = self._hint, self._known
        preview, reason, encoded = _SCRUBBED(row)
        if hint(preview):
            preview = redact(preview, known)
        if hint(reason):
            reason = redact(reason, known)
        if hint(encoded):
            # Redact each text field, then encode again (the JSON text itself holds escapes).
            items = [tuple(redact(v, known) if isinstance(v, str) else v for v in _attempt(a)) for a in record.attempts]
            encoded = _encode_lenient(items)
        out = list(row)
        out[_PREVIEW], out[_REASON], out[_ATTEMPTS] = preview, reason, encoded
        return tuple(out)


def _decode_attempts(text: str | None) -> list[Attempt]:
    if not text:
        return []
    items = json.loads(text)
    out: list[Attempt] = []
    for item in items:
        if isinstance(item, dict):  # tolerate hand-written rows in the self-describing form
            out.extend(RequestRecord.attempts_from([item]))
        else:
            fields = dict(zip(ATTEMPT_FIELDS, item, strict=False))
            for name in _ATTEMPT_FLOATS:
                if fields.get(name, 0.0) is None:  # a non-finite value was stored as null
                    fields[name] = math.nan
            out.append(Attempt(**fields))
    return out


def _float(value: float | None) -> float:
    # SQLite stores NaN as NULL; give back the NaN that went in rather than a None the type does not allow.
    return math.nan if value is None else value


def _record_from_row(row: Sequence[Any]) -> RequestRecord:
    """Rebuild a :class:`RequestRecord` from a row of ``_SELECT_COLUMNS``."""
    return RequestRecord(
        request_id=row[0],
        timestamp=row[1],
        status=row[2],
        prompt_preview=row[3] or "",
        prompt_hash=row[4] or "",
        task_type=row[5] or "",
        tier=row[6] or "",
        complexity=row[7] or "",
        category=row[8] or "",
        complexity_score=row[9] if row[9] is not None else 0.0,
        routing_layer=row[10] or "",
        routing_reason=row[11] or "",
        model=row[12],
        provider=row[13],
        input_tokens=row[14] or 0,
        output_tokens=row[15] or 0,
        latency_ms=_float(row[16]),
        cost_usd=_float(row[17]),
        attempts=_decode_attempts(row[18]),
        error_type=row[19],
        profile=row[20],
        quality_passed=bool(row[21]),
        tokens_estimated=bool(row[22]),
    )


# ---------------------------------------------------------------------------------------------------------
# The JSON run log (routeforge's ``log_path``)
# ---------------------------------------------------------------------------------------------------------
#
# A mirror of the database, never a second source: lines are built from the very parameter tuples the INSERT
# bound (texts already truncated and scrubbed) and the stored values of their dimension rows, for the rows
# the INSERT stored, and appended only after their transaction committed. The work (encoding, then one
# write) runs in a worker thread the writer hands each committed batch to, in commit order.

#: The keys of one line of the JSON run log, in order: routeforge's twelve (same names and formats), then
#: asyncrouter's. ``attempts`` holds one object per attempt, with the :data:`ATTEMPT_FIELDS` keys.
LOG_FIELDS: Final = (
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
    "request_id",
    "status",
    "tier",
    "complexity",
    "category",
    "error_type",
    "profile",
    "quality_passed",
    "tokens_estimated",
    "escalated",
    "prompt_hash",
    "attempts",
)
#: Permission bits of a JSON run log the tracker creates (an existing file keeps its own).
DEFAULT_LOG_FILE_MODE: Final = 0o600

_LOG_OPEN_FLAGS: Final = (
    os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
# Most of a line is fixed text; the rest is one %s per value (or per run of dimension values, see _RunLog).
_LOG_LINE: Final = (
    '{"timestamp":%s,"prompt_preview":%s,%s"routing_reason":%s,"task_type":%s,"complexity_score":%s,'
    '"input_tokens":%s,"output_tokens":%s,"latency_ms":%s,"estimated_cost_usd":%s,"request_id":%s,%s'
    '"escalated":%s,"prompt_hash":%s,"attempts":%s}\n'
)
_R_REQUEST_ID: Final = 1 + _ROW_COLUMNS.index("request_id")
_R_TS: Final = 1 + _ROW_COLUMNS.index("ts")
_R_HASH: Final = 1 + _ROW_COLUMNS.index("prompt_hash")
_R_SCORE: Final = 1 + _ROW_COLUMNS.index("complexity_score")
_R_ESCALATED: Final = 1 + _ROW_COLUMNS.index("escalated")
_NUMBERS: Final = itemgetter(
    *(1 + _ROW_COLUMNS.index(c) for c in ("input_tokens", "output_tokens", "latency_ms", "cost_usd"))
)
_D_STATUS: Final = _DIM_FIELDS.index("status")
_quote: Final = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (ensure_ascii=False)
_decode_json: Final = json.JSONDecoder().decode
_MAX_CACHED_SECONDS: Final = 4096


def _json_text(value: Any) -> str:
    return _quote(value) if type(value) is str else _encode_lenient(value)


def _json_number(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else "null"
    if kind is int:
        return int.__repr__(value)
    return _encode_lenient(value)


def _json_flag(value: Any) -> str:
    return "true" if value else "false"


def _is_null(value: Any) -> bool:
    """Whether SQLite stores *value* as NULL (a NaN does become NULL)."""
    return value is None or (type(value) is float and value != value)


# One attempt as a JSON object, for the fast path of _attempts_json; the test suite checks it against
# ATTEMPT_FIELDS.
_ATTEMPT_OBJECT: Final = "{" + ",".join(f'"{name}":%s' for name in ATTEMPT_FIELDS) + "}"
_FLAGS: Final = {True: "true", False: "false"}


def _attempts_json(text: str) -> str:
    """The stored attempts (positional arrays, see :data:`ATTEMPT_FIELDS`) as a JSON array of objects."""
    items = _decode_json(text)  # stored JSON: non-finite numbers are already null
    quote, real, integer, flags = _quote, float.__repr__, int.__repr__, _FLAGS
    try:
        # Written out for the types Attempt declares, about three times faster than building dicts; any
        # other value (or a row of another length) raises, and the generic encoding below takes over.
        objects = [
            _ATTEMPT_OBJECT
            % (
                quote(model),
                quote(provider),
                quote(outcome),
                quote(reason),
                real(latency),
                integer(tokens_in),
                integer(tokens_out),
                real(cost),
                flags[estimated],
                "null" if error_type is None else quote(error_type),
                "null" if status_code is None else integer(status_code),
                integer(retries),
                "null" if gate_score is None else real(gate_score),
            )
            for (
                model,
                provider,
                outcome,
                reason,
                latency,
                tokens_in,
                tokens_out,
                cost,
                estimated,
                error_type,
                status_code,
                retries,
                gate_score,
            ) in items
        ]
    except (TypeError, ValueError, KeyError):
        return _encode_lenient([dict(zip(ATTEMPT_FIELDS, item, strict=False)) for item in items])
    return "[" + ",".join(objects) + "]"


class _RunLog:
    """Appends committed rows to the JSON run log (``log_path``) as JSON Lines.

    :meth:`register` and :meth:`prune` run on the event loop as the writer registers dimension rows;
    :meth:`open` and :meth:`append` run in a worker thread, one call at a time (the writer awaits each). The
    file is opened for each batch (``O_APPEND``, created with :data:`DEFAULT_LOG_FILE_MODE`), so a log
    rotated or removed meanwhile is simply started afresh, and a failed append is retried with the next batch.
    """

    __slots__ = ("_dims", "_fragments", "_needs_newline", "_seconds", "path")

    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        # dimension id -> its values as the TEMP table stores them, and the JSON fragments made of them
        self._dims: dict[int, tuple[Any, ...]] = {}
        self._fragments: dict[int, tuple[str, str, str]] = {}
        self._seconds: dict[int, str] = {}  # epoch second -> "YYYY-MM-DDTHH:MM:SS" (UTC)
        self._needs_newline = False

    # -- on the event loop --------------------------------------------------------------------------------

    def register(self, dims: Iterable[tuple[Any, ...]]) -> None:
        """Remember dimension rows ``(id, *values)`` the writer has just registered in its TEMP table."""
        for dim in dims:
            self._dims[dim[0]] = dim[1:]
            self._fragments.pop(dim[0], None)

    def prune(self, below: int) -> None:
        """Forget dimension ids below *below*, as the writer's TEMP table just did."""
        self._dims = {k: v for k, v in self._dims.items() if k >= below}
        self._fragments = {k: v for k, v in self._fragments.items() if k >= below}

    def stored(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows of *rows* SQLite stores: ``INSERT OR IGNORE`` skips those its NOT NULL columns refuse."""
        dims = self._dims
        return [
            row
            for row in rows
            if not _is_null(row[_R_REQUEST_ID])
            and not _is_null(row[_R_TS])
            and row[0] in dims
            and not _is_null(dims[row[0]][_D_STATUS])
        ]

    # -- in a worker thread -------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the file if it is new (mode :data:`DEFAULT_LOG_FILE_MODE`) and check it can be appended to.

        Raises:
            OSError: it cannot be opened for appending.
        """
        os.close(os.open(self.path, _LOG_OPEN_FLAGS, DEFAULT_LOG_FILE_MODE))
        # A file that does not end its last line (a crash mid-write, or text from elsewhere): the first line
        # appended starts on a line of its own. Best effort: a file we may append to but not read is fine.
        try:
            with open(self.path, "rb") as existing:
                if existing.seek(0, os.SEEK_END):
                    existing.seek(-1, os.SEEK_END)
                    self._needs_newline = existing.read(1) != b"\n"
        except OSError:
            logger.debug("tracker: cannot read the end of the JSON run log %s", self.path, exc_info=True)

    def append(self, rows: Sequence[tuple[Any, ...]]) -> tuple[int, int]:
        """Encode *rows* and append them in one write. Returns ``(lines written, rows that could not be encoded)``.

        Raises:
            OSError: the file could not be opened or written. A partial write is taken back when the file
                allows it (so the file keeps whole lines only); otherwise the next append starts a new line.
        """
        lines, skipped = self.encode(rows)
        if not lines:
            return 0, skipped
        data = "".join(lines).encode("utf-8", "replace")
        if self._needs_newline:
            data = b"\n" + data
        fd = os.open(self.path, _LOG_OPEN_FLAGS, DEFAULT_LOG_FILE_MODE)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                if len(view) < len(data):
                    try:
                        os.ftruncate(fd, start)
                    except OSError:
                        self._needs_newline = True
                raise
        finally:
            os.close(fd)
        self._needs_newline = False
        return len(lines), skipped

    def encode(self, rows: Iterable[tuple[Any, ...]]) -> tuple[list[str], int]:
        """One line per row; a row that cannot be encoded (a bug) is logged and left out.

        The loop below is the fast path, written for the types :class:`RequestRecord` declares: anything else
        (a None, a NaN, an int where a float belongs) makes it raise, and that row goes through
        :meth:`_line`, which encodes any value. Both give the same text for the declared types.
        """
        lines: list[str] = []
        append = lines.append
        skipped = 0
        fragments_of = self._fragments.get
        fragment = self._fragment
        timestamp = self._timestamp
        attempts_json = _attempts_json
        quote = _quote
        real = float.__repr__
        integer = int.__repr__
        numbers = _NUMBERS
        template = _LOG_LINE
        for row in rows:
            try:
                fragments = fragments_of(row[0]) or fragment(row[0])
                tokens_in, tokens_out, latency, cost = numbers(row)
                score = row[_R_SCORE]
                finite = score + latency + cost  # a TypeError for a None; NaN for a NaN or an infinity
                if finite - finite != 0.0:
                    raise ValueError("not finite")
                append(
                    template
                    % (
                        timestamp(row[_R_TS]),
                        quote(row[_PREVIEW]),  # '' when previews are off, as logs() reads it back
                        fragments[0],
                        quote(row[_REASON]),
                        fragments[1],
                        real(score),
                        integer(tokens_in),
                        integer(tokens_out),
                        real(latency),
                        real(cost),
                        quote(row[_R_REQUEST_ID]),
                        fragments[2],
                        "true" if row[_R_ESCALATED] else "false",
                        quote(row[_R_HASH]),
                        attempts_json(row[_ATTEMPTS]),
                    )
                )
            except Exception:
                try:
                    append(self._line(row))
                except Exception:
                    skipped += 1
                    logger.exception(
                        "tracker: cannot encode record %r for the JSON run log; left out", row[_R_REQUEST_ID]
                    )
        return lines, skipped

    def _line(self, row: tuple[Any, ...]) -> str:
        """One line for any values (the slow path of :meth:`encode`)."""
        fragments = self._fragments.get(row[0]) or self._fragment(row[0])
        tokens_in, tokens_out, latency, cost = _NUMBERS(row)
        attempts = [dict(zip(ATTEMPT_FIELDS, item, strict=False)) for item in _decode_json(row[_ATTEMPTS])]
        return _LOG_LINE % (
            self._timestamp(row[_R_TS]),
            _json_text(row[_PREVIEW]),
            fragments[0],
            _json_text(row[_REASON]),
            fragments[1],
            _json_number(row[_R_SCORE]),
            _json_number(tokens_in),
            _json_number(tokens_out),
            _json_number(latency),
            _json_number(cost),
            _json_text(row[_R_REQUEST_ID]),
            fragments[2],
            _json_flag(row[_R_ESCALATED]),
            _json_text(row[_R_HASH]),
            _encode_lenient(attempts),
        )

    def _fragment(self, dim_id: int) -> tuple[str, str, str]:
        """The JSON of one dimension row's values, in three runs of :data:`LOG_FIELDS` order."""
        d = dict(zip(_DIM_FIELDS, self._dims[dim_id], strict=True))
        text = _encode_lenient
        fragments = (
            f'"model":{text(d["model"])},"provider":{text(d["provider"])},"routing_layer":{text(d["routing_layer"])},',
            text(d["task_type"]),
            f'"status":{text(d["status"])},"tier":{text(d["tier"])},"complexity":{text(d["complexity"])},'
            f'"category":{text(d["category"])},"error_type":{text(d["error_type"])},"profile":{text(d["profile"])},'
            f'"quality_passed":{_json_flag(d["quality_passed"])},'
            f'"tokens_estimated":{_json_flag(d["tokens_estimated"])},',
        )
        self._fragments[dim_id] = fragments
        return fragments

    def _timestamp(self, ts: Any) -> str:
        """``"YYYY-MM-DDTHH:MM:SS.mmmZ"`` (UTC, milliseconds): what ``datetime.fromtimestamp(ts, UTC)
        .isoformat(timespec="milliseconds")`` gives, with ``Z``; ``null`` for what is no moment."""
        try:
            # As datetime.fromtimestamp rounds: the fraction to whole microseconds, half to even.
            fraction, whole = math.modf(ts)
            micros = round(fraction * 1e6)
            second = int(whole)
            if micros >= 1_000_000:
                second += 1
                micros -= 1_000_000
            elif micros < 0:
                second -= 1
                micros += 1_000_000
            prefix = self._seconds.get(second)
            if prefix is None:
                if len(self._seconds) >= _MAX_CACHED_SECONDS:
                    self._seconds.clear()
                prefix = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
                self._seconds[second] = prefix
        except (TypeError, ValueError, OverflowError, OSError):
            return "null"
        return f'"{prefix}.{micros // 1000:03d}Z"'


# ---------------------------------------------------------------------------------------------------------
# Stats
# ---------------------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class GroupStats:
    """Aggregates over the requests that share one value of a column (a model, a tier, ...).

    .. versionadded:: 0.1
    """

    key: str
    requests: int
    ok: int
    errors: int
    cancelled: int
    escalations: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float

    @property
    def error_rate(self) -> float:
        """``errors / requests``."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass(slots=True, frozen=True)
class Savings:
    """What the window's tokens would have cost on a baseline model, against what they did cost.

    ``baseline_cost_usd = input_tokens * cost_per_1k_input / 1000 + output_tokens * cost_per_1k_output / 1000``
    over the window's summed tokens; ``savings_usd = baseline_cost_usd - actual_cost_usd`` (negative when
    routing cost more); ``savings_pct`` is that as a percentage of the baseline, ``None`` when the baseline
    cost is zero.

    .. versionadded:: 0.1
    """

    baseline_model: str
    baseline_cost_usd: float
    actual_cost_usd: float
    savings_usd: float
    savings_pct: float | None


@dataclass(slots=True, frozen=True)
class TrackerCounters:
    """Live counters of this tracker instance (this process, since it was opened).

    Attributes:
        written: rows committed.
        dropped: records refused: a full queue under ``on_full: drop`` or in :meth:`Tracker.record_nowait`,
            or a record offered when the tracker was not open.
        queued: records waiting in the queue right now.
        waiting: callers blocked in :meth:`Tracker.record` on a full queue right now (``on_full: wait``).
        flushes: batches committed (one transaction each).
        write_errors: batches that failed to write (each is logged on ``asyncrouter.tracker``).
        failed: records lost to write errors or that could not be encoded.
        log_written: lines appended to the JSON run log (``log_path``); 0 without one.
        log_errors: committed batches the run log could not take (an I/O error; logged once per streak).
            Their records are in the database only.
        log_failed: committed records missing from the run log (those batches' records, plus any record
            that could not be encoded as a line).

    .. versionadded:: 0.1
    """

    written: int = 0
    dropped: int = 0
    queued: int = 0
    waiting: int = 0
    flushes: int = 0
    write_errors: int = 0
    failed: int = 0
    log_written: int = 0
    log_errors: int = 0
    log_failed: int = 0


class UnknownRequest(RouterError, LookupError):
    """No tracked request has the id asked for (feedback on a request the tracker never stored).

    .. versionadded:: 0.1
    """


#: longest feedback comment stored (characters)
_MAX_FEEDBACK_COMMENT: Final = 2000


@dataclass(slots=True, frozen=True)
class FeedbackRecord:
    """One user's vote on a tracked reply (:meth:`Router.afeedback`).

    Attributes:
        request_id: the reply's ``meta.request_id``.
        timestamp: when the vote was stored (epoch seconds).
        rating: ``1`` (up) or ``-1`` (down).
        model: the model that gave the reply (``""`` when none was accepted).
        task_type: the request's task type.
        comment: the user's words, secrets scrubbed.

    .. versionadded:: 0.1
    """

    request_id: str
    timestamp: float
    rating: int
    model: str
    task_type: str
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "timestamp": self.timestamp,
            "rating": self.rating,
            "model": self.model,
            "task_type": self.task_type,
            "comment": self.comment,
        }


@dataclass(slots=True, frozen=True)
class Stats:
    """Aggregates over the tracked requests of a time window, computed in SQL.

    Totals count every request in the window; ``errors`` and ``cancelled`` are requests with that status,
    ``escalations`` requests that left at least one model (a failed gate or an error) before the end.
    Latency percentiles are nearest-rank (the value at rank ``ceil(p * n / 100)`` of the sorted latencies)
    over all requests in the window. Every figure is 0 when the window is empty. The ``by_*`` maps key rows
    whose column is NULL (a request no model accepted) under :data:`NO_KEY`.

    ``by_day`` keys each UTC calendar day (``"YYYY-MM-DD"``) that has requests, oldest first: the daily cost
    breakdown. ``by_complexity`` and ``by_category`` group by the classifier's complexity (``simple``,
    ``medium``, ``complex``) and category (``factual``, ``reasoning``, ``creative``, ``code``), mmrouter's
    distribution. All of them come from the same statement, hence the same snapshot, as the totals.

    .. versionadded:: 0.1
    """

    since: float | None
    until: float | None
    requests: int
    ok: int
    errors: int
    cancelled: int
    escalations: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float
    p50_latency_ms: float
    p95_latency_ms: float
    by_model: dict[str, GroupStats]
    by_task_type: dict[str, GroupStats]
    by_tier: dict[str, GroupStats]
    by_routing_layer: dict[str, GroupStats]
    by_provider: dict[str, GroupStats]
    savings: Savings | None
    tracker: TrackerCounters
    by_day: dict[str, GroupStats] = dataclasses.field(default_factory=dict)
    by_complexity: dict[str, GroupStats] = dataclasses.field(default_factory=dict)
    by_category: dict[str, GroupStats] = dataclasses.field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """``errors / requests`` (0.0 for an empty window)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def escalation_rate(self) -> float:
        """``escalations / requests`` (0.0 for an empty window)."""
        return self.escalations / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, rates included."""
        data = dataclasses.asdict(self)
        data["error_rate"] = self.error_rate
        data["escalation_rate"] = self.escalation_rate
        for name, _ in _GROUP_DIMENSIONS:
            for key, group in getattr(self, name).items():
                data[name][key]["error_rate"] = group.error_rate
        return data


# (Stats field, column of the window) for each per-group breakdown.
_GROUP_DIMENSIONS: Final = (
    ("by_model", "model"),
    ("by_task_type", "task_type"),
    ("by_tier", "tier"),
    ("by_routing_layer", "routing_layer"),
    ("by_provider", "provider"),
    ("by_complexity", "complexity"),
    ("by_category", "category"),
    ("by_day", "day"),
)
# Window columns computed rather than read. The UTC day of a request: SQLite's date() of its epoch seconds.
_COMPUTED_WINDOW_COLUMNS: Final = {"day": "date(ts, 'unixepoch') AS day"}

_AGGREGATES: Final = (
    "count(*), coalesce(sum(status = 'ok'), 0), coalesce(sum(status = 'error'), 0), "
    "coalesce(sum(status = 'cancelled'), 0), coalesce(sum(escalated), 0), coalesce(sum(input_tokens), 0), "
    "coalesce(sum(output_tokens), 0), coalesce(sum(cost_usd), 0.0), coalesce(avg(latency_ms), 0.0)"
)


def _stats_sql(where: str) -> str:
    """Every aggregate of :meth:`Tracker.stats` as one statement: rows of (section, key, 9 aggregates).

    Sections: ``totals``; one per ``_GROUP_DIMENSIONS`` entry with a row per key; ``percentiles`` with p50
    and p95 in the first two aggregate columns. Percentiles are nearest rank: the row numbered
    ``ceil(p * n / 100)`` in latency order, computed as ``(p * n + 99) / 100`` in integer arithmetic.
    """
    parts = [f"SELECT 'totals', NULL, {_AGGREGATES} FROM w"]
    parts += [
        f"SELECT '{name}', {column}, {_AGGREGATES} FROM w GROUP BY {column}" for name, column in _GROUP_DIMENSIONS
    ]
    parts.append(
        "SELECT 'percentiles', NULL, "
        "max(CASE WHEN rn = (50 * n + 99) / 100 THEN latency_ms END), "
        "max(CASE WHEN rn = (95 * n + 99) / 100 THEN latency_ms END), "
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL "
        "FROM (SELECT latency_ms, row_number() OVER (ORDER BY latency_ms) AS rn, count(*) OVER () AS n "
        "FROM w WHERE latency_ms IS NOT NULL)"
    )
    return (
        "WITH w AS (SELECT status, escalated, input_tokens, output_tokens, cost_usd, latency_ms, "
        + ", ".join(_COMPUTED_WINDOW_COLUMNS.get(column, column) for _, column in _GROUP_DIMENSIONS)
        + f" FROM requests{where}) "
        + " UNION ALL ".join(parts)
    )


# ---------------------------------------------------------------------------------------------------------
# The tracker
# ---------------------------------------------------------------------------------------------------------


class _Marker:
    """Travels through the queue behind the records it waits for: a flush, or the writer's stop signal."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool = False) -> None:
        self.done = anyio.Event()
        self.stop = stop


class _Handshake:
    """Lets the writer task wait until SQLite has started executing the batch it handed over.

    Why: a thread waiting for the GIL gets it only when the holder blocks, or after the switch interval
    (5 ms). Were the writer to start encoding the next batch at once, aiosqlite's thread would wait for it
    to finish before it could even bind the batch just launched: encoding, binding and inserting would run
    one after another. The INSERT calls :meth:`started` (a deterministic SQL function, so once, right after
    binding); the writer waits for that, idle, and then encodes while SQLite inserts without the GIL.
    """

    __slots__ = ("event", "loop")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def started(self) -> int:
        """Called by SQLite on the writer connection's thread. Never raises: that would fail the INSERT."""
        event, loop = self.event, self.loop
        if event is not None and loop is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # pragma: no cover - the event loop has closed under a leaked tracker
                pass
        return 1


_Item: TypeAlias = RequestRecord | _Marker


class _Putter:
    """A sender waiting for room in a full :class:`_Queue`."""

    __slots__ = ("event", "item", "queued")

    def __init__(self, item: _Item) -> None:
        self.item = item
        self.event = anyio.Event()
        self.queued = False


class _Queue:
    """The bounded FIFO between the request path and the writer: records and markers, one consumer.

    It does what an anyio memory object stream did here, for a fraction of the cost: a put is a length check
    and a deque append, and the writer takes a whole batch in one loop (the stream's per-item calls were a
    tenth of a record's cost on the event loop's thread). Senders that find it full wait in FIFO order; each
    item taken lets the first waiting sender's item in, so a waiting sender is never overtaken.
    """

    __slots__ = ("_buffer", "_capacity", "_closed", "_getter", "_markers", "_putters", "_sealed")

    def __init__(self, capacity: int) -> None:
        self._buffer: deque[_Item] = deque()
        self._capacity = capacity
        self._putters: deque[_Putter] = deque()
        self._getter: anyio.Event | None = None
        self._markers = 0  # markers in the buffer: without any, a batch is taken in one slice
        self._closed = False  # the writer is gone: every put fails with BrokenResourceError
        self._sealed = False  # no put will come any more: an empty queue is the end (EndOfStream)

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def waiting(self) -> int:
        """Senders waiting for room."""
        return len(self._putters)

    def put_nowait(self, item: _Item) -> bool:
        """Queue *item* if there is room and return True; return False when the queue is full.

        Raises:
            BrokenResourceError: the writer is gone.
            ClosedResourceError: the queue was sealed.
        """
        if self._closed:
            raise BrokenResourceError
        if self._sealed:
            raise ClosedResourceError
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            return False
        buffer.append(item)
        if type(item) is _Marker:
            self._markers += 1
        getter = self._getter
        if getter is not None:
            self._getter = None
            getter.set()
        return True

    async def put(self, item: _Item) -> None:
        """Queue *item*, waiting for room (FIFO behind other waiting senders).

        Cancelled before the item got in, it is withdrawn; once it is in, it stays.

        Raises:
            BrokenResourceError: the writer went away before the item got in.
            ClosedResourceError: the queue was sealed.
        """
        if self.put_nowait(item):
            return
        putter = _Putter(item)
        self._putters.append(putter)
        try:
            await putter.event.wait()
        except BaseException:
            if not putter.queued:
                with contextlib.suppress(ValueError):
                    self._putters.remove(putter)
            raise
        if not putter.queued:
            raise BrokenResourceError

    def get_nowait(self) -> _Item:
        """The oldest item.

        Raises:
            WouldBlock: the queue is empty.
            EndOfStream: the queue is empty and sealed.
        """
        buffer = self._buffer
        if not buffer:
            if self._sealed:
                raise EndOfStream
            raise WouldBlock
        item = buffer.popleft()
        if type(item) is _Marker:
            self._markers -= 1
        if self._putters:
            self._admit()
        return item

    async def get(self) -> _Item:
        """The oldest item, waiting for one (a checkpoint either way, like a stream's ``receive``).

        Raises:
            EndOfStream: the queue is empty and sealed.
        """
        await anyio.lowlevel.checkpoint()
        while True:
            try:
                return self.get_nowait()
            except WouldBlock:
                pass
            event = self._getter = anyio.Event()
            try:
                await event.wait()
            finally:
                if self._getter is event:
                    self._getter = None

    def take_into(self, held: list[RequestRecord], markers: list[_Marker], limit: int) -> None:
        """Move items into *held* (records) and *markers* until *held* has *limit* records, the queue is
        empty, or a stop marker was taken."""
        buffer = self._buffer
        popleft = buffer.popleft
        if not self._markers:
            count = min(limit - len(held), len(buffer))
            if count > 0:
                held += [popleft() for _ in range(count)]  # type: ignore[misc]
        else:
            while len(held) < limit and buffer:
                item = popleft()
                if type(item) is _Marker:
                    self._markers -= 1
                    markers.append(item)
                    if item.stop:
                        break
                else:
                    held.append(item)  # type: ignore[arg-type]
        if self._putters:
            self._admit()

    def _admit(self) -> None:
        """Let waiting senders' items in while there is room."""
        buffer, putters, capacity = self._buffer, self._putters, self._capacity
        while putters and len(buffer) < capacity:
            putter = putters.popleft()
            buffer.append(putter.item)
            if type(putter.item) is _Marker:
                self._markers += 1
            putter.queued = True
            putter.event.set()
        getter = self._getter
        if getter is not None and buffer:
            self._getter = None
            getter.set()

    def seal(self) -> None:
        """No more puts: the writer sees the end once it has taken what is queued."""
        self._sealed = True
        getter = self._getter
        if getter is not None:
            self._getter = None
            getter.set()

    def close(self) -> None:
        """The writer is gone: waiting and later senders fail with BrokenResourceError."""
        self._closed = True
        putters, self._putters = self._putters, deque()
        for putter in putters:
            putter.event.set()


_State: TypeAlias = Literal["new", "open", "closing", "closed"]


class Tracker:
    """Records every finished request in SQLite without making the request wait for the disk.

    Use it as an async context manager (or :meth:`aopen` / :meth:`aclose` from one task)::

        async with Tracker(config.tracker, clock=AnyioClock()) as tracker:
            await tracker.record(record)         # enqueue; returns at once unless the queue is full
            rows = await tracker.logs(last_n=5)  # newest first
            stats = await tracker.stats(baseline=("strong", 0.003, 0.015))

    A writer task in a task group owned by the tracker drains the queue in batches of up to
    ``config.batch_size`` rows, one transaction each, lingering at most ``config.flush_interval`` seconds
    (a deadline on the event loop's clock) for a batch to fill. A sqlite error while writing is logged on the
    ``asyncrouter.tracker`` logger and counted; the writer keeps going and the caller never sees it.
    Leaving the context (even by an exception or cancellation) writes everything queued, then closes both
    connections. A record handed over belongs to the tracker: do not mutate it afterwards. Queries
    (:meth:`logs`, :meth:`stats`, :meth:`spent_between`, exports) first wait for the records queued so far to
    be committed, so they see everything recorded before the call.

    With ``config.path`` set to ``None`` tracking is off: records are discarded (and not counted as dropped),
    queries return nothing.

    With ``config.log_path`` set, every committed row is also appended to that file as one JSON object per
    line (:data:`LOG_FIELDS`: routeforge's run-log fields first, then asyncrouter's). The writer hands each
    committed batch to a worker thread, in commit order, before it reports the batch done, so :meth:`flush`
    and :meth:`aclose` return with the file written. Lines hold what the database holds, scrubbed alike; a
    row the database did not store is never written. The file is created with mode ``0o600`` if new and
    appended to otherwise. An I/O error on it is logged once per streak of failures and counted
    (``log_errors``, ``log_failed``); it never fails a request nor costs a database row.

    Args:
        config: the ``tracker`` section of the configuration.
        clock: the source of time; it resolves ``timedelta`` bounds of queries. The tracker never sleeps on
            it, so a shared fake clock moves only when its owner moves it.
        secrets: known secret values (e.g. the configured API keys) scrubbed from stored text in addition
            to anything key-shaped, as a last line of defence: records are not meant to hold any.
        max_dimensions: how many distinct combinations of the low-cardinality columns (status, task type,
            tier, complexity, category, routing layer, model, provider, error type, profile and the two
            flags) the writer keeps in its connection's TEMP table before starting it afresh. Rows carry an
            id into it instead of binding those twelve values one by one (see the module docstring).

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_accepting",
        "_checkpointing",
        "_clock",
        "_config",
        "_database",
        "_db_lock",
        "_dims_carry",
        "_dropped",
        "_encoder",
        "_failed",
        "_flushes",
        "_handshake",
        "_held",
        "_in_flight",
        "_inserts",
        "_launch",
        "_log",
        "_log_errors",
        "_log_failed",
        "_log_streak",
        "_log_streak_records",
        "_log_written",
        "_markers",
        "_max_rows",
        "_pending",
        "_queue",
        "_rdb",
        "_shared_connection",
        "_state",
        "_task_group",
        "_unchecked",
        "_wake",
        "_wake_at",
        "_wdb",
        "_write_errors",
        "_writer_done",
        "_written",
    )

    def __init__(
        self,
        config: TrackerConfig,
        *,
        clock: Clock,
        secrets: Sequence[str] = (),
        max_dimensions: int = DEFAULT_MAX_DIMENSIONS,
    ) -> None:
        if max_dimensions < 1:
            raise ValueError("max_dimensions must be >= 1")
        self._config = config
        self._clock = clock
        self._encoder = _RowEncoder(preview_chars=config.prompt_preview_chars, secrets=secrets, max_dims=max_dimensions)
        self._state: _State = "new"
        self._accepting = False
        self._queue: _Queue | None = None
        self._task_group: TaskGroup | None = None
        self._wdb: aiosqlite.Connection | None = None
        self._rdb: aiosqlite.Connection | None = None
        self._shared_connection = False
        self._max_rows = 1
        # Serialises statements on the write connection against reads that share it (":memory:").
        self._db_lock = anyio.Lock()
        self._writer_done = anyio.Event()
        # The batch being assembled, and the flush/stop markers that wait for it.
        self._held: list[RequestRecord] = []
        self._markers: list[_Marker] = []
        # The insert running in the writer's task group (at most one), and a batch handed to a new task.
        self._in_flight: anyio.Event | None = None
        self._launch: tuple[_Batch, list[_Marker], anyio.Event, anyio.Event] | None = None
        self._handshake = _Handshake()
        # Dimension rows whose registration failed with their batch: registered before the next batch.
        self._dims_carry: list[tuple[Any, ...]] = []
        # Background WAL checkpoints: the writer's task group for them, and rows committed since the last.
        self._database: str | None = None
        self._inserts: TaskGroup | None = None
        self._checkpointing = False
        self._unchecked = 0
        # Set while the writer lingers for a batch to fill; record() wakes it once _wake_at more arrived.
        self._wake: anyio.Event | None = None
        self._wake_at = 0
        self._pending = 0
        self._written = 0
        self._dropped = 0
        self._flushes = 0
        self._write_errors = 0
        self._failed = 0
        # The JSON run log (log_path): its line builder, its counters, and the current streak of failures.
        self._log = _RunLog(config.log_path) if config.log_path and config.path is not None else None
        self._log_written = 0
        self._log_errors = 0
        self._log_failed = 0
        self._log_streak = 0
        self._log_streak_records = 0

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether this tracker stores anything (``config.path`` is not ``None``)."""
        return self._config.path is not None

    @property
    def path(self) -> str | None:
        """The configured database path (``":memory:"`` for an in-memory database, ``None`` when off)."""
        return self._config.path

    @property
    def log_path(self) -> str | None:
        """The JSON run log every committed record is also appended to (``None``: none).

        .. versionadded:: 0.1
        """
        return self._config.log_path

    async def __aenter__(self) -> Tracker:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aopen(self) -> None:
        """Open the database (creating or migrating it) and start the writer task.

        The writer's task group is entered here, in the calling task, and left by :meth:`aclose`: call both
        from the same task at the same nesting of cancel scopes, as ``async with`` does. In particular,
        do not wrap :meth:`aclose` in a shielded ``CancelScope`` of your own (it shields its own work).

        Raises:
            ConfigError: the database cannot be opened or migrated (path ``tracker.path``), or the JSON run
                log cannot be created or appended to, or is set without a database (path ``log_path``).
            RuntimeError: the tracker was opened before; a tracker is opened once.
        """
        if self._state != "new":
            raise RuntimeError(f"a Tracker is opened once (this one is {self._state})")
        path = self._config.path
        log_path = self._config.log_path
        if log_path is not None and (path is None or not log_path.strip()):
            problem = "empty path" if path is not None else "the JSON run log needs the tracker (tracker.path is null)"
            raise ConfigError(problem, path="log_path")
        if path is None:
            self._state = "open"
            return
        if not path:
            raise ConfigError("empty path: use null to turn tracking off, or ':memory:'", path="tracker.path")
        try:
            await self._connect(path)
            await self._open_log()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_connections()
            raise
        self._queue = _Queue(self._config.queue_size)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._run_writer, name="asyncrouter.tracker.writer")
        self._state = "open"
        self._accepting = True

    async def _connect(self, path: str) -> None:
        database, uri, in_memory = _database_target(path)
        self._shared_connection = in_memory
        try:
            if not in_memory:
                await anyio.Path(database).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: the writer makes each batch one statement, hence one transaction (see _insert).
            self._wdb = await aiosqlite.connect(database, uri=uri, isolation_level=None)
            max_variables = await anyio.to_thread.run_sync(_prepare_database, database, uri, not in_memory)
            self._max_rows = max(1, min(_MAX_ROWS_PER_STATEMENT, max_variables // _ROW_WIDTH))
            await _apply_pragmas(self._wdb, writer=True)
            await self._wdb.execute(_DIM_DDL)
            self._handshake.loop = asyncio.get_running_loop()
            await self._wdb.create_function(_STARTED_FUNCTION, 0, self._handshake.started, deterministic=True)
            if not in_memory:
                self._database = database
            if self._shared_connection:
                self._rdb = self._wdb
            else:
                self._rdb = await aiosqlite.connect(database, uri=uri)
                await _apply_pragmas(self._rdb, writer=False)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the tracker database {path!r}: {exc}", path="tracker.path") from exc
        except OSError as exc:
            raise ConfigError(
                f"cannot create the tracker database {path!r}: {exc.strerror}", path="tracker.path"
            ) from exc

    async def _open_log(self) -> None:
        log = self._log
        if log is None:
            return
        try:
            await anyio.Path(log.path).parent.mkdir(parents=True, exist_ok=True)
            await anyio.to_thread.run_sync(log.open)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the JSON run log {log.path!r} for appending: {exc.strerror or exc}", path="log_path"
            ) from exc

    async def aclose(self) -> None:
        """Write everything queued, stop the writer, and close both connections. Idempotent.

        Must run in the task that called :meth:`aopen` (the writer's task group belongs to that task). It
        finishes its work even when the calling task is being cancelled; the cancellation then proceeds.
        """
        if self._state != "open":
            return
        self._state = "closing"
        self._accepting = False
        task_group = self._task_group
        try:
            with anyio.CancelScope(shield=True):
                if self._queue is not None and not self._writer_done.is_set():
                    try:
                        # FIFO behind every record already queued and every caller blocked on a full queue.
                        await self._send_marker(self._queue, _Marker(stop=True))
                    except (BrokenResourceError, ClosedResourceError):
                        pass  # the writer has already stopped (and drained what it could)
                    await self._writer_done.wait()
                if self._queue is not None:
                    self._queue.seal()
                await self._close_connections(optimize=True)
        finally:
            self._state = "closed"
            self._task_group = None
            if task_group is not None:
                await task_group.__aexit__(None, None, None)

    async def _close_connections(self, *, optimize: bool = False) -> None:
        rdb, wdb = self._rdb, self._wdb
        self._rdb = self._wdb = None
        if rdb is not None and rdb is not wdb:
            await _close_quietly(rdb)
        if wdb is not None:
            try:
                # Lets SQLite refresh its planner statistics; never on a database we failed to open.
                if optimize:
                    await wdb.execute("PRAGMA optimize")
            except Exception:
                logger.debug("tracker: PRAGMA optimize failed", exc_info=True)
            await _close_quietly(wdb)

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_state", "closed") == "open" and self.enabled:
            _warn(f"{self!r} was not closed; use 'async with' or 'await aclose()'", ResourceWarning, stacklevel=1)

    def __repr__(self) -> str:
        return f"Tracker(path={self._config.path!r}, state={self._state})"

    # -- the request path ---------------------------------------------------------------------------------

    async def record(self, record: RequestRecord) -> bool:
        """Enqueue *record* for writing.

        Returns at once while the queue has room. On a full queue, ``on_full: wait`` makes the caller wait
        for room (backpressure) and ``on_full: drop`` drops the record and counts it. The enqueue is
        cancellation-safe: a caller cancelled while it waits still gets its record queued, and the
        cancellation is delivered right after.

        Returns:
            True if the record was queued, False if it was dropped (or tracking is off).
        """
        queued = self._try_enqueue(record)
        if queued is not None:
            return queued
        if self._config.on_full == "drop":
            self._dropped += 1
            return False
        queue = self._queue
        assert queue is not None
        return await self._record_blocking(queue, record)

    async def _record_blocking(self, queue: _Queue, record: RequestRecord) -> bool:
        with anyio.CancelScope(shield=True):
            try:
                await queue.put(record)
            except (BrokenResourceError, ClosedResourceError):
                self._dropped += 1
                return False
        # The record is safe in the queue; now let a pending cancellation of the caller through.
        await anyio.lowlevel.checkpoint_if_cancelled()
        return True

    def record_nowait(self, record: RequestRecord) -> bool:
        """Enqueue *record* without waiting, for synchronous code paths.

        Returns:
            True if queued; False if the queue was full (the record is dropped and counted, whatever
            ``on_full`` says) or tracking is off.
        """
        queued = self._try_enqueue(record)
        if queued is None:  # full: dropped and counted, whatever on_full says
            self._dropped += 1
            return False
        return queued

    def _try_enqueue(self, record: RequestRecord) -> bool | None:
        """Queue *record* without waiting: True if queued, False if refused (closed), None if the queue is full."""
        if not self._accepting:
            return self._refuse()
        queue = self._queue
        assert queue is not None
        try:
            queued = queue.put_nowait(record)
        except (BrokenResourceError, ClosedResourceError):
            self._dropped += 1
            return False
        if queued:
            self._note_enqueued()
            return True
        self._wake_writer()
        return None

    def _refuse(self) -> bool:
        if self.enabled:
            self._dropped += 1
            logger.debug("tracker: record refused, the tracker is %s", self._state)
        return False

    def _note_enqueued(self) -> None:
        wake = self._wake
        if wake is not None:
            self._pending += 1
            if self._pending >= self._wake_at:
                wake.set()

    def _wake_writer(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def flush(self) -> None:
        """Wait until every record queued before this call is committed (or has failed and been counted).

        Cancelling the wait is safe; the records are written anyway.
        """
        queue = self._queue
        if self._state != "open" or queue is None or self._writer_done.is_set():
            return
        marker = _Marker()
        try:
            await self._send_marker(queue, marker)
        except (BrokenResourceError, ClosedResourceError):
            return
        await marker.done.wait()

    async def _send_marker(self, queue: _Queue, marker: _Marker) -> None:
        """Queue *marker* behind everything queued so far and make sure a lingering writer notices it."""
        if not queue.put_nowait(marker):
            self._wake_writer()  # the queue is full: the writer must drain it for the marker to get in
            await queue.put(marker)
        # The writer may have begun to linger after its last look at the queue, before the marker arrived.
        self._wake_writer()

    # -- the writer ---------------------------------------------------------------------------------------

    async def _run_writer(self) -> None:
        try:
            async with anyio.create_task_group() as inserts:
                self._inserts = inserts
                try:
                    await self._write_loop(inserts)
                finally:
                    self._inserts = None
        except Exception:  # pragma: no cover - a bug; never let it cancel the caller's task group
            logger.exception("tracker: the writer stopped unexpectedly")
        finally:
            # Stopped, or cancelled from outside (the host of the tracker's task group was cancelled):
            # whatever was launched but not started, held, or still queued is written before the writer goes
            # away; later records are refused and counted.
            with anyio.CancelScope(shield=True):
                try:
                    await self._run_launched()
                    await self._settle()
                    while True:
                        self._drain()
                        if not self._held and not self._markers:
                            break
                        batch, markers = self._take_batch()
                        await self._insert_batch(batch, markers, anyio.Event(), anyio.Event())
                finally:
                    if self._queue is not None:
                        self._queue.close()
                    self._writer_done.set()

    async def _write_loop(self, inserts: TaskGroup) -> None:
        """Assemble batches; encode each while the previous one is being inserted (one insert at a time).

        The overlap is real: SQLite executes a batch's multi-row statement in one step without holding the
        GIL (only binding its parameters needs it), so the event loop encodes the next batch meanwhile. For
        that, the writer lets aiosqlite's thread bind a launched batch before it starts encoding the next
        (see :class:`_Handshake`).
        """
        queue = self._queue
        assert queue is not None
        batch_size = self._config.batch_size
        while True:
            try:
                item = await queue.get()
            except EndOfStream:
                return
            self._hold(item)
            self._drain()
            if not self._markers and len(self._held) < batch_size:
                await self._linger(batch_size - len(self._held))
                self._drain()
            stop = any(m.stop for m in self._markers)
            batch = self._encoder.encode(self._held)
            # Cancellable: until the batch is taken below it stays in self._held for the final drain.
            await self._settle()
            self._held, markers = [], self._take_markers()
            self._failed += batch.skipped
            done, started = anyio.Event(), anyio.Event()
            self._in_flight = done
            self._handshake.event = started
            # Handed over through an attribute, not as arguments: a task cancelled before its first step
            # never runs, and the final drain must then still find the batch (see _run_writer).
            self._launch = (batch, markers, done, started)
            inserts.start_soon(self._run_launched)
            if stop:
                await self._settle()
                return
            await started.wait()

    async def _run_launched(self) -> None:
        launch, self._launch = self._launch, None
        if launch is not None:
            await self._insert_batch(*launch)

    async def _settle(self) -> None:
        """Wait for the insert in flight, if any."""
        if self._in_flight is not None:
            await self._in_flight.wait()

    def _take_markers(self) -> list[_Marker]:
        markers, self._markers = self._markers, []
        return markers

    def _take_batch(self) -> tuple[_Batch, list[_Marker]]:
        held, self._held = self._held, []
        batch = self._encoder.encode(held)
        self._failed += batch.skipped
        return batch, self._take_markers()

    async def _insert_batch(
        self, batch: _Batch, markers: list[_Marker], done: anyio.Event, started: anyio.Event
    ) -> None:
        # Shielded: aiosqlite finishes a statement in its thread whatever happens here, and whether it
        # committed must be known and counted.
        with anyio.CancelScope(shield=True):
            try:
                await self._insert(batch)
            finally:
                for marker in markers:
                    marker.done.set()
                started.set()
                done.set()
                # A lingering writer is not woken here: the records that arrived during this insert would go
                # out at once in a small transaction of their own (a thread hand-off and a commit each). It
                # goes ahead when its batch fills, the interval ends, or a flush asks.

    def _hold(self, item: _Item) -> None:
        if type(item) is _Marker:
            self._markers.append(item)
        else:
            self._held.append(item)  # type: ignore[arg-type]

    def _drain(self) -> None:
        """Move queued items into the batch without waiting, until it is full or the queue is empty."""
        if self._queue is not None:
            self._queue.take_into(self._held, self._markers, self._config.batch_size)

    async def _linger(self, room: int) -> None:
        """Wait up to ``flush_interval`` for *room* more records (or a flush, or a full queue)."""
        wake = anyio.Event()
        self._wake, self._wake_at, self._pending = wake, room, 0
        try:
            # A deadline on the event loop's clock, like every timeout, not a sleep on the injected Clock: a
            # background timer sleeping on a shared FakeClock would move time for everything else under
            # test (breaker cool-downs, budget day boundaries, measured latencies) whenever a batch lingers.
            with anyio.move_on_after(self._config.flush_interval):
                await wake.wait()
        finally:
            self._wake = None

    async def _insert(self, batch: _Batch) -> None:
        db = self._wdb
        assert db is not None
        rows = batch.rows
        dims = self._dims_carry + batch.dims
        if not rows and not dims and batch.prune_below is None:
            return
        statements = _insert_statements(rows, self._max_rows)
        inserted = 0
        try:
            async with self._db_lock:
                # The dimension rows this batch refers to go in first (each statement is its own transaction;
                # these are in the connection's TEMP database, so nothing of them ever reaches the file).
                if batch.prune_below is not None:
                    await db.execute(_DIM_PRUNE, (batch.prune_below,))
                    dims = [d for d in dims if d[0] >= batch.prune_below]
                    if self._log is not None:
                        self._log.prune(batch.prune_below)
                if dims:
                    await db.executemany(_DIM_INSERT, dims)
                    if self._log is not None:
                        self._log.register(dims)
                self._dims_carry = []
                if len(statements) == 1:
                    # Autocommit connection: the single statement is the batch's one transaction.
                    sql, params = statements[0]
                    inserted = (await db.execute(sql, params)).rowcount
                elif statements:
                    await db.execute("BEGIN")
                    for sql, params in statements:
                        inserted += (await db.execute(sql, params)).rowcount
                    await db.execute("COMMIT")
        except Exception as exc:
            self._dims_carry = dims  # registered or not, registering again is harmless
            self._write_errors += 1
            self._failed += len(rows)
            logger.error("tracker: could not write a batch of %d records: %s: %s", len(rows), type(exc).__name__, exc)
            if db.in_transaction:
                try:
                    await db.execute("ROLLBACK")
                except Exception:
                    logger.debug("tracker: rollback failed", exc_info=True)
        else:
            if not rows:
                return
            self._written += inserted
            self._flushes += 1
            if inserted < len(rows):
                self._failed += len(rows) - inserted
                logger.error(
                    "tracker: %d of %d records lacked a request_id, timestamp or status and were skipped",
                    len(rows) - inserted,
                    len(rows),
                )
            self._unchecked += inserted
            if self._unchecked >= DEFAULT_CHECKPOINT_ROWS:
                self._start_checkpoint()
            if self._log is not None and inserted:
                await self._append_log(self._log, rows, inserted)

    async def _append_log(self, log: _RunLog, rows: list[tuple[Any, ...]], inserted: int) -> None:
        """Append the committed rows of a batch to the JSON run log, in a worker thread; never raises."""
        if inserted < len(rows):
            rows = log.stored(rows)
            if len(rows) != inserted:  # pragma: no cover - SQLite refused a row the NOT NULL mirror let through
                self._log_failed += inserted
                logger.error("tracker: cannot tell which rows of a batch were stored; none written to the JSON log")
                return
        try:
            written, skipped = await anyio.to_thread.run_sync(log.append, rows)
        except Exception as exc:
            self._log_errors += 1
            self._log_failed += len(rows)
            self._log_streak += 1
            self._log_streak_records += len(rows)
            if self._log_streak == 1:
                logger.error(
                    "tracker: cannot append to the JSON run log %s: %s: %s; its records stay in the database "
                    "(further failures are not logged until an append succeeds)",
                    log.path,
                    type(exc).__name__,
                    exc,
                )
            return
        self._log_written += written
        self._log_failed += skipped
        if self._log_streak:
            logger.warning(
                "tracker: appending to the JSON run log %s again, after %d failed batch(es): %d record(s) are "
                "in the database only",
                log.path,
                self._log_streak,
                self._log_streak_records,
            )
            self._log_streak = self._log_streak_records = 0

    def _start_checkpoint(self) -> None:
        """Checkpoint the WAL in the background, on a connection of its own, if none is running.

        SQLite's automatic checkpoint runs inside a commit on the writer's thread, fsyncs included (~10 ms
        per 1000 pages here); meanwhile no batch is inserted. A PASSIVE checkpoint elsewhere copies the same
        pages without blocking the writer, so the writer's own (kept as a bound on the WAL's size, at a
        higher threshold: only it can reset the WAL under steady writes) has little left to do.
        """
        inserts, database = self._inserts, self._database
        if inserts is None or database is None or self._checkpointing:
            return
        self._checkpointing = True
        self._unchecked = 0
        inserts.start_soon(self._checkpoint, database, name="asyncrouter.tracker.checkpoint")

    async def _checkpoint(self, database: str) -> None:
        try:
            await anyio.to_thread.run_sync(_checkpoint_wal, database)
        except Exception:
            logger.debug("tracker: background WAL checkpoint failed", exc_info=True)
        finally:
            self._checkpointing = False

    # -- counters -----------------------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Rows committed since the tracker was opened."""
        return self._written

    @property
    def dropped(self) -> int:
        """Records refused (full queue under ``drop``, :meth:`record_nowait` on a full queue, or not open)."""
        return self._dropped

    @property
    def queued(self) -> int:
        """Records in the queue right now."""
        return len(self._queue) if self._queue is not None and self._accepting else 0

    @property
    def waiting(self) -> int:
        """Callers of :meth:`record` blocked on a full queue right now."""
        return self._queue.waiting if self._queue is not None and self._accepting else 0

    @property
    def flushes(self) -> int:
        """Batches committed (one transaction each)."""
        return self._flushes

    @property
    def counters(self) -> TrackerCounters:
        """A snapshot of every counter."""
        return TrackerCounters(
            written=self._written,
            dropped=self._dropped,
            queued=self.queued,
            waiting=self.waiting,
            flushes=self._flushes,
            write_errors=self._write_errors,
            failed=self._failed,
            log_written=self._log_written,
            log_errors=self._log_errors,
            log_failed=self._log_failed,
        )

    # -- queries ------------------------------------------------------------------------------------------

    async def _reader(self) -> aiosqlite.Connection | None:
        """The read connection once everything queued so far is committed; None when tracking is off."""
        # Flushing first gives read-your-writes: a request's record is in logs() as soon as it returned.
        if not self.enabled:
            return None
        if self._state != "open" or self._rdb is None:
            raise RuntimeError(f"the tracker is not open ({self._state})")
        await self.flush()
        return self._rdb

    def _read_lock(self) -> anyio.Lock | _NoLock:
        return self._db_lock if self._shared_connection else _NO_LOCK

    def _window(self, since: TimeBound, until: TimeBound) -> tuple[float | None, float | None]:
        return _to_epoch(since, self._clock, "since"), _to_epoch(until, self._clock, "until")

    async def _fetchall(self, db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            async with self._read_lock():
                return list(await db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise RouterError(f"tracker query failed: {type(exc).__name__}: {exc}") from exc

    # -- feedback ---------------------------------------------------------------------------------------------

    async def add_feedback(self, request_id: str, rating: int, *, comment: str | None = None) -> FeedbackRecord:
        """Store a user's vote (+1 or -1) on a tracked request; its model and task type are copied in.

        Raises:
            ValueError: a rating other than +1 or -1.
            RouterError: tracking is off, or no committed request has this id.
            RuntimeError: the tracker is not open.
        """
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        db = await self._reader()
        if db is None:
            raise RouterError("feedback needs the tracker: set tracker.path")
        rows = await self._fetchall(
            db, "SELECT model, task_type FROM requests WHERE request_id = ? ORDER BY id DESC LIMIT 1", [request_id]
        )
        if not rows:
            raise UnknownRequest(f"no tracked request has the id {request_id!r}")
        model, task_type = rows[0]
        if comment is not None:
            comment = redact(comment[:_MAX_FEEDBACK_COMMENT], self._encoder._known)
        record = FeedbackRecord(request_id, self._clock.time(), rating, model or "", task_type or "", comment)
        assert self._wdb is not None
        try:
            async with self._db_lock:
                await self._wdb.execute(
                    "INSERT INTO feedback (request_id, ts, rating, model, task_type, comment) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (request_id, record.timestamp, rating, model, task_type, comment),
                )
        except sqlite3.Error as exc:
            raise RouterError(f"could not store feedback: {type(exc).__name__}: {exc}") from exc
        return record

    async def feedback_counts(self) -> list[tuple[str, str, int, int]]:
        """``(task_type, model, up votes, down votes)`` for every pair with a vote (empty when tracking is off)."""
        db = await self._reader()
        if db is None:
            return []
        rows = await self._fetchall(
            db,
            "SELECT task_type, model, SUM(rating > 0), SUM(rating < 0) FROM feedback "
            "WHERE model IS NOT NULL GROUP BY task_type, model",
            [],
        )
        return [(t or "", m, int(up), int(down)) for t, m, up, down in rows]

    async def logs(
        self,
        *,
        last_n: int | None = 20,
        model: str | None = None,
        since: TimeBound = None,
        until: TimeBound = None,
        status: str | None = None,
    ) -> list[RequestRecord]:
        """The newest committed records, newest first.

        Args:
            last_n: at most this many (``None``: all).
            model: only requests this model alias accepted.
            since: only requests at or after this moment.
            until: only requests before this moment.
            status: only ``"ok"``, ``"error"`` or ``"cancelled"`` requests.

        Every query first waits for the records queued so far to be committed, so a caller sees its own
        records.

        Raises:
            ValueError: a negative ``last_n`` or an unknown ``status``.
            RuntimeError: the tracker is not open.
            RouterError: the query failed.
        """
        if last_n is not None and last_n < 0:
            raise ValueError("last_n must be >= 0 or None")
        db = await self._reader()
        if db is None:
            return []
        where, params = self._where(since=since, until=until, model=model, status=status)
        sql = f"SELECT {_SELECT_COLUMNS} FROM requests{where} ORDER BY ts DESC, id DESC LIMIT ?"
        rows = await self._fetchall(db, sql, [*params, -1 if last_n is None else last_n])
        return [_record_from_row(row) for row in rows]

    def _where(
        self, *, since: TimeBound, until: TimeBound, model: str | None = None, status: str | None = None
    ) -> tuple[str, list[Any]]:
        lo, hi = self._window(since, until)
        clauses: list[str] = []
        params: list[Any] = []
        if lo is not None:
            clauses.append("ts >= ?")
            params.append(lo)
        if hi is not None:
            clauses.append("ts < ?")
            params.append(hi)
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if status is not None:
            if status not in _STATUSES:
                raise ValueError(f"status must be one of {sorted(_STATUSES)}, not {status!r}")
            clauses.append("status = ?")
            params.append(status)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    async def spent_between(self, start: float, end: float) -> float:
        """The summed ``cost_usd`` of committed requests with ``start <= timestamp < end``.

        The budget's sqlite backend rebuilds today's spend from this when it opens.
        """
        db = await self._reader()
        if db is None:
            return 0.0
        rows = await self._fetchall(
            db, "SELECT coalesce(sum(cost_usd), 0.0) FROM requests WHERE ts >= ? AND ts < ?", (start, end)
        )
        return float(rows[0][0])

    async def stats(
        self,
        *,
        since: TimeBound = None,
        until: TimeBound = None,
        baseline: tuple[str, float, float] | None = None,
    ) -> Stats:
        """Aggregate the committed requests of a window, in SQL.

        Args:
            since: only requests at or after this moment.
            until: only requests before this moment.
            baseline: ``(model alias, cost_per_1k_input, cost_per_1k_output)`` of a model to compare the
                window's cost against (see :class:`Savings`).

        Raises:
            RuntimeError: the tracker is not open.
            RouterError: a query failed.
        """
        lo, hi = self._window(since, until)
        db = await self._reader()
        if db is None:
            return _stats_from(lo, hi, (), baseline, self.counters)
        where, params = self._where(since=lo, until=hi)
        # One statement, so totals, groups and percentiles all come from one snapshot of the table.
        rows = await self._fetchall(db, _stats_sql(where), params)
        return _stats_from(lo, hi, rows, baseline, self.counters)

    # -- exports ------------------------------------------------------------------------------------------

    async def export_jsonl(
        self,
        path: str | os.PathLike[str],
        *,
        since: TimeBound = None,
        until: TimeBound = None,
        model: str | None = None,
        status: str | None = None,
    ) -> int:
        """Write the committed records of a window to *path* as JSON Lines, oldest first.

        Each line is :meth:`RequestRecord.to_dict` (attempts nested as objects, ``escalated`` included).
        Rows are streamed from the database in chunks, never all loaded at once.

        Returns:
            The number of records written.
        """

        def lines(records: list[RequestRecord]) -> str:
            return "".join(_encode_lenient(_record_dict(r)) + "\n" for r in records)

        return await self._export(path, lines, header="", since=since, until=until, model=model, status=status)

    async def export_csv(
        self,
        path: str | os.PathLike[str],
        *,
        since: TimeBound = None,
        until: TimeBound = None,
        model: str | None = None,
        status: str | None = None,
    ) -> int:
        """Write the committed records of a window to *path* as CSV with a header row, oldest first.

        Columns are the :class:`RequestRecord` fields plus ``escalated``; ``attempts`` is a JSON array of
        objects in one column, booleans are ``true``/``false``, ``None`` is an empty cell.

        Returns:
            The number of records written.
        """

        def lines(records: list[RequestRecord]) -> str:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerows(_csv_row(r) for r in records)
            return buffer.getvalue()

        header = ",".join(CSV_COLUMNS) + "\n"
        return await self._export(path, lines, header=header, since=since, until=until, model=model, status=status)

    async def _export(
        self,
        path: str | os.PathLike[str],
        render: Callable[[list[RequestRecord]], str],
        *,
        header: str,
        since: TimeBound,
        until: TimeBound,
        model: str | None,
        status: str | None,
    ) -> int:
        db = await self._reader()
        if db is None:
            return 0
        where, params = self._where(since=since, until=until, model=model, status=status)
        sql = f"SELECT {_SELECT_COLUMNS} FROM requests{where} ORDER BY ts, id"
        count = 0
        try:
            async with (
                await anyio.open_file(path, "w", encoding="utf-8", newline="") as out,
                self._read_lock(),
                db.execute(sql, params) as cursor,
            ):
                if header:
                    await out.write(header)
                while rows := await cursor.fetchmany(DEFAULT_EXPORT_CHUNK):
                    records = [_record_from_row(row) for row in rows]
                    await out.write(render(records))
                    count += len(records)
        except sqlite3.Error as exc:
            raise RouterError(f"tracker export failed: {type(exc).__name__}: {exc}") from exc
        return count


#: The columns of :meth:`Tracker.export_csv`, in order.
CSV_COLUMNS: Final = (*(f.name for f in dataclasses.fields(RequestRecord)), "escalated")
_RECORD_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RequestRecord))
_ATTEMPT_DATACLASS_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Attempt))


def _record_dict(record: RequestRecord) -> dict[str, Any]:
    """What :meth:`RequestRecord.to_dict` returns, about ten times faster."""
    # dataclasses.asdict deep-copies every value; these are all immutable scalars.
    data = {name: getattr(record, name) for name in _RECORD_FIELDS}
    data["attempts"] = [{name: getattr(a, name) for name in _ATTEMPT_DATACLASS_FIELDS} for a in record.attempts]
    data["escalated"] = record.escalated
    return data


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _csv_row(record: RequestRecord) -> list[Any]:
    data = _record_dict(record)
    data["attempts"] = _encode_lenient(data["attempts"])
    return [_csv_cell(data[name]) for name in CSV_COLUMNS]


class _NoLock:
    """Stands in for the shared-connection lock when reads have their own connection."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_NO_LOCK: Final = _NoLock()


def _to_epoch(value: TimeBound, clock: Clock, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be epoch seconds, a datetime or a timedelta, not a bool")
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, timedelta):
        return clock.time() - value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"{name} must be epoch seconds, a datetime or a timedelta, not {type(value).__name__}")


def _group(row: Sequence[Any]) -> GroupStats:
    return GroupStats(
        key=NO_KEY if row[1] is None else str(row[1]),
        requests=row[2],
        ok=row[3],
        errors=row[4],
        cancelled=row[5],
        escalations=row[6],
        input_tokens=row[7],
        output_tokens=row[8],
        cost_usd=float(row[9]),
        avg_latency_ms=float(row[10]),
    )


def _stats_from(
    since: float | None,
    until: float | None,
    rows: Iterable[Sequence[Any]],
    baseline: tuple[str, float, float] | None,
    counters: TrackerCounters,
) -> Stats:
    totals: Sequence[Any] = (None, None, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0)
    percentiles: tuple[Any, Any] = (None, None)
    by: dict[str, dict[str, GroupStats]] = {name: {} for name, _ in _GROUP_DIMENSIONS}
    for row in rows:
        section = row[0]
        if section == "totals":
            totals = row
        elif section == "percentiles":
            percentiles = (row[2], row[3])
        else:
            group = _group(row)
            by[section][group.key] = group
    requests, ok, errors, cancelled, escalations, tokens_in, tokens_out, cost, avg_latency = totals[2:]
    savings = None
    if baseline is not None:
        alias, per_1k_in, per_1k_out = baseline
        baseline_cost = tokens_in * per_1k_in / 1000 + tokens_out * per_1k_out / 1000
        saved = baseline_cost - cost
        savings = Savings(
            baseline_model=alias,
            baseline_cost_usd=baseline_cost,
            actual_cost_usd=float(cost),
            savings_usd=saved,
            savings_pct=saved / baseline_cost * 100 if baseline_cost else None,
        )
    return Stats(
        since=since,
        until=until,
        requests=requests,
        ok=ok,
        errors=errors,
        cancelled=cancelled,
        escalations=escalations,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=float(cost),
        avg_latency_ms=float(avg_latency),
        p50_latency_ms=float(percentiles[0] or 0.0),
        p95_latency_ms=float(percentiles[1] or 0.0),
        by_model=by["by_model"],
        by_task_type=by["by_task_type"],
        by_tier=by["by_tier"],
        by_routing_layer=by["by_routing_layer"],
        by_provider=by["by_provider"],
        savings=savings,
        tracker=counters,
        by_day=dict(sorted(by["by_day"].items())),  # chronological: ISO dates sort as text
        by_complexity=by["by_complexity"],
        by_category=by["by_category"],
    )


# ---------------------------------------------------------------------------------------------------------
# Connection set-up
# ---------------------------------------------------------------------------------------------------------


def _database_target(path: str) -> tuple[str, bool, bool]:
    """``(database, uri, in_memory)`` for ``sqlite3.connect``.

    A plain ":memory:" database is private to one connection; a uniquely named shared-cache one can also be
    reached by the connection that prepares it. One aiosqlite connection then serves reads and writes.
    """
    if path == ":memory:":
        return f"file:asyncrouter-{uuid.uuid4().hex}?mode=memory&cache=shared", True, True
    return os.path.expanduser(path), False, False


def _prepare_database(database: str, uri: bool, on_disk: bool) -> int:
    """Switch a file database to WAL, migrate it, and return SQLite's bound-parameter limit. Runs in a thread.

    A plain sqlite3 connection is used so migrations are ordinary synchronous functions; for ":memory:" it
    reaches the same shared-cache database the aiosqlite connection keeps alive.
    """
    conn = sqlite3.connect(database, uri=uri, isolation_level=None, timeout=DEFAULT_BUSY_TIMEOUT_MS / 1000)
    try:
        if on_disk:
            # WAL is persistent in the file: readers never block the writer and vice versa, and a commit
            # costs an append rather than a rewrite of the journal.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a filesystem without shared memory
                logger.warning("tracker: SQLite refused WAL mode for %s (journal_mode=%s)", database, mode)
        migrate(conn)
        # How many "?" one statement may hold: 32766 by default since SQLite 3.32, 999 before.
        return int(conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        conn.close()


async def _apply_pragmas(db: aiosqlite.Connection, *, writer: bool) -> None:
    statements = [
        f"PRAGMA busy_timeout = {DEFAULT_BUSY_TIMEOUT_MS:d}",
        f"PRAGMA cache_size = {-DEFAULT_CACHE_KIB:d}",
        "PRAGMA temp_store = MEMORY",
    ]
    if writer:
        # NORMAL in WAL mode: a commit survives a crash of this process (it is in the OS), only a power
        # loss can take the last transactions back; no fsync per batch.
        statements += [
            "PRAGMA synchronous = NORMAL",
            f"PRAGMA journal_size_limit = {DEFAULT_JOURNAL_SIZE_LIMIT:d}",
            f"PRAGMA wal_autocheckpoint = {DEFAULT_WAL_AUTOCHECKPOINT_PAGES:d}",
        ]
    else:
        statements += ["PRAGMA query_only = ON"]
    for statement in statements:
        await db.execute(statement)


def _checkpoint_wal(database: str) -> None:
    """A PASSIVE WAL checkpoint on a short-lived connection of its own. Runs in a worker thread.

    PASSIVE never waits for and never blocks the writer or the readers; it copies what it can.
    """
    # mode=rw: never create a database that has gone away meanwhile.
    uri = f"file:{urllib.parse.quote(os.path.abspath(database))}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        conn.close()


async def _close_quietly(db: aiosqlite.Connection) -> None:
    try:
        await db.close()
    except Exception:
        logger.warning("tracker: closing a database connection failed", exc_info=True)
