"""Alerts: tell people when the budget runs low, requests fail, spend spikes or a breaker opens.

Four rules, each fed without any I/O on the request path:

* ``budget``: the budget's state-change events (:meth:`Alerts.on_budget_event`, from ``Budget.subscribe``) and, when
  a budget is attached, its status after requests that cost something (read when this process's spend may have
  reached the next threshold, else at most once per ``budget_poll_interval``). One alert per configured threshold
  (``alerts.budget_thresholds``, fractions of the daily limit) per budget day: the highest threshold reached so
  far, so a jump from 50 % to 100 % sends one ``100 %`` alert, not three. An ``exhausted`` budget counts as 100 %.
* ``error_rate``: request outcomes (:meth:`Alerts.observe`) over a sliding window of ``error_rate_window``
  seconds. It fires when at least ``error_rate_min_requests`` requests ended in the window and the share of
  ``"error"`` among them reached ``error_rate_threshold``. ``"cancelled"`` requests say nothing about providers and
  are left out. The window is kept in :data:`DEFAULT_WINDOW_BUCKETS` time buckets, so it forgets old requests one
  bucket (``window / 60``) at a time: it always covers between 59/60 of the window and the whole of it.
* ``cost_spike``: spend in the last ``cost_spike_window`` seconds (default 60) against the trailing average spend
  per window of the same length over the ``cost_spike_baseline`` seconds before it (default one hour). It fires
  when the recent spend exceeds ``cost_spike_factor`` times that average. Windows, not single requests, because
  one request to a strong model legitimately costs fifty cheap ones; a single request expensive enough to beat
  the factor on its own still fires, since it fills the recent window by itself. No alert until
  ``cost_spike_min_history`` seconds of history exist (a fresh process has no baseline) or while the baseline
  spent nothing (no average to compare with).
* ``breaker_open``: a breaker opened (:meth:`Alerts.on_breaker_event`, from ``BreakerBoard.subscribe``). Opens
  applied from another process by the shared breakers (``BreakerEvent.origin`` set) are that process's alert to
  send, so they are skipped unless ``remote_breakers=True``.

Each alert has a key (``"error_rate"``, ``"breaker:model:mini"``, ``"budget:2026-01-31:0.9"``, ...). An alert
whose key fired less than ``alerts.cooldown`` seconds ago is held back (counted in :attr:`Alerts.suppressed`): one
incident sends one alert, and a lasting one reminds once per cooldown. Time comes from the injected clock.

Channels: the ``asyncrouter.alerts`` logger at WARNING (``alerts.log``), written at once, and a webhook
(``alerts.webhook_url``) that receives Slack-compatible JSON (``{"text": ..., "blocks": [...]}``). Webhook
deliveries go through a bounded queue to one background task, so a slow, failing or unreachable webhook never
blocks or fails a request: a failure is logged and counted in :attr:`Alerts.failed`, a full queue drops the alert
and counts it in :attr:`Alerts.dropped`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import asyncio
import logging
import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

import anyio

from ._breaker import BreakerBoard, BreakerEvent
from ._budget import Budget, BudgetEvent, BudgetStatus
from ._config import AlertsConfig
from ._http import HTTPClient, post_json_once
from ._types import Clock

__all__ = [
    "DEFAULT_BUDGET_POLL_INTERVAL",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_COST_SPIKE_BASELINE",
    "DEFAULT_COST_SPIKE_MIN_HISTORY",
    "DEFAULT_COST_SPIKE_WINDOW",
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_WEBHOOK_TIMEOUT",
    "DEFAULT_WINDOW_BUCKETS",
    "Alert",
    "AlertRule",
    "Alerts",
    "Severity",
    "WebhookDelivery",
    "slack_payload",
]

_log = logging.getLogger("asyncrouter.alerts")

AlertRule: TypeAlias = Literal["budget", "error_rate", "cost_spike", "breaker_open", "test"]
Severity: TypeAlias = Literal["warning", "critical"]

#: Alerts waiting for the webhook; more are dropped (and counted) rather than held in memory.
DEFAULT_QUEUE_SIZE: Final = 100
#: Seconds one webhook POST may take, connecting included.
DEFAULT_WEBHOOK_TIMEOUT: Final = 5.0
#: Seconds ``aclose()`` waits for queued webhook deliveries before dropping the rest.
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
#: Alerts kept for :meth:`Alerts.history`.
DEFAULT_HISTORY_SIZE: Final = 100
#: Seconds between reads of an attached budget's status when this process's own spend does not call for one.
DEFAULT_BUDGET_POLL_INTERVAL: Final = 1.0
#: Time buckets of the error-rate window.
DEFAULT_WINDOW_BUCKETS: Final = 60
#: Seconds of recent spend the cost-spike rule compares.
DEFAULT_COST_SPIKE_WINDOW: Final = 60.0
#: Seconds of spend before the recent window that make the trailing average.
DEFAULT_COST_SPIKE_BASELINE: Final = 3600.0
#: Seconds of baseline history needed before the cost-spike rule may fire.
DEFAULT_COST_SPIKE_MIN_HISTORY: Final = 300.0
# Buckets per cost-spike window: the recent window slides in steps of window / 6.
_SPIKE_STEPS: Final = 6
# Slack's limits on a header and a section text.
_SLACK_HEADER_MAX: Final = 150
_SLACK_TEXT_MAX: Final = 3000


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert that fired.

    Attributes:
        rule: ``"budget"``, ``"error_rate"``, ``"cost_spike"`` or ``"breaker_open"``; ``"test"`` for the one
            :meth:`Alerts.send_test` sends.
        key: what the cooldown is kept per, e.g. ``"breaker:model:mini"``.
        title: one line, e.g. ``"Circuit breaker open: model 'mini'"``.
        text: the details, one or two sentences.
        severity: ``"warning"`` or ``"critical"``.
        at: the clock's wall time when it fired (epoch seconds).
        details: the numbers behind it (JSON-friendly).

    .. versionadded:: 0.1
    """

    rule: AlertRule
    key: str
    title: str
    text: str
    severity: Severity
    at: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "rule": self.rule,
            "key": self.key,
            "title": self.title,
            "text": self.text,
            "severity": self.severity,
            "at": self.at,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """What became of one webhook POST made by :meth:`Alerts.send_test`.

    Attributes:
        alert: the alert that was sent.
        webhook: where it went, the URL's secret path left out (``https://hooks.slack.com/…``).
        status: the HTTP status the webhook answered, or ``None`` when there was no answer.
        error: why it failed (``"HTTP 404"``, ``"ProviderConnectionError: cannot connect: ..."``), ``None`` when
            the webhook accepted it.

    .. versionadded:: 0.1
    """

    alert: Alert
    webhook: str
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the webhook accepted the alert (answered 2xx)."""
        return self.error is None


def _mrkdwn(text: str) -> str:
    # Slack's three control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(alert: Alert, *, source: str = "asyncrouter") -> dict[str, Any]:
    """The webhook body for *alert*: Slack's incoming-webhook JSON, which most chat tools also accept.

    ``text`` carries the whole alert as plain text (notifications, and tools that ignore blocks); ``blocks`` lay it
    out as a header, the details and a context line.

    Args:
        alert: the alert.
        source: names the sender in the context line and the text, e.g. a host or service name.

    .. versionadded:: 0.1
    """
    when = datetime.fromtimestamp(alert.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    icon = ":rotating_light:" if alert.severity == "critical" else ":warning:"
    return {
        "text": f"[{source}] {alert.title}: {alert.text}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(alert.title, _SLACK_HEADER_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(alert.text), _SLACK_TEXT_MAX)}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _mrkdwn(f"{icon} {alert.severity} · {source} · rule {alert.rule} · {when}"),
                    }
                ],
            },
        ],
    }


def _safe_webhook(url: str) -> str:
    # A Slack webhook URL's path is its secret: logs only ever show the scheme and host.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


class _Ring:
    """Sums over time buckets of equal width: the last *n* buckets, the newest possibly still filling.

    ``add`` is O(1) amortised: moving on by k buckets clears k slots, and each slot is cleared once per pass.
    """

    __slots__ = ("head", "n", "total", "values", "width")

    def __init__(self, *, width: float, n: int) -> None:
        self.width = width
        self.n = n
        self.values = [0.0] * n
        self.head: int | None = None  # index of the newest bucket
        self.total = 0.0

    def index(self, at: float) -> int:
        return math.floor(at / self.width)

    def advance(self, idx: int) -> None:
        head = self.head
        if head is None or idx - head >= self.n:
            if head is None or self.total:
                self.values = [0.0] * self.n
                self.total = 0.0
            self.head = idx
            return
        if idx <= head:
            return
        values, n, total = self.values, self.n, self.total
        for i in range(head + 1, idx + 1):
            slot = i % n
            total -= values[slot]
            values[slot] = 0.0
        self.total = total if total > 0.0 else 0.0  # float subtraction must not leave a negative crumb
        self.head = idx

    def add(self, idx: int, value: float) -> None:
        self.advance(idx)
        assert self.head is not None
        if idx <= self.head - self.n:
            return  # older than the whole ring (a late, out-of-order observation)
        self.values[idx % self.n] += value
        self.total += value

    def last(self, k: int) -> float:
        """Sum of the newest *k* buckets."""
        if self.head is None:
            return 0.0
        head, n, values = self.head, self.n, self.values
        total = 0.0
        for j in range(k):
            total += values[(head - j) % n]
        return total


class Alerts:
    """The alert rules and their channels for one router.

    Wiring (what the router does)::

        alerts = Alerts(config.alerts, clock=clock, http=http_client)
        detach = alerts.attach(budget=budget, breakers=board)   # subscribes to both
        await alerts.aopen()                                     # after http_client.aopen()
        ...
        alerts.observe("ok", cost_usd=0.0021)                    # once per finished request, sync
        ...
        await alerts.aclose()                                    # before http_client.aclose()

    Everything is a no-op when ``alerts.enabled`` is false.

    Args:
        config: the ``alerts`` section of the configuration.
        clock: the injected clock: cooldowns, windows and timestamps.
        http: the router's HTTP client, for the webhook (opened and closed by its owner). Without one, each
            delivery uses a throwaway session.
        queue_size: webhook deliveries that may wait; more are dropped and counted.
        webhook_timeout: seconds one webhook POST may take.
        close_timeout: seconds :meth:`aclose` waits for queued deliveries.
        history_size: alerts kept for :meth:`history`.
        cost_spike_window: seconds of recent spend the cost-spike rule looks at.
        cost_spike_baseline: seconds before that which make the trailing average.
        cost_spike_min_history: seconds of baseline needed before the cost-spike rule may fire.
        remote_breakers: also alert on breakers opened by another process (see the module docstring).
        budget_poll_interval: with an attached budget, read its status at least this often (seconds) while
            requests that cost money arrive, and otherwise only when this process's own spend may have reached
            the next threshold.
        source: names this router in webhook messages.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        config: AlertsConfig,
        *,
        clock: Clock,
        http: HTTPClient | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        webhook_timeout: float = DEFAULT_WEBHOOK_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        history_size: int = DEFAULT_HISTORY_SIZE,
        cost_spike_window: float = DEFAULT_COST_SPIKE_WINDOW,
        cost_spike_baseline: float = DEFAULT_COST_SPIKE_BASELINE,
        cost_spike_min_history: float = DEFAULT_COST_SPIKE_MIN_HISTORY,
        remote_breakers: bool = False,
        budget_poll_interval: float = DEFAULT_BUDGET_POLL_INTERVAL,
        source: str = "asyncrouter",
    ) -> None:
        if queue_size < 1 or history_size < 1:
            raise ValueError("queue_size and history_size must be at least 1")
        if webhook_timeout <= 0 or close_timeout < 0:
            raise ValueError("webhook_timeout must be positive and close_timeout not negative")
        if not 0 < cost_spike_window <= cost_spike_baseline or cost_spike_min_history < 0:
            raise ValueError("need 0 < cost_spike_window <= cost_spike_baseline and cost_spike_min_history >= 0")
        self._config = config
        self._enabled = config.enabled
        self._clock = clock
        self._http = http
        self._webhook = config.webhook_url
        self._log_channel = config.log
        self._cooldown = config.cooldown
        self._webhook_timeout = webhook_timeout
        self._close_timeout = close_timeout
        self._remote_breakers = remote_breakers
        self._source = source
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._opened = False
        self._closed = False
        self._history: deque[Alert] = deque(maxlen=history_size)
        self._last_fired: dict[str, float] = {}

        # error rate: request and error counts over the window
        width = config.error_rate_window / DEFAULT_WINDOW_BUCKETS
        self._requests = _Ring(width=width, n=DEFAULT_WINDOW_BUCKETS)
        self._errors = _Ring(width=width, n=DEFAULT_WINDOW_BUCKETS)

        # cost spike: spend per step of window / 6, over the baseline plus the recent window
        step = cost_spike_window / _SPIKE_STEPS
        self._spike_window = cost_spike_window
        self._spike_base_steps = max(1, math.ceil(cost_spike_baseline / step))
        self._spike_min_steps = math.ceil(cost_spike_min_history / step)
        self._spend = _Ring(width=step, n=self._spike_base_steps + _SPIKE_STEPS)
        self._first_step: int | None = None

        # budget: the highest threshold alerted on, per budget day
        self._thresholds = tuple(sorted(set(config.budget_thresholds)))
        self._budget: Budget | None = None
        self._budget_day = ""
        self._budget_alerted = -1.0
        self._budget_poll = budget_poll_interval
        self._budget_polled = -math.inf
        self._budget_tally = 0.0
        self._budget_gap = 0.0

        #: Webhook deliveries the receiver accepted (2xx).
        self.sent = 0
        #: Webhook deliveries that failed: refused, timed out, or answered with a non-2xx status.
        self.failed = 0
        #: Webhook deliveries dropped: the queue was full, or they were still queued when ``aclose()`` gave up.
        self.dropped = 0
        #: Alerts held back because their key fired less than ``cooldown`` seconds ago.
        self.suppressed = 0

    # ----------------------------------------------------------------------------------------------- lifecycle

    @property
    def enabled(self) -> bool:
        """Whether alerts are on (``alerts.enabled``)."""
        return self._enabled

    async def aopen(self) -> None:
        """Start the webhook delivery task (when alerts are on and a webhook is configured).

        Raises:
            RuntimeError: it was already opened.
        """
        if self._opened:
            raise RuntimeError("Alerts can be opened once")
        self._opened = True
        if self._enabled and self._webhook:
            self._task = asyncio.create_task(self._deliver_loop(), name="asyncrouter-alerts-webhook")

    async def aclose(self) -> None:
        """Deliver what is queued, for at most ``close_timeout`` seconds, then stop; the rest counts as dropped.

        Safe to call twice, and shielded from cancellation so the task is never left behind.
        """
        if not self._opened or self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        with anyio.CancelScope(shield=True):
            if not task.done() and self._close_timeout > 0:
                with anyio.move_on_after(self._close_timeout):
                    await self._queue.join()
            dropped_before = self.dropped
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            self.dropped += self._queue.qsize()
            if abandoned := self.dropped - dropped_before:
                _log.warning("alerts: %d webhook deliveries abandoned at close", abandoned)
            while not self._queue.empty():
                self._queue.get_nowait()

    async def __aenter__(self) -> Alerts:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_task", None) is not None and not getattr(self, "_closed", True):
            _warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=2)

    def attach(self, *, budget: Budget | None = None, breakers: BreakerBoard | None = None) -> Callable[[], None]:
        """Subscribe to a budget's and a breaker board's events; with a budget, also check it after each request.

        Args:
            budget: feeds the ``budget`` rule (state changes, and its status after each request that cost money,
                so thresholds between the budget's own ``warn_at``/``downgrade_at`` are caught too).
            breakers: feeds the ``breaker_open`` rule.

        Returns:
            A function that detaches both again.

        .. versionadded:: 0.1
        """
        undo: list[Callable[[], None]] = []
        if budget is not None:
            undo.append(budget.subscribe(self.on_budget_event))
            self._budget = budget
        if breakers is not None:
            undo.append(breakers.subscribe(self.on_breaker_event))

        def detach() -> None:
            for u in undo:
                u()
            if budget is not None and self._budget is budget:
                self._budget = None

        return detach

    # ------------------------------------------------------------------------------------------------- inputs

    def observe(self, status: str, *, cost_usd: float = 0.0, at: float | None = None) -> None:
        """Feed one finished request to the ``error_rate``, ``cost_spike`` and ``budget`` rules. Never raises.

        Synchronous and O(1) amortised: call it on every request.

        Args:
            status: ``"ok"``, ``"error"`` or ``"cancelled"`` (the tracker's statuses; anything else is ignored).
            cost_usd: what the request cost, all attempts included.
            at: the clock's monotonic time it ended (default: now).

        .. versionadded:: 0.1
        """
        if not self._enabled:
            return
        now = self._clock.monotonic() if at is None else at
        if status == "ok" or status == "error":
            idx = self._requests.index(now)
            self._requests.add(idx, 1.0)
            if status == "error":
                # The error ring catches up here; the rate is only read right after both rings moved to idx.
                self._errors.add(idx, 1.0)
                self._check_error_rate(now)
        elif status != "cancelled":
            return
        step = self._spend.index(now)
        if self._first_step is None:
            self._first_step = step
        if cost_usd > 0.0:
            self._spend.add(step, cost_usd)
            self._check_cost_spike(now, step)
            if self._budget is not None:
                # Reading the budget costs microseconds: only when this process's spend since the last read could
                # have reached the next threshold, or a poll interval has passed (other processes spend too).
                self._budget_tally += cost_usd
                if self._budget_tally >= self._budget_gap or now - self._budget_polled >= self._budget_poll:
                    self._poll_budget(self._budget, now)

    def _poll_budget(self, budget: Budget, now: float) -> None:
        status = budget.status()
        self.check_budget(status)
        self._budget_tally = 0.0
        self._budget_polled = now
        nxt = next((t for t in self._thresholds if t > self._budget_alerted), None)
        if nxt is None or status.limit is None:
            self._budget_gap = math.inf  # nothing left to reach today; the poll interval notices a new day
        else:
            self._budget_gap = nxt * status.limit - status.spent

    def on_budget_event(self, event: BudgetEvent) -> None:
        """``Budget.subscribe`` callback: check the thresholds against the budget's new status.

        .. versionadded:: 0.1
        """
        if self._enabled:
            self.check_budget(event.status)

    def on_breaker_event(self, event: BreakerEvent) -> None:
        """``BreakerBoard.subscribe`` callback: alert when a breaker opens.

        .. versionadded:: 0.1
        """
        if not self._enabled or event.new_state != "open":
            return
        if event.origin is not None and not self._remote_breakers:
            return
        what = f"{event.kind} {event.name!r}"
        where = f" in {event.origin}" if event.origin is not None else ""
        self._fire(
            "breaker_open",
            f"breaker:{event.kind}:{event.name}",
            self._clock.monotonic(),
            lambda: (
                f"Circuit breaker open: {what}",
                f"The breaker for {what} opened{where}: {event.reason}. Requests skip it until it recovers.",
                "warning",
                {
                    "name": event.name,
                    "kind": event.kind,
                    "from": event.old_state,
                    "reason": event.reason,
                    "origin": event.origin,
                },
            ),
        )

    def check_budget(self, status: BudgetStatus) -> None:
        """Alert on the highest threshold *status* reached today that has not been alerted on yet.

        .. versionadded:: 0.1
        """
        if not self._enabled or status.limit is None or not self._thresholds:
            return
        if status.day != self._budget_day:
            self._budget_day = status.day
            self._budget_alerted = -1.0
        level = 1.0 if status.state == "exhausted" else status.fraction
        threshold = -1.0
        for t in self._thresholds:  # ascending: ends on the highest threshold reached
            if t > level:
                break
            threshold = t
        if threshold <= self._budget_alerted:
            return
        self._budget_alerted = threshold
        critical = threshold >= 1.0 or status.state == "exhausted"
        self._fire(
            "budget",
            f"budget:{status.day}:{threshold:g}",
            self._clock.monotonic(),
            lambda: (
                f"Budget {_pct(threshold)} used" if threshold < 1.0 else "Budget exhausted",
                f"Spent ${status.spent:.4f} of the ${status.limit:.2f} daily budget for {status.day} "
                f"({status.timezone}): {_pct(status.fraction)}, threshold {_pct(threshold)}; state {status.state}.",
                "critical" if critical else "warning",
                {
                    "threshold": threshold,
                    "fraction": status.fraction,
                    "spent": status.spent,
                    "limit": status.limit,
                    "state": status.state,
                    "day": status.day,
                },
            ),
        )

    # ---------------------------------------------------------------------------------------------- outputs

    def history(self) -> list[Alert]:
        """The alerts that fired (not the suppressed ones), oldest first, at most ``history_size``.

        .. versionadded:: 0.1
        """
        return list(self._history)

    @property
    def queued(self) -> int:
        """Webhook deliveries waiting in the queue."""
        return self._queue.qsize()

    async def send_test(self, *, webhook_url: str | None = None) -> WebhookDelivery:
        """Send one test alert to the webhook now and say whether it arrived (``asyncrouter alerts test``).

        The alert (rule ``"test"``) goes out as real alerts do: written to the log channel when ``alerts.log`` is
        on, and POSTed as the same Slack-compatible JSON through the same client, timeout and counters
        (:attr:`sent`, :attr:`failed`). It bypasses the rules, the cooldown, the queue and :meth:`history`, and it
        is sent even while ``alerts.enabled`` is false, so a webhook can be checked before alerts are turned on.
        Within a router, call it while the router is open (its HTTP client is then open).

        Args:
            webhook_url: where to send it (default: the configured ``alerts.webhook_url``).

        Returns:
            A :class:`WebhookDelivery`: the alert, the webhook (secret path left out), the status and any error.
            A failed delivery is reported there, never raised.

        Raises:
            ValueError: no *webhook_url* was given and none is configured.

        .. versionadded:: 0.1
        """
        url = webhook_url or self._webhook
        if not url:
            raise ValueError("no webhook: pass webhook_url or set alerts.webhook_url")
        alert = Alert(
            "test",
            "test",
            "Test alert",
            f"A test alert from {self._source}: if you can read this, alerts reach this webhook.",
            "warning",
            self._clock.time(),
            {"test": True},
        )
        if self._log_channel:
            _log.warning("alert %s: %s: %s", alert.rule, alert.title, alert.text, extra={"alert": alert.to_dict()})
        status, error = await self._post(url, alert)
        return WebhookDelivery(alert, _safe_webhook(url), status, error)

    # ------------------------------------------------------------------------------------------------- rules

    def _check_error_rate(self, now: float) -> None:
        total = self._requests.total
        cfg = self._config
        if total < cfg.error_rate_min_requests:
            return
        errors = self._errors.total
        rate = errors / total
        if rate < cfg.error_rate_threshold:
            return
        window = cfg.error_rate_window
        self._fire(
            "error_rate",
            "error_rate",
            now,
            lambda: (
                f"Error rate {_pct(rate)} over {window:g} s",
                f"{errors:.0f} of {total:.0f} requests failed in the last {window:g} s "
                f"(threshold {_pct(cfg.error_rate_threshold)}, at least {cfg.error_rate_min_requests} requests).",
                "critical" if rate >= 1.0 else "warning",
                {
                    "rate": rate,
                    "errors": int(errors),
                    "requests": int(total),
                    "window": window,
                    "threshold": cfg.error_rate_threshold,
                },
            ),
        )

    def _check_cost_spike(self, now: float, step: int) -> None:
        assert self._first_step is not None
        # Complete baseline steps since the first observation, at most the whole baseline.
        history = min(step - _SPIKE_STEPS - self._first_step + 1, self._spike_base_steps)
        if history < max(1, self._spike_min_steps):
            return
        recent = self._spend.last(_SPIKE_STEPS)
        baseline = self._spend.total - recent
        if baseline <= 0.0:
            return
        average = baseline / history * _SPIKE_STEPS  # per window
        factor = self._config.cost_spike_factor
        if recent <= factor * average:
            return
        window = self._spike_window
        minutes = history * window / _SPIKE_STEPS / 60
        self._fire(
            "cost_spike",
            "cost_spike",
            now,
            lambda: (
                f"Cost spike: ${recent:.4f} in {window:g} s",
                f"${recent:.4f} spent in the last {window:g} s is {recent / average:.1f}x the trailing average of "
                f"${average:.4f} per {window:g} s over the previous {minutes:.0f} min (alert factor {factor:g}).",
                "warning",
                {
                    "recent_usd": recent,
                    "average_usd": average,
                    "ratio": recent / average,
                    "window": window,
                    "baseline_minutes": minutes,
                    "factor": factor,
                },
            ),
        )

    def _fire(
        self,
        rule: AlertRule,
        key: str,
        now: float,
        build: Callable[[], tuple[str, str, Severity, Mapping[str, Any]]],
    ) -> Alert | None:
        last = self._last_fired.get(key)
        if last is not None and now - last < self._cooldown:
            self.suppressed += 1
            return None
        self._last_fired[key] = now
        title, text, severity, details = build()  # only now: a suppressed alert costs no formatting
        alert = Alert(rule, key, title, text, severity, self._clock.time(), details)
        self._history.append(alert)
        if self._log_channel:
            _log.warning("alert %s: %s: %s", rule, title, text, extra={"alert": alert.to_dict()})
        if self._webhook:
            if self._closed:
                self.dropped += 1
            else:
                try:
                    self._queue.put_nowait(alert)
                except asyncio.QueueFull:
                    self.dropped += 1
                    _log.warning("alerts: webhook queue full, dropped %s alert %r", rule, title)
        return alert

    # -------------------------------------------------------------------------------------------- delivery

    async def _deliver_loop(self) -> None:
        url = self._webhook
        assert url is not None
        while True:
            alert = await self._queue.get()
            try:
                await self._post(url, alert)
            except asyncio.CancelledError:
                self.dropped += 1  # aclose() gave up on it mid-delivery
                raise
            finally:
                self._queue.task_done()

    async def _post(self, url: str, alert: Alert) -> tuple[int | None, str | None]:
        """POST *alert*, count it as sent or failed, log a failure; never raises. Returns (status, error)."""
        body = slack_payload(alert, source=self._source)
        try:
            if self._http is not None:
                status = await self._http.post_fire_and_forget(url, body=body, timeout=self._webhook_timeout)
            else:
                status = await post_json_once(url, body, timeout=self._webhook_timeout)
        except Exception as exc:  # ProviderError from the transport, RuntimeError from a closed client, ...
            self.failed += 1
            _log.warning(
                "alerts: webhook %s failed for %s alert (%s: %s)",
                _safe_webhook(url),
                alert.rule,
                type(exc).__name__,
                exc,
            )
            return None, f"{type(exc).__name__}: {exc}".replace(url, _safe_webhook(url))
        if 200 <= status < 300:
            self.sent += 1
            return status, None
        self.failed += 1
        _log.warning("alerts: webhook %s answered HTTP %d for %s alert", _safe_webhook(url), status, alert.rule)
        return status, f"HTTP {status}"

    def __repr__(self) -> str:
        return (
            f"Alerts(enabled={self._enabled}, webhook={self._webhook is not None}, sent={self.sent}, "
            f"failed={self.failed}, dropped={self.dropped})"
        )
