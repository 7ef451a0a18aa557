"""The sole owner of aiohttp on the client side: the session, requests, streams and error mapping.

Every provider talks HTTP through :class:`HTTPClient`; every status code and transport failure becomes an
exception from :mod:`asyncrouter._exceptions` in :func:`error_from_response` / :func:`error_from_payload`, the
one place where that mapping lives.
"""

from __future__ import annotations

import asyncio
import functools
import json
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final

import aiohttp

from ._exceptions import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextLengthExceeded,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderServerError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    StreamInterrupted,
    redact,
)

__all__ = [
    "DEFAULT_CONNECTION_LIMIT",
    "HTTPClient",
    "JSONReply",
    "error_from_payload",
    "error_from_response",
    "parse_retry_after",
    "post_json_once",
]

DEFAULT_CONNECTION_LIMIT = 1000
DEFAULT_CONNECT_TIMEOUT = 10.0
_MAX_ERROR_BODY = 64 * 1024

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "reduce the length",
    "context window",
)
_QUOTA_MARKERS = ("insufficient_quota", "quota", "billing", "credit balance", "exceeded your current")
_POLICY_MARKERS = (
    "content_policy",
    "content policy",
    "content_filter",
    "content filtering",
    "safety system",
    "moderation",
    "flagged",
)
_OVERLOAD_MARKERS = ("overloaded", "server busy", "maximum pending requests", "capacity")


