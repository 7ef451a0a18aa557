"""The command-line gaps an audit against mmrouter and smart-llm-router found, end to end through `main()`:
the global `-c FILE`, the classification in `route`'s summary line, `alerts status|test` (a real webhook receiver
on 127.0.0.1), `eval` on the bundled hold-out set, and `models [--profile P]`. The fake fleet and the webhook
receiver run in a background thread with their own event loop, as in test_cli.py."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from anyio.from_thread import BlockingPortal

from asyncrouter import Router
from asyncrouter.cli import main
from asyncrouter.testing import FakeProviderServer, default_fleet

SECRET_PATH = "/services/T000/B000/s3cr3t-w3bh00k-token"
DEAD_WEBHOOK = "http://127.0.0.1:9/services/T111/B111/dead-hook-token"  # port 9 (discard): nothing listens


@pytest.fixture(scope="module")
def fleet(portal: BlockingPortal) -> Iterator[FakeProviderServer]:
    models = [dataclasses.replace(m, hedge_rate=0.0, refusal_rate=0.0) for m in default_fleet(speed=0, faults=False)]
    with portal.wrap_async_context_manager(FakeProviderServer(models=models, seed=5)) as srv:
        yield srv


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1: records each JSON body, answers with ``status``."""

    url: str = ""
    status: int = 200
    bodies: list[Any] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.status, text="ok" if self.status < 300 else "no")


@pytest.fixture(scope="module")
def hook_server(portal: BlockingPortal) -> Iterator[Hook]:
    hook = Hook()
    app = web.Application()
    app.router.add_post(SECRET_PATH, hook.handle)
    with portal.wrap_async_context_manager(TestServer(app, host="127.0.0.1", port=0)) as server:
        hook.url = str(server.make_url(SECRET_PATH))
        yield hook


@pytest.fixture
def hook(hook_server: Hook) -> Hook:
    hook_server.status = 200
    hook_server.bodies.clear()
    return hook_server


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASYNCROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def reset(fleet: FakeProviderServer, portal: BlockingPortal) -> Iterator[None]:
    portal.call(fleet.reset)
    yield
    portal.call(fleet.reset)


def write_config(path: Path, srv: FakeProviderServer, **top: Any) -> Path:
    cfg = srv.config_dict(**top)
    cfg.setdefault("default_model", "fake-cheap")
    cfg.setdefault("retries", {"max_attempts": 1})
    cfg.setdefault("tracker", {"path": str(path.with_suffix(".db"))})
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, fleet: FakeProviderServer, reset: None) -> Path:
    return write_config(tmp_path / "router.yaml", fleet)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    got, out, err = run(capsys, *argv, "--json")
    assert got == code, err
    return json.loads(out)  # the whole of stdout is one JSON document


# ------------------------------------------------------------------------------------ 1. global -c/--config


def test_global_config_before_the_command(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    data = run_json(capsys, "-c", str(config), "route", "What is the capital of Peru?")
    assert data["meta"]["model"].startswith("fake-")
    assert run_json(capsys, "--config", str(config), "classify", "What is the capital of Peru?")["chain"]
    # -c after the command works too
    assert run_json(capsys, "classify", "-c", str(config), "What is the capital of Peru?")["chain"]


def test_config_after_the_command_wins(capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert run_json(capsys, "-c", str(missing), "classify", "--config", str(config), "hi")["chain"]
    code, out, err = run(capsys, "-c", str(config), "classify", "--config", str(missing), "hi")
    assert code == 2
    assert "missing.yaml" in err
    assert out == ""


def test_global_config_beats_the_environment(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCROUTER_CONFIG", str(tmp_path / "nope.yaml"))
    assert run(capsys, "classify", "hi")[0] == 2
    assert run_json(capsys, "-c", str(config), "classify", "hi")["chain"]


def test_global_config_names_the_file_init_writes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "-c", "conf/a.yaml", "init", "--provider", "ollama")[0] == 0
    assert (tmp_path / "conf" / "a.yaml").is_file()
    assert run(capsys, "-c", "ignored.yaml", "init", "--provider", "ollama", "--path", "b.yaml")[0] == 0
    assert (tmp_path / "b.yaml").is_file()
    assert not (tmp_path / "ignored.yaml").exists()
    assert run(capsys, "init", "--provider", "ollama", "-c", "c.yaml")[0] == 0  # -c after the command, as elsewhere
    assert (tmp_path / "c.yaml").is_file()
    assert run(capsys, "init", "--provider", "ollama")[0] == 0
    assert (tmp_path / "asyncrouter.yaml").is_file()


def test_global_config_missing_file_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-c", "absent.yaml", "budget")
    assert code == 2
    assert "absent.yaml" in err
    assert out == ""


# ------------------------------------------------------------------------------ 2. route's summary line


SUMMARY = re.compile(
    r"(?P<complexity>simple|medium|complex)/(?P<category>factual|reasoning|creative|code) "
    r"\(task (?P<task>\w+), score (?P<score>\d\.\d\d), confidence (?P<confidence>\d\.\d\d)\) \| model fake-\w+"
)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("What is the capital of Australia?", id="simple-factual"),
        pytest.param("Prove that there are infinitely many primes, step by step.", id="reasoning"),
        pytest.param("Write a Python function that merges two sorted lists.", id="code"),
    ],
)
def test_route_summary_shows_complexity_category_and_confidence(
    capsys: pytest.CaptureFixture[str], config: Path, prompt: str
) -> None:
    meta = run_json(capsys, "-c", str(config), "route", prompt)["meta"]
    code, out, err = run(capsys, "-c", str(config), "route", prompt)
    assert code == 0
    assert out.strip()
    m = SUMMARY.search(err)
    assert m is not None, err
    assert (m["complexity"], m["category"], m["task"]) == (meta["complexity"], meta["category"], meta["task_type"])
    assert float(m["confidence"]) == pytest.approx(meta["confidence"], abs=0.006)
    assert float(m["score"]) == pytest.approx(meta["complexity_score"], abs=0.006)
    assert f"tier {meta['tier']}" in err


