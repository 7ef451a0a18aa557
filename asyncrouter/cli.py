"""The ``asyncrouter`` command line.

``asyncrouter [-c FILE] COMMAND [--config FILE] ...``; the config file may be named before the command
(``-c/--config``) or after it (``--config``, which wins when both are given), and defaults to
``$ASYNCROUTER_CONFIG``, then ``./asyncrouter.yaml``. Commands::

    init       write a commented starter config for one provider
    route      route one prompt and print the reply (and a one-line summary of how it was produced)
    classify   show the routing decision for a prompt, without calling any model
    eval       measure the classifier on a labelled data set (default: the hold-out set shipped in the package)
    batch      route a JSONL or text file to JSONL, resumably, with a progress bar
    stats      totals, per-model breakdown and savings from the tracker
    logs       the newest tracked requests
    budget     today's spend against the daily cap
    breakers   the circuit breakers of this process
    alerts     ``alerts status``: the alert rules, channels and cooldown; ``alerts test``: send one test alert
    models     the configured models (prices, context, tags, the tier each serves); ``--profile P``: the chain
               each tier gets under that profile
    serve      the OpenAI-compatible HTTP server
    bench      the benchmark suite (from a source checkout)
    demo       the main job with no keys: a fake fleet, a few hundred prompts, where they went and what it cost

Tables and progress bars are for people (progress and notes go to stderr); ``--json`` prints one JSON document
on stdout and nothing else. Exit codes: 0 success, 1 a failed request, 2 bad usage or configuration (a
:class:`~asyncrouter.ConfigError` is shown with its field path, never with a traceback). Error messages never
carry an API key.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

import anyio
from pydantic import ValidationError
from rich.console import Console, Group
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from ._config import Config, load_yaml
from ._exceptions import ConfigError, RouterError, redact
from ._models import Response, ResponseMeta
from ._types import ProviderName

if TYPE_CHECKING:
    from ._alerts import WebhookDelivery
    from ._classifier import Classification
    from ._demo import DemoResult
    from ._embeddings import EmbeddingIndex, TrainReport
    from ._engine import Router
    from ._eval import EvalExample, EvalReport
    from ._planner import RoutingDecision
    from .providers import KeyCheck

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG_FILE", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

#: examples ``eval`` / ``compare`` classify at once with a strategy that calls a model
DEFAULT_EVAL_CONCURRENCY: Final = 8
#: The environment variable that names the config file when ``--config`` is not given.
CONFIG_ENV: Final = "ASYNCROUTER_CONFIG"
#: The config file used when neither ``--config`` nor ``$ASYNCROUTER_CONFIG`` is given.
DEFAULT_CONFIG_FILE: Final = "asyncrouter.yaml"
#: Exit code of a successful command.
EXIT_OK: Final = 0
#: Exit code when a request failed.
EXIT_FAILED: Final = 1
#: Exit code of bad usage or a bad configuration.
EXIT_USAGE: Final = 2
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED: Final = 130
#: Requests in flight at once in ``asyncrouter batch``.
DEFAULT_CLI_CONCURRENCY: Final = 16
#: Columns assumed when output goes to a file or a pipe.
DEFAULT_PIPE_WIDTH: Final = 160
#: Records ``asyncrouter logs`` shows.
DEFAULT_LOGS: Final = 20
DEFAULT_SERVE_HOST: Final = "127.0.0.1"
DEFAULT_SERVE_PORT: Final = 8080
NO_CONFIG_MESSAGE: Final = "no config: pass --config FILE, set ASYNCROUTER_CONFIG, or run `asyncrouter init`"
PROVIDERS: Final[tuple[ProviderName, ...]] = (
    "openai",
    "anthropic",
    "openrouter",
    "huggingface",
    "ollama",
    "google",
    "openai_compatible",
)

#: Shortest webhook path or query string redacted on its own from printed messages.
_MIN_SECRET_PART: Final = 8

_T = TypeVar("_T")


class _Exit(Exception):
    """Leave the command with a message on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        self.code = code
        super().__init__(message)


@dataclass(slots=True)
class _Ctx:
    """What every command gets: its arguments and the two consoles."""

    args: argparse.Namespace
    out: Console
    err: Console
    config: Config | None = None

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit_json(self, data: Any) -> None:
        """The one JSON document a ``--json`` command prints: plain ``print``, so no styling ever gets in."""
        print(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default), file=sys.stdout, flush=True)

    def note(self, message: str, *, style: str = "dim") -> None:
        self.err.print(Text(message, style=style), soft_wrap=True)

    def progress(self) -> Progress:
        """A progress bar on stderr, drawn only when stderr is a terminal."""
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=self.err,
            transient=False,
            disable=not self.err.is_terminal,
        )


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ----------------------------------------------------------------------------------------------- config


def _config_path(explicit: str | None) -> Path:
    """The config file: ``--config`` (after the command, else before it), else ``$ASYNCROUTER_CONFIG``, else
    ``./asyncrouter.yaml``."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise _Exit(f"config file not found: {path} ({NO_CONFIG_MESSAGE.removeprefix('no config: ')})")
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise _Exit(f"config file not found: {path} (from ${CONFIG_ENV})")
        return path
    path = Path(DEFAULT_CONFIG_FILE)
    if path.is_file():
        return path
    raise _Exit(NO_CONFIG_MESSAGE)


def _load_config(ctx: _Ctx) -> tuple[Path, Config]:
    path = _config_path(ctx.args.config)
    try:
        ctx.config = load_yaml(path)
    except ConfigError as exc:
        raise _Exit(f"invalid config {path}: {exc}") from None
    return path, ctx.config


def _secrets(config: Config | None, *, webhook_url: str | None = None) -> list[str]:
    """Every API key of *config*, and the webhooks' URLs and secret paths: redacted from any message printed."""
    secrets: list[str] = []
    if config is not None:
        secrets += [key for m in config.models for key in m.key_values()]
    for url in (webhook_url, config.alerts.webhook_url if config is not None else None):
        if url:
            parts = urlsplit(url)
            # the whole URL, then its path and query alone (a Slack webhook's path is its secret); a short path
            # such as /hook is no secret, and redacting it would garble unrelated text
            secrets += [url, *(part for part in (parts.path, parts.query) if len(part) >= _MIN_SECRET_PART)]
    return secrets


def _run(fn: Callable[[], Awaitable[_T]]) -> _T:
    return anyio.run(fn, backend="asyncio")


# --------------------------------------------------------------------------------------------- formatting


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}"
    if abs(value) < 1:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _left(meta: ResponseMeta) -> list[str]:
    """``"model: why"`` for each model a request left before the accepted one."""
    return [f"{a.model}: {a.reason}" for a in meta.attempts if a.outcome in ("gate_failed", "error")]


def _meta_line(meta: ResponseMeta) -> str:
    """The one-line summary ``asyncrouter route`` prints under the reply."""
    parts = [
        f"{meta.complexity}/{meta.category} (task {meta.task_type}, score {meta.complexity_score:.2f}, "
        f"confidence {meta.confidence:.2f})",
        f"model {meta.model} ({meta.provider})",
        f"layer {meta.routing_layer}",
        f"tier {meta.tier}",
        f"tokens {meta.input_tokens}+{meta.output_tokens}" + ("~" if meta.tokens_estimated else ""),
        f"cost {_usd(meta.estimated_cost_usd)}",
        f"latency {_ms(meta.latency_ms)}",
        f"escalations {meta.escalations}",
    ]
    if meta.profile:
        parts.append(f"profile {meta.profile}")
    line = " | ".join(parts)
    left = _left(meta)
    if left:
        line += " (" + "; ".join(left) + ")"
    if not meta.quality_passed:
        line += " [every reply failed the quality gates: best one returned]"
    return line


def _meta_dict(meta: ResponseMeta) -> dict[str, Any]:
    """The short meta summary of one batch line."""
    return {
        "model": meta.model,
        "provider": meta.provider,
        "routing_layer": meta.routing_layer,
        "task_type": meta.task_type,
        "tier": meta.tier,
        "input_tokens": meta.input_tokens,
        "output_tokens": meta.output_tokens,
        "cost_usd": meta.estimated_cost_usd,
        "latency_ms": round(meta.latency_ms, 3),
        "escalations": meta.escalations,
        "quality_passed": meta.quality_passed,
        "request_id": meta.request_id,
    }


def _kv_table(title: str, rows: Sequence[tuple[str, object]]) -> Group:
    """A title line over two columns, name and value (a table title would be folded to the table's width)."""
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(Text(key), Text(str(value)))
    return Group(Text(title, style="bold"), table)


def _table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], *, left: int = 1, wrap: Sequence[str] = ()
) -> Table:
    """A table: the first *left* columns left-aligned text, the rest right-aligned figures.

    Columns stay on one line (a figure cut in half reads as another figure); only the free-text columns named in
    *wrap* fold.
    """
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, col in enumerate(columns):
        free = col in wrap
        table.add_column(
            col,
            justify="left" if i < left or free else "right",
            no_wrap=not free,
            overflow="fold" if free else "ellipsis",
            ratio=1 if free else None,
        )
    for row in rows:
        table.add_row(*(Text(str(v)) for v in row))
    return table


# ------------------------------------------------------------------------------------------------- init


@dataclass(frozen=True, slots=True)
class _Starter:
    """What ``asyncrouter init`` writes for one provider."""

    cheap: str
    cheap_price: tuple[float, float]
    cheap_context: int
    strong: str
    strong_price: tuple[float, float]
    strong_context: int
    key_env: str | None
    base_url: str | None
    note: str


#: Where the comments of the starter config start.
_COMMENT_COLUMN: Final = 40
_STARTERS: Final[dict[str, _Starter]] = {
    "openai": _Starter(
        "gpt-4o-mini", (0.00015, 0.0006), 128_000, "gpt-4o", (0.0025, 0.01), 128_000, "OPENAI_API_KEY", None,
        "OpenAI's API (https://api.openai.com/v1).",
    ),
    "anthropic": _Starter(
        "claude-3-5-haiku-20241022", (0.0008, 0.004), 200_000, "claude-sonnet-4-20250514", (0.003, 0.015), 200_000,
        "ANTHROPIC_API_KEY", None, "Anthropic's Messages API (https://api.anthropic.com).",
    ),
    "openrouter": _Starter(
        "openai/gpt-4o-mini", (0.00015, 0.0006), 128_000, "anthropic/claude-sonnet-4", (0.003, 0.015), 200_000,
        "OPENROUTER_API_KEY", None, "OpenRouter (https://openrouter.ai/api/v1): one key, many vendors.",
    ),
    "huggingface": _Starter(
        "meta-llama/Llama-3.1-8B-Instruct", (0.0001, 0.0001), 128_000,
        "meta-llama/Llama-3.3-70B-Instruct", (0.0009, 0.0009), 128_000, "HF_TOKEN", None,
        "The Hugging Face inference router (https://router.huggingface.co/v1); prices depend on the inference "
        "provider it picks: set yours.",
    ),
    "ollama": _Starter(
        "llama3.2:3b", (0.0, 0.0), 128_000, "qwen2.5:14b", (0.0, 0.0), 32_768, None, "http://localhost:11434",
        "A local Ollama server (no key). Pull the models first: `ollama pull llama3.2:3b && ollama pull "
        "qwen2.5:14b`.",
    ),
    "google": _Starter(
        "gemini-2.5-flash-lite", (0.0001, 0.0004), 1_048_576, "gemini-2.5-pro", (0.00125, 0.01), 1_048_576,
        "GEMINI_API_KEY", None,
        "Google Gemini through its OpenAI-compatible endpoint (generativelanguage.googleapis.com/v1beta/openai); "
        "a key from Google AI Studio. gemini-2.5-pro's prices double above 200k prompt tokens.",
    ),
    "openai_compatible": _Starter(
        "Qwen/Qwen2.5-7B-Instruct", (0.0, 0.0), 32_768, "Qwen/Qwen2.5-72B-Instruct", (0.0, 0.0), 32_768,
        "OPENAI_COMPATIBLE_API_KEY", "http://localhost:8000/v1",
        "Any OpenAI-compatible server (vLLM, llama.cpp, Together, Groq, ...): set base_url and model_id. The key "
        "is optional (an unset variable leaves it empty).",
    ),
}  # fmt: skip


