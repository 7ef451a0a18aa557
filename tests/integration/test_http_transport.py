"""The client transport (``asyncrouter._http.HTTPClient``) on the wire: real sockets, real servers on 127.0.0.1.

Non-streamed calls and streams drive aiohttp's connection pool and response parser directly, without
``ClientSession.post``; these tests hold that path to what the session gave us: keep-alive reuse, the server's
``Connection: close``, chunked and gzip bodies, timeouts, cancellation, truncated bodies, 1xx replies, TLS with
certificate checks, no redirects followed, no header injection, and no reply ever handed to the wrong caller.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from asyncrouter import (
    BadRequestError,
    ProviderConnectionError,
    ProviderServerError,
    ProviderTimeout,
    RateLimited,
    StreamInterrupted,
)
from asyncrouter._http import HTTPClient
from loopback import (
    LoopbackServer,
    app_with,
    content_length,
    post_from_subprocess,
    serve_app,
    tls_server_context,
)

KW: dict[str, Any] = {"provider": "openai", "model": "m"}


# --- servers -------------------------------------------------------------------------------------------------


class App:
    """An aiohttp server on 127.0.0.1 that records which client connection (peer port) each request came on."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/{path:.*}", self._dispatch)
        self.handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}
        self.peers: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    def route(self, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        self.handlers[path] = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peers.append(peer[1] if peer else -1)
        self.requests.append({"headers": dict(request.headers), "body": await request.read()})
        return await self.handlers[request.path](request)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> App:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


class RawServer(LoopbackServer):
    """Answers each request with canned bytes, for replies aiohttp's server will not send."""

    def __init__(self, reply: Callable[[bytes], bytes | None]) -> None:
        super().__init__()
        self.reply = reply
        self.received: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request = head + await reader.readexactly(content_length(head))
            self.received.append(request)
            answer = self.reply(request)
            if answer is None:  # close without a reply
                return
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer.lower():
                return

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def ok(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(extra)
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"echo": json.loads(await request.read())})


# --- connections -------------------------------------------------------------------------------------------------


async def test_sequential_calls_share_one_keep_alive_connection(http: HTTPClient) -> None:
    async with App() as app:
        app.route("/v1/chat", echo)
        for i in range(30):
            reply = await http.post_json(app.url("/v1/chat"), headers={}, body={"i": i}, timeout=5, **KW)
            assert reply.data == {"echo": {"i": i}}
        assert len(set(app.peers)) == 1, app.peers


