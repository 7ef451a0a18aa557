from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import pytest

from asyncrouter import _exceptions as errors
from asyncrouter._breaker import (
    DEFAULT_TRIAL_LEASE,
    Admission,
    BreakerBoard,
    BreakerEvent,
    ClockedMemoryStorage,
    Outcome,
    Rejection,
    StorageFactory,
    classify_outcome,
    endpoint_key,
)
from asyncrouter._config import BreakersConfig, load_config
from asyncrouter._exceptions import (
    AuthenticationError,
    BadRequestError,
    CircuitOpen,
    ConfigError,
    ContentPolicyError,
    ContextLengthExceeded,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    StreamInterrupted,
)
from asyncrouter.testing import FakeClock

MODEL_FAIL_MAX = 3
MODEL_RESET = 10.0
PROVIDER_FAIL_MAX = 4
PROVIDER_RESET = 20.0


def make_config(
    *,
    model: tuple[int, float] = (MODEL_FAIL_MAX, MODEL_RESET),
    provider: tuple[int, float] = (PROVIDER_FAIL_MAX, PROVIDER_RESET),
    enabled: bool = True,
) -> BreakersConfig:
    return BreakersConfig.model_validate(
        {
            "enabled": enabled,
            "model": {"fail_max": model[0], "reset_timeout": model[1]},
            "provider": {"fail_max": provider[0], "reset_timeout": provider[1]},
        }
    )


def make_board(
    clock: FakeClock,
    models: dict[str, str] | None = None,
    *,
    config: BreakersConfig | None = None,
    storage_factory: StorageFactory | None = None,
    trial_lease: float = DEFAULT_TRIAL_LEASE,
) -> BreakerBoard:
    # By default "mini" shares its endpoint with an idle sibling, so mini's failures alone never open the
    # provider breaker and model-breaker tests see only the model breaker move.
    return BreakerBoard(
        config or make_config(),
        clock=clock,
        models=models or {"mini": "ep", "spare": "ep"},
        storage_factory=storage_factory,
        trial_lease=trial_lease,
    )


def admitted(board: BreakerBoard, alias: str) -> Admission:
    result = board.admit(alias)
    assert isinstance(result, Admission), result
    return result


def call(board: BreakerBoard, alias: str, exc: BaseException | None, *, final: bool = False) -> Outcome:
    return board.record(admitted(board, alias), exc, final=final)


def fail(board: BreakerBoard, alias: str, times: int = 1) -> None:
    for _ in range(times):
        call(board, alias, ProviderServerError("boom", provider="openai", model=alias, status_code=503))


def state(board: BreakerBoard, name: str) -> str:
    return board.status()[name].state


def open_model(board: BreakerBoard, alias: str = "mini") -> None:
    fail(board, alias, MODEL_FAIL_MAX)
    assert state(board, alias) == "open"


# -- which outcomes count --------------------------------------------------------------------------------------

