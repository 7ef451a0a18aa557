"""The server's dashboard: its JSON endpoints after real routed requests, their auth, and the page's safety.

The router runs against the fake fleet on loopback; requests go through the server over HTTP like any client's.
The page (HTML, JS, CSS) is public since it holds no data; the JSON under /v1/asyncrouter/ needs the API's key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from asyncrouter import Router
from asyncrouter.server import DASHBOARD_PATH, create_app
from asyncrouter.server._dashboard import DEFAULT_LOGS_LAST_N, DEFAULT_REFRESH_SECONDS
from asyncrouter.testing import FakeProviderServer, default_fleet

SERVER_KEY = "sk-dash-SECRET-0123456789abcdef"
ALIASES = {"fake-cheap", "fake-medium", "fake-strong"}
PROMPTS = [
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists",
    "Translate 'good morning' into German",
]
HOSTILE = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)> what is 2+2?'
ENDPOINTS = ("stats", "logs", "breakers", "budget")
PAGES = {
    DASHBOARD_PATH: "text/html",
    DASHBOARD_PATH + "/app.js": "text/javascript",
    DASHBOARD_PATH + "/app.css": "text/css",
}
STATIC = resources.files("asyncrouter.server").joinpath("static")
SVG_NS = "http://www.w3.org/2000/svg"


@pytest.fixture
async def fleet() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(models=default_fleet(speed=0, faults=False), seed=5) as srv:
        yield srv


def fleet_config(srv: FakeProviderServer, **top: Any) -> dict[str, Any]:
    top.setdefault("retries", {"max_attempts": 1, "backoff_base": 0.0, "backoff_max": 0.0})
    top.setdefault("budget", {"daily_limit_usd": 5.0})
    top.setdefault("tracker", {"path": ":memory:", "prompt_preview_chars": 200})
    return srv.config_dict(**top)


@dataclass
class Board:
    router: Router
    url: str
    http: aiohttp.ClientSession
    key: str | None

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    async def chat(self, prompt: str) -> str:
        """Route *prompt* through the server; the request id it was tracked under."""
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
        async with self.http.post(self.url + "/v1/chat/completions", json=body, headers=self.auth()) as resp:
            assert resp.status == 200, await resp.text()
            return resp.headers["X-AsyncRouter-Request-Id"]

    async def get(self, path: str, query: dict[str, str] | None = None) -> tuple[int, Any, str]:
        """GET *path* with the key: (status, parsed JSON or None, raw text)."""
        async with self.http.get(self.url + path, params=query or {}, headers=self.auth()) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            return resp.status, parsed, text

    async def data(self, name: str, **query: str) -> Any:
        status, parsed, text = await self.get(f"/v1/asyncrouter/{name}", query)
        assert status == 200, text
        return parsed


@asynccontextmanager
async def board(
    srv: FakeProviderServer, *, key: str | None = None, config: dict[str, Any] | None = None, **app_kw: Any
) -> AsyncIterator[Board]:
    async with Router.from_dict(config or fleet_config(srv)) as router:
        runner = web.AppRunner(create_app(router, api_key=key, **app_kw), shutdown_timeout=5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            async with aiohttp.ClientSession() as http:
                yield Board(router, f"http://{host}:{port}", http, key)
        finally:
            await runner.cleanup()


# ------------------------------------------------------------------------------------------- the JSON data


async def test_endpoints_report_the_requests_routed_through_the_server(fleet: FakeProviderServer) -> None:
    async with board(fleet) as b:
        ids = [await b.chat(p) for p in PROMPTS]

        stats = await b.data("stats")
        assert stats["requests"] == stats["ok"] == 3
        assert stats["errors"] == 0
        assert sum(g["requests"] for g in stats["by_model"].values()) == 3
        assert set(stats["by_model"]) <= ALIASES
        assert sum(g["requests"] for g in stats["by_task_type"].values()) == 3
        assert sum(g["requests"] for g in stats["by_routing_layer"].values()) == 3
        assert stats["cost_usd"] > 0
        assert 0 < stats["p50_latency_ms"] <= stats["p95_latency_ms"]
        # the baseline defaults to the most expensive model: routing saved money against it
        assert stats["savings"]["baseline_model"] == "fake-strong"
        assert stats["savings"]["actual_cost_usd"] == pytest.approx(stats["cost_usd"])
        # the same figures the router itself reports
        direct = (await b.router.stats()).to_dict()
        for field in ("requests", "ok", "errors", "escalations", "input_tokens", "output_tokens", "p95_latency_ms"):
            assert stats[field] == direct[field], field
        assert stats["by_model"] == json.loads(json.dumps(direct["by_model"]))
        if "by_day" in direct:  # another change adds it to Stats; the endpoint passes on whatever Stats has
            assert stats["by_day"] == json.loads(json.dumps(direct["by_day"]))

        logs = await b.data("logs")
        assert [r["request_id"] for r in logs] == ids[::-1]  # newest first
        assert [r["prompt_preview"] for r in logs] == PROMPTS[::-1]
        assert all(r["status"] == "ok" and r["model"] in ALIASES for r in logs)
        assert sum(r["cost_usd"] for r in logs) == pytest.approx(stats["cost_usd"])
        assert {"routing_layer", "tier", "latency_ms", "attempts", "escalated"} <= set(logs[0])

        breakers = await b.data("breakers")
        assert set(breakers) == set(b.router.breakers.status())
        assert ALIASES <= set(breakers)
        assert {s["state"] for s in breakers.values()} == {"closed"}
        assert breakers["fake-cheap"]["kind"] == "model"

        budget = await b.data("budget")
        assert budget["limit"] == 5.0
        assert budget["spent"] == pytest.approx(stats["cost_usd"])
        assert budget["remaining"] == pytest.approx(5.0 - budget["spent"] - budget["reserved"])
        assert budget["state"] == "normal"
        assert budget["backend"] == b.router.config.budget.backend


async def test_query_parameters_filter_and_window(fleet: FakeProviderServer) -> None:
    async with board(fleet) as b:
        for p in PROMPTS:
            await b.chat(p)
        newest = await b.data("logs", last_n="1")
        assert [r["prompt_preview"] for r in newest] == [PROMPTS[-1]]
        assert await b.data("logs", status="error") == []
        model = newest[0]["model"]
        assert {r["model"] for r in await b.data("logs", model=model)} == {model}

        assert (await b.data("stats", since="1h"))["requests"] == 3
        assert (await b.data("stats", since="2999-01-01"))["requests"] == 0
        assert (await b.data("stats", until="2000-01-01T00:00"))["requests"] == 0
        cheap = await b.data("stats", baseline="fake-cheap")
        assert cheap["savings"]["baseline_model"] == "fake-cheap"


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        pytest.param("logs", {"last_n": "0"}, "last_n", id="last_n-zero"),
        pytest.param("logs", {"last_n": "many"}, "last_n", id="last_n-text"),
        pytest.param("logs", {"last_n": "100000"}, "last_n", id="last_n-too-many"),
        pytest.param("logs", {"status": "weird"}, "status", id="status"),
        pytest.param("logs", {"since": "yesterday"}, "since", id="logs-since"),
        pytest.param("stats", {"since": "3 fortnights"}, "since", id="stats-since"),
        pytest.param("stats", {"until": "soon"}, "until", id="stats-until"),
        pytest.param("stats", {"baseline": "gpt-9"}, "baseline", id="baseline"),
    ],
)
async def test_bad_query_parameters_are_400_in_the_servers_error_shape(
    fleet: FakeProviderServer, path: str, query: dict[str, str], param: str
) -> None:
    async with board(fleet) as b:
        status, body, _ = await b.get(f"/v1/asyncrouter/{path}", query)
    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


async def test_without_tracking_stats_say_so_and_logs_are_empty(fleet: FakeProviderServer) -> None:
    async with board(fleet, config=fleet_config(fleet, tracker={"path": None})) as b:
        await b.chat(PROMPTS[0])
        status, body, _ = await b.get("/v1/asyncrouter/stats")
        assert status == 409
        assert body["error"]["code"] == "tracking_disabled"
        assert await b.data("logs") == []
        assert (await b.data("budget"))["spent"] > 0


async def test_prompt_markup_comes_back_as_escaped_json(fleet: FakeProviderServer) -> None:
    async with board(fleet) as b:
        await b.chat(HOSTILE)
        status, logs, raw = await b.get("/v1/asyncrouter/logs")
    assert status == 200
    assert logs[0]["prompt_preview"] == HOSTILE  # the text itself, unchanged
    # ...but never as markup in the body: <, > and & are JSON escapes there
    for fragment in ("<script", "</script", "<img", "&"):
        assert fragment not in raw
    assert "\\u003cscript\\u003e" in raw


# ------------------------------------------------------------------------------------------------- auth


async def test_data_needs_the_key_and_the_page_does_not(fleet: FakeProviderServer) -> None:
    async with board(fleet, key=SERVER_KEY) as b:
        await b.chat(PROMPTS[0])
        for name in ENDPOINTS:
            path = f"/v1/asyncrouter/{name}"
            for headers in (
                {},
                {"Authorization": "Bearer sk-wrong"},
                {"Authorization": SERVER_KEY},  # no scheme
                {"x-api-key": SERVER_KEY},  # Anthropic's header is for /v1/messages only
            ):
                async with b.http.get(b.url + path, headers=headers) as resp:
                    body = await resp.json()
                    assert resp.status == 401, (path, headers)
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
                    assert body["error"]["code"] == "invalid_api_key"
                    assert SERVER_KEY not in json.dumps(body)
            status, _, _ = await b.get(path)
            assert status == 200, path
        # the page, its script and its style sheet hold no data: served to anyone
        for path in PAGES:
            async with b.http.get(b.url + path) as resp:
                assert resp.status == 200, path
                assert SERVER_KEY not in await resp.text()


async def test_dashboard_false_leaves_every_dashboard_route_out(fleet: FakeProviderServer) -> None:
    async with board(fleet, dashboard=False) as b:
        for path in [*PAGES, *(f"/v1/asyncrouter/{n}" for n in ENDPOINTS)]:
            status, body, _ = await b.get(path)
            assert status == 404, path
            assert body["error"]["code"] == "not_found"
        await b.chat(PROMPTS[0])  # the API itself is unchanged


# ---------------------------------------------------------------------------------------------- the command


@pytest.mark.parametrize("no_dashboard", [pytest.param(False, id="default"), pytest.param(True, id="no-dashboard")])
async def test_serve_prints_the_dashboard_url(fleet: FakeProviderServer, tmp_path: Path, no_dashboard: bool) -> None:
    config = tmp_path / "asyncrouter.yaml"
    config.write_text(json.dumps(fleet_config(fleet)))  # JSON is YAML
    argv = [sys.executable, "-m", "asyncrouter", "serve", "--config", str(config), "--port", "0"]
    if no_dashboard:
        argv.append("--no-dashboard")
    env = {**os.environ, "ASYNCROUTER_API_KEY": "", "COLUMNS": "300"}
    async with await anyio.open_process(argv, env=env) as proc:
        assert proc.stderr is not None
        text = ""
        try:
            with anyio.fail_after(60):  # the server says where it listens once it does
                while not re.search(r"Ctrl-C stops\n(.*\n)?", text) or (not no_dashboard and "dashboard:" not in text):
                    text += (await proc.stderr.receive()).decode()
            base = re.search(r"on (http://127\.0\.0\.1:\d+)", text)
            assert base is not None, text
            async with aiohttp.ClientSession() as http, http.get(base.group(1) + DASHBOARD_PATH) as resp:
                status = resp.status
        finally:
            proc.send_signal(signal.SIGINT)
            with anyio.fail_after(30):
                async for chunk in proc.stderr:  # everything it printed, up to its exit
                    text += chunk.decode()
                await proc.wait()
    assert proc.returncode == 0
    if no_dashboard:
        assert "dashboard" not in text
        assert status == 404
    else:
        assert f"dashboard: {base.group(1)}{DASHBOARD_PATH}" in text
        assert status == 200


# ----------------------------------------------------------------------------------------- the page itself


async def test_page_script_and_style_are_served_with_a_strict_csp(fleet: FakeProviderServer) -> None:
    async with board(fleet) as b:
        for path, ctype in PAGES.items():
            async with b.http.get(b.url + path) as resp:
                assert resp.status == 200
                assert resp.content_type == ctype
                assert resp.charset == "utf-8"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                csp = _csp(resp.headers["Content-Security-Policy"])
                assert csp["default-src"] == ["'none'"]
                assert csp["script-src"] == ["'self'"]
                assert csp["style-src"] == ["'self'"]
                assert csp["connect-src"] == ["'self'"]
                assert csp["frame-ancestors"] == ["'none'"]
                assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]
                assert "'unsafe-eval'" not in resp.headers["Content-Security-Policy"]
                assert (await resp.read()) == STATIC.joinpath(_static_name(path)).read_bytes()
                etag = resp.headers["ETag"]
            async with b.http.get(b.url + path, headers={"If-None-Match": etag}) as resp:
                assert resp.status == 304
        for name in ENDPOINTS:
            async with b.http.get(b.url + f"/v1/asyncrouter/{name}") as resp:
                assert resp.content_type == "application/json"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["Cache-Control"] == "no-store"
                assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


def test_page_has_no_inline_script_style_or_handler() -> None:
    html = STATIC.joinpath("dashboard.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL | re.IGNORECASE)
    assert scripts == [(' src="dashboard/app.js" defer', "")]
    assert not re.search(r"<style\b", html, re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)  # onclick=, onload=, ...
    assert "javascript:" not in html.lower()
    # every resource it names is one of the server's own, relative to the page
    refs = re.findall(r"""\b(?:src|href|action)\s*=\s*["']([^"']*)["']""", html, re.IGNORECASE)
    assert sorted(refs) == ["dashboard/app.css", "dashboard/app.js"]


def test_page_loads_nothing_from_elsewhere() -> None:
    for name in ("dashboard.html", "app.js", "app.css"):
        text = STATIC.joinpath(name).read_text()
        urls = [u for u in re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'`)]*""", text) if u != SVG_NS]
        assert urls == [], name
        assert "@import" not in text
        assert not re.search(r"url\s*\(", text), name  # no fonts or images fetched by the style sheet
    # the SVG namespace is a name, not a fetch: only createElementNS uses it
    js = STATIC.joinpath("app.js").read_text()
    assert js.count(SVG_NS) == 1


