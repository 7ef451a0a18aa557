"""Incremental parsers for streamed HTTP bodies: Server-Sent Events and newline-delimited JSON.

Providers feed these parsers the raw byte chunks of a streamed response, exactly as they arrive; a chunk may end
anywhere, including inside a multi-byte UTF-8 character or between the ``\\r`` and ``\\n`` of a line break. The
parsers are pure (no I/O, no clock) and cheap: they split on bytes with :meth:`bytes.rfind` and
:meth:`bytes.splitlines` and decode one field value at a time, so the per-byte work happens in C. UTF-8 never
uses the bytes ``\\n`` (0x0A), ``\\r`` (0x0D) or ``:`` (0x3A) inside a multi-byte character, which is what makes
splitting before decoding safe.

* :class:`SSEParser` follows the WHATWG ``EventSource`` rules (HTML, "Parsing an event stream" and "Interpreting
  an event stream"). OpenAI, OpenRouter, Hugging Face and Anthropic stream this way.
* :class:`NDJSONParser` reads one JSON value per line: Ollama's native ``/api/chat`` stream.

Both raise :class:`StreamDecodeError` (a :class:`ValueError`) on input they cannot accept; providers translate it
into :class:`~asyncrouter.MalformedResponse`, which knows the provider and the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "NDJSONParser",
    "SSEEvent",
    "SSEParser",
    "StreamDecodeError",
]

#: Largest SSE event (its unfinished line plus the data collected so far) a parser buffers before giving up.
DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
#: Largest NDJSON line a parser buffers before giving up.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024

_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 0x0A
_CR: Final = 0x0D
_COLON: Final = 0x3A
# How much of an offending line an error message quotes: enough to recognise it, never a whole body.
_PREVIEW_CHARS: Final = 80


class StreamDecodeError(ValueError):
    """A streamed body could not be parsed.

    Attributes:
        lineno: the 1-based line number of the offending line, when the error is about one line.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, lineno: int | None = None) -> None:
        self.lineno = lineno
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched server-sent event.

    Attributes:
        event: the event type, or ``None`` for the default type (``message``): no ``event`` field, or an empty one.
        data: the event's ``data`` lines joined with ``\\n``.
        id: the stream's last event ID when the event was dispatched. Per the spec it persists from one event to the
            next until another ``id`` field replaces it; ``None`` when none was sent or it was reset to empty.
        retry: the reconnection time in milliseconds from the last valid ``retry`` field seen since the previous
            dispatched event, else ``None``.

    .. versionadded:: 0.1
    """

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


def _decode(raw: bytes) -> str:
    # The spec decodes with replacement; providers only ever send valid UTF-8, so this is the rare path's safety net.
    return raw.decode("utf-8", "replace")


class SSEParser:
    """Incremental ``text/event-stream`` parser.

    Feed it byte chunks as they arrive; each :meth:`feed` returns the events completed by that chunk. Lines end
    in ``\\r\\n``, ``\\n`` or ``\\r``; a leading UTF-8 byte-order mark is dropped; lines starting with ``:`` are
    comments (counted in :attr:`comments`, never events: OpenRouter sends ``: OPENROUTER PROCESSING``); a blank
    line dispatches the event being built, if it has any ``data``; fields other than ``event``, ``data``, ``id``
    and ``retry`` are ignored.

    Args:
        dispatch_at_eof: the spec discards an event that the stream did not finish with a blank line. Pass ``True``
            to have :meth:`close` dispatch it instead, for servers that end the body right after the last
            ``data:`` line.
        max_event_bytes: the most bytes an unfinished event may buffer (its partial line plus its data).

    Example::

        parser = SSEParser()
        async for chunk in body:
            for event in parser.feed(chunk):
                handle(event)
        parser.close()
        if parser.pending:
            raise StreamInterrupted(...)

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_bom_head",
        "_closed",
        "_data",
        "_data_bytes",
        "_dispatch_at_eof",
        "_event",
        "_event_retry",
        "_in_event",
        "_last_id",
        "_max_event_bytes",
        "_partial",
        "_partial_bytes",
        "_pending_at_close",
        "_skip_lf",
        "comments",
        "retry",
    )

    def __init__(self, *, dispatch_at_eof: bool = False, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._dispatch_at_eof = dispatch_at_eof
        self._max_event_bytes = max_event_bytes
        # Bytes of a line whose terminator has not arrived yet; kept as a list so a long line arriving in many
        # small chunks is joined once (linear), not re-concatenated on every feed (quadratic).
        self._partial: list[bytes] = []
        self._partial_bytes = 0
        # The first bytes of the stream until we know whether they start with a BOM (it may arrive split).
        self._bom_head: bytes | None = b""
        # A chunk ended in "\r": if the next one starts with "\n" that "\n" belongs to the same line break.
        self._skip_lf = False
        self._data: list[str] = []
        self._data_bytes = 0
        self._event: str | None = None
        self._event_retry: int | None = None
        self._last_id: str | None = None
        self._in_event = False
        self._closed = False
        self._pending_at_close = False
        #: How many comment lines the stream carried so far.
        self.comments = 0
        #: The stream's current reconnection time in milliseconds (last valid ``retry`` field), else ``None``.
        self.retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last event ID seen so far (what a client would send as ``Last-Event-ID``), else ``None``."""
        return self._last_id

    @property
    def pending(self) -> bool:
        """Whether the stream so far stops in the middle of an event.

        True while a line is unfinished or field lines arrived after the last blank line. After :meth:`close`
        it tells whether the stream *ended* mid-event: a truncated stream.
        """
        if self._closed:
            return self._pending_at_close
        return bool(self._partial) or bool(self._bom_head) or self._in_event

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next chunk of the body.

        Args:
            chunk: the next bytes, split anywhere.

        Returns:
            The events this chunk completed, in order (often none).

        Raises:
            StreamDecodeError: the event being built exceeds ``max_event_bytes``.
            RuntimeError: the parser was closed.
        """
        if self._closed:
            raise RuntimeError("feed() after close()")
        if not chunk:
            return []
        if self._bom_head is not None:
            head = self._bom_head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._bom_head = head
                return []
            self._bom_head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
            if not chunk:
                return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return []
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:
            self._keep_partial(chunk)
            return []
        if self._partial:
            self._partial.append(chunk[: end + 1])
            block = b"".join(self._partial)
            self._partial = []
            self._partial_bytes = 0
        else:
            block = chunk[: end + 1]
        if end + 1 < len(chunk):
            self._keep_partial(chunk[end + 1 :])
        elif chunk[end] == _CR:
            self._skip_lf = True
        # ``bytes.splitlines`` breaks on exactly \r\n, \n and \r (unlike ``str.splitlines``), as the spec wants, and
        # ``block`` ends with a terminator, so there is no trailing empty piece.
        events: list[SSEEvent] = []
        for line in block.splitlines():
            self._line(line, events)
        return events

    def close(self) -> list[SSEEvent]:
        """End the stream.

        Returns:
            Nothing, per the spec (an unfinished event is discarded), unless ``dispatch_at_eof`` was given: then
            the unfinished event, if it has data. Either way :attr:`pending` now tells whether the stream ended
            mid-event. Calling it again returns nothing.
        """
        if self._closed:
            return []
        self._pending_at_close = self.pending
        self._closed = True
        events: list[SSEEvent] = []
        if self._dispatch_at_eof:
            rest = b"".join(self._partial) if self._partial else (self._bom_head or b"")
            if rest:
                self._line(rest.removeprefix(_BOM), events)
            self._line(b"", events)
        self._partial = []
        self._data = []
        return events

    def _keep_partial(self, piece: bytes) -> None:
        self._partial.append(piece)
        self._partial_bytes += len(piece)
        self._check_size()

    def _check_size(self) -> None:
        if self._partial_bytes + self._data_bytes > self._max_event_bytes:
            raise StreamDecodeError(f"server-sent event larger than {self._max_event_bytes} bytes")

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent(self._event, "\n".join(self._data), self._last_id, self._event_retry))
                self._event_retry = None
            self._data = []
            self._data_bytes = 0
            self._event = None
            self._in_event = False
            return
        colon = line.find(b":")
        if colon == 0:
            self.comments += 1
            return
        self._in_event = True
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            # Only one space after the colon is syntax; any further spaces belong to the value.
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            self._data.append(_decode(value))
            self._data_bytes += len(value)
            if self._data_bytes > self._max_event_bytes:
                self._check_size()
        elif name == b"event":
            self._event = _decode(value) or None
        elif name == b"id":
            if b"\x00" not in value:  # the spec ignores an id containing NULL
                self._last_id = _decode(value) or None
        elif name == b"retry":
            # ``bytes.isdigit`` accepts ASCII digits only, exactly the spec's rule.
            if value.isdigit():
                self.retry = self._event_retry = int(value)
        # any other field name is ignored, as the spec says


