from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asyncrouter import ConfigError
from asyncrouter._config import Config, load_config, load_yaml

ROUTEFORGE_YAML = """\
# config.yaml
default_model: gpt-4o-mini
log_path: runs.json
complexity_threshold: 0.45
models:
  - name: gpt-4o-mini
    model_id: gpt-4o-mini
    provider: openai
    api_keys:
      - sk-your-key
    cost_per_1k_input: 0.00015
    cost_per_1k_output: 0.0006
    tags: [cheap, general, summarisation, translation]
  - name: gpt-4o
    model_id: gpt-4o
    provider: openai
    api_keys:
      - sk-your-key
    cost_per_1k_input: 0.0025
    cost_per_1k_output: 0.01
    tags: [strong, reasoning, code, creative]
  - name: deepseek-r1
    model_id: deepseek/deepseek-r1
    provider: openrouter
    api_keys:
      - sk-or-your-openrouter-key
    cost_per_1k_input: 0.0008
    cost_per_1k_output: 0.0032
    tags: [strong, reasoning]
  - name: llama3
    model_id: llama3.2
    provider: ollama
    base_url: http://localhost:11434
    api_keys: []
    cost_per_1k_input: 0.0
    cost_per_1k_output: 0.0
    tags: [cheap, general]
"""


def base(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "default_model": "a",
        "models": [
            {
                "name": "a",
                "model_id": "m-a",
                "provider": "openai",
                "api_keys": ["sk-test-aaaaaaaa"],
                "cost_per_1k_input": 0.1,
            },
            {"name": "b", "model_id": "m-b", "provider": "anthropic", "api_keys": ["sk-ant-test-bbbbbbbb"]},
            {"name": "c", "model_id": "m-c", "provider": "ollama"},
        ],
    }
    data.update(over)
    return data


def test_routeforge_config_loads_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text(ROUTEFORGE_YAML)
    cfg = load_yaml(p)
    assert [m.name for m in cfg.models] == ["gpt-4o-mini", "gpt-4o", "deepseek-r1", "llama3"]
    assert cfg.default_model == "gpt-4o-mini"
    assert cfg.complexity_threshold == 0.45
    assert cfg.models[1].tags == ("strong", "reasoning", "code", "creative")
    assert cfg.models[3].cost_per_1k_output == 0.0
    assert cfg.models[2].resolved_base_url == "https://openrouter.ai/api/v1"


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        pytest.param(
            lambda d: d["models"][0].update(cost_per_1k_input=-1),
            "models[0].cost_per_1k_input",
            "greater",
            id="negative-price",
        ),
        pytest.param(
            lambda d: d["models"][2].update(cost_per_1k_output=-0.5),
            "models[2].cost_per_1k_output",
            "greater",
            id="negative-price-idx2",
        ),
        pytest.param(
            lambda d: d.update(default_model="nope"), "default_model", "names no configured model", id="default-unknown"
        ),
        pytest.param(
            lambda d: d.update(meta_router_model="nope"),
            "meta_router_model",
            "names no configured model",
            id="meta-unknown",
        ),
        pytest.param(
            lambda d: d["models"].append(dict(d["models"][0])),
            "models[3].name",
            "duplicate model alias",
            id="duplicate-alias",
        ),
        pytest.param(lambda d: d.update(bogus=1), "bogus", "unknown key", id="unknown-top-key"),
        pytest.param(
            lambda d: d["models"][1].update(colour="red"), "models[1].colour", "unknown key", id="unknown-model-key"
        ),
        pytest.param(
            lambda d: d.update(budget={"daily_limit_usd": 5, "warn_at": 2}),
            "budget.warn_at",
            "less than",
            id="bad-fraction",
        ),
        pytest.param(
            lambda d: d["models"][0].update(provider="openia"), "models[0].provider", "openai", id="bad-provider"
        ),
        pytest.param(
            lambda d: d["models"][0].update(api_keys=[]),
            "models[0].api_keys",
            "needs at least one API key",
            id="missing-key",
        ),
        pytest.param(
            lambda d: d["models"].append({"name": "x", "model_id": "x", "provider": "openai_compatible"}),
            "models[3].base_url",
            "base_url",
            id="compat-needs-base-url",
        ),
        pytest.param(
            lambda d: d["models"][0].update(fallbacks=["zz"]),
            "models[0].fallbacks[0]",
            "names no configured model",
            id="bad-fallback",
        ),
        pytest.param(
            lambda d: d.update(budget={"timezone": "Mars/Olympus"}),
            "budget.timezone",
            "unknown timezone",
            id="bad-timezone",
        ),
        pytest.param(
            lambda d: d.update(profiles={"mine": {"models": ["zz"]}}),
            "profiles.mine.models[0]",
            "names no configured",
            id="bad-profile",
        ),
        pytest.param(
            lambda d: d.update(routes={"simple": {"code": {"model": "zz"}}}),
            "routes.simple.code",
            "names no configured",
            id="bad-route",
        ),
    ],
)
def test_config_errors_name_the_path(mutate: Any, path: str, fragment: str) -> None:
    data = base()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert info.value.path == path, str(info.value)
    assert fragment in str(info.value)
    assert str(info.value).startswith(path)