def test_route_summary_names_the_profile_and_streams_too(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, _, err = run(capsys, "-c", str(config), "route", "--model", "eco", "--stream", "Write a haiku about rain")
    assert code == 0
    assert SUMMARY.search(err) is not None
    assert "| profile eco" in err
    code, _, err = run(capsys, "-c", str(config), "route", "Write a haiku about rain")
    assert "profile" not in err  # auto: no profile to name


# --------------------------------------------------------------------------------------------- 3. alerts


def test_alerts_status_shows_rules_channels_and_hides_the_webhook_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = write_config(
        tmp_path / "a.yaml",
        fleet,
        budget={"daily_limit_usd": 2.0},
        alerts={
            "enabled": True,
            "webhook_url": "https://hooks.example.invalid" + SECRET_PATH,
            "cooldown": 120,
            "budget_thresholds": [0.5, 0.8],
            "error_rate_threshold": 0.25,
            "error_rate_min_requests": 4,
        },
    )
    data = run_json(capsys, "-c", str(path), "alerts", "status")
    assert data["enabled"] is True
    assert data["channels"] == {"log": True, "webhook": "https://hooks.example.invalid/…"}
    assert data["cooldown_s"] == 120
    rules = {r["rule"]: r for r in data["rules"]}
    assert set(rules) == {"budget", "error_rate", "cost_spike", "breaker_open"}
    assert all(r["active"] for r in rules.values())
    assert rules["budget"]["settings"] == {"budget_thresholds": [0.5, 0.8], "daily_limit_usd": 2.0}
    assert rules["error_rate"]["settings"]["error_rate_threshold"] == 0.25
    code, out, err = run(capsys, "-c", str(path), "alerts", "status")
    assert code == 0
    assert "50%, 80% of the $2.00 daily limit" in out
    assert "at least 25% of the requests" in out
    assert "120 s per alert key" in out
    assert "hooks.example.invalid" in out
    assert "s3cr3t" not in out + err
    assert "not shared or stored" in err  # cooldown state is per router process: said, not faked


def test_alerts_status_says_which_rules_cannot_fire(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = write_config(tmp_path / "b.yaml", fleet, breakers={"enabled": False}, alerts={"enabled": True})
    rules = {r["rule"]: r for r in run_json(capsys, "-c", str(path), "alerts", "status")["rules"]}
    assert rules["budget"]["active"] is False
    assert "daily_limit_usd is null" in rules["budget"]["inactive"]
    assert rules["breaker_open"]["active"] is False
    assert rules["error_rate"]["active"] is True
    data = run_json(capsys, "-c", str(write_config(tmp_path / "c.yaml", fleet)), "alerts", "status")
    assert data["enabled"] is False
    assert data["channels"]["webhook"] is None
    assert not any(r["active"] for r in data["rules"])
    code, out, _ = run(capsys, "-c", str(tmp_path / "c.yaml"), "alerts", "status")
    assert code == 0
    assert "nothing is sent" in out
    assert "no webhook" in out


def test_alerts_test_delivers_one_slack_message_to_the_configured_webhook(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer, hook: Hook
) -> None:
    path = write_config(tmp_path / "h.yaml", fleet, alerts={"enabled": True, "webhook_url": hook.url})
    code, out, err = run(capsys, "-c", str(path), "alerts", "test")
    assert code == 0, err
    assert "Test alert delivered to http://127.0.0.1/… (HTTP 200)" in out
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["text"].startswith("[asyncrouter] Test alert:")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert "rule test" in body["blocks"][2]["elements"][0]["text"]
    assert "s3cr3t" not in out + err


def test_alerts_test_webhook_url_overrides_the_config_and_works_while_disabled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer, hook: Hook
) -> None:
    path = write_config(tmp_path / "d.yaml", fleet, alerts={"enabled": False, "webhook_url": DEAD_WEBHOOK})
    data = run_json(capsys, "-c", str(path), "alerts", "test", "--webhook-url", hook.url)
    assert data["delivered"] is True
    assert data["status"] == 200
    assert data["error"] is None
    assert data["webhook"] == "http://127.0.0.1/…"
    assert data["alerts_enabled"] is False
    assert data["alert"]["rule"] == "test"
    assert len(hook.bodies) == 1
    _, _, err = run(capsys, "-c", str(path), "alerts", "test", "--webhook-url", hook.url)
    assert "alerts.enabled is false" in err
    assert len(hook.bodies) == 2  # no cooldown for tests: each one is sent


def test_alerts_test_reports_a_refusing_webhook_and_exits_1(
    capsys: pytest.CaptureFixture[str], config: Path, hook: Hook
) -> None:
    hook.status = 404
    data = run_json(capsys, "-c", str(config), "alerts", "test", "--webhook-url", hook.url, code=1)
    assert data["delivered"] is False
    assert (data["status"], data["error"]) == (404, "HTTP 404")
    assert len(hook.bodies) == 1
    code, out, err = run(capsys, "-c", str(config), "alerts", "test", "--webhook-url", hook.url)
    assert code == 1
    assert out == ""
    assert "error: test alert not delivered to http://127.0.0.1/…: HTTP 404" in err
    assert "s3cr3t" not in err


def test_alerts_test_reports_an_unreachable_webhook_and_exits_1(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    data = run_json(capsys, "-c", str(config), "alerts", "test", "--webhook-url", DEAD_WEBHOOK, code=1)
    assert data["delivered"] is False
    assert data["status"] is None
    assert data["error"].startswith("ProviderConnectionError")
    code, out, err = run(capsys, "-c", str(config), "alerts", "test", "--webhook-url", DEAD_WEBHOOK)
    assert code == 1
    assert "dead-hook-token" not in out + err


def test_alerts_test_without_a_webhook_or_with_a_bad_url_is_bad_usage(
    capsys: pytest.CaptureFixture[str], config: Path, hook: Hook
) -> None:
    code, _, err = run(capsys, "-c", str(config), "alerts", "test")
    assert code == 2
    assert "--webhook-url" in err
    code, _, err = run(capsys, "-c", str(config), "alerts", "test", "--webhook-url", "ftp://127.0.0.1/x")
    assert code == 2
    assert "http:// or https://" in err
    assert run(capsys, "-c", str(config), "alerts")[0] == 2  # an action is required
    assert hook.bodies == []


# ----------------------------------------------------------------------------------- 4. eval, bundled data


def test_eval_defaults_to_the_bundled_hold_out_set(capsys: pytest.CaptureFixture[str]) -> None:
    bundled = resources.files("asyncrouter").joinpath("data", "holdout_v2.yaml")
    examples = yaml.safe_load(bundled.read_text(encoding="utf-8"))["examples"]
    report = run_json(capsys, "eval")  # no --data, no config
    assert "holdout_v2.yaml" in report["data"]
    assert report["total"] == len(examples) >= 300
    assert report["labelled"]["complexity"] == sum(1 for e in examples if "complexity" in e)
    assert 0.5 < report["accuracy"]["complexity+category"] <= 1.0
    assert set(report["per_language"]) >= {"en", "zh", "ar"}
    code, out, _ = run(capsys, "eval", "--max-errors", "0")
    assert code == 0
    assert out.startswith("Data: asyncrouter/data/holdout_v2.yaml")
    assert f"Examples: {len(examples)}" in out


def test_eval_bundled_set_has_no_splits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "eval", "--split", "test")
    assert code == 2
    assert "no examples to evaluate in asyncrouter/data/holdout_v2.yaml" in err
    assert out == ""


def test_benchmarks_and_the_cli_score_the_same_single_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(root))  # `benchmarks` lives beside `tests`, not inside the package
    bench_classify = importlib.import_module("benchmarks.bench_classify")
    assert Path(bench_classify.DEFAULT_HOLDOUT).resolve() == (root / "asyncrouter" / "data" / "holdout_v2.yaml")
    assert not (root / "benchmarks" / "data" / "holdout_v2.yaml").exists()


