"""Router lifecycle (no leaks on error or cancellation) and secret hygiene across every output."""

from __future__ import annotations

import gc
import logging
import sqlite3
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncrouter import AllProvidersFailed, Response, Router, RouterError
from asyncrouter.testing import FakeModel, FakeProviderServer

KEYS = {
    "openai": "sk-proj-SECRETopenai0123456789abcdef",
    "anthropic": "sk-ant-api03-SECRETanthropic0123456789",
    "openrouter": "sk-or-v1-SECRETopenrouter0123456789",
    "huggingface": "hf_SECREThuggingface0123456789abcd",
    "openai_compatible": "tok-SECRETcompat-0123456789",
}


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [FakeModel("m", reply_words=15, cost_per_1k_input=0.001, cost_per_1k_output=0.002)]
    async with FakeProviderServer(models=models, seed=2, api_keys=list(KEYS.values())) as srv:
        yield srv


def secret_config(srv: FakeProviderServer, tmp_path: Path) -> dict[str, Any]:
    entries = []
    for kind, key in KEYS.items():
        entry = srv.model_config("m", provider=kind, alias=f"m-{kind}")  # type: ignore[arg-type]
        entry["api_keys"] = [key, key + "-revoked"]  # the second key is not accepted: 401, evicted
        entry["fallbacks"] = []
        entries.append(entry)
    return {
        "default_model": "m-openai",
        "models": entries,
        "tracker": {"path": str(tmp_path / "t.db"), "prompt_preview_chars": 200},
        "retries": {"max_attempts": 2, "backoff_base": 0.0, "backoff_max": 0.0},
    }


async def test_no_key_in_any_output(
    fleet: FakeProviderServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    cfg = secret_config(fleet, tmp_path)
    async with Router.from_dict(cfg) as router:
        texts += [repr(router), repr(router.config), str(router.config), router.config.model_dump_json()]
        texts += [repr(c) for c in router._clients.values()]
        for kind in KEYS:
            for fault in (None, "401", "500", "400", "429", "mid_stream_error"):
                if fault:
                    fleet.script("m", [fault, fault])
                for stream in (False, True):
                    try:
                        if stream:
                            async with router.astream(f"Say hi via {kind}", model=f"m-{kind}") as s:
                                texts.append("".join([d async for d in s]))
                            assert s.response is not None
                            texts += [repr(s.response), str(s.response.meta.to_dict())]
                        else:
                            r = await router.aroute(f"Say hi via {kind}", model=f"m-{kind}")
                            texts += [repr(r), str(r.meta.to_dict())]
                    except RouterError as exc:
                        texts += [str(exc), repr(exc)]
                        for e in getattr(exc, "errors", []):
                            texts += [str(e), repr(e), str(e.__dict__)]
        texts += [str(x.to_dict()) for x in await router.logs(last_n=1000)]
        texts.append(str((await router.stats()).to_dict()))
        texts.append(str({k: v.to_dict() for k, v in router.breakers.status().items()}))
        texts.append(repr(router.budget.status()))
    texts += [rec.getMessage() for rec in caplog.records]
    texts += [str(rec.exc_info) for rec in caplog.records if rec.exc_info]
    # the prompts used the keys' provider names, so the texts are not trivially empty
    blob = "\n".join(texts)
    assert "openrouter" in blob
    assert len(texts) > 100
    db = b"".join(
        [await anyio.Path(p).read_bytes() async for p in anyio.Path(tmp_path).iterdir() if p.name.startswith("t.db")]
    )
    for key in KEYS.values():
        assert key not in blob, key
        assert key.encode() not in db, key
        core = key.split("SECRET")[1][:12]
        assert core not in blob
    # the revoked keys really were exercised and evicted
    assert any(r.status == 401 for r in fleet.requests)


async def test_body_raising_or_cancelled_closes_everything(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = secret_config(fleet, tmp_path)
    router = Router.from_dict(cfg)
    with pytest.raises(ZeroDivisionError):
        async with router:
            await router.aroute("hi", model="m-openai")
            1 / 0  # noqa: B018
    assert not router._http.is_open
    router2 = Router.from_dict(cfg)
    with anyio.move_on_after(0.05):
        async with router2:
            fleet.set_behaviour("m", latency=5.0)
            await router2.aroute("hi", model="m-openai")
    assert not router2._http.is_open
    # the cancelled request was still recorded
    fleet.set_behaviour("m", latency=0.0)
    async with Router.from_dict(cfg) as router3:
        logs = await router3.logs(last_n=10)
    assert [x.status for x in logs][:1] == ["cancelled"]


async def test_unopened_router_refuses_and_unclosed_router_warns(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = secret_config(fleet, tmp_path)
    cfg["tracker"] = {"path": None}
    router = Router.from_dict(cfg)
    with pytest.raises(RouterError, match="not open"):
        await router.aroute("hi")
    await router.aopen()
    http = router._http
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del router
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed Router" in str(w.message) for w in caught)
    await http.aclose()


async def test_sync_route_runs_its_own_loop(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = secret_config(fleet, tmp_path)
    router = Router.from_dict(cfg)

    def script() -> Response:
        with router:  # closing writes the tracker's records
            return router.route("hello", model="m-anthropic")

    r = await anyio.to_thread.run_sync(script)
    assert r.meta.provider == "anthropic"
    assert r.content
    with sqlite3.connect(tmp_path / "t.db") as conn:
        (n,) = conn.execute("select count(*) from requests").fetchone()
    assert n == 1


async def test_all_keys_revoked_is_a_clear_auth_error(fleet: FakeProviderServer, tmp_path: Path) -> None:
    cfg = secret_config(fleet, tmp_path)
    cfg["models"][0]["api_keys"] = ["sk-bad-one-0000000000", "sk-bad-two-0000000000"]
    async with Router.from_dict(cfg) as router:
        for _ in range(2):
            with pytest.raises(AllProvidersFailed):
                await router.aroute("hi", model="m-openai")
        with pytest.raises(AllProvidersFailed, match="every API key"):
            await router.aroute("hi", model="m-openai")
    assert fleet.calls() == 2  # the third request never reached the provider