def test_env_secrets_resolved_and_missing_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AR_TEST_KEY", "sk-from-env-1234567890")
    cfg = load_config(
        base(models=[{"name": "a", "model_id": "m", "provider": "openai", "api_keys": ["${AR_TEST_KEY}"]}])
    )
    assert cfg.models[0].key_values() == ("sk-from-env-1234567890",)
    monkeypatch.delenv("AR_TEST_KEY")
    with pytest.raises(ConfigError) as info:
        load_config(base(models=[{"name": "a", "model_id": "m", "provider": "openai", "api_keys": ["${AR_TEST_KEY}"]}]))
    assert info.value.path == "models[0].api_keys[0]"
    assert "AR_TEST_KEY" in str(info.value)


def test_api_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AR_TEST_KEY2", "sk-env2-abcdefgh")
    cfg = load_config(
        base(models=[{"name": "a", "model_id": "m", "provider": "openai", "api_key_env": "AR_TEST_KEY2"}])
    )
    assert cfg.models[0].key_values() == ("sk-env2-abcdefgh",)


def test_keys_never_in_repr_str_or_errors() -> None:
    secret = "sk-supersecret-value-0123456789"
    data = base()
    data["models"][0]["api_keys"] = [secret]
    cfg = load_config(data)
    assert secret not in repr(cfg)
    assert secret not in str(cfg)
    assert secret not in cfg.model_dump_json()
    # a key in the wrong place: the error names the path but never echoes the value
    data["models"][0]["cost_per_1k_input"] = secret
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert secret not in str(info.value)
    assert info.value.path == "models[0].cost_per_1k_input"


def test_config_is_frozen() -> None:
    cfg = load_config(base())
    with pytest.raises(Exception, match="frozen"):
        cfg.default_model = "b"  # type: ignore[misc]


def test_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_yaml(empty)


def test_defaults_and_timedelta() -> None:
    from datetime import timedelta

    data = base()
    data["models"][0]["timeout"] = timedelta(seconds=2.5)
    cfg = load_config(data)
    assert cfg.models[0].timeout == 2.5
    assert isinstance(cfg, Config)
    assert cfg.default_alias == "a"
    no_default = base()
    del no_default["default_model"]
    assert load_config(no_default).default_alias == "a"  # the cheapest known price; unknown is never "free"
    no_default["models"][2]["cost_per_1k_input"] = 0.0
    assert load_config(no_default).default_alias == "c"


def test_a_keys_surrounding_whitespace_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    # a key read from a file (or an env var set from one) keeps its trailing newline
    monkeypatch.setenv("AR_TEST_KEY3", "sk-env3-abcdefgh\n")
    cfg = load_config(
        base(
            models=[
                {"name": "a", "model_id": "m", "provider": "openai", "api_key_env": "AR_TEST_KEY3"},
                {"name": "b", "model_id": "m", "provider": "openai", "api_keys": ["  sk-b-1234\r\n", "sk-b-5678"]},
            ]
        )
    )
    assert cfg.models[0].key_values() == ("sk-env3-abcdefgh",)
    assert cfg.models[1].key_values() == ("sk-b-1234", "sk-b-5678")


@pytest.mark.parametrize(
    ("field", "fragment"),
    [
        ({"api_keys": ["sk-abc\nX-Injected: 1"]}, "key 0 contains a line break"),
        ({"headers": {"X-Org": "acme\r\nX-Injected: 1"}}, "value of 'X-Org' contains a line break"),
        ({"headers": {"X Org": "acme"}}, "'X Org' is not a valid HTTP header name"),
        ({"headers": {"X-Org:": "acme"}}, "is not a valid HTTP header name"),
        ({"provider": "openrouter", "app_title": "My\nApp"}, "app_title contains a line break"),
        ({"provider": "anthropic", "anthropic_version": "2023-06-01\r\n"}, "anthropic_version contains"),
    ],
)
def test_values_sent_as_headers_cannot_inject_headers(field: dict[str, Any], fragment: str) -> None:
    model = {"name": "a", "model_id": "m", "provider": "openai", "api_keys": ["sk-ok-123"], **field}
    with pytest.raises(ConfigError) as info:
        load_config(base(models=[model]))
    assert fragment in str(info.value)
    assert info.value.path == "models[0]"
    assert "Injected" not in str(info.value), "the offending value (maybe a key) is never echoed"