def starter_config(provider: str, *, base_url: str | None = None) -> str:
    """The commented starter config ``asyncrouter init`` writes for *provider*.

    Args:
        provider: one of ``openai``, ``anthropic``, ``openrouter``, ``huggingface``, ``ollama``,
            ``openai_compatible``.

        base_url: the endpoint both models use instead of the provider's default (a proxy, a local server).

    Returns:
        YAML text: a cheap and a strong model of that provider (keys as ``${ENV}`` references), the cascade,
        quality gates, breakers, retries, and the budget and tracker sections, each key explained.

    Raises:
        KeyError: an unknown provider.

    .. versionadded:: 0.1
    """
    s = _STARTERS[provider]
    lines: list[str] = []

    def add(code: str = "", comment: str = "") -> None:
        # every comment starts in the same column, so the file reads as a table
        if comment:
            code = f"{code:<{_COMMENT_COLUMN}}" if len(code) < _COMMENT_COLUMN - 1 else code + "  "
            lines.append(f"{code}# {comment}")
        else:
            lines.append(code)

    add(f"# asyncrouter configuration: written by `asyncrouter init --provider {provider}`.")
    for part in textwrap.wrap(s.note, width=100):
        add(f"# {part}")
    add("# Secrets are ${ENV_VAR} references, resolved when the file is loaded; they are never printed.")
    add("# Unknown keys are errors that name their path. Full reference: the README's Configuration section.")
    add('# Try it:  asyncrouter classify "Prove that sqrt(2) is irrational"   (no model is called, no key needed)')
    add('#          asyncrouter route "What is the capital of Australia?"')
    add()
    add("default_model: cheap", "layer 4: takes whatever no other layer claimed")
    add("# complexity_threshold: 0.45", "optional, routeforge's rule: below it the cheap tier, else a strong one")
    add("complexity_band: [0.35, 0.65]", "outside it the complexity gate decides; inside it layer 3 or 4")
    add("# meta_router_model: cheap", "optional: ask this model when the rules are unsure")
    add()
    add("models:", "the planner orders them by price and strength")
    for name, model_id, price, context, tags in (
        ("cheap", s.cheap, s.cheap_price, s.cheap_context, "cheap, general, factual, summarisation, translation"),
        ("strong", s.strong, s.strong_price, s.strong_context, "strong, code, reasoning, creative, general"),
    ):
        add(f"  - name: {name}", "the alias used everywhere (logs, --model, fallbacks)")
        add(f"    model_id: {model_id}")
        add(f"    provider: {provider}")
        if s.key_env is None:
            add("    # api_keys: []", "a local server needs no key")
        elif provider == "openai_compatible":
            add(f'    api_keys: ["${{{s.key_env}:-}}"]', "optional; an unset variable leaves it empty")
        else:
            add(f'    api_keys: ["${{{s.key_env}}}"]', "resolved at load; several keys rotate round-robin")
        if base_url is not None:
            add(f"    base_url: {base_url}")
        elif s.base_url is None:
            add("    # base_url: https://...", "override the provider's default endpoint")
        else:
            add(f"    base_url: {s.base_url}")
        add(f"    cost_per_1k_input: {price[0]}", "USD per 1,000 tokens (0 for a local model)")
        add(f"    cost_per_1k_output: {price[1]}")
        add(f"    context_window: {context}")
        add("    timeout: 30", "seconds per attempt")
        add(f"    tags: [{tags}]")
        if name == "cheap":
            add("    fallbacks: [strong]", "tried on errors, also when `cheap` is pinned")
    add()
    add("cascade:")
    add("  enabled: true", "cheapest capable model first; escalate on a failed gate or an error")
    add()
    add("quality:", "built-in gates: empty, too short, hedging, refusal, truncated, ...")
    add("  min_chars: 20", "for long answers; a short question is judged by the question")
    add("  hedging_phrases: []", "extends the built-in lists (11 languages), never replaces them")
    add("  on_all_failed: best", "best: return the best reply, marked | raise: QualityGateFailed")
    add()
    add("breakers:", "one per model and one per provider endpoint")
    add("  model: {fail_max: 5, reset_timeout: 30}")
    add("  provider: {fail_max: 20, reset_timeout: 60}")
    add()
    add("retries:")
    add("  max_attempts: 2", "per model, before escalating")
    add("  backoff_base: 0.5", "seconds; full jitter; Retry-After is honoured")
    add("  backoff_max: 8")
    add()
    add("# The daily budget: every call reserves its worst-case cost first, so spend never overshoots the cap.")
    add("budget:")
    add("  daily_limit_usd: 5.0", "null: no cap")
    add("  timezone: UTC", "when the day rolls over")
    add("  warn_at: 0.75", "log a warning from this share of the cap")
    add("  downgrade_at: 0.90", "from here the planner drops one tier")
    add("  on_exhausted: reject", "reject: BudgetExceeded | cheapest: the cheapest model only")
    add("  backend: sqlite", "memory | sqlite (today's spend survives restarts) | redis (shared)")
    add("  # redis_url: redis://127.0.0.1:6379/0", "for backend: redis")
    add()
    add("# The tracker: one SQLite row per request, for `asyncrouter stats` and `asyncrouter logs`.")
    add("tracker:")
    add("  path: asyncrouter.db", 'relative to the working directory; ":memory:"; null: off')
    add("  prompt_preview_chars: 80", "0 stores no prompt text")
    return "\n".join(lines) + "\n"


#: ``asyncrouter init --template NAME``: whole configurations shipped in ``asyncrouter/data/templates/``
TEMPLATES: Final = {
    "multi-provider": "Anthropic, OpenAI and Gemini in three tiers, fallbacks across providers, a routes table",
    "openrouter": "a dozen models through one OpenRouter key, across the tiers, with the profiles",
}


def template_config(name: str) -> str:
    """The text of the configuration template *name* (see :data:`TEMPLATES`).

    Raises:
        KeyError: an unknown template.
    """
    if name not in TEMPLATES:
        raise KeyError(name)
    return resources.files("asyncrouter").joinpath("data", "templates", f"{name}.yaml").read_text(encoding="utf-8")


def _template_keys(text: str) -> list[str]:
    return sorted(set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)))