# --------------------------------------------------------------------------------------------- 5. models


def test_models_lists_each_model_with_price_context_tags_and_tier(
    capsys: pytest.CaptureFixture[str], config: Path, fleet: FakeProviderServer
) -> None:
    data = run_json(capsys, "-c", str(config), "models")
    assert data["default_model"] == "fake-cheap"
    models = {m["name"]: m for m in data["models"]}
    assert list(models) == ["fake-cheap", "fake-medium", "fake-strong"]
    cheap, medium, strong = models.values()
    assert medium["roles"] == []
    assert (cheap["provider"], cheap["model_id"]) == ("openai", "fake-cheap")
    assert (cheap["cost_per_1k_input"], cheap["cost_per_1k_output"]) == (0.00015, 0.0006)
    assert (strong["cost_per_1k_input"], strong["cost_per_1k_output"]) == (0.015, 0.075)
    assert (cheap["context_window"], strong["context_window"]) == (16_000, 200_000)
    assert "factual" in cheap["tags"]
    # tags decide (cheap -> simple, strong -> up to reasoning); untiered tags fall back on the price tercile
    assert [m["serves_up_to"] for m in models.values()] == ["simple", "medium", "reasoning"]
    assert cheap["roles"] == ["default"]
    assert data["tiers"] is None
    assert {"auto", "eco", "premium", "free", "agentic"} <= set(data["profiles"])
    code, out, err = run(capsys, "-c", str(config), "models")
    assert code == 0
    for text in ("fake-medium", "serves up to", "$0.000150", "128,000", "summarisation", "default"):
        assert text in out
    assert "--profile" in err
    assert fleet.calls() == 0  # nothing is called


