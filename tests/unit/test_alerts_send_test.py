"""Alerts.send_test: one test alert through the webhook delivery path, reported and never raised (a real receiver
on 127.0.0.1)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from asyncrouter._alerts import Alerts, WebhookDelivery
from asyncrouter._config import AlertsConfig
from asyncrouter._http import HTTPClient
from asyncrouter.testing import FakeClock

SECRET_PATH = "/services/T000/B000/s3cr3t-token"


@dataclass
class Receiver:
    url: str = ""
    status: int = 200
    bodies: list[Any] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post(SECRET_PATH, rec.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        rec.url = str(server.make_url(SECRET_PATH))
        yield rec


def dead_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


async def test_send_test_delivers_once_each_time_bypassing_rules_cooldown_and_history(
    receiver: Receiver, http: HTTPClient, fake_clock: FakeClock
) -> None:
    alerts = Alerts(AlertsConfig(enabled=True, webhook_url=receiver.url, cooldown=3600), clock=fake_clock, http=http)
    async with alerts:
        first = await alerts.send_test()
        second = await alerts.send_test()
    assert isinstance(first, WebhookDelivery)
    assert (first.ok, first.status, first.error) == (True, 200, None)
    assert second.ok  # tests have no cooldown
    assert first.webhook == "http://127.0.0.1/…"
    assert first.alert.rule == "test"
    assert first.alert.at == fake_clock.time()
    assert (alerts.sent, alerts.failed, alerts.suppressed) == (2, 0, 0)
    assert alerts.history() == []  # not an incident
    assert len(receiver.bodies) == 2
    assert receiver.bodies[0]["text"] == f"[asyncrouter] Test alert: {first.alert.text}"


async def test_send_test_works_while_alerts_are_disabled_and_to_another_url(
    receiver: Receiver, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncrouter.alerts")
    alerts = Alerts(AlertsConfig(enabled=False), clock=fake_clock)  # no webhook configured, no router client
    result = await alerts.send_test(webhook_url=receiver.url)
    assert result.ok
    assert len(receiver.bodies) == 1
    assert alerts.sent == 1
    # the log channel gets it too, as it would a real alert
    assert [r.getMessage() for r in caplog.records if r.name == "asyncrouter.alerts"] == [
        f"alert test: Test alert: {result.alert.text}"
    ]


@pytest.mark.parametrize("status", [404, 500])
async def test_send_test_reports_a_refusal(
    status: int, receiver: Receiver, http: HTTPClient, fake_clock: FakeClock
) -> None:
    receiver.status = status
    alerts = Alerts(AlertsConfig(webhook_url=receiver.url, log=False), clock=fake_clock, http=http)
    result = await alerts.send_test()
    assert (result.ok, result.status, result.error) == (False, status, f"HTTP {status}")
    assert (alerts.sent, alerts.failed) == (0, 1)


async def test_send_test_reports_an_unreachable_webhook_without_its_secret(
    http: HTTPClient, fake_clock: FakeClock
) -> None:
    alerts = Alerts(AlertsConfig(log=False), clock=fake_clock, http=http)
    result = await alerts.send_test(webhook_url=dead_url())
    assert not result.ok
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("ProviderConnectionError")
    assert "s3cr3t" not in result.error + result.webhook
    assert alerts.failed == 1


async def test_send_test_needs_a_webhook(fake_clock: FakeClock) -> None:
    alerts = Alerts(AlertsConfig(enabled=True), clock=fake_clock)
    with pytest.raises(ValueError, match="no webhook"):
        await alerts.send_test()
