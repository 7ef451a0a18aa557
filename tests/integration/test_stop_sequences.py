"""Stop sequences end to end: the fake fleet honours them in every format, Anthropic says which one matched,
and the router carries that to `meta.stop_sequence` and to its own Anthropic ingress (`stop_reason:
"stop_sequence"` with the matched string), checked with the official `anthropic` SDK, streamed and not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from asyncrouter import Router
from asyncrouter.server import create_app
from asyncrouter.testing import FakeModel, FakeProviderServer
from loopback import serve_app

REPLY = "First the facts. Then the analysis END and nothing of this should be seen. STOP here."


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel(n, reply=REPLY, cost_per_1k_input=0.001, cost_per_1k_output=0.002) for n in ("gpt", "claude", "llama")
    ]
    async with FakeProviderServer(models=models, seed=7) as srv:
        yield srv


def config(srv: FakeProviderServer) -> dict[str, Any]:
    cfg = srv.config_dict(default_model="gpt", quality={"enabled": False}, tracker={"path": None})
    for m in cfg["models"]:
        if m["name"] == "claude":
            m["provider"], m["base_url"] = "anthropic", srv.url
        if m["name"] == "llama":
            m["provider"], m["api"], m["base_url"] = "ollama", "native", srv.url
            m.pop("api_keys", None)
    return cfg


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["gpt", "claude", "llama"])
async def test_the_reply_ends_before_the_first_stop_sequence(
    fleet: FakeProviderServer, model: str, stream: bool
) -> None:
    async with Router.from_dict(config(fleet)) as router:
        if stream:
            async with router.astream("Analyse this", model=model, stop=["STOP", "END"]) as s:
                text = "".join([d async for d in s])
            assert s.response is not None
            r = s.response
        else:
            r = await router.aroute("Analyse this", model=model, stop=["STOP", "END"])
            text = r.content
    assert text.rstrip() == "First the facts. Then the analysis"
    assert r.meta.finish_reason == "stop"
    # only Anthropic's API says which sequence matched
    assert r.meta.stop_sequence == ("END" if model == "claude" else None)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_anthropic_ingress_reports_the_matched_stop_sequence(fleet: FakeProviderServer, stream: bool) -> None:
    async with Router.from_dict(config(fleet)) as router, serve_app(create_app(router)) as port:
        client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="unused", max_retries=0)
        try:
            kw: dict[str, Any] = {
                "model": "claude",
                "max_tokens": 200,
                "messages": [{"role": "user", "content": "Analyse this"}],
                "stop_sequences": ["STOP", "END"],
            }
            if stream:
                async with client.messages.stream(**kw) as s:
                    message = await s.get_final_message()
            else:
                message = await client.messages.create(**kw)
        finally:
            await client.close()
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "END", "two were asked for: only the provider's word says which"
    assert message.content[0].text.rstrip() == "First the facts. Then the analysis"  # type: ignore[union-attr]


async def test_a_natural_end_is_end_turn(fleet: FakeProviderServer) -> None:
    async with Router.from_dict(config(fleet)) as router, serve_app(create_app(router)) as port:
        client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="unused", max_retries=0)
        try:
            message = await client.messages.create(
                model="claude", max_tokens=200, messages=[{"role": "user", "content": "hi"}], stop_sequences=["NOPE"]
            )
        finally:
            await client.close()
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.content[0].text == REPLY  # type: ignore[union-attr]