@pytest.mark.parametrize("profile", ["auto", "eco", "premium"])
def test_models_profile_shows_the_chain_classify_gives_each_tier(
    capsys: pytest.CaptureFixture[str], config: Path, fleet: FakeProviderServer, profile: str
) -> None:
    data = run_json(capsys, "-c", str(config), "models", "--profile", profile)
    assert data["profile"] == profile
    tiers = data["tiers"]
    assert [t["tier"] for t in tiers] == ["simple", "medium", "complex", "reasoning"]
    router = Router.from_yaml(config)  # the public API, independently
    for t in tiers:
        assert router.classify(t["example"]).classification.tier == t["tier"]  # a real example of that tier
        d = router.classify(t["example"], model=profile)
        assert (t["chain"], t["routing_layer"], t["routed_tier"]) == (d.chain, d.routing_layer, d.tier)
        assert t["chain"]
    by_tier = {t["tier"]: t for t in tiers}
    if profile == "premium":
        assert by_tier["complex"]["chain"][0] == "fake-strong"
        assert by_tier["reasoning"]["chain"][0] == "fake-strong"
    if profile == "eco":  # eco drops one tier
        assert [t["routed_tier"] for t in tiers] == ["simple", "simple", "medium", "complex"]
    if profile == "auto":
        assert by_tier["simple"]["chain"][0] == "fake-cheap"
        assert by_tier["reasoning"]["chain"][0] == "fake-strong"
    code, out, _ = run(capsys, "-c", str(config), "models", "--profile", profile)
    assert code == 0
    assert f"Profile {profile}: the chain each tier gets" in out
    assert "fake-strong -> " in out
    assert fleet.calls() == 0


def test_models_configured_and_empty_profiles(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = write_config(tmp_path / "p.yaml", fleet, profiles={"cheapo": {"models": ["fake-cheap"]}})
    data = run_json(capsys, "-c", str(path), "models", "--profile", "cheapo")
    assert data["profiles"]["cheapo"]["models"] == ["fake-cheap"]
    assert all(t["chain"] == ["fake-cheap"] for t in data["tiers"])
    # no zero-price model: the free profile has nothing to offer, and says so
    data = run_json(capsys, "-c", str(path), "models", "--profile", "free")
    assert all(t["chain"] == [] for t in data["tiers"])
    code, out, _ = run(capsys, "-c", str(path), "models", "--profile", "cheapo")
    assert code == 0
    assert "cheapo (configured)" in out


def test_models_unknown_profile_is_bad_usage(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    for name in ("gold", "fake-strong"):  # a model alias is not a profile
        code, out, err = run(capsys, "-c", str(config), "models", "--profile", name)
        assert code == 2
        assert f"unknown profile {name!r}" in err
        assert "premium" in err
        assert out == ""