OUTCOMES = [
    pytest.param(lambda: None, False, "success", id="no-exception"),
    pytest.param(lambda: ProviderError("generic"), False, "failure", id="ProviderError"),
    pytest.param(lambda: ProviderServerError("500", status_code=500), False, "failure", id="5xx"),
    pytest.param(lambda: ProviderOverloaded("529", status_code=529), False, "failure", id="529-overloaded"),
    pytest.param(lambda: MalformedResponse("bad json", status_code=200), False, "failure", id="malformed"),
    pytest.param(lambda: ProviderTimeout("slow"), False, "failure", id="timeout"),
    pytest.param(lambda: ProviderConnectionError("reset"), False, "failure", id="connection"),
    pytest.param(lambda: StreamInterrupted("cut"), False, "failure", id="stream-interrupted"),
    pytest.param(lambda: RateLimited("429", retry_after=1.0), False, "ignored", id="429-will-retry"),
    pytest.param(lambda: RateLimited("429", retry_after=1.0), True, "failure", id="429-retries-exhausted"),
    pytest.param(lambda: ProviderRejected("no"), True, "ignored", id="rejected"),
    pytest.param(lambda: AuthenticationError("401", status_code=401), True, "ignored", id="401"),
    pytest.param(lambda: QuotaExhausted("quota", status_code=429), True, "ignored", id="quota"),
    pytest.param(lambda: BadRequestError("400", status_code=400), True, "ignored", id="400"),
    pytest.param(lambda: ContextLengthExceeded("too long"), True, "ignored", id="context-length"),
    pytest.param(lambda: ContentPolicyError("policy"), True, "ignored", id="content-policy"),
    pytest.param(lambda: asyncio.CancelledError(), True, "ignored", id="cancelled"),
    pytest.param(lambda: KeyboardInterrupt(), True, "ignored", id="keyboard-interrupt"),
    pytest.param(lambda: GeneratorExit(), True, "ignored", id="generator-exit"),
    pytest.param(lambda: SystemExit(1), True, "ignored", id="system-exit"),
    pytest.param(lambda: TimeoutError("caller deadline"), True, "ignored", id="bare-timeout"),
    pytest.param(lambda: ValueError("our bug"), True, "ignored", id="non-provider-error"),
    pytest.param(lambda: CircuitOpen("open", name="x"), True, "ignored", id="circuit-open"),
    pytest.param(
        lambda: ExceptionGroup("g", [ProviderServerError("500")]), True, "ignored", id="exception-group"
    ),
]


@pytest.mark.parametrize(("make_exc", "final", "expected"), OUTCOMES)
def test_classify_outcome(make_exc: Callable[[], BaseException | None], final: bool, expected: Outcome) -> None:
    assert classify_outcome(make_exc(), final=final) == expected


@pytest.mark.parametrize(("make_exc", "final", "expected"), OUTCOMES)
def test_outcome_drives_the_breaker(
    fake_clock: FakeClock, make_exc: Callable[[], BaseException | None], final: bool, expected: Outcome
) -> None:
    board = make_board(fake_clock, {"mini": "ep", "other": "ep"})
    fail(board, "mini", MODEL_FAIL_MAX - 1)
    for _ in range(1 if expected == "failure" else 5):
        assert call(board, "mini", make_exc(), final=final) == expected
    status = board.status()["mini"]
    if expected == "failure":
        assert status.state == "open"
        assert isinstance(board.admit("mini"), Rejection)
    elif expected == "success":
        assert (status.state, status.fail_count) == ("closed", 0)
    else:  # ignored: neither a failure nor a success, so the streak stands exactly where it was
        assert (status.state, status.fail_count) == ("closed", MODEL_FAIL_MAX - 1)
        fail(board, "mini")
        assert state(board, "mini") == "open"


