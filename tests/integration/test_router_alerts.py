"""Alerts wired through the Router: a breaker opening and an error burst reach a real webhook, once each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from asyncrouter import AllProvidersFailed, CircuitOpen, Router
from asyncrouter.testing import FakeClock, FakeModel, FakeProviderServer


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    posted: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield str(server.make_url("/hook")), posted


async def test_breaker_open_and_error_rate_alert_once(hook: tuple[str, list[dict[str, Any]]]) -> None:
    url, posted = hook
    models = [FakeModel("m", faults={"500": 1.0}, cost_per_1k_input=0.001, cost_per_1k_output=0.002)]
    async with FakeProviderServer(models=models, seed=1) as srv:
        cfg = srv.config_dict(
            default_model="m",
            retries={"max_attempts": 1},
            breakers={"model": {"fail_max": 3, "reset_timeout": 600}},
            alerts={"enabled": True, "webhook_url": url, "error_rate_min_requests": 3, "cooldown": 300},
        )
        async with Router.from_dict(cfg, clock=FakeClock()) as router:
            for _ in range(10):
                with pytest.raises((AllProvidersFailed, CircuitOpen)):  # errors, then the breaker is open
                    await router.aroute("hi", model="m")
            rules = [a.rule for a in router.alerts.history()]
    assert rules.count("breaker_open") == 1
    assert rules.count("error_rate") == 1
    texts = [p["text"] for p in posted]
    assert len(posted) == len(rules)  # delivered before close, each once
    assert any("breaker" in t.lower() for t in texts)
    assert all("blocks" in p for p in posted)


async def test_a_dead_webhook_never_affects_requests() -> None:
    models = [FakeModel("m", cost_per_1k_input=0.001, cost_per_1k_output=0.002, faults={"500": 1.0})]
    async with FakeProviderServer(models=models, seed=1) as srv:
        cfg = srv.config_dict(
            default_model="m",
            retries={"max_attempts": 1},
            alerts={"enabled": True, "webhook_url": "http://127.0.0.1:9/nothing", "error_rate_min_requests": 2},
        )
        async with Router.from_dict(cfg) as router:
            for _ in range(5):
                with pytest.raises(AllProvidersFailed):
                    await router.aroute("hi", model="m")
            assert "error_rate" in [a.rule for a in router.alerts.history()]
            # the delivery runs in the background: wait for it (bounded), the requests did not
            with anyio.fail_after(10):
                while router.alerts.failed == 0:  # noqa: ASYNC110 (a counter: no event to wait on)
                    await anyio.sleep(0.01)
            assert router.alerts.sent == 0
