from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from asyncrouter._http import HTTPClient
from asyncrouter.testing import FakeClock


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    """An event loop in a thread of its own, for servers that synchronous tests (the CLI's) talk to."""
    with start_blocking_portal(backend="asyncio") as p:
        yield p


@pytest.fixture
async def http() -> AsyncIterator[HTTPClient]:
    """The router's HTTP client, open (one connection pool), closed after the test."""
    client = HTTPClient()
    await client.aopen()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp and aiosqlite are asyncio-only.
    return "asyncio"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


# --- Redis (budget and shared breakers): one throwaway redis-server per session, emptied before each test.


from redis_server import RedisServer, running_redis  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 (skipped without the binary, unless CI is set: then it fails)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty Redis database."""
    assert redis_server.command("FLUSHALL") == b"+OK"
    return redis_server.url
