// asyncrouter dashboard: fetches /v1/asyncrouter/{stats,logs,breakers,budget} and draws them.
//
// Safety rules this file keeps (a test reads it to check): every value is written with textContent or as an
// attribute of an element made here, never parsed as markup; nothing is loaded from another origin; no eval.
// The page's Content-Security-Policy forbids inline scripts, so this file is the only script.
//
// Query parameters of the page: refresh=N seconds between refreshes (default 5, 0 stops), since=24h | 7d | an
// ISO date | all (the stats window, default 7d). When the server has a key (ASYNCROUTER_API_KEY) the page asks
// for it once and keeps it in sessionStorage (this tab only), sending it as "Authorization: Bearer <key>".
"use strict";

(() => {
  const KEY_STORE = "asyncrouter.dashboard.key";
  const SVG_NS = "http://www.w3.org/2000/svg"; // a namespace name, never fetched
  const DEFAULT_REFRESH_SECONDS = 5; // kept in step with DEFAULT_REFRESH_SECONDS in _dashboard.py
  const DEFAULT_SINCE = "7d";
  const LOGS_LAST_N = 50;
  const GROUPS = [
    ["by_model", "By model"],
    ["by_task_type", "By task type"],
    ["by_tier", "By tier"],
    ["by_routing_layer", "By routing layer"],
    ["by_complexity", "By complexity"],
    ["by_category", "By category"],
    ["by_provider", "By provider"],
  ];

  const query = new URLSearchParams(window.location.search);
  const refreshSeconds = parseRefresh(query.get("refresh"));
  const since = (query.get("since") || DEFAULT_SINCE).trim();

  class AuthError extends Error {}

  function parseRefresh(text) {
    if (text === null || text.trim() === "") return DEFAULT_REFRESH_SECONDS;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) return DEFAULT_REFRESH_SECONDS;
    return n === 0 ? 0 : Math.max(1, n);
  }

  // ------------------------------------------------------------------------------------------- DOM helpers

  function $(id) {
    return document.getElementById(id);
  }

  // el("td", {class: "num"}, "text", otherNode): children are strings (as text nodes) or nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function fill(id, ...nodes) {
    $(id).replaceChildren(...nodes);
  }

  function stateClass(value) {
    return "state-" + String(value).toLowerCase().replace(/[^a-z_]/g, "");
  }

  function table(columns, rows) {
    // columns: [label, numeric?]; rows: arrays of cell values (string, number or Node)
    const head = el("tr", null, ...columns.map(([label, num]) => el("th", num ? { class: "num" } : null, label)));
    const body = rows.map((cells) =>
      el("tr", null, ...cells.map((cell, i) => (cell instanceof Node && cell.tagName === "TD" ? cell : el("td", columns[i][1] ? { class: "num" } : null, cell)))),
    );
    return el("table", null, el("thead", null, head), el("tbody", null, ...body));
  }

  function note(text, cls) {
    return el("p", { class: cls || "muted" }, text);
  }

  // ------------------------------------------------------------------------------------------- formatting

  function num(x) {
    return typeof x === "number" && Number.isFinite(x);
  }

  function usd(x) {
    if (!num(x)) return "-";
    const abs = Math.abs(x);
    const digits = abs === 0 ? 2 : abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
    return (x < 0 ? "-$" : "$") + abs.toFixed(digits);
  }

  function ms(x) {
    if (!num(x)) return "-";
    return x >= 1000 ? (x / 1000).toFixed(2) + " s" : x.toFixed(0) + " ms";
  }

  function pct(x) {
    return num(x) ? x.toFixed(1) + "%" : "-";
  }

  function int(x) {
    return num(x) ? Math.round(x).toLocaleString() : "-";
  }

  function when(epochSeconds) {
    if (!num(epochSeconds)) return "-";
    return new Date(epochSeconds * 1000).toLocaleString();
  }

  // ------------------------------------------------------------------------------------------------ fetching

  async function getJSON(path, params) {
    // path is relative ("v1/asyncrouter/stats"): resolved against the page (/dashboard), so a proxy that serves
    // the whole server under a prefix keeps working
    const url = new URL(path, document.baseURI);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    const headers = { Accept: "application/json" };
    const key = window.sessionStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = "Bearer " + key;
    const resp = await fetch(url, { headers, cache: "no-store", credentials: "same-origin", redirect: "error" });
    if (resp.status === 401) throw new AuthError("the server wants its API key");
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      body = null;
    }
    if (!resp.ok) {
      const message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
      throw new Error(`HTTP ${resp.status}${message ? ": " + message : ""}`);
    }
    return body;
  }

  // ------------------------------------------------------------------------------------------------ rendering

  function card(label, value, detail) {
    return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), detail ? el("div", { class: "label" }, detail) : null);
  }

  function renderStats(stats) {
    fill("window", since.toLowerCase() === "all" ? "(all time)" : `(last ${since})`);
    const s = stats.savings;
    const saved = s && num(s.savings_usd) ? usd(s.savings_usd) : "-";
    const savedDetail = s ? `${s.savings_pct === null || s.savings_pct === undefined ? "-" : pct(s.savings_pct)} vs all-${s.baseline_model} (${usd(s.baseline_cost_usd)})` : "no baseline";
    fill(
      "totals",
      card("requests", int(stats.requests)),
      card("ok", int(stats.ok)),
      card("errors", int(stats.errors), `${int(stats.cancelled)} cancelled, ${pct(100 * (stats.error_rate || 0))}`),
      card("escalations", int(stats.escalations), pct(100 * (stats.escalation_rate || 0))),
      card("cost", usd(stats.cost_usd)),
      card("savings", saved, savedDetail),
      card("latency p50", ms(stats.p50_latency_ms)),
      card("latency p95", ms(stats.p95_latency_ms), `avg ${ms(stats.avg_latency_ms)}`),
      card("tokens", `${int(stats.input_tokens)} / ${int(stats.output_tokens)}`, "in / out"),
    );
    fill("stats-note");
    renderChart(stats.by_day);
    renderGroups(stats);
  }

  function renderChart(byDay) {
    if (!byDay || typeof byDay !== "object") {
      fill("chart", note("This server's stats have no daily breakdown."));
      return;
    }
    const days = Object.keys(byDay).sort();
    if (days.length === 0) {
      fill("chart", note("No requests in this window."));
      return;
    }
    const width = 760;
    const height = 190;
    const left = 58;
    const bottom = 24;
    const top = 12;
    const plotW = width - left - 8;
    const plotH = height - top - bottom;
    const costs = days.map((d) => (num(byDay[d] && byDay[d].cost_usd) ? byDay[d].cost_usd : 0));
    const max = Math.max(...costs, 0);
    const slot = plotW / days.length;
    const barW = Math.max(1, Math.min(48, slot * 0.7));
    const labelEvery = Math.ceil(days.length / Math.floor(plotW / 44));
    const chart = svg("svg", { class: "bars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "cost per day" });
    chart.append(svg("text", { x: 4, y: top + 8 }, usd(max)), svg("text", { x: 4, y: top + plotH }, usd(0)));
    chart.append(svg("line", { x1: left, y1: top + plotH, x2: width - 8, y2: top + plotH, stroke: "currentColor", "stroke-opacity": 0.3 }));
    days.forEach((day, i) => {
      const h = max > 0 ? (costs[i] / max) * plotH : 0;
      const x = left + i * slot + (slot - barW) / 2;
      const bar = svg("rect", { class: "bar", x: x.toFixed(1), y: (top + plotH - h).toFixed(1), width: barW.toFixed(1), height: Math.max(h, 0).toFixed(1) });
      const group = byDay[day] || {};
      bar.append(svg("title", null, `${day}: ${usd(costs[i])}, ${int(group.requests)} requests`));
      chart.append(bar);
      if (i % labelEvery === 0) {
        chart.append(svg("text", { x: (x + barW / 2).toFixed(1), y: height - 8, "text-anchor": "middle" }, day.slice(5)));
      }
    });
    fill("chart", chart);
  }

  function renderGroups(stats) {
    const total = stats.requests || 0;
    const sections = [];
    for (const [key, title] of GROUPS) {
      const groups = stats[key];
      if (!groups || typeof groups !== "object" || Object.keys(groups).length === 0) continue;
      const rows = Object.entries(groups)
        .sort((a, b) => (b[1].requests || 0) - (a[1].requests || 0))
        .map(([name, g]) => [name, int(g.requests), pct(total ? (100 * g.requests) / total : null), int(g.errors), int(g.escalations), usd(g.cost_usd), ms(g.avg_latency_ms)]);
      const columns = [["", false], ["requests", true], ["share", true], ["errors", true], ["escal.", true], ["cost", true], ["avg latency", true]];
      sections.push(el("div", null, el("h2", null, title), table(columns, rows)));
    }
    fill("groups", ...sections);
  }

  function renderBudget(b) {
    const rows = [
      ["day", `${b.day} (${b.timezone})`],
      ["limit", b.limit === null ? "no cap" : usd(b.limit)],
      ["spent", usd(b.spent) + (b.limit === null ? "" : ` (${pct(100 * b.fraction)})`)],
      ["reserved", usd(b.reserved)],
      ["remaining", b.remaining === null ? "-" : usd(b.remaining)],
      ["state", el("td", { class: stateClass(b.state) }, b.state)],
      ["backend", b.backend],
    ];
    const nodes = [table([["", false], ["", false]], rows)];
    if (b.limit !== null && num(b.fraction)) {
      nodes.push(el("progress", { max: 1, value: Math.min(1, Math.max(0, b.fraction)), "aria-label": "share of the daily cap spent" }));
    }
    fill("budget", ...nodes);
  }

  function renderBreakers(breakers) {
    const list = Object.values(breakers || {});
    if (list.length === 0) {
      fill("breakers", note("Circuit breakers are disabled."));
      return;
    }
    const rows = list.map((s) => [
      s.name,
      s.kind,
      el("td", { class: stateClass(s.state) }, s.state),
      `${s.fail_count}/${s.fail_max}`,
      num(s.retry_in) ? s.retry_in.toFixed(1) + " s" : "-",
      (s.models || []).join(", "),
    ]);
    fill("breakers", table([["name", false], ["kind", false], ["state", false], ["fails", true], ["retry in", true], ["models", false]], rows));
  }

  function renderLogs(records) {
    if (!Array.isArray(records) || records.length === 0) {
      fill("logs", note("No requests tracked yet."));
      return;
    }
    const rows = records.map((r) => [
      when(r.timestamp),
      el("td", { class: stateClass(r.status) }, r.error_type ? `${r.status} ${r.error_type}` : r.status),
      r.model || "-",
      r.routing_layer,
      r.tier,
      r.task_type,
      `${int(r.input_tokens)}+${int(r.output_tokens)}`,
      ms(r.latency_ms),
      usd(r.cost_usd),
      r.escalated ? "yes" : "",
      el("td", { class: "prompt" }, r.prompt_preview || ""),
    ]);
    const columns = [["time", false], ["status", false], ["model", false], ["layer", false], ["tier", false], ["task", false], ["tokens", true], ["latency", true], ["cost", true], ["escal.", false], ["prompt", false]];
    fill("logs", table(columns, rows));
  }

  // ------------------------------------------------------------------------------------------------ the loop

  let timer = null;

  function showKeyForm(message) {
    window.clearTimeout(timer);
    fill("status", message);
    $("status").className = "error";
    $("keyform").hidden = false;
    $("key").focus();
  }

  async function tick() {
    window.clearTimeout(timer);
    const windowParam = since.toLowerCase() === "all" ? null : since;
    const [stats, logs, breakers, budget] = await Promise.allSettled([
      getJSON("v1/asyncrouter/stats", { since: windowParam }),
      getJSON("v1/asyncrouter/logs", { last_n: LOGS_LAST_N }),
      getJSON("v1/asyncrouter/breakers"),
      getJSON("v1/asyncrouter/budget"),
    ]);
    const results = [stats, logs, breakers, budget];
    if (results.some((r) => r.status === "rejected" && r.reason instanceof AuthError)) {
      const hadKey = window.sessionStorage.getItem(KEY_STORE) !== null;
      window.sessionStorage.removeItem(KEY_STORE);
      showKeyForm(hadKey ? "The server refused that key: enter it again." : "This server needs its API key.");
      return;
    }
    const sections = [
      [stats, renderStats, "stats-note"],
      [logs, renderLogs, "logs"],
      [breakers, renderBreakers, "breakers"],
      [budget, renderBudget, "budget"],
    ];
    const failures = [];
    for (const [result, render, target] of sections) {
      if (result.status === "fulfilled") {
        try {
          render(result.value);
        } catch (err) {
          failures.push(String(err));
          fill(target, note(`could not draw: ${err}`, "error"));
        }
      } else {
        failures.push(String(result.reason && result.reason.message ? result.reason.message : result.reason));
        fill(target, note(String(result.reason && result.reason.message ? result.reason.message : result.reason), "error"));
      }
    }
    const every = refreshSeconds > 0 ? `refreshing every ${refreshSeconds} s` : "not refreshing (refresh=0)";
    fill("status", `updated ${new Date().toLocaleTimeString()}, ${every}` + (failures.length ? ` (${failures.length} failed)` : ""));
    $("status").className = failures.length ? "error" : "muted";
    if (refreshSeconds > 0) timer = window.setTimeout(tick, refreshSeconds * 1000);
  }

  function start() {
    $("keyform").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key").value.trim();
      if (!key) return;
      window.sessionStorage.setItem(KEY_STORE, key);
      $("key").value = "";
      $("keyform").hidden = true;
      tick();
    });
    tick();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