def test_script_never_writes_markup() -> None:
    js = STATIC.joinpath("app.js").read_text()
    code = "\n".join(line for line in js.splitlines() if not line.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser", "createRange"):
        assert sink not in code, sink
    for dynamic in (r"\beval\s*\(", r"\bnew\s+Function\b", r"setTimeout\s*\(\s*['\"`]", r"setInterval\s*\(\s*['\"`]"):
        assert not re.search(dynamic, code), dynamic
    assert not re.search(r"""setAttribute\(\s*["'`]on""", code)  # no handler attributes
    assert not re.search(r"\.on[a-z]+\s*=", code)  # handlers only through addEventListener
    assert "textContent" in code
    assert "createTextNode" in code


def test_script_defaults_match_the_servers() -> None:
    js = STATIC.joinpath("app.js").read_text()
    assert f"const DEFAULT_REFRESH_SECONDS = {DEFAULT_REFRESH_SECONDS};" in js
    assert f"const LOGS_LAST_N = {DEFAULT_LOGS_LAST_N};" in js


# ---------------------------------------------------------------------------- running the page's script


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the script's syntax is not checked")
def test_script_parses() -> None:
    with resources.as_file(STATIC.joinpath("app.js")) as path:
        done = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


# A DOM just big enough for app.js, in node: elements for the ids the served page declares, text nodes, attributes,
# listeners, sessionStorage, and node's own fetch and URL. Writing markup (innerHTML and friends) is recorded.
DOM_SHIM = r"""
const fs = require("fs");
const vm = require("vm");
const [appPath, pageUrl, key] = process.argv.slice(2);
const out = { markup_written: false, requests_with_key: 0, requests_without_key: 0, elements: {}, ids: {} };
const markup = { set() { out.markup_written = true; }, get() { return ""; } };

class Node {
  constructor() { this.childNodes = []; }
  append(...nodes) {
    for (let n of nodes) this.childNodes.push(typeof n === "string" ? new Text(n) : n);
  }
  replaceChildren(...nodes) { this.childNodes = []; this.append(...nodes); }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(""); }
  set textContent(v) { this.childNodes = [new Text(String(v))]; }
}
class Text extends Node {
  constructor(data) { super(); this.data = data; }
  get textContent() { return this.data; }
}
class Element extends Node {
  constructor(tag, html) {
    super();
    this.localName = tag;
    this.tagName = html ? tag.toUpperCase() : tag;
    this.attributes = {};
    this.listeners = {};
    this.hidden = false;
    this.className = "";
    this.value = "";
    out.elements[tag] = (out.elements[tag] || 0) + 1;
  }
  setAttribute(name, value) { this.attributes[name] = String(value); }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  focus() {}
}
for (const sink of ["innerHTML", "outerHTML"]) Object.defineProperty(Element.prototype, sink, markup);
Element.prototype.insertAdjacentHTML = () => { out.markup_written = true; };

(async () => {
  const page = await (await fetch(pageUrl)).text();
  const byId = new Map();
  for (const [, tag, attrs] of page.matchAll(/<([a-z0-9]+)(\s[^>]*)?>/g)) {
    const id = /\sid="([^"]+)"/.exec(attrs || "");
    if (!id) continue;
    const node = new Element(tag, true);
    node.hidden = /\shidden(\s|$)/.test(attrs);
    byId.set(id[1], node);
  }
  const storage = new Map();
  const realFetch = globalThis.fetch;
  Object.assign(globalThis, {
    Node,
    window: globalThis,
    location: new URL(pageUrl),
    sessionStorage: {
      getItem: (k) => (storage.has(k) ? storage.get(k) : null),
      setItem: (k, v) => storage.set(k, String(v)),
      removeItem: (k) => storage.delete(k),
    },
    document: {
      readyState: "complete",
      baseURI: pageUrl,
      getElementById: (id) => byId.get(id) || null,
      createElement: (tag) => new Element(tag, true),
      createElementNS: (ns, tag) => new Element(tag, false),
      createTextNode: (data) => new Text(data),
      addEventListener() {},
      write() { out.markup_written = true; },
    },
    fetch: (url, init) => {
      const auth = init && init.headers && init.headers.Authorization;
      if (auth === "Bearer " + key) out.requests_with_key += 1;
      else out.requests_without_key += 1;
      return realFetch(url, init);
    },
  });
  const until = async (what) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
    if (!what()) throw new Error("timed out; status: " + byId.get("status").textContent);
  };
  vm.runInThisContext(fs.readFileSync(appPath, "utf8"), { filename: appPath });
  // no key yet: the page must ask for one
  await until(() => !byId.get("keyform").hidden);
  out.asked = byId.get("status").textContent;
  byId.get("key").value = key;
  for (const fn of byId.get("keyform").listeners.submit || []) fn({ preventDefault() {} });
  out.stored_key = storage.get("asyncrouter.dashboard.key") || null;
  await until(() => byId.get("status").textContent.startsWith("updated"));
  for (const [id, node] of byId) out.ids[id] = node.textContent;
  out.status_class = byId.get("status").className;
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})().catch((err) => { console.error(err && err.stack ? err.stack : String(err)); process.exit(1); });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the script is not run")
async def test_script_asks_for_the_key_and_renders_the_data_as_text(fleet: FakeProviderServer, tmp_path: Path) -> None:
    """Run app.js in node against the live server, in the minimal DOM of :data:`DOM_SHIM`.

    Not a browser (no layout, no CSP enforcement), but the script's own logic runs for real: it meets a 401, asks
    for the key, keeps it in sessionStorage, fetches the four endpoints with it, draws every section, and writes
    the hostile prompt as text.
    """
    shim = tmp_path / "dom_shim.js"
    shim.write_text(DOM_SHIM)
    async with board(fleet, key=SERVER_KEY) as b:
        for p in [*PROMPTS, HOSTILE]:
            await b.chat(p)
        with resources.as_file(STATIC.joinpath("app.js")) as app_js:
            argv = ["node", str(shim), str(app_js), b.url + DASHBOARD_PATH + "?refresh=0", SERVER_KEY]
            done = await anyio.run_process(argv, check=False)
        has_by_day = "by_day" in await b.data("stats")
    assert done.returncode == 0, done.stderr.decode()
    dom = json.loads(done.stdout)
    assert "API key" in dom["asked"]
    assert dom["stored_key"] == SERVER_KEY
    assert dom["requests_without_key"] == 4  # the first round, refused
    assert dom["requests_with_key"] == 4  # the second, with the key from sessionStorage
    assert dom["markup_written"] is False
    assert dom["status_class"] == "muted"  # no section failed
    ids = dom["ids"]
    assert ids["totals"].startswith("requests4ok4errors0")  # card labels and values, in order
    assert "vs all-fake-strong" in ids["totals"]  # the savings card
    assert HOSTILE in ids["logs"]  # the prompt is a text node, whole...
    assert dom["elements"].get("img", 0) == 0  # ...and made no element
    assert dom["elements"].get("script", 0) == 0
    assert all(alias in ids["breakers"] for alias in ALIASES)
    assert "By model" in ids["groups"]
    assert "By routing layer" in ids["groups"]
    assert "$5.00" in ids["budget"]
    assert "normal" in ids["budget"]
    if has_by_day:
        assert dom["elements"].get("rect", 0) == 1  # one bar: today's cost
    else:
        assert "no daily breakdown" in ids["chart"]


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (Debian's chromium package): the page is not driven in a real browser",
)
async def test_page_in_headless_chromium(fleet: FakeProviderServer, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium is not None
    async with board(fleet) as b:
        for p in [*PROMPTS, HOSTILE]:
            await b.chat(p)
        argv = [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={tmp_path}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            b.url + DASHBOARD_PATH + "?refresh=0",
        ]
        done = await anyio.run_process(argv, check=False)
    dom = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "updated" in dom
    assert "&lt;script&gt;alert(" in dom  # the prompt as text in the logs table
    assert '<script>alert("pwned")' not in dom
    assert "fake-strong" in dom


def _csp(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        out[name] = values
    return out


def _static_name(path: str) -> str:
    return {DASHBOARD_PATH: "dashboard.html"}.get(path, path.rsplit("/", 1)[-1])
