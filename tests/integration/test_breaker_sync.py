"""Breakers shared through a real redis-server: boards in this process, a second OS process, Redis going away.

The first section tests what ``BreakerSync`` drives on the board (``force_open`` / ``force_close``) without Redis.
Waits use a hang guard (``HANG_GUARD`` seconds), never a timing assertion: propagation is event-driven
(pub/sub), so the guard is only there to fail a broken build instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest
import redis

from asyncrouter._breaker import Admission, BreakerBoard, BreakerEvent, Rejection
from asyncrouter._breaker_sync import BreakerSync
from asyncrouter._clock import AnyioClock
from asyncrouter._config import BreakersConfig, load_config
from asyncrouter._exceptions import ConfigError, ProviderServerError
from asyncrouter._types import Clock
from asyncrouter.testing import FakeClock

HANG_GUARD = 10.0
FAIL_MAX = 2
RESET = 10.0
MODELS = {"mini": "openai:http://a", "spare": "openai:http://a", "big": "anthropic:http://b"}


def make_board(clock: Clock, *, reset: float = RESET, enabled: bool = True) -> BreakerBoard:
    config = BreakersConfig.model_validate(
        {
            "enabled": enabled,
            "model": {"fail_max": FAIL_MAX, "reset_timeout": reset},
            "provider": {"fail_max": 2, "reset_timeout": reset * 2},
        }
    )
    return BreakerBoard(config, clock=clock, models=MODELS)


def admitted(board: BreakerBoard, alias: str) -> Admission:
    admission = board.admit(alias)
    assert isinstance(admission, Admission), admission
    return admission


def trip(board: BreakerBoard, alias: str = "mini") -> None:
    """Record failures on *alias* until its breaker opens."""
    for _ in range(FAIL_MAX):
        admission = board.admit(alias)
        assert not isinstance(admission, Rejection)
        board.record(admission, ProviderServerError("boom", provider="openai", model=alias, status_code=503))
    assert board.status()[alias].state == "open"


def record_events(board: BreakerBoard) -> list[BreakerEvent]:
    events: list[BreakerEvent] = []
    board.subscribe(events.append)
    return events


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    try:
        with anyio.fail_after(HANG_GUARD):
            # Polling on purpose: the state lives in another process or arrives through Redis; no event to await.
            while not predicate():  # noqa: ASYNC110
                await anyio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"not seen within the {HANG_GUARD} s hang guard: {what}")


# ------------------------------------------------------------------------------ force_open / force_close, no Redis


def test_force_open_rejects_like_a_local_trip_then_goes_half_open_on_time(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    events = record_events(board)
    assert board.force_open("mini", duration=4.0, reason="opened by host-a:1: 5 failures", origin="host-a:1")

    rejection = board.admit("mini")
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "breaker open for model 'mini' (opened by host-a:1: 5 failures, retry in 4.0 s)"
    assert board.snapshot() == {"mini": rejection.reason}
    assert [(e.name, e.old_state, e.new_state, e.origin) for e in events] == [("mini", "closed", "open", "host-a:1")]
    assert events[0].reason == "opened by host-a:1: 5 failures"
    assert board.status()["mini"].retry_in == pytest.approx(4.0)  # the remote's remaining time, not RESET

    fake_clock.advance(3.9)
    assert isinstance(board.admit("mini"), Rejection)
    fake_clock.advance(0.2)
    trial = board.admit("mini")  # half-open: this process runs its own trial
    assert trial.admitted
    assert trial.trial
    board.record(trial, None)
    assert board.status()["mini"].state == "closed"
    assert [(e.new_state, e.origin) for e in events[1:]] == [("half_open", None), ("closed", None)]


def test_force_open_only_extends(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    trip(board)  # open locally for RESET seconds
    events = record_events(board)
    assert not board.force_open("mini", duration=RESET / 2, reason="shorter", origin="b")
    assert "consecutive failures" in board.snapshot()["mini"]  # the local reason stays
    assert board.force_open("mini", duration=RESET * 3, reason="opened by b: longer", origin="b")
    assert board.status()["mini"].retry_in == pytest.approx(RESET * 3)
    assert "opened by b: longer" in board.snapshot()["mini"]
    assert events == []  # open -> open is no transition


def test_force_open_reopens_half_open_and_voids_its_trial(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    trip(board)
    fake_clock.advance(RESET)
    trial = board.admit("mini")
    assert trial.admitted
    assert trial.trial
    assert board.force_open("mini", duration=5.0, reason="remote", origin="b")
    board.record(trial, None)  # the trial ran under the old state: it must not close the breaker
    assert board.status()["mini"].state == "open"


def test_force_close(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    events = record_events(board)
    assert not board.force_close("mini", reason="nothing to do", origin="b")
    trip(board)
    assert board.force_close("mini", reason="closed by b: trial request succeeded", origin="b")
    status = board.status()["mini"]
    assert (status.state, status.fail_count) == ("closed", 0)
    assert board.admit("mini").admitted
    assert [(e.new_state, e.origin, e.reason) for e in events[-1:]] == [
        ("closed", "b", "closed by b: trial request succeeded")
    ]


def test_force_unknown_name_and_disabled_board(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    with pytest.raises(KeyError):
        board.force_open("nope", duration=1.0, reason="x")
    with pytest.raises(KeyError):
        board.force_close("nope", reason="x")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        assert not board.force_open("mini", duration=bad, reason="x")
    off = make_board(fake_clock, enabled=False)
    assert not off.force_open("mini", duration=5.0, reason="x")
    assert off.admit("mini").admitted


def test_force_open_provider_breaker_rejects_every_hosted_model(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    assert board.force_open("openai:http://a", duration=7.0, reason="opened by b: endpoint down", origin="b")
    snap = board.snapshot()
    assert set(snap) == {"mini", "spare"}
    assert snap["spare"] == "breaker open for provider 'openai:http://a' (opened by b: endpoint down, retry in 7.0 s)"
    assert board.admit("big").admitted


def test_from_config() -> None:
    models = [{"name": "m", "model_id": "m", "provider": "ollama"}]
    clock = FakeClock()
    off = load_config({"models": models})
    assert BreakerSync.from_config(off, BreakerBoard.from_config(off, clock=clock), clock=clock) is None
    no_url = load_config({"models": models, "breakers": {"shared": True}})
    with pytest.raises(ConfigError, match="redis"):
        BreakerSync.from_config(no_url, BreakerBoard.from_config(no_url, clock=clock), clock=clock)
    shared = load_config(
        {
            "models": models,
            "breakers": {"shared": True},
            "budget": {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "redis_prefix": "svc"},
        }
    )
    sync = BreakerSync.from_config(shared, BreakerBoard.from_config(shared, clock=clock), clock=clock)
    assert sync is not None
    assert (sync.key("m"), sync.channel) == ("svc:breaker:m", "svc:breakers")


def test_missing_redis_package_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)  # makes `import redis.asyncio` fail
    clock = FakeClock()
    with pytest.raises(ConfigError, match=r"pip install 'asyncrouter\[redis\]'"):
        BreakerSync(make_board(clock), redis_url="redis://127.0.0.1:1/0", clock=clock)


# ------------------------------------------------------------------------------------------------- with Redis


@contextlib.asynccontextmanager
async def running(sync: BreakerSync, *, wait_connected: bool = True) -> AsyncIterator[BreakerSync]:
    async with sync:
        if wait_connected:
            await eventually(lambda: sync.connected, f"{sync!r} connected")
        yield sync


@pytest.mark.redis
async def test_open_on_one_board_is_seen_on_the_other_and_close_follows(redis_url: str) -> None:
    clock_a = FakeClock()
    clock_b = FakeClock(start=1_767_225_600.0 + 3600.0, monotonic_start=5.0)  # skewed: only durations travel
    board_a, board_b = make_board(clock_a), make_board(clock_b)
    events_a, events_b = record_events(board_a), record_events(board_b)
    async with (
        running(BreakerSync(board_a, redis_url=redis_url, clock=clock_a, origin="proc-a")) as sync_a,
        running(BreakerSync(board_b, redis_url=redis_url, clock=clock_b, origin="proc-b")) as sync_b,
    ):
        trip(board_a)
        await eventually(lambda: "mini" in board_b.snapshot(), "proc-b rejects mini")
        reason = board_b.snapshot()["mini"]
        assert reason.startswith("breaker open for model 'mini' (opened by proc-a: 2 consecutive failures")
        assert reason.endswith("retry in 10.0 s)")
        rejection = board_b.admit("mini")
        assert isinstance(rejection, Rejection)
        assert rejection.reason == reason
        assert board_b.status()["mini"].retry_in == pytest.approx(RESET)
        assert board_b.admit("spare").admitted  # only that model

        with redis.Redis.from_url(redis_url) as r:
            stored = json.loads(r.get("asyncrouter:breaker:mini") or b"{}")
            pttl = r.pttl("asyncrouter:breaker:mini")
        assert (stored["op"], stored["name"], stored["origin"], stored["kind"]) == ("open", "mini", "proc-a", "model")
        assert RESET * 1000 - HANG_GUARD * 1000 < pttl <= RESET * 1000

        # Time is up on both: each goes half-open on its own; proc-a's trial succeeds and closes it everywhere.
        clock_a.advance(RESET)
        clock_b.advance(RESET)
        trial = board_a.admit("mini")
        assert trial.admitted
        assert trial.trial
        board_a.record(trial, None)
        await eventually(lambda: board_b.status()["mini"].state == "closed", "proc-b closes mini")
        assert board_b.admit("mini").admitted
        await sync_a.flush()
        with redis.Redis.from_url(redis_url) as r:
            assert r.exists("asyncrouter:breaker:mini") == 0

        # Nothing echoed: a published twice (open, close), b never; each applied only the other's.
        assert (sync_a.published, sync_b.published) == (2, 0)
        assert (sync_a.applied, sync_b.applied) == (0, 2)
        assert [e.origin for e in events_a] == [None, None, None]
        assert [(e.new_state, e.origin) for e in events_b] == [
            ("open", "proc-a"),
            ("half_open", None),
            ("closed", "proc-a"),
        ]


@pytest.mark.redis
async def test_failed_trial_reopens_everywhere_and_provider_breakers_travel_too(redis_url: str) -> None:
    clock_a, clock_b = FakeClock(), FakeClock()
    board_a, board_b = make_board(clock_a), make_board(clock_b)
    async with (
        running(BreakerSync(board_a, redis_url=redis_url, clock=clock_a, origin="a")) as sync_a,
        running(BreakerSync(board_b, redis_url=redis_url, clock=clock_b, origin="b")),
    ):
        board_a.force_open("big", duration=1.0, reason="setup", origin="test")  # not published: not a local trip
        trip(board_a)
        await eventually(lambda: "mini" in board_b.snapshot(), "b rejects mini")
        clock_a.advance(RESET)
        clock_b.advance(RESET)
        assert board_b.status()["mini"].state == "half_open"
        trial = admitted(board_b, "mini")  # b's own trial fails: b re-opens and tells a
        board_b.record(trial, ProviderServerError("still down", status_code=500))
        await eventually(lambda: board_a.status()["mini"].state == "open", "a re-opens mini")
        assert "opened by b: trial request failed" in board_a.snapshot()["mini"]

        # Two models of the endpoint fail on a: its provider breaker opens, and b skips every model it hosts.
        for alias in ("spare", "mini"):
            board_a.force_close(alias, reason="reset", origin="test")
        for alias in ("mini", "spare"):
            board_a.record(admitted(board_a, alias), ProviderServerError("down", status_code=502))
        assert board_a.status()["openai:http://a"].state == "open"
        await eventually(lambda: set(board_b.snapshot()) >= {"mini", "spare"}, "b rejects the whole endpoint")
        assert "provider 'openai:http://a' (opened by a:" in board_b.snapshot()["spare"]
        assert "big" not in board_b.snapshot()
        # b can hear a's message before a's own publish call returns and counts it: wait for a's side first.
        await sync_a.flush()
        assert sync_a.published == 2  # mini's close from force_close and big's open were not local: not sent


@pytest.mark.redis
async def test_a_process_started_later_reads_the_open_keys(redis_url: str) -> None:
    clock_a, clock_b = FakeClock(), FakeClock()
    board_a, board_b = make_board(clock_a), make_board(clock_b)
    async with running(BreakerSync(board_a, redis_url=redis_url, clock=clock_a, origin="a")) as sync_a:
        trip(board_a, "big")
        await sync_a.flush()
        async with running(BreakerSync(board_b, redis_url=redis_url, clock=clock_b, origin="b")) as sync_b:
            assert "opened by a:" in board_b.snapshot()["big"]  # already applied when connected
            retry_in = board_b.status()["big"].retry_in
            assert retry_in is not None
            assert 0 < retry_in <= RESET  # from the key's TTL on the server
            # big is alone on its endpoint, so its provider breaker opened with it: two keys, both applied.
            assert "provider 'anthropic:http://b' (opened by a:" in board_b.snapshot()["big"]
            assert (sync_b.received, sync_b.applied) == (2, 2)


@pytest.mark.redis
async def test_malformed_and_foreign_messages_are_ignored(redis_url: str, fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    async with running(BreakerSync(board, redis_url=redis_url, clock=fake_clock, origin="me")) as sync:
        with redis.Redis.from_url(redis_url) as r:
            for raw in (
                b"not json",
                b"[1, 2]",
                json.dumps({"v": 99, "op": "open", "name": "mini", "ttl": 5, "origin": "x"}),
                json.dumps({"v": 1, "op": "open", "name": "mini", "ttl": 5, "origin": "me"}),  # own echo
                json.dumps({"v": 1, "op": "open", "name": "unknown-model", "ttl": 5, "origin": "x"}),
                json.dumps({"v": 1, "op": "explode", "name": "mini", "origin": "x"}),
                json.dumps({"v": 1, "op": "open", "name": "spare", "ttl": 5, "origin": "x", "reason": "last"}),
            ):
                r.publish(sync.channel, raw)
        await eventually(lambda: "spare" in board.snapshot(), "the one valid message applied")
        assert set(board.snapshot()) == {"spare"}
        assert (sync.received, sync.applied) == (3, 1)  # unknown model, bad op, spare


@pytest.mark.redis
async def test_a_second_os_process_opens_a_breaker_and_this_one_sees_it(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, json, sys
            from asyncrouter._breaker import BreakerBoard
            from asyncrouter._breaker_sync import BreakerSync
            from asyncrouter._clock import AnyioClock
            from asyncrouter._config import BreakersConfig
            from asyncrouter._exceptions import ProviderServerError

            async def main(url: str) -> None:
                clock = AnyioClock()
                config = BreakersConfig.model_validate({{"model": {{"fail_max": 2, "reset_timeout": 60}}}})
                board = BreakerBoard(config, clock=clock, models={MODELS!r})
                async with BreakerSync(board, redis_url=url, clock=clock, origin="child-process") as sync:
                    for _ in range(2):
                        board.record(board.admit("mini"), ProviderServerError("boom", status_code=500))
                    await sync.flush()
                    print(json.dumps({{"opened_at": clock.time(), "state": board.status()["mini"].state}}))

            asyncio.run(main(sys.argv[1]))
            """
        )
    )
    clock = AnyioClock()
    board = make_board(clock, reset=60.0)
    async with running(BreakerSync(board, redis_url=redis_url, clock=clock, origin="parent")) as sync:
        result = await anyio.run_process([sys.executable, str(script), redis_url], check=False)
        assert result.returncode == 0, result.stderr.decode()
        child = json.loads(result.stdout)
        assert child["state"] == "open"
        await eventually(lambda: "mini" in board.snapshot(), "the parent rejects mini")
        assert "opened by child-process: 2 consecutive failures" in board.snapshot()["mini"]
        assert sync.applied == 1
        retry_in = board.status()["mini"].retry_in
        assert retry_in is not None
        assert 60.0 - HANG_GUARD < retry_in <= 60.0