def _cmd_init(ctx: _Ctx) -> int:
    path = Path(ctx.args.path)
    if path.exists() and not ctx.args.force:
        raise _Exit(f"{path} already exists: pass --force to overwrite it")
    if path.is_dir():
        raise _Exit(f"{path} is a directory")
    template = ctx.args.template
    if template is not None and ctx.args.provider is not None:
        raise _Exit("--provider chooses the starter's models; a --template names its own: pass one of them")
    if template is not None:
        text = template_config(template)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _Exit(f"cannot write {path}: {exc.strerror or exc}") from None
        keys = _template_keys(text)
        if ctx.json:
            ctx.emit_json({"path": str(path), "template": template, "key_env": keys})
            return EXIT_OK
        ctx.out.print(Text(f"Wrote {path} (template {template}: {TEMPLATES[template]})."))
        ctx.out.print(Text("Set your keys:  " + "  ".join(f"export {k}=..." for k in keys)))
        return EXIT_OK
    interactive = ctx.args.interactive or (
        ctx.args.interactive is None
        and ctx.args.provider is None
        and not ctx.json
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    )
    if interactive:
        _ask_init(ctx)
    ctx.args.provider = ctx.args.provider or "openai"
    text = starter_config(ctx.args.provider, base_url=ctx.args.base_url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _Exit(f"cannot write {path}: {exc.strerror or exc}") from None
    starter = _STARTERS[ctx.args.provider]
    checks = _init_check(ctx, path, starter) if (ctx.args.check or interactive) else None
    failed = checks is not None and (isinstance(checks, str) or not all(c.ok for c in checks))
    if ctx.json:
        result: dict[str, Any] = {"path": str(path), "provider": ctx.args.provider, "key_env": starter.key_env}
        if checks is not None:
            result["key_check"] = checks if isinstance(checks, str) else [c.to_dict() for c in checks]
        ctx.emit_json(result)
        return EXIT_FAILED if failed else EXIT_OK
    ctx.out.print(Text(f"Wrote {path} ({ctx.args.provider}: cheap {starter.cheap}, strong {starter.strong})."))
    if isinstance(checks, str):
        ctx.out.print(Text(f"Key check:     {checks}"))
    elif checks is not None:
        _print_key_checks(ctx, checks)
    elif starter.key_env and ctx.args.provider != "openai_compatible":
        ctx.out.print(Text(f"Set your key:  export {starter.key_env}=...  (then: asyncrouter models --check)"))
    flag = "" if str(path) == DEFAULT_CONFIG_FILE else f" --config {path}"
    ctx.out.print(Text(f'Then:          asyncrouter route{flag} "What is the capital of Australia?"'))
    return EXIT_FAILED if failed else EXIT_OK


def _ask_init(ctx: _Ctx) -> None:
    """mmrouter's guided init: the provider, and its endpoint when it is a server of the user's own."""
    choices = ", ".join(PROVIDERS)
    while ctx.args.provider is None:
        answer = _ask(f"Provider ({choices}) [openai]: ").strip().lower() or "openai"
        if answer in PROVIDERS:
            ctx.args.provider = answer
        else:
            sys.stderr.write(f"  not a provider: {answer!r}\n")
    starter = _STARTERS[ctx.args.provider]
    if ctx.args.base_url is None and ctx.args.provider in ("ollama", "openai_compatible"):
        default = starter.base_url or ""
        ctx.args.base_url = _ask(f"Base URL [{default}]: ").strip() or None


def _ask(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise _Exit("no answer (end of input)")
    return line


def _init_check(ctx: _Ctx, path: Path, starter: _Starter) -> list[KeyCheck] | str:
    """Check the new config's key (the provider lists its models); a sentence when it cannot be checked."""
    if starter.key_env and ctx.args.provider != "openai_compatible" and not os.environ.get(starter.key_env):
        return f"{starter.key_env} is not set: export it, then run asyncrouter models --check -c {path}"
    try:
        config = load_yaml(path)
    except ConfigError as exc:
        return f"cannot load {path} to check it: {exc}"
    return _run(lambda: _check_keys(config))


async def _check_keys(config: Config) -> list[KeyCheck]:
    from ._engine import Router

    async with Router(config) as router:
        return await router.acheck_keys()


def _print_key_checks(ctx: _Ctx, checks: Sequence[KeyCheck]) -> None:
    rows = []
    for c in checks:
        if not c.ok:
            verdict = c.error or "refused"
        elif c.listed is False:
            verdict = f"accepted, but its {c.models} models do not include this model_id"
        else:
            verdict = f"ok ({c.models} models)" if c.models else "ok"
        rows.append([c.model, c.provider, c.key, "yes" if c.ok else "NO", verdict])
    ctx.out.print(
        _table(
            "Keys (each provider listed its models)",
            ["model", "provider", "key", "ok", "result"],
            rows,
            left=3,
            wrap=("result",),
        )
    )


# ------------------------------------------------------------------------------------------------ route


def _route_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"model": args.model}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if getattr(args, "temperature", None) is not None:
        params["temperature"] = args.temperature
    return params


def _cmd_route(ctx: _Ctx) -> int:
    from ._engine import Router

    _, config = _load_config(ctx)
    prompt = _prompt_arg(ctx.args.prompt)
    params = _route_params(ctx.args)

    async def go() -> Response:
        async with Router(config) as router:
            if not ctx.args.stream:
                return await router.aroute(prompt, **params)
            async with router.astream(prompt, **params) as stream:
                async for delta in stream:
                    if not ctx.json:
                        sys.stdout.write(delta)
                        sys.stdout.flush()
            assert stream.response is not None  # a finished stream always sets it
            return stream.response

    response = _run(go)
    if ctx.json:
        ctx.emit_json({"content": response.content, "tool_calls": response.tool_calls, "meta": response.meta.to_dict()})
        return EXIT_OK
    if ctx.args.stream:
        sys.stdout.write("\n")
    else:
        sys.stdout.write(response.content + "\n")
    sys.stdout.flush()
    ctx.note(_meta_line(response.meta))
    return EXIT_OK


def _prompt_arg(value: str) -> str:
    """The prompt argument; ``-`` reads it from stdin."""
    if value == "-":
        text = sys.stdin.read()
        if not text.strip():
            raise _Exit("empty prompt on stdin")
        return text
    if not value.strip():
        raise _Exit("the prompt is empty")
    return value


# --------------------------------------------------------------------------------------------- classify


def _cmd_classify(ctx: _Ctx) -> int:
    from ._engine import Router

    _, config = _load_config(ctx)
    kwargs: dict[str, Any] = {"model": ctx.args.model}
    if ctx.args.max_tokens is not None:
        kwargs["max_tokens"] = ctx.args.max_tokens
    prompt = _prompt_arg(ctx.args.prompt)
    strategy = ctx.args.classifier or "rules"
    if strategy == "rules":
        d = Router(_with_strategy(config, "rules")).classify(prompt, **kwargs)  # no I/O at all
    else:
        run_config = _with_strategy(config, strategy, ctx.args.trained_model)

        async def go() -> RoutingDecision:
            async with Router(run_config) as router:
                return await router.aclassify(prompt, **kwargs)

        d = _run(go)
    if ctx.json:
        ctx.emit_json(d.to_dict())
        return EXIT_OK
    rows: list[tuple[str, object]] = [
        ("task", d.task_type),
        ("score", f"{d.complexity_score:.3f}"),
        ("tier", d.tier),
        ("complexity", d.complexity),
        ("category", d.category),
        ("confidence", f"{d.confidence:.2f}"),
        ("language", d.language),
        ("model", d.model or "-"),
        ("chain", " -> ".join(d.chain) or "-"),
        ("layer", d.routing_layer),
        ("reason", d.reason),
        ("input tokens", f"~{d.input_tokens}"),
        (
            "estimated cost",
            f"{_usd(d.estimated_cost_usd)} vs {_usd(d.max_cost_usd)} on {d.most_expensive_model} "
            f"({d.savings_pct:.0f}% less)",
        ),
        ("signals", ", ".join(d.signals) or "-"),
    ]
    if d.skipped:
        rows.append(("skipped", "; ".join(f"{a} ({r})" for a, r in d.skipped)))
    if d.profile:
        rows.append(("profile", d.profile))
    title = "Routing decision (no model called)" if strategy == "rules" else f"Routing decision ({strategy} classifier)"
    ctx.out.print(_kv_table(title, rows))
    return EXIT_OK


def _with_strategy(config: Config, strategy: str, trained_model: str | None = None) -> Config:
    """The config with ``classifier.strategy`` (and ``trained_model``) replaced, validated: an llm strategy
    needs its model, an embeddings one its embeddings model and trained index."""
    if strategy == config.classifier.strategy and trained_model is None:
        return config
    data = config.model_dump(exclude_unset=True)
    data["classifier"] = {**data.get("classifier", {}), "strategy": strategy}
    if trained_model is not None:
        data["classifier"]["trained_model"] = trained_model
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise _Exit(f"--classifier {strategy}: {first['msg'].removeprefix('Value error, ')}") from None


# ------------------------------------------------------------------------------------------------- eval


def _cmd_eval(ctx: _Ctx) -> int:
    # The classifier needs no configuration, so eval never loads one (and never fails for the lack of one).
    from ._classifier import Classifier
    from ._eval import BUNDLED_EVAL_DATA, evaluate, load_bundled_eval_data, load_eval_data

    data: str = ctx.args.data or f"asyncrouter/data/{BUNDLED_EVAL_DATA} (bundled hold-out set, never tuned on)"
    try:
        examples = load_eval_data(ctx.args.data) if ctx.args.data else load_bundled_eval_data()
    except ConfigError as exc:
        raise _Exit(f"cannot load eval data: {exc}") from None
    strategy = ctx.args.classifier or "rules"
    if strategy == "rules":
        report = evaluate(Classifier(), examples, split=ctx.args.split)
    else:
        _, config = _load_config(ctx)
        run_config = _with_strategy(config, strategy, ctx.args.trained_model)
        report = _run(lambda: _evaluate_strategy(run_config, examples, ctx.args.split))
    if report.total == 0:
        raise _Exit(f"no examples to evaluate in {data}" + (f" (split {ctx.args.split!r})" if ctx.args.split else ""))
    if ctx.json:
        ctx.emit_json({"data": data, **report.to_dict()})
        return EXIT_OK
    ctx.out.print(Text(f"Data: {data}"))
    ctx.out.print(Text(report.format_report(max_errors=ctx.args.max_errors)))
    return EXIT_OK


async def _evaluate_strategy(config: Config, examples: Sequence[EvalExample], split: str | None) -> EvalReport:
    """Score the llm or embeddings strategy on ``examples``: ``Router.aclassify`` on each, a few at a time."""
    from ._engine import Router
    from ._eval import score

    chosen = [ex for ex in examples if split is None or ex.split == split]
    found: list[Classification | None] = [None] * len(chosen)
    limiter = anyio.CapacityLimiter(DEFAULT_EVAL_CONCURRENCY)
    async with Router(config) as router:

        async def one(i: int) -> None:
            ex = chosen[i]
            messages = [{"role": "user", "content": ex.prompt}]
            if ex.system:
                messages.insert(0, {"role": "system", "content": ex.system})
            async with limiter:
                found[i] = (await router.aclassify(messages=messages)).classification

        async with anyio.create_task_group() as tg:
            for i in range(len(chosen)):
                tg.start_soon(one, i)
    return score((ex, c) for ex, c in zip(chosen, found, strict=True) if c is not None)


def _cmd_compare(ctx: _Ctx) -> int:
    """mmrouter's ``compare``: every classifier strategy the config can run, on one labelled set."""
    import time

    from ._classifier import Classifier
    from ._eval import BOTH, BUNDLED_EVAL_DATA, evaluate, load_bundled_eval_data, load_eval_data

    _, config = _load_config(ctx)
    cl = config.classifier
    trained = ctx.args.trained_model or cl.trained_model
    available = {"rules": True, "llm": cl.model is not None, "embeddings": bool(cl.embedding_model and trained)}
    wanted = ctx.args.classifiers.split(",") if ctx.args.classifiers else [k for k, ok in available.items() if ok]
    for name in wanted:
        if name not in available:
            raise _Exit(f"unknown classifier {name!r}; known: {', '.join(available)}")
    data: str = ctx.args.data or f"asyncrouter/data/{BUNDLED_EVAL_DATA}"
    try:
        examples = load_eval_data(ctx.args.data) if ctx.args.data else load_bundled_eval_data()
    except ConfigError as exc:
        raise _Exit(f"cannot load eval data: {exc}") from None
    rows: list[dict[str, Any]] = []
    for name in wanted:
        started = time.perf_counter()
        if name == "rules":
            report = evaluate(Classifier(), examples, split=ctx.args.split)
        else:
            run_config = _with_strategy(config, name, ctx.args.trained_model if name == "embeddings" else None)
            report = _run(functools.partial(_evaluate_strategy, run_config, examples, ctx.args.split))
        acc = report.accuracy
        rows.append(
            {
                "classifier": name,
                "examples": report.total,
                "overall": acc.get(BOTH),
                "complexity": acc.get("complexity"),
                "category": acc.get("category"),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    if ctx.json:
        ctx.emit_json({"data": data, "results": rows})
        return EXIT_OK
    table = Table(title=f"Classifiers on {data}")
    for col in ("classifier", "examples", "overall", "complexity", "category", "time"):
        table.add_column(col, justify="left" if col == "classifier" else "right")
    for row in rows:
        table.add_row(
            row["classifier"],
            str(row["examples"]),
            *(f"{row[k]:.1%}" if row[k] is not None else "-" for k in ("overall", "complexity", "category")),
            f"{row['seconds']:.2f}s",
        )
    ctx.out.print(table)
    missing = [k for k, ok in available.items() if not ok and k not in wanted]
    if missing:
        ctx.note(
            "not compared (not configured): "
            + ", ".join(
                f"{k} (set classifier.model)"
                if k == "llm"
                else f"{k} (set classifier.embedding_model and trained_model)"
                for k in missing
            )
        )
    return EXIT_OK


def _cmd_train(ctx: _Ctx) -> int:
    """mmrouter's ``train``: fit the embeddings strategy's index on labelled data and save it."""
    from ._embeddings import DEFAULT_EVAL_SPLIT
    from ._engine import Router
    from ._eval import BUNDLED_TRAINING_DATA, load_bundled_training_data, load_eval_data

    _, config = _load_config(ctx)
    data: str = ctx.args.data or f"asyncrouter/data/{BUNDLED_TRAINING_DATA} (bundled development set)"
    try:
        examples = load_eval_data(ctx.args.data) if ctx.args.data else load_bundled_training_data()
    except ConfigError as exc:
        raise _Exit(f"cannot load training data: {exc}") from None
    split = DEFAULT_EVAL_SPLIT if ctx.args.eval_split is None else ctx.args.eval_split
    if not 0.0 <= split < 1.0:
        raise _Exit("--eval-split must be at least 0 and below 1")
    output = Path(ctx.args.output)
    if output.exists() and any(output.iterdir()) and not ctx.args.force:
        raise _Exit(f"{output} exists and is not empty (--force replaces the index in it)")

    async def go() -> tuple[EmbeddingIndex, TrainReport]:
        async with Router(config) as router:
            return await router.atrain_classifier(
                examples, model=ctx.args.embedding_model, eval_split=split, seed=ctx.args.seed, k=ctx.args.k
            )

    try:
        index, report = _run(go)
    except ValueError as exc:
        raise _Exit(str(exc)) from None
    index.save(output)
    if ctx.json:
        ctx.emit_json({"data": data, "output": str(output), **report.to_dict()})
        return EXIT_OK
    rows: list[tuple[str, object]] = [
        ("data", data),
        ("embeddings model", report.model_id),
        ("examples", f"{report.train_size} train, {report.eval_size} eval, {report.skipped} skipped (unlabelled)"),
        ("dimensions", report.dim),
        ("neighbours (k)", report.k),
        ("tokens", report.input_tokens),
    ]
    for name in ("complexity", "category", "complexity+category"):
        if name in report.accuracy:
            rows.append((f"eval accuracy: {name}", f"{report.accuracy[name]:.1%}"))
    rows.append(("saved to", str(output)))
    ctx.out.print(_kv_table("Embeddings classifier trained", rows))
    embedder = ctx.args.embedding_model or config.classifier.embedding_model
    ctx.note(
        f"use it: classifier: {{strategy: embeddings, embedding_model: {embedder}, trained_model: {output}}}, "
        f"or --classifier embeddings --trained-model {output}"
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------- quality, experiment


def _prompts_for(ctx: _Ctx) -> tuple[str, list[str]]:
    """The prompts of ``--data`` (JSONL with prompt or messages, text, or a labelled YAML set), else the bundled
    hold-out set's: ``(where they came from, prompts)``."""
    from ._engine import _last_user_text
    from ._eval import BUNDLED_EVAL_DATA, load_bundled_eval_data, load_eval_data

    data = ctx.args.data
    try:
        if data is None:
            return f"asyncrouter/data/{BUNDLED_EVAL_DATA}", [e.prompt for e in load_bundled_eval_data()]
        path = Path(data)
        if path.suffix.lower() in (".yaml", ".yml"):
            return data, [e.prompt for e in load_eval_data(path)]
        if not path.is_file():
            raise _Exit(f"no such file: {data}")
        prompts = [
            it.kwargs["prompt"] if "prompt" in it.kwargs else _last_user_text(it.kwargs["messages"])
            for it in _read_batch(path, _is_jsonl(path))
        ]
        return data, prompts
    except ConfigError as exc:
        raise _Exit(f"cannot load {data}: {exc}") from None


def _cmd_quality(ctx: _Ctx) -> int:
    from ._engine import Router
    from ._judge import judge_quality

    _, config = _load_config(ctx)
    where, prompts = _prompts_for(ctx)
    if not prompts:
        raise _Exit(f"no prompts in {where}")
    aliases = [m.name for m in config.models]
    strongest = max(config.models, key=lambda m: (m.cost_per_1k_output or 0.0, m.cost_per_1k_input or 0.0)).name
    baseline = ctx.args.baseline or strongest
    judge = ctx.args.judge or baseline
    for role, alias in (("--baseline", baseline), ("--judge", judge)):
        if alias not in aliases:
            raise _Exit(f"{role}: unknown model {alias!r}; configured models: {', '.join(aliases)}", EXIT_USAGE)

    async def go() -> Any:
        async with Router(config) as router:
            return await judge_quality(
                router,
                prompts,
                baseline=baseline,
                judge=judge,
                model=ctx.args.model,
                sample=ctx.args.sample,
                concurrency=ctx.args.concurrency,
                seed=ctx.args.seed,
            )

    report = _run(go)
    if ctx.json:
        ctx.emit_json({"data": where, **report.to_dict()})
        return EXIT_OK
    ctx.out.print(Text(f"Data: {where}; judged {report.judged} prompt(s), {report.failed} could not be judged"))
    ctx.out.print(Text(f"Routed ({ctx.args.model}) against {baseline}, judged by {judge}"))
    if report.judged:
        table = Table(box=None)
        for col in ("", "routed", "baseline", "delta"):
            table.add_column(col, justify="right" if col else "left")
        for key in ("relevance", "accuracy", "completeness", "overall"):
            table.add_row(
                key, f"{report.routed_mean[key]:.2f}", f"{report.baseline_mean[key]:.2f}", f"{report.delta[key]:+.2f}"
            )
        ctx.out.print(table)
        assert report.holds_up is not None
        ctx.out.print(Text(f"Routing held up (within {report.tolerance} points) on {report.holds_up:.0%} of prompts"))
    savings = f"; saved {report.savings:.0%}" if report.savings is not None else ""
    ctx.out.print(
        Text(
            f"Cost: routed {_usd(report.routed_cost_usd)}, baseline {_usd(report.baseline_cost_usd)}{savings}; "
            f"judging {_usd(report.judge_cost_usd)}"
        )
    )
    errors = [c for c in report.cases if c.error]
    for c in errors[:5]:
        ctx.note(f"not judged: {c.prompt[:60]!r}: {c.error}")
    return EXIT_OK


def _cmd_feedback(ctx: _Ctx) -> int:
    from ._engine import Router
    from ._store import UnknownRequest

    _, config = _load_config(ctx)
    if config.tracker.path is None:
        raise _Exit("feedback needs the tracker: set tracker.path in the config")

    async def go() -> Any:
        async with Router(config) as router:
            return await router.afeedback(ctx.args.request_id, ctx.args.rating, comment=ctx.args.comment)

    try:
        vote = _run(go)
    except UnknownRequest as exc:
        raise _Exit(str(exc), EXIT_FAILED) from None
    if ctx.json:
        ctx.emit_json(vote.to_dict())
        return EXIT_OK
    ctx.out.print(
        Text(f"{'up' if vote.rating > 0 else 'down'} vote on {vote.request_id} ({vote.model}, {vote.task_type})")
    )
    return EXIT_OK


def _cmd_experiment(ctx: _Ctx) -> int:
    from ._config import load_yaml as load
    from ._engine import Router
    from ._experiment import Experiment

    _, control = _load_config(ctx)
    try:
        treatment = load(Path(ctx.args.treatment))
    except ConfigError as exc:
        raise _Exit(f"invalid treatment config {ctx.args.treatment}: {exc}") from None
    where, prompts = _prompts_for(ctx)
    if ctx.args.sample is not None:
        prompts = prompts[: ctx.args.sample]
    if not prompts:
        raise _Exit(f"no prompts in {where}")

    async def go() -> Any:
        async with Experiment(Router(control), Router(treatment), split=ctx.args.split, name=ctx.args.name) as exp:
            limiter = anyio.CapacityLimiter(ctx.args.concurrency)

            async def one(prompt: str) -> None:
                async with limiter:
                    with contextlib.suppress(RouterError):  # counted as the variant's error
                        await exp.aroute(prompt)

            async with anyio.create_task_group() as tg:
                for prompt in prompts:
                    tg.start_soon(one, prompt)
            return exp.status()

    status = _run(go)
    if ctx.json:
        ctx.emit_json({"data": where, **status.to_dict()})
        return EXIT_OK
    ctx.out.print(Text(f"Experiment {status.name!r}: {len(prompts)} prompt(s) from {where}, split {status.split}"))
    table = Table(box=None)
    for col in ("variant", "requests", "error rate", "escalations", "avg cost", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, v in (("control", status.control), ("treatment", status.treatment)):
        table.add_row(
            name,
            str(v.requests),
            f"{v.error_rate:.1%}",
            f"{v.escalation_rate:.1%}",
            _usd(v.avg_cost_usd),
            f"{v.latency_ms(50):.0f}",
            f"{v.latency_ms(95):.0f}",
        )
    ctx.out.print(table)
    ratios = status.ratios()
    shown = ", ".join(f"{k} x{v:.2f}" for k, v in ratios.items() if v is not None)
    if shown:
        ctx.out.print(Text(f"treatment / control: {shown}"))
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ batch


@dataclass(slots=True)
class _BatchInput:
    """One input line: its position among the items, its id (if any) and the ``aroute`` arguments."""

    index: int
    id: Any
    kwargs: dict[str, Any]

    @property
    def key(self) -> str:
        return _batch_key(self.index, self.id)


def _batch_key(index: int, item_id: Any) -> str:
    return f"id:{json.dumps(item_id)}" if item_id is not None else f"index:{index}"


def _is_jsonl(path: Path) -> bool:
    """JSON Lines when the extension says so, else when the first non-blank line is a JSON object."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    if path.suffix.lower() == ".txt":
        return False
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    return isinstance(json.loads(line), dict)
                except ValueError:
                    return False
    return False


def _read_batch(path: Path, jsonl: bool) -> Iterator[_BatchInput]:
    """The items of a batch file, lazily. Blank lines are not items; indexes count items from 0.

    Raises:
        _Exit: a line that is not a valid item (the message names the line).
    """
    index = 0
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if not jsonl:
                yield _BatchInput(index, None, {"prompt": line.rstrip("\r\n")})
                index += 1
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _Exit(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise _Exit(f"{where}: each line must be a JSON object")
            item_id = obj.pop("id", None)
            if item_id is not None and not isinstance(item_id, str | int):
                raise _Exit(f"{where}: 'id' must be a string or an integer")
            prompt, messages = obj.get("prompt"), obj.get("messages")
            if (prompt is None) == (messages is None):
                raise _Exit(f"{where}: needs exactly one of 'prompt' or 'messages'")
            if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
                raise _Exit(f"{where}: 'prompt' must be a non-empty string")
            if messages is not None and (not isinstance(messages, list) or not messages):
                raise _Exit(f"{where}: 'messages' must be a non-empty list")
            yield _BatchInput(index, item_id, obj)
            index += 1


def _resume_state(out: Path, *, retry_errors: bool) -> set[str]:
    """Keys already answered in *out*; drops an incomplete last line (and, with *retry_errors*, failed lines).

    A crash can leave a partial last line; appending after it would corrupt the file, so the file is rewritten
    (to a temporary file, then renamed over it) with its complete lines only whenever something has to go. The
    file is streamed, never loaded whole: only the keys are kept.
    """
    if not out.exists():
        return set()

    def kept(done: set[str]) -> Iterator[str]:
        with out.open(encoding="utf-8", newline="") as f:
            for line in f:
                if not line.endswith("\n"):
                    continue  # an unfinished write
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("index"), int):
                    continue
                if retry_errors and "error" in obj:
                    continue
                key = _batch_key(obj["index"], obj.get("id"))
                if key in done:
                    continue
                done.add(key)
                yield line

    done: set[str] = set()
    size = sum(len(line.encode("utf-8")) for line in kept(done))
    if size != out.stat().st_size:  # something has to go
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.writelines(kept(set()))
        tmp.replace(out)
    return done


def _cmd_batch(ctx: _Ctx) -> int:
    from ._engine import Router

    args = ctx.args
    src = Path(args.file)
    if not src.is_file():
        raise _Exit(f"input file not found: {src}")
    out_path = Path(args.out) if args.out else None
    if out_path is not None and out_path.resolve() == src.resolve():
        raise _Exit("--out must not be the input file")
    jsonl = _is_jsonl(src)
    # First pass: validate every line and count the work before any money is spent (ids only are kept).
    done = _resume_state(out_path, retry_errors=args.retry_errors) if out_path is not None else set()
    seen: set[str] = set()
    total = pending = 0
    for item in _read_batch(src, jsonl):
        if item.id is not None:
            if item.key in seen:
                raise _Exit(f"{src}: duplicate id {item.id!r}: ids must be unique for the batch to resume")
            seen.add(item.key)
        total += 1
        pending += item.key not in done
    skipped = total - pending
    _, config = _load_config(ctx)
    secrets = _secrets(config)
    defaults: dict[str, Any] = {"model": args.model}
    if args.max_tokens is not None:
        defaults["max_tokens"] = args.max_tokens
    counts = {"ok": 0, "failed": 0}
    cost = 0.0

    def todo(in_flight: dict[int, _BatchInput]) -> Iterator[dict[str, Any]]:
        position = 0
        for item in _read_batch(src, jsonl):
            if item.key in done:
                continue
            in_flight[position] = item  # astream_many reports the position; only in-flight items are kept
            position += 1
            yield item.kwargs

    async def go(sink: IO[str]) -> None:
        nonlocal cost
        in_flight: dict[int, _BatchInput] = {}
        with ctx.progress() as progress:
            task = progress.add_task("batch", total=pending)
            async with Router(config) as router:
                async with router.astream_many(todo(in_flight), concurrency=args.concurrency, **defaults) as results:
                    async for position, result in results:
                        item = in_flight.pop(position)
                        line: dict[str, Any] = {"index": item.index}
                        if item.id is not None:
                            line["id"] = item.id
                        if isinstance(result, BaseException):
                            counts["failed"] += 1
                            line["error"] = {"type": type(result).__name__, "message": redact(str(result), secrets)}
                        else:
                            counts["ok"] += 1
                            cost += result.meta.estimated_cost_usd
                            line["content"] = result.content
                            if result.tool_calls:
                                line["tool_calls"] = result.tool_calls
                            line["meta"] = _meta_dict(result.meta)
                        sink.write(json.dumps(line, ensure_ascii=False) + "\n")
                        sink.flush()  # written as it completes: a crash loses nothing already answered
                        progress.advance(task)

    if pending:
        if out_path is None:
            _run(lambda: go(sys.stdout))
        else:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            with out_path.open("a", encoding="utf-8") as sink:
                _run(lambda: go(sink))
    where = f" -> {out_path}" if out_path is not None else ""
    summary = (
        f"batch: {counts['ok'] + counts['failed']} routed ({counts['failed']} failed), "
        f"{skipped} already done, cost {_usd(cost)}{where}"
    )
    ctx.note(summary, style="bold red" if counts["failed"] else "dim")
    return EXIT_FAILED if counts["failed"] else EXIT_OK


# ---------------------------------------------------------------------------------- stats, logs, budget


_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(text: str) -> datetime | timedelta:
    """``24h``, ``7d``, ``30m``, ``90s``, ``2w`` (a window ending now), or an ISO date/time (naive means UTC).

    Raises:
        argparse.ArgumentTypeError: neither form.

    .. versionadded:: 0.1
    """
    m = _DURATION_RE.match(text)
    if m:
        return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (24h, 7d, 30m) nor an ISO date/time (2026-01-31, 2026-01-31T08:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _group_rows(groups: Mapping[str, Any], total: int, *, by_key: bool = False) -> list[list[object]]:
    rows: list[list[object]] = []
    for key, g in sorted(groups.items()) if by_key else sorted(groups.items(), key=lambda kv: -kv[1].requests):
        rows.append(
            [
                key,
                g.requests,
                _pct(100 * g.requests / total if total else None),
                g.errors,
                g.escalations,
                f"{g.input_tokens}+{g.output_tokens}",
                _usd(g.cost_usd),
                _ms(g.avg_latency_ms),
            ]
        )
    return rows


def _cmd_stats(ctx: _Ctx) -> int:
    from ._engine import Router

    path, config = _load_config(ctx)
    if config.tracker.path is None:
        raise _Exit(f"tracking is disabled in {path} (tracker.path is null): there is nothing to report")
    if ctx.args.baseline is not None and ctx.args.baseline not in {m.name for m in config.models}:
        raise _Exit(f"unknown baseline model {ctx.args.baseline!r}; known: {sorted(m.name for m in config.models)}")

    async def go() -> Any:
        async with Router(config) as router:
            return await router.stats(since=ctx.args.since, until=ctx.args.until, baseline=ctx.args.baseline)

    stats = _run(go)
    if ctx.json:
        data = stats.to_dict()
        data["tracker_path"] = config.tracker.path
        ctx.emit_json(data)
        return EXIT_OK
    window = "all time" if stats.since is None else f"since {_when(stats.since)} UTC"
    if stats.requests == 0:
        ctx.out.print(Text(f"No requests tracked ({window}) in {config.tracker.path}."))
        return EXIT_OK
    ctx.out.print(
        _kv_table(
            f"Requests ({window}, tracker {config.tracker.path})",
            [
                ("requests", f"{stats.requests} ({stats.ok} ok, {stats.errors} errors, {stats.cancelled} cancelled)"),
                ("escalations", f"{stats.escalations} ({_pct(100 * stats.escalation_rate)})"),
                ("tokens", f"{stats.input_tokens} in, {stats.output_tokens} out"),
                ("cost", _usd(stats.cost_usd)),
                (
                    "latency",
                    f"avg {_ms(stats.avg_latency_ms)}, p50 {_ms(stats.p50_latency_ms)}, "
                    f"p95 {_ms(stats.p95_latency_ms)}",
                ),
            ],
        )
    )
    cols = ["", "requests", "share", "errors", "escalations", "tokens", "cost", "avg latency"]
    ctx.out.print(_table("By model", ["model", *cols[1:]], _group_rows(stats.by_model, stats.requests)))
    ctx.out.print(_table("By routing layer", ["layer", *cols[1:]], _group_rows(stats.by_routing_layer, stats.requests)))
    ctx.out.print(_table("By tier", ["tier", *cols[1:]], _group_rows(stats.by_tier, stats.requests)))
    if ctx.args.detailed:
        for title, name, groups in (
            ("By day (UTC)", "day", stats.by_day),
            ("By complexity", "complexity", stats.by_complexity),
            ("By category", "category", stats.by_category),
        ):
            rows = _group_rows(groups, stats.requests, by_key=name == "day")
            ctx.out.print(_table(title, [name, *cols[1:]], rows))
    s = stats.savings
    if s is not None:
        saved = f": {s.savings_pct:.0f}% saved" if s.savings_pct is not None else ""
        ctx.out.print(
            Text(
                f"Cost {_usd(s.actual_cost_usd)} vs {_usd(s.baseline_cost_usd)} all-{s.baseline_model}{saved}",
                style="bold",
            )
        )
    return EXIT_OK


def _cmd_logs(ctx: _Ctx) -> int:
    from ._engine import Router

    path, config = _load_config(ctx)
    if config.tracker.path is None:
        raise _Exit(f"tracking is disabled in {path} (tracker.path is null): there are no logs")

    async def go() -> Any:
        async with Router(config) as router:
            return await router.logs(
                last_n=ctx.args.n, model=ctx.args.model, since=ctx.args.since, status=ctx.args.status
            )

    records = _run(go)
    if ctx.json:
        ctx.emit_json([r.to_dict() for r in records])
        return EXIT_OK
    if not records:
        ctx.out.print(Text(f"No requests tracked in {config.tracker.path}."))
        return EXIT_OK
    rows = [
        [
            _when(r.timestamp),
            r.status if r.error_type is None else f"{r.status} {r.error_type}",
            r.model or "-",
            r.routing_layer,
            r.tier,
            f"{r.input_tokens}+{r.output_tokens}",
            _usd(r.cost_usd),
            _ms(r.latency_ms),
            sum(1 for a in r.attempts if a.outcome in ("gate_failed", "error")),
            " ".join(r.prompt_preview.split()),
        ]
        for r in records
    ]
    cols = ["time (UTC)", "status", "model", "layer", "tier", "tokens", "cost", "latency", "esc.", "prompt"]
    table = _table(f"Last {len(records)} requests (newest first)", cols, rows, left=5, wrap=("prompt",))
    ctx.out.print(table)
    return EXIT_OK


def _cmd_budget(ctx: _Ctx) -> int:
    from ._engine import Router

    _, config = _load_config(ctx)

    async def go() -> Any:
        # Opening the router loads the backend: sqlite rebuilds today's spend from the tracker, redis connects.
        async with Router(config) as router:
            if config.budget.backend == "redis":
                return await router.budget.refresh()
            return router.budget.status()

    status = _run(go)
    backend = config.budget.backend
    if ctx.json:
        data = dataclasses.asdict(status)
        data["backend"] = backend
        ctx.emit_json(data)
        return EXIT_OK
    rows: list[tuple[str, object]] = [
        ("day", f"{status.day} ({status.timezone})"),
        ("limit", _usd(status.limit) if status.limit is not None else "no cap (budget.daily_limit_usd is null)"),
        ("spent", _usd(status.spent) + (f" ({100 * status.fraction:.1f}%)" if status.limit is not None else "")),
        ("reserved", _usd(status.reserved)),
        ("remaining", _usd(status.remaining)),
        ("state", status.state),
        ("backend", backend),
    ]
    ctx.out.print(_kv_table("Daily budget", rows))
    if backend == "memory":
        ctx.note("backend memory: this process has spent nothing; use backend sqlite or redis to see the day's spend")
    return EXIT_OK


def _cmd_breakers(ctx: _Ctx) -> int:
    from ._engine import Router

    _, config = _load_config(ctx)

    async def go() -> Any:
        async with Router(config) as router:
            return router.breakers.status()

    status = _run(go)
    if ctx.json:
        ctx.emit_json({name: dataclasses.asdict(s) for name, s in status.items()})
        return EXIT_OK
    if not status:
        ctx.out.print(Text("Circuit breakers are disabled (breakers.enabled: false)."))
        return EXIT_OK
    rows = [
        [
            s.name,
            s.kind,
            s.state,
            f"{s.fail_count}/{s.fail_max}",
            f"{s.reset_timeout:g} s",
            "-" if s.retry_in is None else f"{s.retry_in:.1f} s",
            ", ".join(s.models),
        ]
        for s in status.values()
    ]
    table = _table(
        "Circuit breakers",
        ["name", "kind", "state", "failures", "reset", "retry in", "models"],
        rows,
        left=3,
        wrap=("name", "models"),
    )
    ctx.out.print(table)
    if not config.breakers.shared:
        ctx.note("breaker state lives in each process (breakers.shared: false): a new process starts closed")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------- alerts


def _alert_rules(config: Config) -> list[dict[str, Any]]:
    """The four alert rules as configured: whether each can fire, when it does, and its settings."""
    from ._alerts import DEFAULT_COST_SPIKE_BASELINE, DEFAULT_COST_SPIKE_MIN_HISTORY, DEFAULT_COST_SPIKE_WINDOW

    a = config.alerts
    limit = config.budget.daily_limit_usd
    thresholds = sorted(set(a.budget_thresholds))
    budget_off = (
        "no daily limit (budget.daily_limit_usd is null)"
        if limit is None
        else "no thresholds (alerts.budget_thresholds is empty)"
        if not thresholds
        else None
    )
    levels = ", ".join(f"{100 * t:g}%" for t in thresholds) or "-"
    cap = f"the {_usd(limit)} daily limit" if limit is not None else "the daily limit"
    rules: list[dict[str, Any]] = [
        {
            "rule": "budget",
            "fires_when": f"today's spend reaches {levels} of {cap} (once per threshold per budget day)",
            "settings": {"budget_thresholds": thresholds, "daily_limit_usd": limit},
            "inactive": budget_off,
        },
        {
            "rule": "error_rate",
            "fires_when": f"at least {100 * a.error_rate_threshold:g}% of the requests of the last "
            f"{a.error_rate_window:g} s failed (at least {a.error_rate_min_requests} requests)",
            "settings": {
                "error_rate_threshold": a.error_rate_threshold,
                "error_rate_window": a.error_rate_window,
                "error_rate_min_requests": a.error_rate_min_requests,
            },
            "inactive": None,
        },
        {
            "rule": "cost_spike",
            "fires_when": f"the spend of the last {DEFAULT_COST_SPIKE_WINDOW:g} s exceeds {a.cost_spike_factor:g}x "
            f"the average per {DEFAULT_COST_SPIKE_WINDOW:g} s over the {DEFAULT_COST_SPIKE_BASELINE:g} s before "
            f"(after {DEFAULT_COST_SPIKE_MIN_HISTORY:g} s of history)",
            "settings": {
                "cost_spike_factor": a.cost_spike_factor,
                "window": DEFAULT_COST_SPIKE_WINDOW,
                "baseline": DEFAULT_COST_SPIKE_BASELINE,
                "min_history": DEFAULT_COST_SPIKE_MIN_HISTORY,
            },
            "inactive": None,
        },
        {
            "rule": "breaker_open",
            "fires_when": "a model's or a provider endpoint's circuit breaker opens",
            "settings": {
                "model": config.breakers.model.model_dump(),
                "provider": config.breakers.provider.model_dump(),
            },
            "inactive": None if config.breakers.enabled else "breakers are disabled (breakers.enabled: false)",
        },
    ]
    for rule in rules:
        if not a.enabled:
            rule["inactive"] = "alerts are disabled (alerts.enabled: false)"
        rule["active"] = rule["inactive"] is None
    return rules


def _cmd_alerts_status(ctx: _Ctx) -> int:
    from ._alerts import _safe_webhook

    path, config = _load_config(ctx)
    a = config.alerts
    webhook = _safe_webhook(a.webhook_url) if a.webhook_url else None
    rules = _alert_rules(config)
    # Cooldowns, counters and history live in the memory of each running router: a new process has none.
    state_note = (
        "cooldown state and alert history live in each running router (router.alerts.history()); "
        "they are not shared or stored, so this command has none to show"
    )
    if ctx.json:
        ctx.emit_json(
            {
                "config": str(path),
                "enabled": a.enabled,
                "channels": {"log": a.log, "webhook": webhook},
                "cooldown_s": a.cooldown,
                "rules": rules,
                "cooldown_state": None,
                "note": state_note,
            }
        )
        return EXIT_OK
    channels = []
    if a.log:
        channels.append("log (the asyncrouter.alerts logger, WARNING)")
    channels.append(f"webhook {webhook}" if webhook else "no webhook (alerts.webhook_url is not set)")
    ctx.out.print(
        _kv_table(
            f"Alerts ({path})",
            [
                ("enabled", "yes" if a.enabled else "no (alerts.enabled: false): nothing is sent"),
                ("channels", "; ".join(channels)),
                ("cooldown", f"{a.cooldown:g} s per alert key (one incident sends one alert, then reminds)"),
            ],
        )
    )
    rows = [
        [r["rule"], "yes" if r["active"] else "no", r["fires_when"] + (f" [{r['inactive']}]" if r["inactive"] else "")]
        for r in rules
    ]
    ctx.out.print(_table("Rules", ["rule", "active", "fires when"], rows, left=2, wrap=("fires when",)))
    ctx.note(state_note)
    return EXIT_OK


def _cmd_alerts_test(ctx: _Ctx) -> int:
    from ._engine import Router

    path, config = _load_config(ctx)
    url: str | None = ctx.args.webhook_url or config.alerts.webhook_url
    if not url:
        raise _Exit(f"no webhook to test: pass --webhook-url URL or set alerts.webhook_url in {path}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Exit("the webhook URL must be an http:// or https:// URL with a host")
    secrets = _secrets(config, webhook_url=url)

    async def go() -> WebhookDelivery:
        # The router's own alerts and HTTP client: the test alert takes the road a real one takes.
        async with Router(config) as router:
            return await router.alerts.send_test(webhook_url=url)

    delivery = _run(go)
    error = redact(delivery.error, secrets) if delivery.error is not None else None
    if ctx.json:
        ctx.emit_json(
            {
                "delivered": delivery.ok,
                "webhook": delivery.webhook,
                "status": delivery.status,
                "error": error,
                "alerts_enabled": config.alerts.enabled,
                "alert": delivery.alert.to_dict(),
            }
        )
    elif delivery.ok:
        ctx.out.print(Text(f"Test alert delivered to {delivery.webhook} (HTTP {delivery.status})."))
    if not config.alerts.enabled:
        ctx.note(f"alerts.enabled is false in {path}: the router sends no alerts until it is true")
    if not delivery.ok:
        ctx.err.print(
            Text(f"error: test alert not delivered to {delivery.webhook}: {error}", style="bold red"), soft_wrap=True
        )
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------------------------- models


#: The tiers, weakest first (a model's strength is the index of the highest tier it is trusted with).
_TIERS: Final = ("simple", "medium", "complex", "reasoning")
#: Example prompts of each tier for ``asyncrouter models --profile``; the first the classifier puts in the tier is
#: used (a list, so a retuned classifier still finds one).
_TIER_EXAMPLES: Final[dict[str, tuple[str, ...]]] = {
    "simple": ("What is the capital of France?", "Who wrote Hamlet?", "Translate 'good night' into Spanish."),
    "medium": (
        "Explain why the sky is blue.",
        "Compare TCP and UDP for a multiplayer game and recommend one.",
        "Explain how a hash map works and when to use one instead of a list.",
    ),
    "complex": (
        "Design a high-availability microservices architecture for an online store: services, data stores, "
        "failover, scaling and monitoring, with the trade-offs of each choice.",
        "Write a detailed migration plan from a monolith to microservices for a bank, covering data consistency, "
        "rollout phases, testing, monitoring, team structure, risks and rollback for each step.",
    ),
    "reasoning": (
        "Prove that the square root of 2 is irrational, step by step.",
        "Prove that there are infinitely many prime numbers.",
    ),
}


def _tier_chains(router: Router, profile: str) -> list[dict[str, Any]]:
    """For each tier, an example prompt of that tier and the decision ``router.classify`` makes for it."""
    rows: list[dict[str, Any]] = []
    for tier in _TIERS:
        example = next(
            (p for p in _TIER_EXAMPLES[tier] if router.classify(p).classification.tier == tier),
            None,
        )
        if example is None:  # no example of this tier any more: say so rather than show another tier's chain
            rows.append({"tier": tier, "example": None, "routed_tier": None, "task_type": None, "chain": [],
                         "routing_layer": None, "reason": "no example prompt of this tier"})  # fmt: skip
            continue
        d = router.classify(example, model=profile)
        rows.append(
            {
                "tier": tier,
                "example": example,
                "routed_tier": d.tier,
                "task_type": d.task_type,
                "chain": list(d.chain),
                "routing_layer": d.routing_layer,
                "reason": d.reason,
            }
        )
    return rows


def _cmd_models(ctx: _Ctx) -> int:
    from ._engine import Router
    from ._planner import BUILTIN_PROFILES

    _, config = _load_config(ctx)
    profile: str | None = ctx.args.profile
    known = sorted(BUILTIN_PROFILES) + sorted(set(config.profiles) - BUILTIN_PROFILES)
    if profile is not None and profile not in known:
        raise _Exit(f"unknown profile {profile!r}; profiles: {', '.join(known)}")
    router = Router(config)  # classify() needs no open session: no I/O at all
    # The planner's view of each model's strength (tags, else its price tercile): no public accessor yet.
    strength: Mapping[str, int] = router.model_strengths
    default = config.default_alias
    models: list[dict[str, Any]] = []
    for m in config.models:
        price = router.prices[m.name]
        roles = [
            r for r, on in (("default", m.name == default), ("meta-router", m.name == config.meta_router_model)) if on
        ]
        models.append(
            {
                "name": m.name,
                "provider": m.provider,
                "model_id": m.model_id,
                "cost_per_1k_input": price.input_per_1k,
                "cost_per_1k_output": price.output_per_1k,
                "price_source": price.source,
                "context_window": m.context_window,
                "tags": list(m.tags),
                "serves_up_to": _TIERS[strength[m.name]],
                "fallbacks": list(m.fallbacks),
                "roles": roles,
            }
        )
    profiles = {
        name: (config.profiles[name].model_dump(mode="json") if name in config.profiles else {"built_in": True})
        for name in known
    }
    tiers = _tier_chains(router, profile) if profile is not None else None
    checks = _run(lambda: _check_keys(config)) if ctx.args.check else None
    status = EXIT_FAILED if checks is not None and not all(c.ok for c in checks) else EXIT_OK
    if ctx.json:
        result = {"default_model": default, "models": models, "profiles": profiles, "profile": profile, "tiers": tiers}
        if checks is not None:
            result["key_checks"] = [c.to_dict() for c in checks]
        ctx.emit_json(result)
        return status
    rows = []
    for row in models:
        notes = [*row["roles"]]
        if row["fallbacks"]:
            notes.append("fallbacks " + ", ".join(row["fallbacks"]))
        if row["price_source"] != "config":
            notes.append(f"price from {row['price_source']}")
        rows.append(
            [
                row["name"],
                row["provider"],
                row["model_id"],
                row["serves_up_to"],
                _usd(row["cost_per_1k_input"]),
                _usd(row["cost_per_1k_output"]),
                f"{row['context_window']:,}" if row["context_window"] else "-",
                ", ".join(row["tags"]) or "-",
                "; ".join(notes) or "-",
            ]
        )
    cols = ["model", "provider", "model id", "serves up to", "in $/1k", "out $/1k", "context", "tags", "notes"]
    ctx.out.print(_table("Models", cols, rows, left=4, wrap=("tags", "notes")))
    custom = [n for n in known if n in config.profiles]
    line = "Profiles: " + ", ".join(n for n in known if n not in config.profiles) + " (built in)"
    if custom:
        line += "; " + ", ".join(custom) + " (configured)"
    ctx.out.print(Text(line))
    if checks is not None:
        _print_key_checks(ctx, checks)
    if tiers is None:
        ctx.note("the chain each tier gets under a profile: asyncrouter models --profile auto")
        return status
    tier_rows = [
        [
            t["tier"],
            t["routed_tier"] or "-",
            t["task_type"] or "-",
            " -> ".join(t["chain"]) or "-",
            t["routing_layer"] or "-",
            t["example"] or t["reason"],
        ]
        for t in tiers
    ]
    ctx.out.print(
        _table(
            f"Profile {profile}: the chain each tier gets (an example prompt of each tier; all breakers closed, "
            "budget normal)",
            ["tier", "routed as", "task", "chain", "layer", "example prompt"],
            tier_rows,
            left=6,
            wrap=("chain", "example prompt"),
        )
    )
    return status


# ------------------------------------------------------------------------------------------ serve, bench


def _cmd_serve(ctx: _Ctx) -> int:
    path, config = _load_config(ctx)
    try:
        server = importlib.import_module("asyncrouter.server")
        serve = server.serve
    except (ImportError, AttributeError) as exc:
        raise _Exit(f"the HTTP server is not available in this installation ({exc})") from None
    host, port = ctx.args.host, ctx.args.port
    dashboard = not ctx.args.no_dashboard

    def on_ready(*info: object) -> None:
        url = next((str(i) for i in info if isinstance(i, str) and i.startswith("http")), f"http://{host}:{port}")
        ctx.note(
            f"asyncrouter serving {path} on {url} (OpenAI-compatible: {url.rstrip('/')}/v1); Ctrl-C stops", style="bold"
        )
        if dashboard:
            ctx.note(f"dashboard: {url.rstrip('/')}{server.DASHBOARD_PATH}", style="bold")

    async def go() -> None:
        await serve(config, host=host, port=port, on_ready=on_ready, dashboard=dashboard)

    _run(go)
    return EXIT_OK


def _cmd_bench(ctx: _Ctx) -> int:
    root = Path.cwd()
    entry = root / "benchmarks" / "__main__.py"
    if not entry.is_file():
        raise _Exit(f"the benchmark suite is not here ({entry} not found): run from the asyncrouter source checkout")
    for name in [n for n in sys.modules if n == "benchmarks" or n.startswith("benchmarks.")]:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if not Path(origin).resolve().is_relative_to(root.resolve()):
            del sys.modules[name]  # a different "benchmarks" package was imported before: use this checkout's
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("benchmarks.__main__")
    argv: list[str] = []
    if ctx.args.quick:
        argv.append("--quick")
    if ctx.args.json_out:
        argv += ["--json", ctx.args.json_out]
    argv += list(ctx.args.rest)
    code = module.main(argv)
    return int(code or 0)


# ------------------------------------------------------------------------------------------------- demo


def _cmd_demo(ctx: _Ctx) -> int:
    from ._demo import run_demo

    args = ctx.args
    if not ctx.json:
        budget = f"daily budget {_usd(args.budget)}" if args.budget is not None else "no budget cap"
        ctx.out.print(
            Text(
                f"asyncrouter demo: {args.prompts} mixed prompts through a fake fleet on 127.0.0.1 "
                f"(fake-cheap, fake-medium, fake-strong; speed {args.speed:g}, seed {args.seed}), cascade on, "
                f"{budget}. No API keys.",
                style="bold",
            )
        )

    async def go() -> DemoResult:
        with ctx.progress() as progress:
            task = progress.add_task("routing", total=args.prompts)
            return await run_demo(
                prompts=args.prompts,
                seed=args.seed,
                speed=args.speed,
                budget_usd=args.budget,
                concurrency=args.concurrency,
                faults=not args.no_faults,
                outage=not args.no_outage,
                on_progress=lambda done, total: progress.update(task, completed=done),
            )

    result = _run(go)
    if ctx.json:
        ctx.emit_json(result.to_dict())
        return EXIT_OK
    _render_demo(ctx, result)
    return EXIT_OK


def _counter_rows(counts: Mapping[str, int], total: int) -> list[list[object]]:
    return [[k, v, _pct(100 * v / total if total else None)] for k, v in counts.items()]


def _render_demo(ctx: _Ctx, r: DemoResult) -> None:
    from rich.columns import Columns

    out = ctx.out
    rows: list[list[object]] = [[m.model, m.requests, _pct(100 * m.share), m.calls, _usd(m.cost_usd)] for m in r.models]
    rows.append(["total", r.ok, "", sum(m.calls for m in r.models), _usd(sum(m.cost_usd for m in r.models))])
    out.print(_table("Where the prompts went", ["model", "replies", "share", "calls", "cost"], rows))
    out.print(
        Columns(
            [
                _table("Routing layers", ["layer", "n", "share"], _counter_rows(r.layers, r.ok)),
                _table("Tiers", ["tier", "n", "share"], _counter_rows(r.tiers, r.ok)),
                _table("Tasks", ["task", "n", "share"], _counter_rows(r.tasks, r.ok)),
                _table("Languages", ["lang", "n", "share"], _counter_rows(r.languages, r.prompts)),
            ]
        )
    )
    share = _pct(100 * r.escalated / r.ok if r.ok else None)
    out.print(
        Text(f"Escalations: {r.escalated} of {r.ok} replies ({share}) left at least one model first", style="bold")
    )
    if r.escalation_reasons:
        out.print(
            _table("Why a model was left", ["reason", "times"], [[k, v] for k, v in r.escalation_reasons.items()])
        )
    if r.skips:
        out.print(Text("Skipped without a call: " + ", ".join(f"{k} {v}" for k, v in r.skips.items())))
    if r.quality_failed:
        out.print(
            Text(f"Every model failed the gates for {r.quality_failed} prompt(s): the best reply was returned, marked")
        )
    if r.failed:
        why = ", ".join(f"{k} {v}" for k, v in r.errors.items())
        if "BudgetExceeded" in r.errors:
            why += "; BudgetExceeded: what was left of the cap was reserved by calls in flight"
        out.print(Text(f"Failed requests: {r.failed} ({why})", style="red"))
    else:
        out.print(Text("Failed requests: none"))
    if r.outage is not None:
        out.print(Text(f"Outage injected: {r.outage} (every request answered HTTP 503)"))
    if r.breaker_events:
        out.print(
            _table(
                "Breaker events",
                ["breaker", "kind", "transition", "why"],
                [[e.name, e.kind, f"{e.old_state} -> {e.new_state}", e.reason] for e in r.breaker_events],
                left=3,
                wrap=("why",),
            )
        )
    else:
        out.print(Text("Breaker events: none (every breaker stayed closed)"))
    b = r.budget
    budget = f"Budget: {b.state}, spent {_usd(b.spent)}"
    if b.limit is not None:
        budget += f" of {_usd(b.limit)} ({100 * b.fraction:.0f}%)"
    if r.budget_events:
        budget += "; " + ", ".join(f"{e.previous} -> {e.state} at {_usd(e.status.spent)}" for e in r.budget_events)
    out.print(Text(budget))
    out.print(
        Text(
            f"Latency: p50 {_ms(r.p50_latency_ms)}, p95 {_ms(r.p95_latency_ms)}; "
            f"{r.prompts} prompts in {r.elapsed_s:.1f} s ({r.concurrency} at a time)"
        )
    )
    out.print(Text(r.headline(), style="bold green"))


# ----------------------------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _fraction(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncrouter",
        description="Route each LLM prompt to the right model. `asyncrouter demo` runs with no API keys.",
        epilog=f"The config is -c/--config FILE (before or after the command; after it wins), else ${CONFIG_ENV}, "
        f"else ./{DEFAULT_CONFIG_FILE}. Exit codes: 0 ok, 1 a failed request, 2 bad usage or config.",
    )
    parser.add_argument("--version", action="version", version=f"asyncrouter {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        dest="global_config",
        metavar="FILE",
        help="config file for any command (a --config after the command wins)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"config file (default: the one before the command, ${CONFIG_ENV}, then ./{DEFAULT_CONFIG_FILE})",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout, nothing else")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", default="auto", help="auto (default), a profile (eco, premium, ...) or a model alias")

    def add(
        name: str, handler: Callable[[_Ctx], int], help_: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=list(parents))
        p.set_defaults(handler=handler)
        return p

    p = add("init", _cmd_init, "write a commented starter config", as_json)
    p.add_argument("--provider", choices=PROVIDERS, default=None, help="whose models to use (default: openai)")
    p.add_argument(
        "--template",
        choices=sorted(TEMPLATES),
        help="a whole configuration instead of the starter: "
        + "; ".join(f"{name}: {what}" for name, what in sorted(TEMPLATES.items())),
    )
    p.add_argument(
        "--path",
        "-c",
        "--config",
        dest="path",
        help=f"where to write it (default: the -c FILE before the command, else {DEFAULT_CONFIG_FILE})",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--base-url", metavar="URL", help="the endpoint both models use (a local server, a gateway)")
    p.add_argument(
        "--check", action="store_true", help="then check the key: the provider lists its models (exit 1 if refused)"
    )
    p.add_argument(
        "--interactive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ask for the provider (and a local server's URL), then check the key (default: on a terminal, "
        "when no --provider is given)",
    )

    p = add("route", _cmd_route, "route one prompt and print the reply", config, model, as_json)
    p.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    p.add_argument("--max-tokens", type=_positive_int, help="output token cap")
    p.add_argument("--temperature", type=_non_negative_float, help="sampling temperature")
    p.add_argument("--stream", action="store_true", help="print the reply as it arrives")

    strategies = ("rules", "llm", "embeddings")
    p = add("classify", _cmd_classify, "show the routing decision (no model is called)", config, model, as_json)
    p.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    p.add_argument("--max-tokens", type=_positive_int, help="output token cap (changes the cost estimate)")
    p.add_argument(
        "--classifier",
        choices=strategies,
        help="rules (default: no call), or the config's llm / embeddings model labels the prompt (one call)",
    )
    p.add_argument("--trained-model", metavar="DIR", help="embeddings: the index `asyncrouter train` wrote")

    p = add("eval", _cmd_eval, "measure the classifier on a labelled data set (no config needed)", config, as_json)
    p.add_argument(
        "--data",
        metavar="FILE",
        help="labelled examples (.yaml or .jsonl; default: the hold-out set shipped in the package)",
    )
    p.add_argument("--split", help="only examples of this split (e.g. test)")
    p.add_argument("--max-errors", type=int, default=20, help="misclassified prompts to list (default: 20)")
    p.add_argument(
        "--classifier", choices=strategies, help="rules (default), or llm / embeddings as configured (calls a model)"
    )
    p.add_argument("--trained-model", metavar="DIR", help="embeddings: the index `asyncrouter train` wrote")

    p = add(
        "compare", _cmd_compare, "every classifier strategy the config can run, on one labelled set", config, as_json
    )
    p.add_argument("--data", metavar="FILE", help="labelled examples (default: the bundled hold-out set)")
    p.add_argument("--split", help="only examples of this split (e.g. test)")
    p.add_argument("--classifiers", metavar="LIST", help="comma-separated, e.g. rules,llm (default: all configured)")
    p.add_argument("--trained-model", metavar="DIR", help="embeddings: the index `asyncrouter train` wrote")

    p = add("train", _cmd_train, "fit the embeddings classifier on labelled prompts and save it", config, as_json)
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="where to save the index")
    p.add_argument("--data", metavar="FILE", help="labelled examples (default: the bundled development set)")
    p.add_argument("--eval-split", type=float, help="share of each label cell held out to measure (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default: 0)")
    p.add_argument("--k", type=_positive_int, help="neighbours that vote (default: classifier.k)")
    p.add_argument("--embedding-model", metavar="ALIAS", help="default: classifier.embedding_model")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory")

    p = add("batch", _cmd_batch, "route a JSONL or text file to JSONL (resumable)", config, model)
    p.add_argument(
        "file", help="JSONL (objects with prompt or messages, optional id and params) or one prompt per line"
    )
    p.add_argument("--out", metavar="OUT", help="output JSONL; reruns skip the lines already in it (default: stdout)")
    p.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CLI_CONCURRENCY, help="requests in flight")
    p.add_argument("--max-tokens", type=_positive_int, help="output token cap for items that set none")
    p.add_argument("--retry-errors", action="store_true", help="on a rerun, route the failed lines again")

    p = add("stats", _cmd_stats, "totals, per-model breakdown and savings from the tracker", config, as_json)
    p.add_argument("--since", type=parse_since, help="a window ending now (24h, 7d) or an ISO date/time")
    p.add_argument("--until", type=parse_since, help="end of the window (ISO date/time, or a duration ago)")
    p.add_argument("--baseline", help="the model to compare costs with (default: the most expensive)")
    p.add_argument("--detailed", action="store_true", help="also by UTC day, complexity and category")

    p = add("logs", _cmd_logs, "the newest tracked requests", config, as_json)
    p.add_argument("-n", "--last", dest="n", type=_positive_int, default=DEFAULT_LOGS, help="how many (default: 20)")
    p.add_argument("--model", help="only requests this model answered")
    p.add_argument("--status", choices=("ok", "error", "cancelled"), help="only requests with this status")
    p.add_argument("--since", type=parse_since, help="a window ending now (24h, 7d) or an ISO date/time")

    add("budget", _cmd_budget, "today's spend against the daily cap", config, as_json)
    add("breakers", _cmd_breakers, "the circuit breakers", config, as_json)

    p = sub.add_parser(
        "alerts", help="the alert rules, or send a test alert", description="the alert rules and channels"
    )
    actions = p.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "status",
        parents=[config, as_json],
        help="the rules, thresholds, channels (webhook secret left out) and cooldown",
        description="the rules, thresholds, channels (webhook secret left out) and cooldown",
    )
    a.set_defaults(handler=_cmd_alerts_status)
    a = actions.add_parser(
        "test",
        parents=[config, as_json],
        help="send one test alert to the webhook, the way the router sends alerts",
        description="send one test alert to the webhook, the way the router sends alerts",
    )
    a.add_argument("--webhook-url", metavar="URL", help="where to send it (default: alerts.webhook_url)")
    a.set_defaults(handler=_cmd_alerts_test)

    p = add(
        "models", _cmd_models, "the configured models, and the chain each tier gets under a profile", config, as_json
    )
    p.add_argument("--profile", help="show the chain each tier gets under this profile (auto, eco, premium, ...)")
    p.add_argument(
        "--check",
        action="store_true",
        help="check every key: each provider lists its models (exit 1 if one is refused)",
    )

    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data",
        metavar="FILE",
        help="prompts: JSONL (prompt or messages), text (one per line) or a labelled .yaml set "
        "(default: the bundled hold-out set)",
    )
    data.add_argument("--concurrency", type=_positive_int, default=8, help="prompts in flight (default: 8)")

    p = add(
        "quality",
        _cmd_quality,
        "LLM-as-judge: routed replies against a baseline model's, and what each cost",
        config,
        model,
        data,
        as_json,
    )
    p.add_argument("--baseline", help="the model to compare against (default: the most expensive)")
    p.add_argument("--judge", help="the model that scores both replies (default: the baseline)")
    p.add_argument("--sample", type=_positive_int, default=20, help="prompts to judge (default: 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of the order the judge sees")

    p = add("feedback", _cmd_feedback, "thumbs up or down on a tracked reply (adaptive routing)", config, as_json)
    p.add_argument("request_id", help="the reply's request id (meta.request_id, X-AsyncRouter-Request-Id)")
    p.add_argument("rating", choices=("up", "down"), help="up or down")
    p.add_argument("--comment", help="why (stored with the vote, secrets scrubbed)")

    p = add(
        "experiment",
        _cmd_experiment,
        "A/B test: split prompts between this config and --treatment, compare them",
        config,
        data,
        as_json,
    )
    p.add_argument("--treatment", required=True, metavar="FILE", help="the config under test")
    p.add_argument("--split", type=_fraction, default=0.5, help="share of prompts for the treatment (default: 0.5)")
    p.add_argument("--name", default="experiment", help="the experiment's name (it salts the split)")
    p.add_argument("--sample", type=_positive_int, default=None, help="only the first N prompts")

    p = add("serve", _cmd_serve, "serve the OpenAI-compatible HTTP API", config)
    p.add_argument("--host", default=DEFAULT_SERVE_HOST, help="interface (default: %(default)s)")
    p.add_argument("--port", type=_port, default=DEFAULT_SERVE_PORT, help="port (default: %(default)s)")
    p.add_argument("--no-dashboard", action="store_true", help="no /dashboard page and no /v1/asyncrouter/* data")

    p = add("bench", _cmd_bench, "run the benchmark suite (from a source checkout)", config)
    p.add_argument("--quick", action="store_true", help="a short run")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="also write the results as JSON to OUT")
    p.epilog = "Any other option (--only NAME, --markdown OUT, ...) is passed on to `python -m benchmarks`."

    p = add("demo", _cmd_demo, "the main job with no keys: a fake fleet, a mixed batch, where it went", config, as_json)
    p.add_argument("--prompts", type=_positive_int, default=None, help="how many prompts (default: 300)")
    p.add_argument("--seed", type=int, default=None, help="seed of the prompt mix and the fleet")
    p.add_argument("--speed", type=_non_negative_float, default=1.0, help="latency multiplier: 1 realistic, 0 instant")
    p.add_argument("--budget", type=_non_negative_float, default=None, help="daily cap in USD (default: 1)")
    p.add_argument("--concurrency", type=_positive_int, default=None, help="requests in flight (default: 16)")
    p.add_argument("--no-faults", action="store_true", help="no random provider faults")
    p.add_argument("--no-outage", action="store_true", help="no outage of the medium model partway through")
    return parser


# ------------------------------------------------------------------------------------------------- main


@contextlib.contextmanager
def _log_to(console: Console) -> Iterator[None]:
    """Show the library's warnings (breaker opened, budget warn...) on stderr, above any progress bar."""
    logger = logging.getLogger("asyncrouter")
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False, rich_tracebacks=False)
    handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # A file or a pipe has no width: rich would assume 80 columns and fold tables and long lines early.
        console.width = DEFAULT_PIPE_WIDTH
    return console


def _fail(ctx: _Ctx, message: str, code: int, *, error: BaseException | None = None) -> int:
    if ctx.json and error is not None:
        # a script gets a failed request as JSON on stdout too, so it never has to parse stderr
        ctx.emit_json({"error": {"type": type(error).__name__, "message": message}})
    prefix = f"{type(error).__name__}: " if error is not None else ""
    ctx.err.print(Text(f"error: {prefix}{message}", style="bold red"), soft_wrap=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asyncrouter`` command line.

    Args:
        argv: the arguments, without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 success, 1 a failed request, 2 bad usage or configuration.

    .. versionadded:: 0.1
    """
    parser = _parser()
    try:
        args, rest = parser.parse_known_args(argv)
        if rest and args.command != "bench":  # only bench passes unknown options on (to the suite)
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.rest = rest
    except SystemExit as exc:  # --help, --version, or a usage error argparse already explained
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    _fill_demo_defaults(args)
    _merge_global_config(args)
    ctx = _Ctx(args=args, out=_console(stderr=False), err=_console(stderr=True))
    with _log_to(ctx.err):
        try:
            handler: Callable[[_Ctx], int] = args.handler
            return handler(ctx)
        except _Exit as exc:
            return _fail(ctx, redact(str(exc), _secrets(ctx.config)), exc.code)
        except ConfigError as exc:  # e.g. an unknown --model: bad usage, not a failed request
            return _fail(ctx, redact(str(exc), _secrets(ctx.config)), EXIT_USAGE)
        except RouterError as exc:
            return _fail(ctx, redact(str(exc), _secrets(ctx.config)), EXIT_FAILED, error=exc)
        except KeyboardInterrupt:
            ctx.err.print(Text("interrupted", style="bold red"))
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`asyncrouter logs --json | head`): stop quietly, as Unix tools do, and keep
            # Python from complaining again when it flushes stdout at exit.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED


def _merge_global_config(args: argparse.Namespace) -> None:
    # `asyncrouter -c FILE COMMAND`: the file before the command counts where none is named after it.
    given = args.global_config
    if args.command == "init":
        args.path = args.path or given or DEFAULT_CONFIG_FILE
    elif given and getattr(args, "config", None) is None:
        args.config = given


def _fill_demo_defaults(args: argparse.Namespace) -> None:
    # The demo's defaults live in _demo.py; it is imported only when the demo runs (it pulls in the fake fleet).
    if args.command != "demo":
        return
    from ._demo import DEFAULT_DEMO_BUDGET_USD, DEFAULT_DEMO_CONCURRENCY, DEFAULT_DEMO_PROMPTS, DEFAULT_DEMO_SEED

    if args.prompts is None:
        args.prompts = DEFAULT_DEMO_PROMPTS
    if args.seed is None:
        args.seed = DEFAULT_DEMO_SEED
    if args.budget is None:
        args.budget = DEFAULT_DEMO_BUDGET_USD
    if args.concurrency is None:
        args.concurrency = DEFAULT_DEMO_CONCURRENCY
