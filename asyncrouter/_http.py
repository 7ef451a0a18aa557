"""The sole owner of aiohttp on the client side: the session, requests, streams and error mapping.

Every provider talks HTTP through :class:`HTTPClient`; every status code and transport failure becomes an
exception from :mod:`asyncrouter._exceptions` in :func:`error_from_response` / :func:`error_from_payload`, the
one place where that mapping lives.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import sys
import urllib.request
import warnings
from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final, cast

import aiohttp
from aiohttp.connector import Connection
from aiohttp.http import RawResponseMessage
from yarl import URL

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


#: compact JSON, UTF-8 left as is; built once (``json.dumps`` with options builds an encoder on every call)
_JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


#: what aiohttp's session sends by default, bar brotli (the parser inflates gzip and deflate by itself)
_USER_AGENT: Final = f"Python/{sys.version_info[0]}.{sys.version_info[1]} aiohttp/{aiohttp.__version__}"
_DEFAULT_HEADERS: Final = (("user-agent", _USER_AGENT), ("accept-encoding", "gzip, deflate"))
#: header blocks kept per client (one per model, accept type and API key in use)
_MAX_HEADER_BLOCKS: Final = 1024


@functools.lru_cache(maxsize=64)
def _connect_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """Bounds the TCP (and TLS) connect of a non-streamed call; the call's own deadline bounds the rest."""
    return aiohttp.ClientTimeout(total=None, sock_connect=min(seconds, DEFAULT_CONNECT_TIMEOUT))


@dataclass(slots=True)
class _Endpoint:
    """A URL's connection key for aiohttp's pool and the fixed start of every request sent to it."""

    #: never sent: it only tells the connector which pooled connection (host, port, TLS) to hand out
    target: aiohttp.ClientRequest
    #: request line and Host header
    head: bytes


def _header_block(headers: Mapping[str, str], accept: str) -> bytes:
    """The caller's headers and the defaults the caller did not set (Content-Length and the blank line follow)."""
    names = {name.lower() for name in headers}
    lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
    if "content-type" not in names:
        lines.append("Content-Type: application/json\r\n")
    if "accept" not in names:
        lines.append(f"Accept: {accept}\r\n")
    for name, value in _DEFAULT_HEADERS:
        if name not in names:
            lines.append(f"{name}: {value}\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines) or "\x00" in text:
        # a value with a line break would smuggle headers (or a second request) onto the connection
        bad = [n for n, v in headers.items() if any(c in f"{n}{v}" for c in "\r\n\x00")]
        raise ValueError(f"HTTP header {bad[0] if bad else '?'!r} contains a line break or NUL")
    return text.encode()


def _status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    model: str,
    secrets: Sequence[str],
    now: float | None,
) -> ProviderError:
    """The error for a 3xx or an error status. Redirects are not followed: a POST that moved means a stale
    base_url, and following one elsewhere could carry the key along."""
    if status == 407:
        return AuthenticationError(
            "HTTP 407: the proxy refused its credentials (check http.proxy or HTTPS_PROXY)",
            provider=provider,
            model=model,
            status_code=status,
        )
    if status < 400:
        location = redact(headers.get("location", "?")[:200], secrets)
        return BadRequestError(
            f"HTTP {status}: the provider redirects to {location}; set base_url to the final URL",
            provider=provider,
            model=model,
            status_code=status,
            request_id=_request_id(headers),
        )
    return error_from_response(
        status, headers, body[:_MAX_ERROR_BODY], provider=provider, model=model, secrets=secrets, now=now
    )


def _json_reply(
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    provider: str,
    model: str,
    secrets: Sequence[str],
    now: float | None,
) -> tuple[Any, str | None]:
    """A 2xx body decoded, and the provider's request id; the mapped error for any other status or bad JSON."""
    if status >= 300:
        raise _status_error(status, headers, raw, provider=provider, model=model, secrets=secrets, now=now)
    rid = _request_id(headers)
    try:
        return json.loads(raw), rid
    except ValueError:
        raise MalformedResponse(
            "response body is not valid JSON", provider=provider, model=model, status_code=status, request_id=rid
        ) from None


