from __future__ import annotations

import pytest

from asyncrouter.testing import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp and aiosqlite are asyncio-only.
    return "asyncio"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
