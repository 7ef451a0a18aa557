"""Provider requests through a forward proxy: the configured ``http.proxy``, or HTTP(S)_PROXY / NO_PROXY.

The proxy here is a real one on 127.0.0.1: plain http requests arrive in absolute form (and it answers them
itself), https ones through a CONNECT tunnel that it pipes to the TLS server. It demands credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from asyncrouter import AllProvidersFailed, AuthenticationError, ConfigError, ProviderConnectionError, Router
from asyncrouter._http import HTTPClient
from asyncrouter.testing import FakeModel, FakeProviderServer
from loopback import LoopbackServer, app_with, content_length, post_from_subprocess, serve_app, tls_server_context

KW: dict[str, Any] = {"provider": "openai", "model": "m"}
USER, PASSWORD = "alice", "proxy-secret-1234"


class ForwardProxy(LoopbackServer):
    """Answers absolute-form requests itself, tunnels CONNECT; both need Basic ``alice:proxy-secret-1234``."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: list[str] = []

    def url(self, *, auth: bool = True) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}" if auth else f"http://127.0.0.1:{self.port}"

    def _authorised(self, head: str) -> bool:
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return any(line.lower() == f"proxy-authorization: {want}".lower() for line in head.split("\r\n"))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            self.heads.append(head)
            method, target, _ = head.split("\r\n", 1)[0].split(" ")
            if not self._authorised(head):
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            body = await reader.readexactly(content_length(head))
            answer = json.dumps({"via": "proxy", "target": target, "echo": json.loads(body)}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(answer), answer)
            )
            await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as p:
        yield p


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


async def post(http: HTTPClient, url: str, body: dict[str, Any]) -> Any:
    await http.aopen()
    try:
        return (
            await http.post_json(url, headers={"Authorization": "Bearer sk-provider"}, body=body, timeout=5, **KW)
        ).data
    finally:
        await http.aclose()


async def test_plain_http_goes_through_the_configured_proxy_in_absolute_form(proxy: ForwardProxy) -> None:
    http = HTTPClient(proxy=proxy.url())
    data = await post(http, "http://api.example.test:8080/v1/chat/completions?x=1", {"n": 1})
    assert data == {"via": "proxy", "target": "http://api.example.test:8080/v1/chat/completions?x=1", "echo": {"n": 1}}
    head = proxy.heads[0]
    assert head.startswith("POST http://api.example.test:8080/v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert "Host: api.example.test:8080\r\n" in head
    assert "Authorization: Bearer sk-provider\r\n" in head


async def test_the_proxy_connection_is_kept_alive(proxy: ForwardProxy) -> None:
    http = HTTPClient(proxy=proxy.url())
    await http.aopen()
    try:
        for i in range(5):
            reply = await http.post_json("http://api.example.test/v1/x", headers={}, body={"i": i}, timeout=5, **KW)
            assert reply.data["echo"] == {"i": i}
    finally:
        await http.aclose()
    assert proxy.connections == 1


async def test_a_proxy_refusing_the_credentials_is_an_error_naming_it(proxy: ForwardProxy) -> None:
    http = HTTPClient(proxy=proxy.url(auth=False))
    with pytest.raises(AuthenticationError, match="407"):
        await post(http, "http://api.example.test/v1/x", {})


async def test_proxy_from_the_environment_and_no_proxy(proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    data = await post(HTTPClient(trust_env=True), "http://api.example.test/v1/x", {"env": True})
    assert data["via"] == "proxy"
    # not trusted: straight to the host, which does not exist
    with pytest.raises(ProviderConnectionError, match="cannot connect"):
        await post(HTTPClient(trust_env=False), "http://api.example.test/v1/x", {})
    async with FakeProviderServer(models=[FakeModel("m", cost_per_1k_input=0.001, cost_per_1k_output=0.002)]) as srv:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        cfg = srv.config_dict(default_model="m")
        async with Router.from_dict(cfg) as router:
            r = await router.aroute("hello there", model="m")
        assert r.content
        assert len(proxy.heads) == 1, "NO_PROXY sent the loopback fleet around the proxy"


async def test_the_router_uses_http_proxy_and_never_shows_its_password(proxy: ForwardProxy) -> None:
    async with FakeProviderServer(models=[FakeModel("m", cost_per_1k_input=0.001, cost_per_1k_output=0.002)]) as srv:
        cfg = srv.config_dict(default_model="m")
        cfg["http"] = {"proxy": proxy.url(), "connection_limit": 10}
        router = Router.from_dict(cfg)
        assert PASSWORD not in repr(router.config)
        assert PASSWORD not in router.config.model_dump_json()
        async with router:
            # the proxy answers with its own echo, which is not a chat completion: the call fails on parsing,
            # proving the request went through the proxy rather than to the fleet
            with pytest.raises(AllProvidersFailed, match="MalformedResponse") as info:
                await router.aroute("hello there", model="m")
        assert PASSWORD not in str(info.value)
        assert proxy.heads
        assert proxy.heads[0].startswith(f"POST http://127.0.0.1:{srv.port}/")


def test_a_proxy_url_must_be_http() -> None:
    with pytest.raises(ConfigError) as info:
        Router.from_dict(
            {
                "models": [{"name": "m", "model_id": "x", "provider": "ollama"}],
                "http": {"proxy": "socks5://127.0.0.1:1080"},
            }
        )
    assert info.value.path == "http.proxy"
    assert "SOCKS" in str(info.value)


def test_https_through_a_connect_tunnel_from_https_proxy(tmp_path: Path) -> None:
    """An https provider behind HTTPS_PROXY: CONNECT with the proxy's credentials, then TLS end to end."""
    context, ca_file = tls_server_context(tmp_path)

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"echo": await request.json(), "scheme": request.scheme})

    async def scenario() -> tuple[str, list[str]]:
        async with serve_app(app_with("/v1/chat", echo), ssl_context=context) as port, ForwardProxy() as proxy:
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            env |= {"SSL_CERT_FILE": str(ca_file), "HTTPS_PROXY": proxy.url()}
            return await post_from_subprocess(f"https://localhost:{port}/v1/chat", env), proxy.heads

    out, heads = asyncio.run(scenario())
    assert out == "{'echo': {'tls': True}, 'scheme': 'https'}"
    assert heads[0].startswith("CONNECT localhost:")
    assert len(heads) == 1, "everything after the CONNECT was TLS the proxy could not read"


async def test_http_connection_limit_caps_the_connections_to_providers() -> None:
    peers: set[int] = set()
    in_flight = 0
    most = 0

    async def chat(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername")[1])
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "A fine answer " * 5},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 15},
            }
        )

    cfg = {
        "models": [
            {
                "name": "local",
                "model_id": "local",
                "provider": "openai_compatible",
                "base_url": "set below",
                "cost_per_1k_input": 0.0,
                "cost_per_1k_output": 0.0,
            }
        ],
        "tracker": {"path": None},
        "http": {"connection_limit": 2},
    }
    async with serve_app(app_with("/v1/chat/completions", chat)) as port:
        cfg["models"][0]["base_url"] = f"http://127.0.0.1:{port}/v1"
        async with Router.from_dict(cfg) as router:
            results = await router.aroute_many([f"question {i}" for i in range(12)], concurrency=12)
    assert all(r.content for r in results)  # type: ignore[union-attr]
    assert most == 2
    assert len(peers) == 2