def _provider_error_classes(cls: type[ProviderError]) -> set[type[ProviderError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _provider_error_classes(sub)
    return found


def test_outcome_table_covers_every_provider_error() -> None:
    # A new ProviderError subclass must be classified on purpose, not by accident.
    covered: set[type[BaseException]] = set()
    for param in OUTCOMES:
        exc = param.values[0]()  # type: ignore[operator]
        if exc is not None:
            covered.add(type(exc))
    in_tree = {c for c in _provider_error_classes(ProviderError) if c.__module__ == errors.__name__}
    assert in_tree - covered == set()


# -- transitions -----------------------------------------------------------------------------------------------


def test_opens_exactly_at_fail_max(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    fail(board, "mini", MODEL_FAIL_MAX - 1)
    assert board.status()["mini"].state == "closed"
    assert board.status()["mini"].fail_count == MODEL_FAIL_MAX - 1
    assert isinstance(board.admit("mini"), Admission)
    fail(board, "mini")
    rejection = board.admit("mini")
    assert isinstance(rejection, Rejection)
    assert rejection.admitted is False
    assert admitted(board, "spare").admitted is True
    assert rejection.reason == f"breaker open for model 'mini' ({MODEL_FAIL_MAX} consecutive failures, retry in 10.0 s)"
    assert (rejection.breaker, rejection.kind, rejection.state, rejection.retry_in) == ("mini", "model", "open", 10.0)
    err = rejection.error()
    assert isinstance(err, CircuitOpen)
    assert err.name == "mini"
    assert str(err) == rejection.reason


def test_success_resets_the_streak(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    for _ in range(3):
        fail(board, "mini", MODEL_FAIL_MAX - 1)
        assert call(board, "mini", None) == "success"
        assert board.status()["mini"].fail_count == 0
    assert state(board, "mini") == "closed"


async def test_reset_timeout_runs_on_the_injected_clock(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    open_model(board)
    fake_clock.advance(MODEL_RESET - 0.5)
    rejection = board.admit("mini")
    assert isinstance(rejection, Rejection)
    assert rejection.retry_in == pytest.approx(0.5)
    assert "retry in 0.5 s" in rejection.reason
    # Only the fake clock moved: pybreaker's own datetime.now() check would still say "open" here.
    await fake_clock.sleep(0.5)
    trial = board.admit("mini")
    assert isinstance(trial, Admission)
    assert trial.trial


def test_trial_success_closes(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    assert state(board, "mini") == "half_open"
    trial = admitted(board, "mini")
    assert board.record(trial, None) == "success"
    status = board.status()["mini"]
    assert (status.state, status.fail_count, status.trial_in_flight) == ("closed", 0, False)
    assert all(isinstance(board.admit("mini"), Admission) for _ in range(10))
    # closed again means the full threshold applies again
    fail(board, "mini", MODEL_FAIL_MAX - 1)
    assert state(board, "mini") == "closed"


def test_trial_failure_reopens_with_a_new_timeout(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    open_model(board)
    fake_clock.advance(MODEL_RESET + 3)
    trial = admitted(board, "mini")
    fake_clock.advance(2)
    board.record(trial, ProviderTimeout("slow"))
    status = board.status()["mini"]
    assert status.state == "open"
    assert status.retry_in == MODEL_RESET
    assert status.opened_at == fake_clock.time()
    fake_clock.advance(MODEL_RESET - 1)
    assert state(board, "mini") == "open"
    fake_clock.advance(1)
    assert state(board, "mini") == "half_open"


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(BadRequestError("400"), id="rejected"),
        pytest.param(RateLimited("429"), id="429-will-retry"),
        pytest.param(asyncio.CancelledError(), id="cancelled"),
    ],
)
def test_ignored_trial_outcome_releases_the_slot(fake_clock: FakeClock, exc: BaseException) -> None:
    board = make_board(fake_clock)
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    trial = admitted(board, "mini")
    assert board.status()["mini"].trial_in_flight
    assert board.record(trial, exc) == "ignored"
    status = board.status()["mini"]
    assert (status.state, status.trial_in_flight) == ("half_open", False)
    assert admitted(board, "mini").trial


def test_record_twice_is_a_no_op(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    admission = admitted(board, "mini")
    board.record(admission, ProviderServerError("500"))
    assert admission.recorded
    for _ in range(MODEL_FAIL_MAX):
        board.record(admission, ProviderServerError("500"))
    assert board.status()["mini"].fail_count == 1


def test_abandoned_trial_gives_up_its_slot_after_the_lease(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, trial_lease=60.0)
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    admitted(board, "mini")  # never recorded, e.g. a stream nobody closed
    fake_clock.advance(59)
    assert isinstance(board.admit("mini"), Rejection)
    fake_clock.advance(1)
    assert board.status()["mini"].trial_in_flight is False
    assert admitted(board, "mini").trial


def test_a_late_report_from_a_lease_expired_trial(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, trial_lease=60.0)
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    first = admitted(board, "mini")
    fake_clock.advance(60)
    second = admitted(board, "mini")
    assert second.trial
    # the first trial does report in the end, in the same half-open period: its success is real evidence
    board.record(first, None)
    assert state(board, "mini") == "closed"
    # the next half-open period starts with a free slot although the second trial never reported
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    assert admitted(board, "mini").trial
    board.record(second, ProviderServerError("500"))  # stale by now: changes nothing
    assert board.status()["mini"].trial_in_flight is True


def test_outcomes_of_calls_admitted_before_a_transition_are_ignored(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    events: list[BreakerEvent] = []
    board.subscribe(events.append)
    in_flight = [admitted(board, "mini") for _ in range(10)]
    for admission in in_flight[:MODEL_FAIL_MAX]:
        board.record(admission, ProviderServerError("500"))
    # the rest were still running when it opened: their failures must not pile on or re-open it later
    board.record(in_flight[MODEL_FAIL_MAX], ProviderServerError("500"))
    assert board.status()["mini"].fail_count == MODEL_FAIL_MAX
    fake_clock.advance(MODEL_RESET)
    trial = admitted(board, "mini")
    board.record(in_flight[MODEL_FAIL_MAX + 1], None)  # a late success cannot close it behind the trial's back
    board.record(in_flight[MODEL_FAIL_MAX + 2], ProviderServerError("500"))  # nor a late failure re-open it
    status = board.status()["mini"]
    assert (status.state, status.trial_in_flight) == ("half_open", True)
    board.record(trial, None)
    for admission in in_flight[MODEL_FAIL_MAX + 3 :]:
        board.record(admission, ProviderServerError("500"))
    assert board.status()["mini"].fail_count == 0
    assert [(e.old_state, e.new_state) for e in events] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


# -- cancellation and concurrency ------------------------------------------------------------------------------


async def guarded_call(board: BreakerBoard, admission: Admission, body: Callable[[], object]) -> None:
    """What the engine does around a provider call."""
    try:
        await anyio.lowlevel.checkpoint()
        result = body()
        if isinstance(result, BaseException):
            raise result
        if result == "forever":
            await anyio.sleep_forever()
    except BaseException as exc:
        board.record(admission, exc)
        raise
    else:
        board.record(admission, None)


async def test_cancellation_does_not_count_even_at_the_threshold(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    fail(board, "mini", MODEL_FAIL_MAX - 1)
    started = 0
    all_started = anyio.Event()

    async def one() -> None:
        nonlocal started
        admission = admitted(board, "mini")
        started += 1
        if started == 20:
            all_started.set()
        await guarded_call(board, admission, lambda: "forever")

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
            await all_started.wait()
            scope.cancel()
    # the cancellation reached its scope untouched (no CircuitBreakerError in its place)
    assert scope.cancelled_caught
    status = board.status()["mini"]
    assert (status.state, status.fail_count) == ("closed", MODEL_FAIL_MAX - 1)
    fail(board, "mini")
    assert state(board, "mini") == "open"


@pytest.mark.parametrize(
    ("trial_exc", "final_state"),
    [
        pytest.param(None, "closed", id="trial-succeeds"),
        pytest.param(ProviderServerError("503"), "open", id="trial-fails"),
        pytest.param(ContextLengthExceeded("long"), "half_open", id="trial-ignored"),
    ],
)
async def test_half_open_admits_exactly_one_of_100_concurrent_tasks(
    fake_clock: FakeClock, trial_exc: BaseException | None, final_state: str
) -> None:
    board = make_board(fake_clock)
    open_model(board)
    await fake_clock.sleep(MODEL_RESET)
    results: list[Admission | Rejection] = []
    everyone_asked = anyio.Event()

    async def one() -> None:
        result = board.admit("mini")
        results.append(result)
        if len(results) == 100:
            everyone_asked.set()
        await everyone_asked.wait()  # nobody records before all 100 have asked
        if isinstance(result, Admission):
            try:
                await guarded_call(board, result, lambda: trial_exc)
            except ProviderError:
                pass

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(one)

    admissions = [r for r in results if isinstance(r, Admission)]
    rejections = [r for r in results if isinstance(r, Rejection)]
    assert len(admissions) == 1
    assert admissions[0].trial
    assert len(rejections) == 99
    assert {r.reason for r in rejections} == {"breaker for model 'mini' is half-open: trial in flight"}
    assert state(board, "mini") == final_state


async def test_trial_cancellation_releases_the_slot(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    trial = admitted(board, "mini")
    with anyio.move_on_after(0) as scope:  # the cancel scope, not the fake clock, ends the call
        await guarded_call(board, trial, lambda: "forever")
    assert scope.cancelled_caught
    status = board.status()["mini"]
    assert (status.state, status.trial_in_flight, status.fail_count) == ("half_open", False, MODEL_FAIL_MAX)
    assert admitted(board, "mini").trial


async def test_concurrent_failures_open_once(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, {"mini": "ep"})
    events: list[BreakerEvent] = []
    board.subscribe(events.append)

    async def one() -> None:
        admission = board.admit("mini")
        if isinstance(admission, Admission):
            with pytest.raises(ProviderServerError):
                await guarded_call(board, admission, lambda: ProviderServerError("503"))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
    # the model opens once at its threshold and ignores the failures of calls admitted before that; its
    # single-model endpoint counts all of them and opens at its own threshold
    assert [(e.name, e.new_state) for e in events] == [("mini", "open"), ("ep", "open")]
    assert board.status()["mini"].fail_count == MODEL_FAIL_MAX
    assert board.status()["ep"].fail_count == PROVIDER_FAIL_MAX


# -- provider breakers -----------------------------------------------------------------------------------------

THREE = {"a": "acme", "b": "acme", "c": "acme", "solo": "other"}


def provider_board(clock: FakeClock) -> BreakerBoard:
    # model breakers out of the way, so only the provider rule is under test
    config = make_config(model=(1000, MODEL_RESET))
    return make_board(clock, THREE, config=config)


def test_one_sick_model_never_opens_its_provider(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    fail(board, "a", PROVIDER_FAIL_MAX * 25)
    status = board.status()["acme"]
    assert (status.state, status.fail_count, status.streak_models) == ("closed", PROVIDER_FAIL_MAX * 25, ("a",))
    assert dict(board.snapshot()) == {}
    assert isinstance(board.admit("b"), Admission)


def test_one_sick_model_among_healthy_siblings_never_opens_its_provider(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    for _ in range(50):
        fail(board, "a", PROVIDER_FAIL_MAX - 1)
        call(board, "b", None)
        fail(board, "a", PROVIDER_FAIL_MAX - 1)
        call(board, "c", None)
    assert state(board, "acme") == "closed"


def test_all_models_failing_opens_the_provider_and_skips_them_all(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    events: list[BreakerEvent] = []
    board.subscribe(events.append)
    for alias in ["a", "b", "c"][: PROVIDER_FAIL_MAX - 1]:
        fail(board, alias)
    assert state(board, "acme") == "closed"
    fail(board, "a")
    assert state(board, "acme") == "open"
    reason = "breaker open for provider 'acme' (4 consecutive failures across models 'a', 'b', 'c', retry in 20.0 s)"
    assert dict(board.snapshot()) == {"a": reason, "b": reason, "c": reason}
    rejection = board.admit("b")
    assert isinstance(rejection, Rejection)
    assert (rejection.breaker, rejection.kind) == ("acme", "provider")
    assert isinstance(board.admit("solo"), Admission)  # another endpoint is not involved
    assert [(e.name, e.kind, e.new_state) for e in events] == [("acme", "provider", "open")]
    # its models' own breakers never opened: the provider skipped them in one step
    assert {board.status()[a].state for a in "abc"} == {"closed"}


def test_two_of_three_models_failing_is_enough(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    fail(board, "a", PROVIDER_FAIL_MAX - 1)
    assert state(board, "acme") == "closed"
    fail(board, "b")
    assert state(board, "acme") == "open"


def test_a_success_on_any_model_resets_the_provider_streak(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    fail(board, "a")
    fail(board, "b")
    fail(board, "c")
    call(board, "c", None)
    status = board.status()["acme"]
    assert (status.fail_count, status.streak_models) == (0, ())
    fail(board, "a")
    fail(board, "b")
    fail(board, "c")
    assert state(board, "acme") == "closed"


def test_single_model_endpoint_opens_on_its_model(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    fail(board, "solo", PROVIDER_FAIL_MAX)
    assert state(board, "other") == "open"
    assert "provider 'other'" in board.snapshot()["solo"]


def test_provider_half_open_admits_one_trial_across_its_models(fake_clock: FakeClock) -> None:
    board = provider_board(fake_clock)
    for alias in "abca":
        fail(board, alias)
    fake_clock.advance(PROVIDER_RESET)
    trial = admitted(board, "b")
    assert trial.trial
    for alias in "abc":
        rejection = board.admit(alias)
        assert isinstance(rejection, Rejection)
        assert rejection.reason == "breaker for provider 'acme' is half-open: trial in flight"
    board.record(trial, ProviderServerError("still down"))  # one failure re-opens it, whatever the spread
    assert state(board, "acme") == "open"
    fake_clock.advance(PROVIDER_RESET)
    board.record(admitted(board, "c"), None)
    assert state(board, "acme") == "closed"
    assert all(isinstance(board.admit(a), Admission) for a in "abc")


def test_model_and_provider_trials_are_claimed_together(fake_clock: FakeClock) -> None:
    config = make_config(model=(1, MODEL_RESET), provider=(2, MODEL_RESET))
    board = make_board(fake_clock, {"a": "acme", "b": "acme"}, config=config)
    fail(board, "a")
    fail(board, "b")
    assert {state(board, n) for n in ("a", "b", "acme")} == {"open"}
    fake_clock.advance(MODEL_RESET)
    trial = admitted(board, "a")
    rejection = board.admit("b")
    assert isinstance(rejection, Rejection)
    assert rejection.kind == "provider"
    status = board.status()
    assert status["a"].trial_in_flight
    assert status["acme"].trial_in_flight
    assert not status["b"].trial_in_flight  # refused by the provider, b claimed nothing of its own
    board.record(trial, None)
    status = board.status()
    assert (status["a"].state, status["acme"].state, status["b"].state) == ("closed", "closed", "half_open")
    assert admitted(board, "b").trial


# -- snapshot, status, events ----------------------------------------------------------------------------------


def test_snapshot_has_no_side_effects(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, {"mini": "ep", "big": "ep2"})
    assert dict(board.snapshot()) == {}
    open_model(board)
    before = board.status()
    for _ in range(5):
        assert set(board.snapshot()) == {"mini"}
    assert board.status() == before
    fake_clock.advance(MODEL_RESET)
    for _ in range(5):
        assert dict(board.snapshot()) == {}  # half-open with its trial free: admit() would take it
    trial = admitted(board, "mini")
    assert trial.trial
    snapshot = board.snapshot()
    assert dict(snapshot) == {"mini": "breaker for model 'mini' is half-open: trial in flight"}
    with pytest.raises(TypeError):
        snapshot["big"] = "x"  # type: ignore[index]


def test_events_in_order(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock)
    events: list[BreakerEvent] = []
    unsubscribe = board.subscribe(events.append)
    t0 = fake_clock.time()
    open_model(board)
    fake_clock.advance(MODEL_RESET)
    board.record(admitted(board, "mini"), ProviderTimeout("slow"))
    fake_clock.advance(MODEL_RESET)
    board.record(admitted(board, "mini"), None)
    model_events = [e for e in events if e.kind == "model"]
    assert [(e.old_state, e.new_state, e.at - t0) for e in model_events] == [
        ("closed", "open", 0.0),
        ("open", "half_open", 10.0),
        ("half_open", "open", 10.0),
        ("open", "half_open", 20.0),
        ("half_open", "closed", 20.0),
    ]
    assert [e.reason for e in model_events] == [
        "3 consecutive failures (last: ProviderServerError)",
        "reset timeout of 10 s elapsed",
        "trial request failed (ProviderTimeout)",
        "reset timeout of 10 s elapsed",
        "trial request succeeded",
    ]
    assert json.loads(json.dumps(model_events[0].to_dict()))["new_state"] == "open"
    unsubscribe()
    unsubscribe()
    count = len(events)
    open_model(board)
    assert len(events) == count


def test_a_raising_subscriber_does_not_break_routing(fake_clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    board = make_board(fake_clock)
    seen: list[tuple[str, str]] = []

    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("subscriber bug")

    def reads_status(event: BreakerEvent) -> None:
        # callbacks run once the board is consistent, so they may read it
        seen.append((event.new_state, board.status()[event.name].state))

    board.subscribe(broken)
    board.subscribe(reads_status)
    with caplog.at_level(logging.ERROR, logger="asyncrouter.breaker"):
        open_model(board)
        fake_clock.advance(MODEL_RESET)
        board.record(admitted(board, "mini"), None)
    assert seen == [("open", "open"), ("half_open", "half_open"), ("closed", "closed")]
    failures = [r for r in caplog.records if r.name == "asyncrouter.breaker" and r.levelno == logging.ERROR]
    assert len(failures) == 3
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in failures)


def test_status_contents(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, {"a": "acme", "b": "acme"})
    status = board.status()
    assert list(status) == ["a", "b", "acme"]
    a = status["a"]
    assert (a.name, a.kind, a.state, a.fail_count, a.fail_max, a.reset_timeout) == ("a", "model", "closed", 0, 3, 10)
    assert (a.opened_at, a.opened_at_monotonic, a.retry_in, a.trial_in_flight) == (None, None, None, False)
    assert status["acme"].models == ("a", "b")
    assert (status["acme"].kind, status["acme"].fail_max) == ("provider", PROVIDER_FAIL_MAX)

    fake_clock.advance(5)
    opened_wall, opened_mono = fake_clock.time(), fake_clock.monotonic()
    open_model(board, "a")
    fake_clock.advance(2.5)
    a = board.status()["a"]
    assert (a.state, a.fail_count, a.retry_in) == ("open", MODEL_FAIL_MAX, 7.5)
    assert (a.opened_at, a.opened_at_monotonic) == (opened_wall, opened_mono)
    acme = board.status()["acme"]
    assert (acme.state, acme.fail_count, acme.streak_models) == ("closed", MODEL_FAIL_MAX, ("a",))

    fake_clock.advance(7.5)
    admitted(board, "a")
    a = board.status()["a"]
    assert (a.state, a.retry_in, a.trial_in_flight, a.opened_at) == ("half_open", 0.0, True, opened_wall)
    data = json.loads(json.dumps(a.to_dict()))
    assert data["state"] == "half_open"
    assert data["models"] == ["a"]
    assert data["opened_at"] == opened_wall


def test_storage_takes_opened_at_from_the_clock(fake_clock: FakeClock) -> None:
    storage = ClockedMemoryStorage(clock=fake_clock)
    assert storage.opened_at is None
    storage.opened_at = datetime(1999, 1, 1, tzinfo=UTC)  # what pybreaker hands over is ignored
    assert storage.opened_at == datetime.fromtimestamp(fake_clock.time(), UTC)
    assert storage.opened_at_monotonic == fake_clock.monotonic()


def test_storage_factory_is_used(fake_clock: FakeClock) -> None:
    made: list[tuple[str, str]] = []

    def factory(name: str, kind: str) -> ClockedMemoryStorage:
        made.append((name, kind))
        return ClockedMemoryStorage(clock=fake_clock)

    make_board(fake_clock, {"a": "acme", "b": "acme"}, storage_factory=factory)
    assert made == [("acme", "provider"), ("a", "model"), ("b", "model")]


def test_a_shared_storage_changed_behind_the_boards_back_is_seen(fake_clock: FakeClock) -> None:
    # A storage from storage_factory may be shared with other processes: one of them can open a breaker by
    # writing the storage alone. The board must read the storage every time, never assume all is still closed.
    storages: dict[str, ClockedMemoryStorage] = {}

    def factory(name: str, kind: str) -> ClockedMemoryStorage:
        storages[name] = ClockedMemoryStorage(clock=fake_clock)
        return storages[name]

    board = make_board(fake_clock, {"a": "acme", "b": "acme"}, storage_factory=factory)
    board.record(admitted(board, "a"), None)
    assert dict(board.snapshot()) == {}
    shared = storages["a"]
    shared.state = "open"  # written by another process
    shared.set_opened_at(wall=fake_clock.time(), monotonic=fake_clock.monotonic())
    assert not board.admit("a").admitted
    assert "a" in board.snapshot()
    assert board.admit("b").admitted


def test_after_a_failure_and_a_recovery_the_streak_starts_from_zero_again(fake_clock: FakeClock) -> None:
    # Failures below the threshold, then a success: the count is forgotten (and the board's hot path resumes);
    # a new streak then needs the full fail_max again, no more and no less.
    board = make_board(fake_clock)
    fail(board, "mini", MODEL_FAIL_MAX - 1)
    assert board.status()["mini"].fail_count == MODEL_FAIL_MAX - 1
    board.record(admitted(board, "mini"), None)
    assert board.status()["mini"].fail_count == 0
    for _ in range(3):
        board.record(admitted(board, "mini"), None)  # successes through closed breakers change nothing
    fail(board, "mini", MODEL_FAIL_MAX - 1)
    assert state(board, "mini") == "closed"
    fail(board, "mini", 1)
    assert state(board, "mini") == "open"
    assert "mini" in board.snapshot()


# -- configuration ---------------------------------------------------------------------------------------------


def test_disabled_board_admits_everything(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, config=make_config(enabled=False))
    assert not board.enabled
    fail(board, "mini", MODEL_FAIL_MAX * 10)
    assert isinstance(board.admit("mini"), Admission)
    assert board.status() == {}
    assert dict(board.snapshot()) == {}


def test_from_config_keys_endpoints_by_provider_and_url(fake_clock: FakeClock) -> None:
    config = load_config(
        {
            "models": [
                {"name": "small", "model_id": "llama3.2", "provider": "ollama"},
                {"name": "large", "model_id": "llama3.3", "provider": "ollama", "base_url": "http://localhost:11434/"},
                {"name": "local", "model_id": "m", "provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
            ],
            "breakers": {"model": {"fail_max": 2, "reset_timeout": 5}},
        }
    )
    board = BreakerBoard.from_config(config, clock=fake_clock)
    ollama = endpoint_key("ollama", "http://localhost:11434")
    assert dict(board.models) == {
        "small": ollama,
        "large": ollama,
        "local": "openai_compatible:http://127.0.0.1:9/v1",
    }
    fail(board, "small", 2)
    assert state(board, "small") == "open"
    assert board.status()[ollama].models == ("small", "large")


def test_add_model(fake_clock: FakeClock) -> None:
    board = make_board(fake_clock, {"a": "acme"}, config=make_config(model=(1000, MODEL_RESET)))
    # alone on its endpoint, a's failures may open it; with a sibling they no longer can
    board.add_model("b", "acme")
    board.add_model("b", "acme")  # again: nothing changes
    fail(board, "a", PROVIDER_FAIL_MAX)
    assert state(board, "acme") == "closed"
    with pytest.raises(ConfigError, match="already behind endpoint 'acme'"):
        board.add_model("a", "elsewhere")
    with pytest.raises(ConfigError):
        board.add_model("acme", "x")
    with pytest.raises(KeyError, match="no breaker for model 'ghost'"):
        board.admit("ghost")
