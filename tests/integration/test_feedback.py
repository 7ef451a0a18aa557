"""Users' feedback on replies and adaptive routing from it (mmrouter's feedback): votes are stored with the
tracker, survive a restart, and move a model users keep rejecting for a task type behind the others."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncrouter import Router, RouterError
from asyncrouter.testing import FakeModel, FakeProviderServer

CODE = "Write a Python function that reverses a linked list"


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    models = [
        FakeModel("cheap", reply_words=40, cost_per_1k_input=0.0001, cost_per_1k_output=0.0002),
        FakeModel("medium", reply_words=40, cost_per_1k_input=0.001, cost_per_1k_output=0.002),
    ]
    async with FakeProviderServer(models=models, seed=4) as srv:
        yield srv


def config(srv: FakeProviderServer, db: Path, **feedback: Any) -> dict[str, Any]:
    cfg = srv.config_dict(default_model="cheap", tracker={"path": str(db)})
    for entry in cfg["models"]:
        entry["tags"] = ["strong", "code", "general"]  # both capable of anything: the cheaper goes first
    if feedback:
        cfg["feedback"] = feedback
    return cfg


async def test_votes_move_a_rejected_model_back_for_that_task_only(fleet: FakeProviderServer, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with Router.from_dict(config(fleet, db, min_votes=4)) as router:
        before = router.classify(CODE)
        assert before.chain[0] == "cheap"  # cheapest capable first
        ids = [(await router.aroute(CODE)).meta.request_id for _ in range(4)]
        for i, request_id in enumerate(ids[:3]):
            vote = await router.afeedback(request_id, "down", comment=f"wrong #{i}")
            assert (vote.model, vote.task_type, vote.rating) == ("cheap", before.task_type, -1)
        assert router.classify(CODE).chain[0] == "cheap"  # 3 votes: below min_votes, nothing moves yet
        await router.afeedback(ids[3], False)
        after = router.classify(CODE)
        assert after.chain == ["medium", "cheap"]
        assert "feedback: cheap moved back" in after.reason
        assert (await router.aroute(CODE)).meta.model == "medium"
        # another task type is not affected
        assert router.classify("What is the capital of France?").chain[0] == "cheap"
        # pinned requests go where they are pinned
        assert (await router.aroute(CODE, model="cheap")).meta.model == "cheap"

    # the votes are in the tracker: a new router (a restart) routes the same way
    async with Router.from_dict(config(fleet, db, min_votes=4)) as router:
        assert router.classify(CODE).chain[0] == "medium"
        # enough up votes bring it back
        ups = [(await router.aroute(CODE, model="cheap")).meta.request_id for _ in range(4)]
        for request_id in ups:
            await router.afeedback(request_id, "up")
        assert router.classify(CODE).chain[0] == "cheap"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rating, model, comment FROM feedback ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [-1, -1, -1, -1, 1, 1, 1, 1]
    assert rows[0][2] == "wrong #0"


async def test_rerank_can_be_turned_off(fleet: FakeProviderServer, tmp_path: Path) -> None:
    async with Router.from_dict(config(fleet, tmp_path / "t.db", min_votes=1, rerank=False)) as router:
        r = await router.aroute(CODE)
        await router.afeedback(r.meta.request_id, -1)
        assert router.classify(CODE).chain[0] == "cheap"


async def test_bad_votes_are_clear_errors(fleet: FakeProviderServer, tmp_path: Path) -> None:
    async with Router.from_dict(config(fleet, tmp_path / "t.db")) as router:
        r = await router.aroute(CODE)
        with pytest.raises(ValueError, match="'up' or 'down'"):
            await router.afeedback(r.meta.request_id, "meh")
        with pytest.raises(ValueError, match="'up' or 'down'"):
            await router.afeedback(r.meta.request_id, 2)
        with pytest.raises(RouterError, match="no tracked request has the id 'nope'"):
            await router.afeedback("nope", "up")
        # a key pasted into a comment is not stored
        await router.afeedback(r.meta.request_id, "up", comment="my key is sk-proj-abcdefghijklmnopqrstuvwxyz012345")
    with sqlite3.connect(tmp_path / "t.db") as conn:
        (comment,) = conn.execute("SELECT comment FROM feedback").fetchone()
    assert "sk-proj" not in comment
    cfg = config(fleet, tmp_path / "x.db")
    cfg["tracker"] = {"path": None}
    async with Router.from_dict(cfg) as router:
        with pytest.raises(RouterError, match="feedback needs the tracker"):
            await router.afeedback("anything", "up")


# -- over HTTP (POST /v1/feedback) and the command line ----------------------------------------------------------


async def test_the_server_takes_feedback_on_a_served_reply(fleet: FakeProviderServer, tmp_path: Path) -> None:
    import aiohttp
    from aiohttp import web

    from asyncrouter.server import create_app

    async with Router.from_dict(config(fleet, tmp_path / "t.db", min_votes=1)) as router:
        runner = web.AppRunner(create_app(router, api_key="k-123456"), shutdown_timeout=5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            base, auth = f"http://{host}:{port}", {"Authorization": "Bearer k-123456"}
            async with aiohttp.ClientSession() as http:
                chat = {"model": "auto", "messages": [{"role": "user", "content": CODE}]}
                async with http.post(f"{base}/v1/chat/completions", json=chat, headers=auth) as resp:
                    assert resp.status == 200
                    request_id = resp.headers["X-AsyncRouter-Request-Id"]
                    assert (await resp.json())["model"] == "cheap"
                vote = {"request_id": request_id, "rating": "down", "comment": "did not compile"}
                async with http.post(f"{base}/v1/feedback", json=vote, headers=auth) as resp:
                    assert resp.status == 200
                    got = await resp.json()
                    assert (got["request_id"], got["rating"], got["model"]) == (request_id, -1, "cheap")
                    assert got["comment"] == "did not compile"
                async with http.post(f"{base}/v1/feedback", json=vote) as resp:
                    assert resp.status == 401  # the API key guards it like the rest of the API
                async with http.post(f"{base}/v1/feedback", json={**vote, "request_id": "nope"}, headers=auth) as r:
                    assert r.status == 404
                    assert (await r.json())["error"]["code"] == "request_not_found"
                async with http.post(f"{base}/v1/feedback", json={**vote, "rating": "meh"}, headers=auth) as r:
                    assert r.status == 400
                    assert (await r.json())["error"]["param"] == "rating"
            assert router.classify(CODE).chain[0] == "medium"  # one vote is enough at min_votes=1
        finally:
            await runner.cleanup()


async def test_the_command_line_votes(fleet: FakeProviderServer, tmp_path: Path) -> None:
    import anyio
    import yaml

    from asyncrouter.cli import main

    db = tmp_path / "t.db"
    async with Router.from_dict(config(fleet, db)) as router:
        request_id = (await router.aroute(CODE)).meta.request_id
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(config(fleet, db)), encoding="utf-8")
    # the CLI runs its own event loop: from a worker thread, while this loop keeps the fake fleet serving
    code = await anyio.to_thread.run_sync(lambda: main(["feedback", "-c", str(path), request_id, "up", "--json"]))
    assert code == 0
    code = await anyio.to_thread.run_sync(lambda: main(["feedback", "-c", str(path), "missing-id", "down"]))
    assert code == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT request_id, rating FROM feedback").fetchall() == [(request_id, 1)]
