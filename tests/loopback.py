"""A TCP server on 127.0.0.1 for tests that need to say exactly what goes over the wire."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Serves each connection with :meth:`serve` (to override); ``async with`` starts and stops it."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def content_length(head: bytes | str) -> int:
    """The Content-Length of a request head (0 when it has none)."""
    text = head.decode() if isinstance(head, bytes) else head
    for line in text.split("\r\n"):
        if line.lower().startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


#: a fresh interpreter posting {"tls": true} to argv[1] with the router's transport, printing the JSON reply: it
#: reads SSL_CERT_FILE and the proxy variables at start, as a user's process would
_TLS_CLIENT = """
import asyncio, sys
from asyncrouter._http import HTTPClient
async def main():
    http = HTTPClient(trust_env=True)
    await http.aopen()
    try:
        reply = await http.post_json(sys.argv[1], headers={}, body={"tls": True}, timeout=10,
                                     provider="openai", model="m")
        print(reply.data)
    finally:
        await http.aclose()
asyncio.run(main())
"""


def tls_server_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for ``localhost`` from a throwaway CA, and that CA's PEM file."""
    import trustme  # the dev extra's

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def post_from_subprocess(url: str, env: Mapping[str, str]) -> str:
    """Run the transport in a fresh interpreter with ``env``; its stdout (the reply), or fail with its stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _TLS_CLIENT, url, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


@asynccontextmanager
async def serve_app(app: web.Application, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Run an aiohttp app on 127.0.0.1 (over TLS with ``ssl_context``); yields its port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def app_with(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    """An aiohttp app answering POST ``path`` with ``handler``."""
    app = web.Application()
    app.router.add_post(path, handler)
    return app