# ------------------------------------------------------------------------------------------- Redis going away


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of redis-server that can go down and come back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._pipes):
            task.cancel()
        for writer in list(self._writers):
            writer.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if self._pipes:
            await asyncio.gather(*self._pipes, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            dst.close()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[FlakyProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    p = FlakyProxy(port)
    await p.up()
    try:
        yield p
    finally:
        await p.down()


@pytest.fixture
def quiet_sync_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="asyncrouter.breaker_sync"):
        yield caplog


@pytest.mark.redis
async def test_redis_away_never_breaks_routing_and_sharing_resumes(
    redis_url: str, proxy: FlakyProxy, quiet_sync_log: pytest.LogCaptureFixture
) -> None:
    clock = AnyioClock()  # real time: the board's and the retry loop's clock must be one
    board_a, board_b = make_board(clock, reset=300.0), make_board(clock, reset=300.0)
    flaky_url = f"redis://127.0.0.1:{proxy.port}/0"
    await proxy.down()
    sync_a = BreakerSync(board_a, redis_url=flaky_url, clock=clock, origin="a", backoff_base=0.01, backoff_max=0.05)
    async with (
        running(sync_a, wait_connected=False),
        running(BreakerSync(board_b, redis_url=redis_url, clock=clock, origin="b")),
    ):
        # Redis unreachable from a: routing on a is untouched, its own breakers still trip and reject.
        await eventually(lambda: sync_a.errors >= 2, "a retries")
        assert not sync_a.connected
        trip(board_a)
        assert isinstance(board_a.admit("mini"), Rejection)
        assert board_a.admit("spare").admitted
        warnings = [r for r in quiet_sync_log.records if r.levelno == logging.WARNING]
        assert warnings
        assert "routing goes on with local breakers" in warnings[0].getMessage()
        assert len(warnings) <= 2  # one per loop and outage, not one per retry

        # Redis is back: a's pending open reaches b.
        await proxy.up()
        await eventually(lambda: sync_a.connected, "a reconnects")
        await eventually(lambda: "mini" in board_b.snapshot(), "b sees a's open made during the outage")
        assert any("again" in r.getMessage() for r in quiet_sync_log.records if r.levelno == logging.INFO)

        # It goes away mid-session: the listener drops and comes back, re-reading the keys it may have missed.
        await proxy.down()
        await eventually(lambda: not sync_a.connected, "a notices the outage")
        trip(board_b, "big")  # announced while a cannot hear it
        await proxy.up()
        await eventually(lambda: "big" in board_a.snapshot(), "a applies b's open from the keys after reconnecting")


@pytest.mark.redis
async def test_backoff_runs_on_the_clock_and_grows(fake_clock: FakeClock) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_url = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    board = make_board(fake_clock, reset=1e9)  # the fake clock jumps with every backoff
    sync = BreakerSync(
        board, redis_url=dead_url, clock=fake_clock, backoff_base=0.5, backoff_max=4.0, close_timeout=0.0
    )
    async with sync:
        trip(board)  # gives the publisher something to retry as well
        await eventually(lambda: len(fake_clock.sleeps) >= 16, "sixteen backoff sleeps")
    # Two loops (listener, publisher) each back off 0.5, 1, 2, 4, 4, ...
    listener_like = sorted(fake_clock.sleeps)[:2]
    assert listener_like == [0.5, 0.5]
    assert max(fake_clock.sleeps) == 4.0
    assert fake_clock.sleeps.count(4.0) >= 4
    assert set(fake_clock.sleeps) <= {0.5, 1.0, 2.0, 4.0}
    assert sync.published == 0
    assert board.status()["mini"].state == "open"