async def test_the_servers_connection_close_is_honoured(http: HTTPClient) -> None:
    async def closing(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.force_close()
        return response

    async with App() as app:
        app.route("/v1/chat", closing)
        for _ in range(5):
            reply = await http.post_json(app.url("/v1/chat"), headers={}, body={}, timeout=5, **KW)
            assert reply.data == {"ok": True}
        assert len(set(app.peers)) == 5, "each reply closed its connection, so each call needs a new one"


async def test_a_connection_the_server_dropped_while_idle_is_not_reused(http: HTTPClient) -> None:
    async with RawServer(lambda req: ok(b'{"n": 1}')) as server:
        await http.post_json(server.url(), headers={}, body={}, timeout=5, **KW)
        # the server drops its side of the idle keep-alive connection
        server.server.close()  # type: ignore[union-attr]
        await server.server.wait_closed()  # type: ignore[union-attr]
    async with RawServer(lambda req: ok(b'{"n": 2}')) as again:
        reply = await http.post_json(again.url(), headers={}, body={}, timeout=5, **KW)
        assert reply.data == {"n": 2}


# --- bodies and heads ---------------------------------------------------------------------------------------------


async def test_chunked_and_gzip_replies_are_decoded(http: HTTPClient) -> None:
    payload = {"choices": [{"text": "é" * 3000}]}

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        data = json.dumps(payload).encode()
        for i in range(0, len(data), 1000):
            await response.write(data[i : i + 1000])
        await response.write_eof()
        return response

    async def gzipped(request: web.Request) -> web.Response:
        assert "gzip" in request.headers.get("Accept-Encoding", "")
        body = gzip.compress(json.dumps(payload).encode())
        return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    async with App() as app:
        app.route("/chunked", chunked)
        app.route("/gzip", gzipped)
        for path in ("/chunked", "/gzip", "/chunked"):
            reply = await http.post_json(app.url(path), headers={}, body={}, timeout=5, **KW)
            assert reply.data == payload, path
        assert len(set(app.peers)) == 1


async def test_the_request_on_the_wire(http: HTTPClient) -> None:
    async with RawServer(lambda req: ok(b"{}", b"x-request-id: req_42\r\n")) as server:
        url = server.url("/v1/chat/completions?api-version=2024-10-21")
        reply = await http.post_json(
            url,
            headers={"Authorization": "Bearer sk-test", "accept": "application/vnd.custom+json", "X-Extra": "1"},
            body={"model": "m", "messages": [{"role": "user", "content": "héllo"}]},
            timeout=5,
            **KW,
        )
    assert reply.request_id == "req_42"
    raw = server.received[0]
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions?api-version=2024-10-21 HTTP/1.1"
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, value = line.split(": ", 1)
        fields.setdefault(name.lower(), []).append(value)
    assert fields["host"] == [f"127.0.0.1:{server.port}"]
    assert fields["authorization"] == ["Bearer sk-test"]
    assert fields["accept"] == ["application/vnd.custom+json"], "the caller's header replaces the default"
    assert fields["content-type"] == ["application/json"]
    assert fields["content-length"] == [str(len(body))]
    assert fields["x-extra"] == ["1"]
    assert "aiohttp" in fields["user-agent"][0]
    assert json.loads(body) == {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}
    assert b" " not in body.replace(b"\xc3\xa9llo", b""), "compact JSON"


async def test_informational_replies_are_skipped(http: HTTPClient) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    async with RawServer(lambda req: early + ok(b'{"done": true}')) as server:
        reply = await http.post_json(server.url(), headers={}, body={}, timeout=5, **KW)
    assert reply.data == {"done": True}


async def test_a_truncated_body_is_a_connection_error_and_the_next_call_works(http: HTTPClient) -> None:
    async with RawServer(lambda req: None) as dropper:
        with pytest.raises(ProviderConnectionError):
            await http.post_json(dropper.url(), headers={}, body={}, timeout=5, **KW)

    async def partial(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"partial":')
        assert request.transport is not None
        request.transport.close()
        return response

    async with App() as app:
        app.route("/partial", partial)
        app.route("/ok", echo)
        with pytest.raises(StreamInterrupted):
            await http.post_json(app.url("/partial"), headers={}, body={}, timeout=5, **KW)
        reply_ok = await http.post_json(app.url("/ok"), headers={}, body={"x": 1}, timeout=5, **KW)
        assert reply_ok.data == {"echo": {"x": 1}}


async def test_redirects_are_not_followed(http: HTTPClient) -> None:
    async with App() as app:

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(location=app.url("/elsewhere"))

        app.route("/v1/chat", moved)
        app.route("/elsewhere", echo)
        with pytest.raises(BadRequestError) as info:
            await http.post_json(
                app.url("/v1/chat"), headers={"Authorization": "Bearer sk-x"}, body={}, timeout=5, **KW
            )
        assert info.value.status_code == 307
        assert "base_url" in str(info.value)
        assert "/elsewhere" in str(info.value)
        assert len(app.requests) == 1, "the key was not carried to the new location"


async def test_error_statuses_keep_their_mapping(http: HTTPClient) -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)

    async with App() as app:
        app.route("/v1/chat", failing)
        app.route("/ok", echo)
        with pytest.raises(ProviderServerError, match="boom"):
            await http.post_json(app.url("/v1/chat"), headers={}, body={}, timeout=5, **KW)
        # an error reply read to its end leaves the connection reusable
        await http.post_json(app.url("/ok"), headers={}, body={}, timeout=5, **KW)
        assert len(set(app.peers)) == 1


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(http: HTTPClient) -> None:
    async with RawServer(lambda req: ok(b"{}")) as server:
        with pytest.raises(ValueError, match="X-Test") as info:
            await http.post_json(server.url(), headers={"X-Test": "a\r\nInjected: 1"}, body={}, timeout=5, **KW)
        assert "Injected" not in str(info.value), "the value (maybe a key) is not echoed"
        assert server.received == []


# --- time and cancellation --------------------------------------------------------------------------------------


async def test_the_timeout_bounds_the_whole_call_and_the_connection_is_dropped(http: HTTPClient) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    async with App() as app:
        app.route("/slow", slow)
        app.route("/ok", echo)
        with anyio.fail_after(1.5):
            with pytest.raises(ProviderTimeout):
                await http.post_json(app.url("/slow"), headers={}, body={}, timeout=0.2, **KW)
        await http.post_json(app.url("/ok"), headers={}, body={}, timeout=5, **KW)
        assert app.peers[0] != app.peers[1], "a timed-out connection is never handed out again"


async def test_cancelled_calls_free_their_pool_slots() -> None:
    """With a pool of 2, 60 cancelled calls would deadlock the next call if any slot leaked."""
    gate = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await gate.wait()
        return web.json_response({})

    http = HTTPClient(limit=2)
    await http.aopen()
    try:
        async with App() as app:
            app.route("/held", held)
            app.route("/ok", echo)
            for _ in range(30):
                async with anyio.create_task_group() as tg:
                    for _ in range(2):
                        tg.start_soon(lambda: http.post_json(app.url("/held"), headers={}, body={}, timeout=30, **KW))
                    await asyncio.sleep(0.01)
                    tg.cancel_scope.cancel()
            with anyio.fail_after(5):
                reply = await http.post_json(app.url("/ok"), headers={}, body={"after": 1}, timeout=5, **KW)
            assert reply.data == {"echo": {"after": 1}}
            gate.set()
    finally:
        await http.aclose()


async def test_thousands_of_concurrent_calls_each_get_their_own_reply_under_cancellation() -> None:
    """2,000 calls over a pool of 50 connections, a fifth of them cancelled at random points."""

    async def jittery(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        await asyncio.sleep(random.random() * 0.01)
        return web.json_response({"id": body["id"]})

    http = HTTPClient(limit=50)
    await http.aopen()
    results: dict[int, Any] = {}
    cancelled = 0
    try:
        async with App() as app:
            app.route("/v1/chat", jittery)

            async def call(i: int) -> None:
                nonlocal cancelled
                with anyio.CancelScope() as scope:
                    if i % 5 == 0:
                        asyncio.get_running_loop().call_later(random.random() * 0.05, scope.cancel)
                    reply = await http.post_json(app.url("/v1/chat"), headers={}, body={"id": i}, timeout=30, **KW)
                    results[i] = reply.data["id"]
                if scope.cancelled_caught:
                    cancelled += 1

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for i in range(2000):
                        tg.start_soon(call, i)
            assert all(results[i] == i for i in results), "a reply reached the wrong caller"
            assert len(results) + cancelled == 2000
            assert len(results) >= 1600
            assert len(set(app.peers)) <= 50 + cancelled, "connections are pooled, not opened per call"
            # nothing leaked: a full pool's worth of calls still runs at once
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for i in range(50):
                        tg.start_soon(
                            lambda i=i: http.post_json(app.url("/v1/chat"), headers={}, body={"id": i}, timeout=5, **KW)
                        )
    finally:
        await http.aclose()


# --- streams ------------------------------------------------------------------------------------------------------


def sse_app(app: App, events: int, *, stall_after: int | None = None) -> None:
    async def sse(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(events):
            if stall_after is not None and i == stall_after:
                await asyncio.sleep(5)
            await response.write(f"data: {i}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app.route("/sse", sse)


async def read_stream(http: HTTPClient, url: str, *, timeout: float = 5, stop_after: int | None = None) -> bytes:
    data = b""
    async with http.stream(url, headers={}, body={"stream": True}, timeout=timeout, **KW) as body:
        async for chunk in body.chunks():
            data += chunk
            if stop_after is not None and data.count(b"\n\n") >= stop_after:
                break
    return data


async def test_a_stream_read_to_its_end_returns_its_connection_one_left_early_closes_it(http: HTTPClient) -> None:
    async with App() as app:
        sse_app(app, 20)
        whole = await read_stream(http, app.url("/sse"))
        assert whole.endswith(b"data: [DONE]\n\n")
        assert whole.count(b"data: ") == 21
        await read_stream(http, app.url("/sse"))
        assert len(set(app.peers)) == 1
        partial = await read_stream(http, app.url("/sse"), stop_after=3)
        assert partial.count(b"\n\n") >= 3
        await read_stream(http, app.url("/sse"))
        assert len(set(app.peers)) == 2, "the stream left early was not put back in the pool"


async def test_a_stalled_stream_times_out_between_chunks_not_on_its_length(http: HTTPClient) -> None:
    async with App() as app:
        sse_app(app, 10, stall_after=4)
        with anyio.fail_after(3), pytest.raises(ProviderTimeout):
            await read_stream(http, app.url("/sse"), timeout=0.3)

    async def slow_but_steady(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(8):
            await asyncio.sleep(0.1)
            await response.write(f"data: {i}\n\n".encode())
        await response.write_eof()
        return response

    async with App() as app:
        app.route("/steady", slow_but_steady)
        # 0.8 s in all, but never 0.3 s without a chunk: not a timeout
        data = await read_stream(http, app.url("/steady"), timeout=0.3)
        assert data.count(b"data: ") == 8


async def test_a_stream_error_status_is_mapped_and_its_connection_dropped(http: HTTPClient) -> None:
    async def limited(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"message": "slow down", "type": "rate_limit_error"}}, status=429, headers={"retry-after": "3"}
        )

    async with App() as app:
        app.route("/sse", limited)
        with pytest.raises(RateLimited, match="slow down") as info:
            await read_stream(http, app.url("/sse"))
        assert info.value.retry_after == 3.0


# --- TLS ------------------------------------------------------------------------------------------------------------


async def test_https_checks_the_servers_certificate(http: HTTPClient, tmp_path: Path) -> None:
    context, _ = tls_server_context(tmp_path)
    async with serve_app(app_with("/v1/chat", echo), ssl_context=context) as port:
        with pytest.raises(ProviderConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.post_json(f"https://localhost:{port}/v1/chat", headers={}, body={}, timeout=5, **KW)


def test_https_with_a_trusted_ca_from_ssl_cert_file(tmp_path: Path) -> None:
    """A private CA (a corporate proxy's) is trusted through SSL_CERT_FILE, as by every OpenSSL client."""
    context, ca_file = tls_server_context(tmp_path)

    async def serve() -> str:
        async with serve_app(app_with("/v1/chat", echo), ssl_context=context) as port:
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            env["SSL_CERT_FILE"] = str(ca_file)
            return await post_from_subprocess(f"https://localhost:{port}/v1/chat", env)

    assert asyncio.run(serve()) == "{'echo': {'tls': True}}"


async def test_a_closed_client_refuses_calls() -> None:
    http = HTTPClient()
    await http.aopen()
    await http.aclose()
    with pytest.raises(RuntimeError, match="not open"):
        await http.post_json("http://127.0.0.1:9/x", headers={}, body={}, timeout=1, **KW)


async def test_connection_refused_is_a_connection_error(http: HTTPClient) -> None:
    async with RawServer(lambda req: ok(b"{}")) as server:
        port = server.port
    with pytest.raises(ProviderConnectionError, match="cannot connect"):
        await http.post_json(f"http://127.0.0.1:{port}/x", headers={}, body={}, timeout=5, **KW)
