"""The streamed-body parsers: Server-Sent Events (WHATWG rules) and newline-delimited JSON."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncrouter._sse
from asyncrouter._sse import NDJSONParser, SSEEvent, SSEParser, StreamDecodeError

PROPERTY = settings(max_examples=150, deadline=None)


def parse_sse(data: bytes, *, step: int | None = None, **kw: Any) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser(**kw)
    events: list[SSEEvent] = []
    step = step or max(1, len(data))
    for i in range(0, len(data), step):
        events += parser.feed(data[i : i + step])
    events += parser.close()
    return events, parser


def is_pending(parser: SSEParser | NDJSONParser) -> bool:
    # A function call, so that mypy does not narrow the property across feeds.
    return parser.pending


def feed_in_pieces(parser: SSEParser | NDJSONParser, data: bytes, cuts: list[int]) -> list[Any]:
    out: list[Any] = []
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    for lo, hi in itertools.pairwise(bounds):
        out += parser.feed(data[lo:hi])
    out += parser.close()
    return out


# --- SSE: the spec's rules, one at a time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"data: hello\n\n", [SSEEvent(None, "hello")], id="one-event"),
        pytest.param(b"data: a\ndata: b\n\n", [SSEEvent(None, "a\nb")], id="data-lines-joined-with-lf"),
        pytest.param(b"data:x\n\n", [SSEEvent(None, "x")], id="no-space-after-colon"),
        pytest.param(b"data:  two spaces\n\n", [SSEEvent(None, " two spaces")], id="only-one-space-removed"),
        pytest.param(b"data\n\n", [SSEEvent(None, "")], id="field-without-colon-is-empty-value"),
        pytest.param(b"data:\n\n", [SSEEvent(None, "")], id="empty-data-still-dispatches"),
        pytest.param(b"data: a:b: c\n\n", [SSEEvent(None, "a:b: c")], id="only-first-colon-splits"),
        pytest.param(b"event: delta\ndata: {}\n\n", [SSEEvent("delta", "{}")], id="event-type"),
        pytest.param(b"event:\ndata: x\n\n", [SSEEvent(None, "x")], id="empty-event-type-is-default"),
        pytest.param(b"event: ping\n\n", [], id="no-data-no-event"),
        pytest.param(b"event: a\n\ndata: x\n\n", [SSEEvent(None, "x")], id="event-type-reset-by-blank-line"),
        pytest.param(b"id: 7\ndata: x\n\ndata: y\n\n", [SSEEvent(None, "x", "7"), SSEEvent(None, "y", "7")],
                     id="last-event-id-persists"),
        pytest.param(b"id: 7\ndata: x\n\nid\ndata: y\n\n", [SSEEvent(None, "x", "7"), SSEEvent(None, "y", None)],
                     id="empty-id-resets"),
        pytest.param(b"id: 7\ndata: x\n\nid: a\x00b\ndata: y\n\n", [SSEEvent(None, "x", "7"), SSEEvent(None, "y", "7")],
                     id="id-with-nul-ignored"),
        pytest.param(b"retry: 1500\ndata: x\n\n", [SSEEvent(None, "x", None, 1500)], id="retry"),
        pytest.param(b"retry: 15s\ndata: x\n\n", [SSEEvent(None, "x")], id="non-digit-retry-ignored"),
        pytest.param(b"retry: 10\n\ndata: x\n\n", [SSEEvent(None, "x", None, 10)], id="retry-carried-to-next-event"),
        pytest.param(b"foo: bar\ndata: x\n\n", [SSEEvent(None, "x")], id="unknown-field-ignored"),
        pytest.param(b"Data: x\n\n", [], id="field-names-are-case-sensitive"),
        pytest.param(b": OPENROUTER PROCESSING\n\ndata: x\n\n", [SSEEvent(None, "x")], id="openrouter-comment"),
        pytest.param(b"data: a\n: keep-alive\ndata: b\n\n", [SSEEvent(None, "a\nb")], id="comment-inside-event"),
        pytest.param(b"\xef\xbb\xbfdata: x\n\n", [SSEEvent(None, "x")], id="bom-stripped"),
        pytest.param(b"data: x\n\n\xef\xbb\xbfdata: y\n\n", [SSEEvent(None, "x")], id="bom-later-is-a-field-name"),
        pytest.param(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n", [SSEEvent(None, "a"), SSEEvent(None, "b"),
                     SSEEvent(None, "c")], id="crlf-cr-lf-mixed"),
        pytest.param(b"data: caf\xc3\xa9 \xe4\xb8\xad\n\n", [SSEEvent(None, "café 中")], id="utf8"),
        pytest.param(b"data: bad \xff byte\n\n", [SSEEvent(None, "bad \ufffd byte")], id="invalid-utf8-replaced"),
        pytest.param(b"data: a\x85b\xe2\x80\xa8c\n\n", [SSEEvent(None, "a\ufffdb\u2028c")],
                     id="only-cr-and-lf-break-lines"),
        pytest.param(b"data: [DONE]\n\n", [SSEEvent(None, "[DONE]")], id="openai-done"),
    ],
)  # fmt: skip
def test_sse_rules(stream: bytes, expected: list[SSEEvent]) -> None:
    whole, _ = parse_sse(stream)
    byte_by_byte, _ = parse_sse(stream, step=1)
    assert whole == expected
    assert byte_by_byte == expected


def test_comments_are_counted_and_never_events() -> None:
    events, parser = parse_sse(b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n:\n\n")
    assert events == []
    assert parser.comments == 3


def test_cr_and_lf_split_across_chunks_are_one_line_break() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # Were the "\n" read as a second line break, it would be a blank line and dispatch "a" alone.
    assert parser.feed(b"\ndata: b\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\r\n") == [SSEEvent(None, "a\nb")]


def test_a_lone_cr_at_the_end_of_a_chunk_ends_the_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\r") == [SSEEvent(None, "a")]


def test_bom_split_across_chunks() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: x\n\n") == [SSEEvent(None, "x")]


def test_multibyte_character_split_across_chunks() -> None:
    data = "data: 你好, Ωmega\n\n".encode()
    for cut in range(len(data) + 1):
        parser = SSEParser()
        assert parser.feed(data[:cut]) + parser.feed(data[cut:]) == [SSEEvent(None, "你好, Ωmega")], cut


def test_incomplete_event_at_eof_is_discarded_and_flagged() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: complete\n\ndata: trunc") == [SSEEvent(None, "complete")]
    assert parser.pending
    assert parser.close() == []
    assert parser.pending  # still tells the caller the stream ended mid-event


def test_event_without_blank_line_at_eof_is_pending() -> None:
    parser = SSEParser()
    parser.feed(b"data: x\n")
    assert parser.pending
    assert parser.close() == []
    assert parser.pending


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: x\n\n", id="clean"),
        pytest.param(b"data: x\n\n: trailing comment\n", id="trailing-comment"),
        pytest.param(b"", id="empty-body"),
    ],
)
def test_clean_end_is_not_pending(stream: bytes) -> None:
    _, parser = parse_sse(stream)
    assert not parser.pending


def test_dispatch_at_eof_returns_the_unfinished_event() -> None:
    parser = SSEParser(dispatch_at_eof=True)
    assert parser.feed(b"event: last\ndata: a\ndata: b") == []
    assert parser.close() == [SSEEvent("last", "a\nb")]
    assert parser.pending  # it still ended mid-event
    assert parser.close() == []


def test_last_event_id_and_retry_are_exposed() -> None:
    _, parser = parse_sse(b"id: 42\nretry: 300\ndata: x\n\n")
    assert parser.last_event_id == "42"
    assert parser.retry == 300


def test_feed_after_close_is_an_error() -> None:
    parser = SSEParser()
    parser.close()
    with pytest.raises(RuntimeError):
        parser.feed(b"data: x\n\n")


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: " + b"x" * 200, id="unfinished-line"),
        pytest.param(b"data: " + b"x" * 60 + b"\n" + b"data: " + b"y" * 60 + b"\n", id="many-data-lines"),
    ],
)
def test_oversized_event_is_refused(stream: bytes) -> None:
    with pytest.raises(StreamDecodeError, match="larger than 100 bytes"):
        parse_sse(stream, step=10, max_event_bytes=100)


def test_realistic_openai_stream() -> None:
    chunks = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "lo ☃"}, "finish_reason": "stop"}]},
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    ]
    body = b"".join(b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks)
    body = b": OPENROUTER PROCESSING\n\n" + body + b"data: [DONE]\n\n"
    for step in (1, 2, 3, 7, 64, len(body)):
        events, parser = parse_sse(body, step=step)
        assert [json.loads(e.data) for e in events[:-1]] == chunks
        assert events[-1].data == "[DONE]"
        assert not parser.pending


# --- SSE: properties -------------------------------------------------------------------------------------------

# Text that may appear in a field value: anything but CR, LF and NUL, and including the characters that
# ``str.splitlines`` would wrongly treat as line breaks.
_VALUE_CHARS = st.one_of(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"),
    st.sampled_from(["\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", ":", " ", "é", "中", "😀"]),
)
_values = st.text(_VALUE_CHARS, max_size=12)
_events = st.lists(
    st.builds(
        SSEEvent,
        event=st.one_of(st.none(), st.text(_VALUE_CHARS, min_size=1, max_size=8)),
        data=st.lists(_values, min_size=1, max_size=3).map("\n".join),
        id=st.one_of(st.none(), st.text(_VALUE_CHARS, min_size=1, max_size=6)),
        retry=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
    ),
    max_size=6,
)


def serialise(events: list[SSEEvent], newline: str = "\n", comments: list[int] | None = None) -> bytes:
    lines: list[str] = []
    for ev in events:
        if ev.event is not None:
            lines.append(f"event: {ev.event}")
        if ev.id is not None:
            lines.append(f"id: {ev.id}")
        if ev.retry is not None:
            lines.append(f"retry: {ev.retry}")
        lines += [f"data: {line}" for line in ev.data.split("\n")]
        lines.append("")
    for position in sorted(comments or [], reverse=True):
        lines.insert(position % (len(lines) + 1), ": comment")
    return "".join(line + newline for line in lines).encode()


def expected(events: list[SSEEvent]) -> list[SSEEvent]:
    # The id is the stream's *last* event ID: it carries over to later events that set none.
    out, last_id = [], None
    for ev in events:
        last_id = ev.id if ev.id is not None else last_id
        out.append(SSEEvent(ev.event, ev.data, last_id, ev.retry))
    return out


@PROPERTY
@given(events=_events, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_sse_round_trip_through_arbitrary_chunks(events: list[SSEEvent], cuts: list[int]) -> None:
    data = serialise(events)
    parser = SSEParser()
    assert feed_in_pieces(parser, data, cuts) == expected(events)
    assert not parser.pending


@PROPERTY
@given(events=_events, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_sse_line_endings_are_equivalent(events: list[SSEEvent], cuts: list[int]) -> None:
    results = [feed_in_pieces(SSEParser(), serialise(events, newline), cuts) for newline in ("\n", "\r\n", "\r")]
    assert results[0] == results[1] == results[2] == expected(events)


@PROPERTY
@given(events=_events, comments=st.lists(st.integers(min_value=0), max_size=8))
def test_sse_comments_never_produce_events(events: list[SSEEvent], comments: list[int]) -> None:
    parser = SSEParser()
    assert feed_in_pieces(parser, serialise(events, comments=comments), [3, 17, 40]) == expected(events)
    assert parser.comments == len(comments)


@PROPERTY
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_sse_any_bytes_parse_the_same_however_chunked(data: bytes, cuts: list[int]) -> None:
    assert feed_in_pieces(SSEParser(), data, cuts) == feed_in_pieces(SSEParser(), data, [])


# --- NDJSON ----------------------------------------------------------------------------------------------------


def test_ndjson_lines() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert is_pending(parser)
    assert parser.feed(b': [2, "\xc3') == []
    assert parser.feed(b'\xa9"]}\r\n\n  \n[3]\n') == [{"b": [2, "é"]}, [3]]
    assert not is_pending(parser)
    assert parser.close() == []


def test_ndjson_last_line_without_newline_is_parsed_at_close() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"done": false}\n{"done": true}') == [{"done": False}]
    assert parser.close() == [{"done": True}]
    assert parser.close() == []


@pytest.mark.parametrize(
    ("body", "lineno"),
    [
        pytest.param(b'{"a": 1}\n{"a": \n', 2, id="truncated-object"),
        pytest.param(b'{"a": 1}\n\n\nnot json\n', 4, id="blank-lines-count"),
        pytest.param(b"\xff\xfe\n", 1, id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"\n", 1, id="nested-too-deep"),
    ],
)
def test_ndjson_malformed_line_names_its_number(body: bytes, lineno: int) -> None:
    parser = NDJSONParser()
    with pytest.raises(StreamDecodeError) as info:
        parser.feed(body)
    assert info.value.lineno == lineno
    assert f"line {lineno}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_ndjson_malformed_last_line_fails_at_close() -> None:
    parser = NDJSONParser()
    parser.feed(b'{"a": 1}\n{"a"')
    with pytest.raises(StreamDecodeError) as info:
        parser.close()
    assert info.value.lineno == 2


def test_ndjson_oversized_line_is_refused() -> None:
    parser = NDJSONParser(max_line_bytes=64)
    parser.feed(b"[" + b"1," * 20)
    with pytest.raises(StreamDecodeError, match="longer than 64 bytes"):
        parser.feed(b"1," * 20)


def test_ndjson_feed_after_close_is_an_error() -> None:
    parser = NDJSONParser()
    parser.close()
    with pytest.raises(RuntimeError):
        parser.feed(b"{}\n")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=10,
)


@PROPERTY
@given(
    values=st.lists(_json_values, max_size=8),
    final_newline=st.booleans(),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_ndjson_round_trip_through_arbitrary_chunks(
    values: list[Any], final_newline: bool, crlf: bool, cuts: list[int]
) -> None:
    newline = "\r\n" if crlf else "\n"
    text = newline.join(json.dumps(v, ensure_ascii=False) for v in values)
    data = (text + (newline if final_newline and values else "")).encode()
    assert feed_in_pieces(NDJSONParser(), data, cuts) == values


# --- purity ----------------------------------------------------------------------------------------------------


def test_parsers_do_no_io() -> None:
    tree = ast.parse(Path(asyncrouter._sse.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "json", "dataclasses", "typing"}