async def _read_capped(body: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes of a body (an error body's first part)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await body.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class HTTPClient:
    """One pooled :class:`aiohttp.ClientSession` per Router, opened and closed with it.

    Provider calls (:meth:`post_json` and :meth:`stream`) skip the session's request machinery (redirects,
    cookies, tracing, per-call header assembly and body payload objects): they take a pooled keep-alive
    connection from the session's own connector (its limits, DNS cache, TLS and proxy tunnels), write the
    request in one call and read the reply with aiohttp's response parser. That costs about 40% of the client
    CPU of ``session.post`` (see ``benchmarks/bench_overhead.py``). Webhooks go through the session.

    Args:
        limit: maximum simultaneous connections over all hosts.
        limit_per_host: maximum simultaneous connections per host (0: no limit).
        proxy: a proxy URL for every request (``http://user:pass@host:port``); https targets get a CONNECT
            tunnel.
        trust_env: without ``proxy``, take proxies from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``.
    """

    def __init__(
        self,
        *,
        limit: int = DEFAULT_CONNECTION_LIMIT,
        limit_per_host: int = 0,
        proxy: str | None = None,
        trust_env: bool = False,
    ) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._proxy = URL(proxy) if proxy else None
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._endpoints: dict[str, _Endpoint] = {}
        self._header_blocks: dict[tuple[object, ...], bytes] = {}

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
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                auto_decompress=True,
                trust_env=self._trust_env,
            )
            self._closed = False

    async def aclose(self) -> None:
        session, self._session = self._session, None
        self._endpoints.clear()
        self._header_blocks.clear()
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
        """POST a JSON body and decode the JSON reply; raise the mapped error on non-2xx or bad JSON.

        ``timeout`` bounds the whole call: the wait for a pooled connection, connecting, sending and reading.
        """
        request = self._request(url, headers, body, "application/json")
        try:
            async with asyncio.timeout(timeout):
                conn, message, payload = await self._open(request, timeout)
                try:
                    raw = await payload.read()
                except BaseException:
                    conn.close()
                    raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider=provider, model=model) from None
        # back to the pool (or closed, when the server asked to)
        conn.release()
        status = message.code
        decoded, rid = _json_reply(
            status, message.headers, raw, provider=provider, model=model, secrets=secrets, now=now
        )
        if isinstance(decoded, Mapping) and "error" in decoded and decoded.get("error"):
            # Some OpenAI-compatible servers report errors with HTTP 200.
            raise error_from_payload(None, decoded, provider=provider, model=model, request_id=rid, secrets=secrets)
        return JSONReply(status=status, data=decoded, request_id=rid)

    def _request(
        self, url: str, headers: Mapping[str, str], body: Mapping[str, Any], accept: str
    ) -> tuple[_Endpoint, bytes]:
        """Where to send and the whole HTTP/1.1 request: head, the caller's headers and the compact JSON body."""
        endpoint = self._endpoints.get(url) or self._endpoint(url)
        data = _JSON_ENCODER.encode(body).encode()
        # a model sends the same headers every time but for its key: the block is built once per key
        key = (accept, *headers.items())
        block = self._header_blocks.get(key)
        if block is None:
            if len(self._header_blocks) >= _MAX_HEADER_BLOCKS:
                self._header_blocks.clear()
            block = self._header_blocks[key] = _header_block(headers, accept)
        return endpoint, b"%s%sContent-Length: %d\r\n\r\n%s" % (endpoint.head, block, len(data), data)

    def _endpoint(self, url: str) -> _Endpoint:
        session = self._require()
        target = URL(url)
        if target.scheme not in ("http", "https") or not target.raw_host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        host = target.raw_host
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        if not target.is_default_port():
            host = f"{host}:{target.port}"
        proxy, proxy_auth = self._proxy_for(target)
        head = f"POST {target.raw_path_qs} HTTP/1.1\r\nHost: {host}\r\n"
        if proxy is not None and target.scheme == "http":
            # plain http through a proxy: the absolute URL on the request line, the proxy's credentials in a
            # header (https goes through a CONNECT tunnel instead, which the connector opens with them)
            head = f"POST {target.with_fragment(None)} HTTP/1.1\r\nHost: {host}\r\n"
            if proxy_auth is not None:
                head += f"Proxy-Authorization: {proxy_auth}\r\n"
        request = aiohttp.ClientRequest(
            "POST",
            target,
            loop=asyncio.get_running_loop(),
            session=session,
            proxy=proxy,
            proxy_headers={"Proxy-Authorization": proxy_auth} if proxy_auth is not None else None,
        )
        if request.proxy_headers is not None:
            # the connector adds Host to the proxy headers when it connects, and they are part of the pool's key:
            # set it first, so the key stays the same and the connection is reused
            cast("MutableMapping[str, str]", request.proxy_headers)["Host"] = request.headers["Host"]
        endpoint = _Endpoint(target=request, head=head.encode())
        self._endpoints[url] = endpoint
        return endpoint

    def _proxy_for(self, target: URL) -> tuple[URL | None, str | None]:
        """The proxy for ``target`` (the configured one, else the environment's when trusted, else none) and
        its ``Proxy-Authorization`` value when its URL carries credentials."""
        proxy = self._proxy
        if proxy is None and self._trust_env:
            # the standard library's reading of HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, as aiohttp and httpx do
            if target.host is not None and urllib.request.proxy_bypass(target.host):
                return None, None
            value = urllib.request.getproxies().get(target.scheme)
            proxy = URL(value) if value else None
        if proxy is None:
            return None, None
        if proxy.user is None:
            return proxy, None
        credentials = f"{proxy.user}:{proxy.password or ''}".encode("latin-1", "replace")
        return proxy.with_user(None), f"Basic {base64.b64encode(credentials).decode()}"

    async def _open(
        self, request: tuple[_Endpoint, bytes], timeout: float, *, read_timeout: float | None = None
    ) -> tuple[Connection, RawResponseMessage, aiohttp.StreamReader]:
        """Send on a pooled keep-alive connection and read the reply's head; the caller bounds the time.

        The caller reads the body, then releases the connection to the pool, or closes it if the body was not
        read to its end. ``read_timeout`` bounds each wait for body bytes (inactivity), for streams.
        """
        endpoint, data = request
        connector = self._require().connector
        assert connector is not None
        conn = await connector.connect(endpoint.target, [], _connect_timeout(timeout))
        try:
            protocol = conn.protocol
            transport = conn.transport
            if protocol is None or transport is None:
                raise aiohttp.ServerDisconnectedError()
            protocol.set_response_params(auto_decompress=True, read_timeout=read_timeout)
            transport.write(data)
            message, payload = await protocol.read()
            while 100 <= message.code < 200:  # informational (103 Early Hints): the real reply follows
                message, payload = await protocol.read()
        except BaseException:
            # cancelled or failed mid-exchange: the connection's state is unknown, never reuse it
            conn.close()
            raise
        return conn, message, payload

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
        request = self._request(url, headers, body, accept)
        try:
            # the pool wait, the connect and the reply's head within the timeout; then each read within it
            async with asyncio.timeout(timeout):
                conn, message, payload = await self._open(request, timeout, read_timeout=timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider=provider, model=model) from None
        try:
            if message.code >= 300:
                raw = b""
                with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                    async with asyncio.timeout(timeout):
                        raw = await _read_capped(payload, _MAX_ERROR_BODY)
                raise _status_error(
                    message.code, message.headers, raw, provider=provider, model=model, secrets=secrets, now=now
                )
            yield ByteStream(payload, provider=provider, model=model, request_id=_request_id(message.headers))
        finally:
            # a stream read to its end goes back to the pool; one left early (or failed) is closed
            if payload.is_eof() and not payload.exception():
                conn.release()
            else:
                conn.close()

    async def get_json(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        provider: str,
        model: str,
        secrets: Sequence[str] = (),
    ) -> JSONReply:
        """GET a JSON document (a provider's models listing) through the session; errors mapped as for
        :meth:`post_json`. Not on any request's path."""
        session = self._require()
        target = URL(url)
        proxy, proxy_auth = self._proxy_for(target)
        try:
            async with session.get(
                target,
                headers={"Accept": "application/json", **headers},
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, DEFAULT_CONNECT_TIMEOUT)),
                allow_redirects=False,
                proxy=proxy,
                proxy_headers={"Proxy-Authorization": proxy_auth} if proxy_auth is not None else None,
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, provider=provider, model=model) from None
        data, rid = _json_reply(status, resp_headers, raw, provider=provider, model=model, secrets=secrets, now=None)
        return JSONReply(status=status, data=data, request_id=rid)

    async def post_fire_and_forget(self, url: str, *, body: Mapping[str, Any], timeout: float) -> int:
        """POST a JSON body (webhooks) and return the status; transport errors become ProviderConnectionError."""
        session = self._require()
        try:
            proxy, proxy_auth = self._proxy_for(URL(url)) if self._proxy is not None else (None, None)
            async with session.post(
                url,
                json=dict(body),
                timeout=aiohttp.ClientTimeout(total=timeout),
                proxy=proxy,
                proxy_headers={"Proxy-Authorization": proxy_auth} if proxy_auth is not None else None,
            ) as resp:
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

    __slots__ = ("_body", "_model", "_provider", "request_id")

    def __init__(self, body: aiohttp.StreamReader, *, provider: str, model: str, request_id: str | None) -> None:
        self._body = body
        self._provider = provider
        self._model = model
        self.request_id = request_id

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._body.iter_any():
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