class NDJSONParser:
    """Incremental newline-delimited JSON parser: one JSON value per ``\\n``-terminated line.

    Blank lines are skipped and a ``\\r`` before the ``\\n`` is tolerated. A last line without a trailing
    newline is parsed by :meth:`close`.

    Args:
        max_line_bytes: the longest line the parser buffers before giving up.

    .. versionadded:: 0.1
    """

    __slots__ = ("_closed", "_lineno", "_max_line_bytes", "_partial", "_partial_bytes")

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max_line_bytes = max_line_bytes
        self._partial: list[bytes] = []
        self._partial_bytes = 0
        self._lineno = 0
        self._closed = False

    @property
    def pending(self) -> bool:
        """Whether an unfinished line is buffered (before :meth:`close`)."""
        return bool(self._partial)

    def feed(self, chunk: bytes) -> list[Any]:
        """Parse the next chunk of the body.

        Args:
            chunk: the next bytes, split anywhere.

        Returns:
            The JSON values of the lines this chunk completed, in order.

        Raises:
            StreamDecodeError: a completed line is not valid JSON (``lineno`` names it), or a line exceeds
                ``max_line_bytes``. The parser should be discarded afterwards.
            RuntimeError: the parser was closed.
        """
        if self._closed:
            raise RuntimeError("feed() after close()")
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._partial.append(chunk)
                self._partial_bytes += len(chunk)
                if self._partial_bytes > self._max_line_bytes:
                    raise StreamDecodeError(
                        f"NDJSON line longer than {self._max_line_bytes} bytes", lineno=self._lineno + 1
                    )
            return []
        if self._partial:
            self._partial.append(chunk[:end])
            block = b"".join(self._partial)
            self._partial = []
            self._partial_bytes = 0
        else:
            block = chunk[:end]
        if end + 1 < len(chunk):
            rest = chunk[end + 1 :]
            self._partial.append(rest)
            self._partial_bytes = len(rest)
        values: list[Any] = []
        for line in block.split(b"\n"):
            self._parse(line, values)
        return values

    def close(self) -> list[Any]:
        """End the stream, parsing a last line that had no trailing newline.

        Raises:
            StreamDecodeError: that last line is not valid JSON.
        """
        if self._closed:
            return []
        self._closed = True
        values: list[Any] = []
        if self._partial:
            line = b"".join(self._partial)
            self._partial = []
            self._parse(line, values)
        return values

    def _parse(self, line: bytes, values: list[Any]) -> None:
        self._lineno += 1
        if not line or line.isspace():
            return
        try:
            # json.loads takes bytes and decodes them itself (UTF-8, with or without a BOM).
            values.append(json.loads(line))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            preview = line[:_PREVIEW_CHARS].decode("utf-8", "replace")
            raise StreamDecodeError(
                f"malformed NDJSON on line {self._lineno}: {exc} (line starts {preview!r})", lineno=self._lineno
            ) from exc
