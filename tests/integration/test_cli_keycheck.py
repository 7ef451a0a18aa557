"""Key checks: `asyncrouter models --check`, `init --check`, the guided `init`, and `Router.acheck_keys`.

The fake fleet accepts only its own keys and lists its models in the OpenAI, Anthropic and Ollama formats, so a
refused key, a model a key cannot reach and a keyless local server are all real answers on the wire.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from anyio.from_thread import BlockingPortal

from asyncrouter import Router
from asyncrouter.cli import main
from asyncrouter.testing import FakeModel, FakeProviderServer

GOOD = "sk-fleet-good-0123456789"
BAD = "sk-revoked-9876543210abc"


@pytest.fixture(scope="module")
def fleet(portal: BlockingPortal) -> Iterator[FakeProviderServer]:
    models = [FakeModel(n, cost_per_1k_input=0.001, cost_per_1k_output=0.002) for n in ("gpt-4o-mini", "gpt-4o")]
    with portal.wrap_async_context_manager(FakeProviderServer(models=models, api_keys=[GOOD], seed=3)) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _isolated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fleet: FakeProviderServer, portal: BlockingPortal
) -> None:
    monkeypatch.delenv("ASYNCROUTER_CONFIG", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    portal.call(fleet.reset)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def config(fleet: FakeProviderServer, tmp_path: Path, models: list[dict[str, Any]]) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({"models": models, "tracker": {"path": None}}))
    return path


def model(
    fleet: FakeProviderServer, name: str, model_id: str, keys: list[str], provider: str = "openai"
) -> dict[str, Any]:
    base = fleet.url if provider == "anthropic" else f"{fleet.url}/v1"
    return {
        "name": name,
        "model_id": model_id,
        "provider": provider,
        "base_url": base,
        "api_keys": keys,
        "cost_per_1k_input": 0.001,
        "cost_per_1k_output": 0.002,
    }


def test_models_check_reports_each_key_without_showing_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = config(
        fleet,
        tmp_path,
        [
            model(fleet, "mini", "gpt-4o-mini", [GOOD, BAD]),
            model(fleet, "big", "gpt-4o", [GOOD]),
            model(fleet, "ghost", "gpt-9-preview", [GOOD]),
            model(fleet, "claude", "gpt-4o", [GOOD], provider="anthropic"),
        ],
    )
    code, out, err = run(capsys, "models", "-c", str(path), "--check", "--json")
    assert code == 1, "one key was refused"
    checks = {(c["model"], c["key"]): c for c in json.loads(out)["key_checks"]}
    assert checks[("mini", "key 1 of 2")]["ok"] is True
    assert checks[("mini", "key 1 of 2")]["listed"] is True
    refused = checks[("mini", "key 2 of 2")]
    assert refused["ok"] is False
    assert refused["error"].startswith("AuthenticationError")
    assert checks[("ghost", "key 1 of 1")]["listed"] is False
    assert checks[("claude", "key 1 of 1")]["ok"] is True, "Anthropic's format: x-api-key on /v1/models"
    assert GOOD not in out + err
    assert BAD not in out + err
    # mini, big and ghost share the endpoint and the good key: one listing call for the three
    listings = [r for r in fleet.requests if r.path.endswith("/models")]
    assert len(listings) == 3  # openai + good key, openai + bad key, anthropic + good key
    code, out, _ = run(capsys, "models", "-c", str(path), "--check")
    assert code == 1
    assert "do not include this model_id" in out
    assert "AuthenticationError" in out
    assert GOOD not in out


def test_models_check_passes_when_every_key_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer
) -> None:
    path = config(fleet, tmp_path, [model(fleet, "mini", "gpt-4o-mini", [GOOD])])
    code, out, _ = run(capsys, "models", "-c", str(path), "--check")
    assert code == 0
    assert "ok (2 models)" in out


def test_init_check_with_the_key_set_and_unset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["init", "--provider", "openai", "--base-url", f"{fleet.url}/v1", "--check", "--json"]
    code, out, _ = run(capsys, *args)
    assert code == 1
    assert "OPENAI_API_KEY is not set" in json.loads(out)["key_check"]
    assert Path("asyncrouter.yaml").is_file(), "the config is written even when the key cannot be checked yet"
    monkeypatch.setenv("OPENAI_API_KEY", GOOD)
    code, out, _ = run(capsys, *args, "--force")
    assert code == 0
    checks = json.loads(out)["key_check"]
    assert {c["model"] for c in checks} == {"cheap", "strong"}
    assert all(c["ok"] and c["listed"] for c in checks), checks
    monkeypatch.setenv("OPENAI_API_KEY", BAD)
    code, out, _ = run(capsys, "init", "--provider", "openai", "--base-url", f"{fleet.url}/v1", "--check", "--force")
    assert code == 1
    assert "AuthenticationError" in out
    assert BAD not in out


def test_guided_init_asks_for_the_provider_and_the_local_servers_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fleet: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"mistral\nollama\n{fleet.url}\n"))
    code, out, err = run(capsys, "init", "--interactive")
    assert code == 0, out + err
    assert "not a provider: 'mistral'" in err
    written = yaml.safe_load(Path("asyncrouter.yaml").read_text())
    assert {m["provider"] for m in written["models"]} == {"ollama"}
    assert {m["base_url"] for m in written["models"]} == {fleet.url}
    assert "no key" in out, "a local Ollama is checked without a key"
    assert any(r.path == "/api/tags" for r in fleet.requests)


async def test_acheck_keys_needs_an_open_router_and_known_aliases(fleet: FakeProviderServer, tmp_path: Path) -> None:
    router = Router.from_dict({"models": [model(fleet, "mini", "gpt-4o-mini", [GOOD])], "tracker": {"path": None}})
    with pytest.raises(Exception, match="not open"):
        await router.acheck_keys()
    async with router:
        with pytest.raises(Exception, match="unknown model"):
            await router.acheck_keys(["nope"])
        [check] = await router.acheck_keys(["mini"])
    assert (check.ok, check.listed, check.key) == (True, True, "key 1 of 1")