@dataclass(slots=True)
class JSONReply:
    """A decoded JSON body with the status, headers we care about and the provider's request id."""

    status: int
    data: Any
    request_id: str | None


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("request-id") or headers.get("x-amzn-requestid")


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred, finer) or ``Retry-After`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        value = float(ra)
        return value if value >= 0 else None
    except ValueError:
        pass
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _error_fields(payload: Any) -> tuple[str, str, str]:
    """(message, type, code) from any of the error shapes providers use."""
    if isinstance(payload, Mapping):
        err = payload.get("error", payload)
        if isinstance(err, Mapping):
            message = err.get("message") or err.get("msg") or payload.get("message") or ""
            etype = err.get("type") or ""
            code = err.get("code") or ""
            return str(message), str(etype), str(code)
        if isinstance(err, str):
            return err, "", ""
    if isinstance(payload, str):
        return payload, "", ""
    return "", "", ""


def error_from_payload(
    status: int | None,
    payload: Any,
    *,
    provider: str,
    model: str,
    request_id: str | None = None,
    retry_after: float | None = None,
    secrets: Sequence[str] = (),
) -> ProviderError:
    """Map an HTTP status and an error body (decoded JSON or text) to the most specific exception.

    Also used for errors delivered *inside* a 200 stream (OpenRouter ``data: {"error": ...}``, Anthropic
    ``event: error``), where ``status`` is the code the payload claims, if any.
    """
    message, etype, code = _error_fields(payload)
    message = redact(message[:500], secrets) or f"HTTP {status}"
    blob = f"{message} {etype} {code}".lower()
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status, "request_id": request_id}
    if status is None and code.isdigit():
        status = int(code)
        kw["status_code"] = status
    if any(m in blob for m in _CONTEXT_MARKERS):
        return ContextLengthExceeded(message, **kw)
    if status == 402 or "insufficient_quota" in blob or (status == 429 and any(m in blob for m in _QUOTA_MARKERS)):
        return QuotaExhausted(message, **kw)
    if status == 429 or etype == "rate_limit_error":
        return RateLimited(message, retry_after=retry_after, **kw)
    if status == 529 or etype == "overloaded_error" or (status == 503 and any(m in blob for m in _OVERLOAD_MARKERS)):
        return ProviderOverloaded(message, **kw)
    if any(m in blob for m in _POLICY_MARKERS) and status != 401:
        # before auth: OpenRouter refuses moderated input with 403
        return ContentPolicyError(message, **kw)
    if status in (401, 403) or etype in ("authentication_error", "permission_error"):
        return AuthenticationError(message, **kw)
    if status is not None and 400 <= status < 500:
        if status in (408,):
            return ProviderTimeout(message, **kw)
        return BadRequestError(message, **kw)
    if etype in ("invalid_request_error", "not_found_error"):
        return BadRequestError(message, **kw)
    return ProviderServerError(message, **kw)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    model: str,
    secrets: Sequence[str] = (),
    now: float | None = None,
) -> ProviderError:
    """Map a non-2xx HTTP response to an exception (see :func:`error_from_payload`)."""
    payload: Any
    try:
        payload = json.loads(body) if body else ""
    except ValueError:
        payload = body[:500].decode("utf-8", "replace")
    return error_from_payload(
        status,
        payload,
        provider=provider,
        model=model,
        request_id=_request_id(headers),
        retry_after=parse_retry_after(headers, now=now),
        secrets=secrets,
    )


def _transport_error(exc: BaseException, *, provider: str, model: str, streaming: bool = False) -> ProviderError:
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderTimeout("timed out waiting for the provider", **kw)
    if isinstance(exc, aiohttp.ClientPayloadError) or (streaming and isinstance(exc, aiohttp.ServerDisconnectedError)):
        return StreamInterrupted(f"stream interrupted: {type(exc).__name__}", **kw)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderConnectionError(f"cannot connect: {exc.os_error.strerror or type(exc).__name__}", **kw)
    return ProviderConnectionError(f"connection failed: {type(exc).__name__}", **kw)


@functools.lru_cache(maxsize=64)
def _total_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A timeout for a whole non-streamed call; cached, since most calls use their model's fixed timeout.

    The TCP connect gets its own bound (``sock_connect``), but not the wait for a free pooled connection
    (aiohttp's ``connect`` includes it): a big batch queueing for the pool is not a provider timing out.
    """
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, DEFAULT_CONNECT_TIMEOUT))


#: compact JSON, UTF-8 left as is; built once (``json.dumps`` with options builds an encoder on every call)
_JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(body: Mapping[str, Any], headers: Mapping[str, str], accept: str) -> tuple[bytes, dict[str, str]]:
    """The compact JSON body and the request headers (ours first, so the caller's win)."""
    data = _JSON_ENCODER.encode(body).encode()
    return data, {"Content-Type": "application/json", "Accept": accept, **headers}


class HTTPClient:
    """One pooled :class:`aiohttp.ClientSession` per Router, opened and closed with it.

    Args:
        limit: maximum simultaneous connections over all hosts.
        limit_per_host: maximum simultaneous connections per host (0: no limit).
    """

    def __init__(self, *, limit: int = DEFAULT_CONNECTION_LIMIT, limit_per_host: int = 0) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def aopen(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300, enable_cleanup_closed=False
            )
            # json serialisation is ours (bytes bodies), so no json_serialize here; no cookie jar: stateless APIs.
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False, auto_decompress=True
            )
            self._closed = False

    async def aclose(self) -> None:
        session, self._session = self._session, None
        self._closed = True
        if session is not None and not session.closed:
            await session.close()

    def _require(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("the router is not open: use `async with router:` (or `await router.aopen()`)")
        return self._session

    async def post_json(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        timeout: float,
        provider: str,
        model: str,
        secrets: Sequence[str] = (),
        now: float | None = None,
    ) -> JSONReply:
        """POST a JSON body and decode the JSON reply; raise the mapped error on non-2xx or bad JSON."""
        session = self._require()
        data, hdrs = _encode(body, headers, "application/json")
        try:
            async with session.post(url, data=data, headers=hdrs, timeout=_total_timeout(timeout)) as resp:
                raw = await resp.read()
                status = resp.status
                if status >= 400:
                    raise error_from_response(
                        status,
                        resp.headers,
                        raw[:_MAX_ERROR_BODY],
                        provider=provider,
                        model=model,
                        secrets=secrets,
                        now=now,
                    )
                rid = _request_id(resp.headers)
        except ProviderError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider=provider, model=model) from None
        try:
            decoded = json.loads(raw)
        except ValueError:
            raise MalformedResponse(
                "response body is not valid JSON", provider=provider, model=model, status_code=status, request_id=rid
            ) from None
        if isinstance(decoded, Mapping) and "error" in decoded and decoded.get("error"):
            # Some OpenAI-compatible servers report errors with HTTP 200.
            raise error_from_payload(None, decoded, provider=provider, model=model, request_id=rid, secrets=secrets)
        return JSONReply(status=status, data=decoded, request_id=rid)

    @asynccontextmanager
    async def stream(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        timeout: float,
        provider: str,
        model: str,
        secrets: Sequence[str] = (),
        accept: str = "text/event-stream",
        now: float | None = None,
    ) -> AsyncIterator[ByteStream]:
        """POST and yield a :class:`ByteStream` over the 2xx body; raise the mapped error otherwise.

        ``timeout`` bounds connecting and each wait for the next chunk (inactivity), not the whole stream:
        a long reply that keeps flowing is not cut off.
        """
        session = self._require()
        data, hdrs = _encode(body, headers, accept)
        # The pool wait plus the connect are bounded by the attempt's timeout, the TCP connect alone by
        # DEFAULT_CONNECT_TIMEOUT, and then each read by the timeout again (inactivity).
        client_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=min(timeout, DEFAULT_CONNECT_TIMEOUT), sock_read=timeout
        )
        try:
            cm = session.post(url, data=data, headers=hdrs, timeout=client_timeout)
            resp = await cm.__aenter__()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider=provider, model=model) from None
        try:
            if resp.status >= 400:
                try:
                    raw = await resp.content.read(_MAX_ERROR_BODY)
                except (TimeoutError, aiohttp.ClientError):
                    raw = b""
                raise error_from_response(
                    resp.status, resp.headers, raw, provider=provider, model=model, secrets=secrets, now=now
                )
            yield ByteStream(resp, provider=provider, model=model, request_id=_request_id(resp.headers))
        finally:
            resp.release()
            await cm.__aexit__(None, None, None)

    async def post_fire_and_forget(self, url: str, *, body: Mapping[str, Any], timeout: float) -> int:
        """POST a JSON body (webhooks) and return the status; transport errors become ProviderConnectionError."""
        session = self._require()
        try:
            async with session.post(url, json=dict(body), timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider="webhook", model="") from None

    def __del__(self, _warn: Any = warnings.warn) -> None:
        session = self._session
        if session is not None and not session.closed:
            _warn(f"unclosed {self!r}: use `async with router:`", ResourceWarning, stacklevel=1)


class ByteStream:
    """Chunks of a streaming body, with transport errors mapped to :class:`StreamInterrupted` and friends."""

    __slots__ = ("_model", "_provider", "_resp", "request_id")

    def __init__(self, resp: aiohttp.ClientResponse, *, provider: str, model: str, request_id: str | None) -> None:
        self._resp = resp
        self._provider = provider
        self._model = model
        self.request_id = request_id

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider=self._provider, model=self._model, streaming=True) from None


async def post_json_once(url: str, body: Mapping[str, Any], *, timeout: float = 10.0) -> int:
    """POST JSON with a throwaway session (for one-off webhooks outside a Router). Returns the status."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=dict(body), timeout=aiohttp.ClientTimeout(total=timeout)) as resp,
    ):
        await resp.read()
        return resp.status
