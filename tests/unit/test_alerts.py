"""Alerts: the four rules, cooldowns, the log channel and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import pytest
from aiohttp import web

from asyncrouter._alerts import Alert, Alerts, slack_payload
from asyncrouter._breaker import Admission, BreakerBoard, BreakerEvent, BreakerState
from asyncrouter._budget import Budget, BudgetEvent, BudgetStatus
from asyncrouter._config import AlertsConfig, BreakersConfig, BudgetConfig
from asyncrouter._exceptions import ProviderServerError
from asyncrouter._http import HTTPClient
from asyncrouter.testing import FakeClock

HANG_GUARD = 10.0
DAY = 86_400.0

Mode = Literal["ok", "500", "hang"]


@dataclass
class Receiver:
    """A webhook endpoint that records every JSON body it is sent."""

    url: str = ""
    mode: Mode = "ok"
    bodies: list[Any] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.arrived.set()
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "500":
            return web.Response(status=500, text="boom")
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/services/T000/B000/s3cr3t-token", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/services/T000/B000/s3cr3t-token"
    try:
        yield rec
    finally:
        rec.release.set()
        await runner.cleanup()


@pytest.fixture
def alert_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="asyncrouter.alerts"):
        yield caplog


def config(**kw: Any) -> AlertsConfig:
    kw.setdefault("enabled", True)
    return AlertsConfig.model_validate(kw)


def dead_url() -> str:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def breaker_event(name: str = "mini", *, new: BreakerState = "open", origin: str | None = None) -> BreakerEvent:
    return BreakerEvent(name, "model", "closed", new, 1_767_225_600.0, "5 consecutive failures", origin)


def rules(alerts: Alerts) -> list[str]:
    return [a.rule for a in alerts.history()]


# ------------------------------------------------------------------------------------------- breaker rule


def make_board(clock: FakeClock) -> BreakerBoard:
    cfg = BreakersConfig.model_validate({"model": {"fail_max": 2, "reset_timeout": 10}})
    return BreakerBoard(cfg, clock=clock, models={"mini": "ep", "big": "ep", "spare": "ep"})


def trip(board: BreakerBoard, alias: str) -> None:
    for _ in range(2):
        admission = board.admit(alias)
        assert isinstance(admission, Admission)
        board.record(admission, ProviderServerError("down", status_code=503))


async def test_breaker_open_alerts_once_per_incident_per_breaker_then_again_after_cooldown(
    fake_clock: FakeClock, receiver: Receiver, http: HTTPClient
) -> None:
    board = make_board(fake_clock)
    alerts = Alerts(config(webhook_url=receiver.url, cooldown=300), clock=fake_clock, http=http)
    alerts.attach(breakers=board)
    async with alerts:
        trip(board, "mini")
        assert [a.key for a in alerts.history()] == ["breaker:model:mini"]

        # Still the same incident: the half-open trial fails and it re-opens within the cooldown.
        fake_clock.advance(10)
        trial = board.admit("mini")
        assert isinstance(trial, Admission)
        board.record(trial, ProviderServerError("still down", status_code=503))
        assert board.status()["mini"].state == "open"
        assert len(alerts.history()) == 1
        assert alerts.suppressed == 1

        trip(board, "big")  # another breaker: its own key, its own alert
        assert [a.key for a in alerts.history()] == ["breaker:model:mini", "breaker:model:big"]

        fake_clock.advance(300)  # cooldown over: the next opening of mini is news again
        trial = board.admit("mini")
        assert isinstance(trial, Admission)
        board.record(trial, ProviderServerError("down again", status_code=503))
        assert [a.key for a in alerts.history()][-1] == "breaker:model:mini"
        assert len(alerts.history()) == 3
    assert (alerts.sent, alerts.failed, alerts.dropped) == (3, 0, 0)
    texts = [body["text"] for body in receiver.bodies]
    assert len(texts) == 3
    assert texts[0].startswith("[asyncrouter] Circuit breaker open: model 'mini': The breaker for model 'mini' opened")
    assert "2 consecutive failures (last: ProviderServerError)" in texts[0]
    assert "trial request failed" in texts[2]


def test_remote_breaker_opens_are_the_other_process_s_alert(fake_clock: FakeClock) -> None:
    local_only = Alerts(config(), clock=fake_clock)
    local_only.on_breaker_event(breaker_event(origin="host-b:42:abc"))
    local_only.on_breaker_event(breaker_event(new="half_open"))
    local_only.on_breaker_event(breaker_event(new="closed"))
    assert local_only.history() == []

    everything = Alerts(config(), clock=fake_clock, remote_breakers=True)
    everything.on_breaker_event(breaker_event(origin="host-b:42:abc"))
    (alert,) = everything.history()
    assert "The breaker for model 'mini' opened in host-b:42:abc: 5 consecutive failures." in alert.text


# ------------------------------------------------------------------------------------------ error rate


def test_error_rate_needs_min_requests_and_the_threshold(fake_clock: FakeClock) -> None:
    alerts = Alerts(
        config(error_rate_threshold=0.5, error_rate_min_requests=10, error_rate_window=60), clock=fake_clock
    )
    for _ in range(5):
        alerts.observe("ok", at=0.0)
    for _ in range(4):
        alerts.observe("error", at=1.0)
    assert alerts.history() == []  # 4 of 9: below the minimum count
    alerts.observe("error", at=2.0)  # 5 of 10 = 50 %: at the threshold
    (alert,) = alerts.history()
    assert (alert.rule, alert.severity) == ("error_rate", "warning")
    assert dict(alert.details) == {"rate": 0.5, "errors": 5, "requests": 10, "window": 60.0, "threshold": 0.5}
    assert alert.title == "Error rate 50% over 60 s"
    assert alert.text == "5 of 10 requests failed in the last 60 s (threshold 50%, at least 10 requests)."


def test_error_rate_window_slides_bucket_by_bucket(fake_clock: FakeClock) -> None:
    # 60 s window in 60 buckets of 1 s: the bucket of t=0 is in the window until t reaches 60.
    alerts = Alerts(
        config(error_rate_threshold=0.5, error_rate_min_requests=10, error_rate_window=60), clock=fake_clock
    )
    for _ in range(10):
        alerts.observe("ok", at=0.0)
    for _ in range(8):
        alerts.observe("error", at=30.0)
    alerts.observe("error", at=59.5)  # 9 of 19: the ten oks still count
    assert alerts.history() == []
    alerts.observe("error", at=60.5)  # the oks' bucket left: 10 of 10
    (alert,) = alerts.history()
    assert (alert.details["errors"], alert.details["requests"], alert.severity) == (10, 10, "critical")

    # After a long quiet spell the window is empty again: no stale counts.
    later = Alerts(config(error_rate_threshold=0.5, error_rate_min_requests=2, error_rate_window=60), clock=fake_clock)
    for _ in range(50):
        later.observe("error", at=0.0, cost_usd=0.0)
    assert len(later.history()) == 1
    later.observe("ok", at=10_000.0)
    later.observe("ok", at=10_000.0)
    later.observe("error", at=10_000.5)
    assert len(later.history()) == 1  # 1 of 3 now


def test_cancelled_and_unknown_statuses_do_not_count(fake_clock: FakeClock) -> None:
    alerts = Alerts(config(error_rate_threshold=0.5, error_rate_min_requests=10), clock=fake_clock)
    for _ in range(10):
        alerts.observe("ok", at=1.0)
    for _ in range(100):
        alerts.observe("cancelled", at=1.0)
        alerts.observe("weird", at=1.0)
    for _ in range(9):
        alerts.observe("error", at=1.0)
    assert alerts.history() == []  # 9 of 19, not 109 of 119
    alerts.observe("error", at=1.0)
    assert rules(alerts) == ["error_rate"]


def test_error_rate_reminds_once_per_cooldown_while_it_lasts(fake_clock: FakeClock) -> None:
    alerts = Alerts(config(error_rate_min_requests=1, error_rate_window=60, cooldown=120), clock=fake_clock)
    for t in range(0, 300):  # an error every second for five minutes
        alerts.observe("error", at=float(t))
    assert [a.key for a in alerts.history()] == ["error_rate", "error_rate", "error_rate"]  # t = 0, 120, 240
    assert alerts.suppressed == 297


# ------------------------------------------------------------------------------------------ cost spike


def spike_alerts(clock: FakeClock, **kw: Any) -> Alerts:
    return Alerts(
        config(cost_spike_factor=3.0, **kw),
        clock=clock,
        cost_spike_window=60.0,
        cost_spike_baseline=600.0,
        cost_spike_min_history=300.0,
    )


def test_cost_spike_against_the_trailing_average(fake_clock: FakeClock) -> None:
    alerts = spike_alerts(fake_clock)
    for t in range(0, 401, 10):  # $0.01 every 10 s: $0.06 per minute
        alerts.observe("ok", cost_usd=0.01, at=float(t))
    assert alerts.history() == []
    # The last minute (steps of 10 s: t in [350, 410)) holds 0.06 + 0.11 = 0.17; the threshold is 3 x 0.06 = 0.18.
    alerts.observe("ok", cost_usd=0.11, at=405.0)
    assert alerts.history() == []
    alerts.observe("ok", cost_usd=0.02, at=406.0)  # 0.19 > 0.18
    (alert,) = alerts.history()
    assert alert.rule == "cost_spike"
    assert alert.details["recent_usd"] == pytest.approx(0.19)
    assert alert.details["average_usd"] == pytest.approx(0.06)
    assert alert.details["ratio"] == pytest.approx(0.19 / 0.06)
    assert alert.details["baseline_minutes"] == pytest.approx(35 * 10 / 60)
    assert alert.text.startswith("$0.1900 spent in the last 60 s is 3.2x the trailing average of $0.0600 per 60 s")


def test_one_request_expensive_enough_fires_alone(fake_clock: FakeClock) -> None:
    alerts = spike_alerts(fake_clock)
    for t in range(0, 600, 10):
        alerts.observe("ok", cost_usd=0.01, at=float(t))
    alerts.observe("error", cost_usd=5.0, at=600.0)  # a failed request that still cost money counts
    assert rules(alerts) == ["cost_spike"]


def test_no_cost_spike_without_history_or_without_a_baseline(fake_clock: FakeClock) -> None:
    young = spike_alerts(fake_clock)
    young.observe("ok", cost_usd=0.01, at=0.0)
    young.observe("ok", cost_usd=10.0, at=100.0)  # 100 s of history: below the 300 s needed
    assert young.history() == []

    idle = spike_alerts(fake_clock)
    for t in range(0, 900, 10):
        idle.observe("ok", cost_usd=0.0, at=float(t))  # requests, but free ones
    idle.observe("ok", cost_usd=1.0, at=900.0)
    assert idle.history() == []  # nothing to compare with


def test_baseline_forgets_spend_older_than_the_baseline(fake_clock: FakeClock) -> None:
    alerts = spike_alerts(fake_clock)
    alerts.observe("ok", cost_usd=100.0, at=0.0)  # a huge old spend
    for t in range(10, 1400, 10):
        alerts.observe("ok", cost_usd=0.001, at=float(t))
    # 1400 s later the $100 has left the 600 s baseline: a $0.05 minute is a spike against $0.006/min.
    alerts.observe("ok", cost_usd=0.05, at=1400.0)
    assert rules(alerts) == ["cost_spike"]


# -------------------------------------------------------------------------------------------- budget rule


async def test_budget_thresholds_once_per_day_highest_reached(fake_clock: FakeClock) -> None:
    budget_cfg = BudgetConfig(daily_limit_usd=10.0, warn_at=0.75, downgrade_at=0.9)
    alerts = Alerts(config(budget_thresholds=(0.5, 0.75, 0.9, 1.0)), clock=fake_clock)
    async with Budget(budget_cfg, clock=fake_clock) as budget:
        alerts.attach(budget=budget)

        async def spend(usd: float) -> None:
            await budget.settle(await budget.reserve(usd), usd)
            alerts.observe("ok", cost_usd=usd)

        await spend(4.0)
        assert alerts.history() == []
        await spend(1.5)  # 55 %: not a budget state, caught after the request
        await spend(3.0)  # 85 %: the budget's own "warn" event
        await spend(0.1)  # 86 %: nothing new
        await spend(1.4)  # 100 %: exhausted; 90 % was jumped over: one alert, not two
        keys = [a.key for a in alerts.history()]
        assert keys == ["budget:2026-01-01:0.5", "budget:2026-01-01:0.75", "budget:2026-01-01:1"]
        last = alerts.history()[-1]
        assert (last.title, last.severity, last.details["state"]) == ("Budget exhausted", "critical", "exhausted")
        assert alerts.history()[0].title == "Budget 50% used"
        assert "Spent $5.5000 of the $10.00 daily budget for 2026-01-01 (UTC): 55%" in alerts.history()[0].text

        fake_clock.advance(DAY)  # a new budget day: the thresholds are armed again
        await spend(6.0)
        assert [a.key for a in alerts.history()][-1] == "budget:2026-01-02:0.5"


async def test_budget_spend_from_elsewhere_is_noticed_within_the_poll_interval(fake_clock: FakeClock) -> None:
    alerts = Alerts(config(budget_thresholds=(0.5,)), clock=fake_clock, budget_poll_interval=1.0)
    async with Budget(BudgetConfig(daily_limit_usd=10.0), clock=fake_clock) as budget:
        alerts.attach(budget=budget)
        alerts.observe("ok", cost_usd=0.01)  # first read: 0.1 %
        # Spend this process did not observe (another process sharing a Redis budget, say): no budget event
        # either, since 60 % is below warn_at.
        await budget.settle(await budget.reserve(6.0), 6.0)
        alerts.observe("ok", cost_usd=0.01)
        assert alerts.history() == []  # its own spend is far from the threshold and the interval has not passed
        fake_clock.advance(1.0)
        alerts.observe("ok", cost_usd=0.01)
        assert [a.key for a in alerts.history()] == ["budget:2026-01-01:0.5"]


def test_budget_events_alone_and_no_limit(fake_clock: FakeClock) -> None:
    alerts = Alerts(config(), clock=fake_clock)

    def status(fraction: float, state: Any, limit: float | None = 10.0) -> BudgetStatus:
        return BudgetStatus(
            spent=fraction * 10,
            reserved=0.0,
            remaining=None,
            limit=limit,
            state=state,
            day="2026-01-01",
            fraction=fraction,
            timezone="UTC",
        )

    alerts.on_budget_event(BudgetEvent(state="warn", previous="normal", status=status(0.0, "warn", limit=None)))
    assert alerts.history() == []  # no cap, nothing to alert on
    alerts.on_budget_event(BudgetEvent(state="warn", previous="normal", status=status(0.8, "warn")))
    # Exhausted before spent reaches the limit (less left than the cheapest call): counts as 100 %.
    alerts.on_budget_event(BudgetEvent(state="exhausted", previous="warn", status=status(0.97, "exhausted")))
    assert [a.details["threshold"] for a in alerts.history()] == [0.75, 1.0]


# -------------------------------------------------------------------------------------------- webhook


async def test_slack_payload_shape_and_escaping(receiver: Receiver, http: HTTPClient, fake_clock: FakeClock) -> None:
    alert = Alert("breaker_open", "k", "T" * 200, "a <b> & c", "critical", 1_767_225_600.0, {"x": 1})
    payload = slack_payload(alert, source="svc-1")
    assert payload["text"] == f"[svc-1] {'T' * 200}: a <b> & c"
    header, section, context = payload["blocks"]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) == 150
    assert header["text"]["text"].endswith("…")
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "a &lt;b&gt; &amp; c"}}
    assert context["type"] == "context"
    assert (
        context["elements"][0]["text"]
        == ":rotating_light: critical · svc-1 · rule breaker_open · 2026-01-01 00:00:00 UTC"
    )

    # What the receiver gets is exactly that, as JSON.
    alerts = Alerts(config(webhook_url=receiver.url), clock=fake_clock, http=http, source="svc-1")
    async with alerts:
        alerts.on_breaker_event(breaker_event())
    (body,) = receiver.bodies
    expected = slack_payload(alerts.history()[0], source="svc-1")
    assert body == json.loads(json.dumps(expected))
    assert set(body) == {"text", "blocks"}


@pytest.mark.parametrize("mode", [pytest.param("500", id="http-500"), pytest.param("dead", id="connection-refused")])
async def test_failing_webhook_is_logged_and_counted_never_raised(
    mode: str, receiver: Receiver, http: HTTPClient, fake_clock: FakeClock, alert_log: pytest.LogCaptureFixture
) -> None:
    url = dead_url() if mode == "dead" else receiver.url
    receiver.mode = "500"
    alerts = Alerts(config(webhook_url=url), clock=fake_clock, http=http)
    async with alerts:
        alerts.on_breaker_event(breaker_event("mini"))
        alerts.on_breaker_event(breaker_event("big"))
    assert (alerts.sent, alerts.failed, alerts.dropped) == (0, 2, 0)
    failures = [r.getMessage() for r in alert_log.records if "webhook" in r.getMessage()]
    assert len(failures) == 2
    assert ("HTTP 500" if mode == "500" else "ProviderConnectionError") in failures[0]
    # A Slack webhook's path is its secret: logs show the host only.
    assert all("s3cr3t" not in r.getMessage() and "/hook" not in r.getMessage() for r in alert_log.records)


async def test_hanging_webhook_never_blocks_the_caller_and_times_out(
    receiver: Receiver, http: HTTPClient, fake_clock: FakeClock
) -> None:
    receiver.mode = "hang"
    alerts = Alerts(config(webhook_url=receiver.url), clock=fake_clock, http=http, webhook_timeout=0.2)
    async with alerts:
        alerts.on_breaker_event(breaker_event("mini"))
        with anyio.fail_after(HANG_GUARD):
            await receiver.arrived.wait()
        # The delivery hangs; the caller goes on feeding requests and breaker events, all synchronously.
        for i in range(1000):
            alerts.observe("ok", cost_usd=0.001, at=float(i))
        alerts.on_breaker_event(breaker_event("big"))
        assert rules(alerts) == ["breaker_open", "breaker_open"]
        assert alerts.sent == 0
    assert (alerts.sent, alerts.failed, alerts.dropped) == (0, 2, 0)  # both timed out after 0.2 s


async def test_full_queue_drops_and_close_is_bounded(
    receiver: Receiver, http: HTTPClient, fake_clock: FakeClock, alert_log: pytest.LogCaptureFixture
) -> None:
    receiver.mode = "hang"
    alerts = Alerts(
        config(webhook_url=receiver.url),
        clock=fake_clock,
        http=http,
        queue_size=2,
        webhook_timeout=60.0,
        close_timeout=0.2,
    )
    await alerts.aopen()
    try:
        alerts.on_breaker_event(breaker_event("m0"))
        with anyio.fail_after(HANG_GUARD):
            await receiver.arrived.wait()  # m0 is in flight
        for name in ("m1", "m2", "m3", "m4"):
            alerts.on_breaker_event(breaker_event(name))
        assert (alerts.queued, alerts.dropped) == (2, 2)  # m1, m2 wait; m3, m4 did not fit
        assert any("queue full" in r.getMessage() for r in alert_log.records)
    finally:
        with anyio.fail_after(HANG_GUARD):
            await alerts.aclose()  # gives up after close_timeout, not after the 60 s webhook timeout
    assert (alerts.sent, alerts.failed, alerts.dropped) == (0, 0, 5)  # + m0 in flight, m1 and m2 queued
    assert len(alerts.history()) == 5  # every alert fired and was logged; only the webhook lost them
    alerts.on_breaker_event(breaker_event("after-close"))
    assert alerts.dropped == 6


async def test_webhook_without_a_router_client(receiver: Receiver, fake_clock: FakeClock) -> None:
    alerts = Alerts(config(webhook_url=receiver.url), clock=fake_clock, http=None)
    async with alerts:
        alerts.on_breaker_event(breaker_event())
    assert (alerts.sent, len(receiver.bodies)) == (1, 1)


# ----------------------------------------------------------------------------------------- log channel


def test_log_channel(fake_clock: FakeClock, alert_log: pytest.LogCaptureFixture) -> None:
    alerts = Alerts(config(), clock=fake_clock)
    alerts.on_breaker_event(breaker_event())
    (record,) = [r for r in alert_log.records if r.name == "asyncrouter.alerts"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("alert breaker_open: Circuit breaker open: model 'mini': The breaker")
    assert record.__dict__["alert"]["key"] == "breaker:model:mini"  # passed as `extra` for structured handlers

    alert_log.clear()
    quiet = Alerts(config(log=False), clock=fake_clock)
    quiet.on_breaker_event(breaker_event())
    assert len(quiet.history()) == 1
    assert [r for r in alert_log.records if r.name == "asyncrouter.alerts"] == []


async def test_disabled_alerts_do_nothing(fake_clock: FakeClock, receiver: Receiver, http: HTTPClient) -> None:
    alerts = Alerts(config(enabled=False, webhook_url=receiver.url), clock=fake_clock, http=http)
    async with alerts:
        for _ in range(50):
            alerts.observe("error", cost_usd=100.0)
        alerts.on_breaker_event(breaker_event())
    assert alerts.history() == []
    assert receiver.bodies == []


def test_attach_and_detach(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    alerts = Alerts(config(), clock=fake_clock)
    detach = alerts.attach(breakers=board)
    trip(board, "mini")
    detach()
    detach()  # twice is fine
    trip(board, "big")
    assert [a.key for a in alerts.history()] == ["breaker:model:mini"]


def test_invalid_arguments(fake_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="queue_size"):
        Alerts(config(), clock=fake_clock, queue_size=0)
    with pytest.raises(ValueError, match="cost_spike_window"):
        Alerts(config(), clock=fake_clock, cost_spike_window=120.0, cost_spike_baseline=60.0)
