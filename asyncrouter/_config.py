"""The user configuration: frozen pydantic v2 models with ``extra="forbid"``.

A routeforge ``config.yaml`` loads unchanged. ``${ENV_VAR}`` anywhere in a string is resolved at load time; a
missing variable is a :class:`ConfigError` naming the field path. API keys are :class:`pydantic.SecretStr`,
so they never show in ``repr``/``str``; validation errors are rebuilt from the error location and message
only, never from the input value, so a key cannot leak through an error either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._exceptions import ConfigError
from ._types import ProviderName

__all__ = [
    "DEFAULT_BASE_URLS",
    "DEFAULT_TIMEOUT",
    "AlertsConfig",
    "BreakerConfig",
    "BreakersConfig",
    "BudgetConfig",
    "CascadeConfig",
    "ClassifierConfig",
    "Config",
    "HTTPConfig",
    "ModelConfig",
    "PricingConfig",
    "ProfileConfig",
    "QualityConfig",
    "RetriesConfig",
    "RouteEntry",
    "TrackerConfig",
    "load_config",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_REQUEST_TIMEOUT = 120.0
DEFAULT_COMPLEXITY_THRESHOLD = 0.5
DEFAULT_BAND = (0.35, 0.65)
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "huggingface": "https://router.huggingface.co/v1",
    "ollama": "http://localhost:11434",
    # Gemini's OpenAI-compatible endpoint (chat completions, streaming, tools, JSON mode)
    "google": "https://generativelanguage.googleapis.com/v1beta/openai",
}
#: Providers that need no API key.
KEYLESS_PROVIDERS = frozenset({"ollama", "openai_compatible"})


def _seconds(value: Any) -> Any:
    """Durations are float seconds; a :class:`datetime.timedelta` is accepted too."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Price = Annotated[float, Field(ge=0)]


#: RFC 9110 token characters; and what may not appear in a header value (CR, LF, NUL and other controls)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class ModelConfig(_Frozen):
    """One model the router may call. ``name`` is the alias used everywhere else."""

    name: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    provider: ProviderName
    api_keys: tuple[SecretStr, ...] = ()
    api_key_env: str | None = None
    base_url: str | None = None
    cost_per_1k_input: Price | None = None
    cost_per_1k_output: Price | None = None
    #: prompt-cache prices (USD per 1k tokens); unset: 1.25x (writes) and 0.1x (reads) the input price,
    #: Anthropic's rates
    cost_per_1k_cache_write: Price | None = None
    cost_per_1k_cache_read: Price | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, gt=0)
    timeout: PositiveSeconds = DEFAULT_TIMEOUT
    tags: tuple[str, ...] = ()
    #: aliases to try, in order, when this model errors (also when it is pinned)
    fallbacks: tuple[str, ...] = ()
    #: ollama only: "openai" (its /v1 endpoint) or "native" (/api/chat, NDJSON streaming)
    api: Literal["openai", "native"] = "openai"
    #: anthropic only
    anthropic_version: str = "2023-06-01"
    #: anthropic only: mark the system prompt and the tool definitions with cache_control ephemeral, so
    #: Anthropic caches that prefix (5 minutes) and bills repeats at a tenth of the input price
    prompt_caching: bool = False
    #: openrouter app attribution (HTTP-Referer / X-Title)
    http_referer: str | None = None
    app_title: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    #: optional per-model provider rate limits
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)

    @field_validator("prompt_caching")
    @classmethod
    def _caching_provider(cls, v: bool, info: ValidationInfo) -> bool:
        # An error rather than a silent no-op: a user who turns caching on expects a lower bill, and only the
        # Anthropic format sends cache_control (OpenAI caches long prompts by itself, with no flag).
        provider = info.data.get("provider")
        if v and provider is not None and provider != "anthropic":
            raise ValueError(
                f"prompt_caching applies only to provider anthropic, not {provider} "
                "(OpenAI caches long prompts by itself, with no flag)"
            )
        return v

    @field_validator("tags", mode="before")
    @classmethod
    def _lower_tags(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return tuple(str(t).strip().lower() for t in v)
        return v

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys_list(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, str | SecretStr):
            v = (v,)
        if isinstance(v, list | tuple):
            # a key read from a file keeps its newline; no key has surrounding whitespace
            return tuple(
                SecretStr(k.get_secret_value().strip())
                if isinstance(k, SecretStr)
                else k.strip()
                if isinstance(k, str)
                else k
                for k in v
            )
        return v

    @model_validator(mode="after")
    def _resolve_env_key(self) -> ModelConfig:
        if self.api_key_env and not self.api_keys:
            value = os.environ.get(self.api_key_env)
            if value is None:
                raise ValueError(f"environment variable {self.api_key_env} (api_key_env) is not set")
            object.__setattr__(self, "api_keys", (SecretStr(value.strip()),))
        return self

    @model_validator(mode="after")
    def _header_safe(self) -> ModelConfig:
        # Every one of these goes into an HTTP header: a line break would inject headers into the request.
        where = f"environment variable {self.api_key_env} (api_key_env)" if self.api_key_env else "api_keys"
        for i, key in enumerate(self.api_keys):
            if _UNSAFE_IN_HEADER.search(key.get_secret_value()):
                # the key itself is never quoted
                raise ValueError(f"{where}: key {i} contains a line break or control character")
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"headers: {name!r} is not a valid HTTP header name")
            if _UNSAFE_IN_HEADER.search(value):
                raise ValueError(f"headers: the value of {name!r} contains a line break or control character")
        for field in ("anthropic_version", "http_referer", "app_title"):
            value = getattr(self, field)
            if value is not None and _UNSAFE_IN_HEADER.search(value):
                raise ValueError(f"{field} contains a line break or control character")
        return self

    @property
    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.provider == "openai_compatible":
            raise ConfigError("openai_compatible models need a base_url", path=f"model {self.name!r}")
        return DEFAULT_BASE_URLS[self.provider]

    def key_values(self) -> tuple[str, ...]:
        return tuple(k.get_secret_value() for k in self.api_keys if k.get_secret_value())


class BreakerConfig(_Frozen):
    fail_max: int = Field(default=5, ge=1)
    reset_timeout: PositiveSeconds = 30.0


class BreakersConfig(_Frozen):
    enabled: bool = True
    model: BreakerConfig = BreakerConfig()
    provider: BreakerConfig = BreakerConfig(fail_max=20, reset_timeout=60.0)
    #: share breaker state across processes through budget.redis_url (off by default)
    shared: bool = False
    redis_url: str | None = None


class RetriesConfig(_Frozen):
    max_attempts: int = Field(default=2, ge=1)
    backoff_base: Seconds = 0.5
    backoff_max: Seconds = 8.0


class CascadeConfig(_Frozen):
    enabled: bool = True
    #: how many models at most a request may try (None: the whole chain)
    max_models: int | None = Field(default=None, ge=1)


class QualityConfig(_Frozen):
    enabled: bool = True
    min_chars: int = Field(default=20, ge=0)
    hedging_phrases: tuple[str, ...] = ()
    refusal_phrases: tuple[str, ...] = ()
    #: when every model fails the gates: return the best reply (marked) or raise QualityGateFailed
    on_all_failed: Literal["best", "raise"] = "best"
    #: gates disabled by name, e.g. ["hedging"]
    disabled: tuple[str, ...] = ()
    #: buffer streams so the gates can judge them before any text reaches the caller
    buffer_streams: bool = False


class BudgetConfig(_Frozen):
    daily_limit_usd: Price | None = None
    timezone: str = "UTC"
    warn_at: Fraction = 0.75
    downgrade_at: Fraction = 0.90
    on_exhausted: Literal["reject", "cheapest"] = "reject"
    backend: Literal["memory", "sqlite", "redis"] = "memory"
    redis_url: str | None = None
    redis_prefix: str = "asyncrouter"
    #: output tokens assumed for the worst case when neither max_tokens nor the model's cap is known
    default_max_output_tokens: int = Field(default=4096, gt=0)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _order(self) -> BudgetConfig:
        if self.warn_at > self.downgrade_at:
            raise ValueError("warn_at must not be above downgrade_at")
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("backend redis needs redis_url")
        return self


class TrackerConfig(_Frozen):
    path: str | None = "asyncrouter.db"
    prompt_preview_chars: int = Field(default=80, ge=0)
    batch_size: int = Field(default=256, ge=1)
    flush_interval: PositiveSeconds = 0.25
    queue_size: int = Field(default=10_000, ge=1)
    on_full: Literal["wait", "drop"] = "wait"
    #: also append every committed record to this file as JSON Lines (routeforge's run log); the top-level
    #: ``log_path`` (routeforge's spelling) sets it. It mirrors the database: it needs ``path``.
    log_path: str | None = None


class PricingConfig(_Frozen):
    #: used, with a loud warning at load, for a model whose price is neither configured nor known
    default_cost_per_1k_input: Price = 0.01
    default_cost_per_1k_output: Price = 0.03
    use_price_library: bool = True


class AlertsConfig(_Frozen):
    enabled: bool = False
    webhook_url: str | None = None
    log: bool = True
    cooldown: Seconds = 300.0
    error_rate_threshold: Fraction = 0.5
    error_rate_window: PositiveSeconds = 300.0
    error_rate_min_requests: int = Field(default=10, ge=1)
    cost_spike_factor: float = Field(default=3.0, gt=1)
    budget_thresholds: tuple[Fraction, ...] = (0.75, 0.9, 1.0)


class FeedbackConfig(_Frozen):
    """Users' thumbs up/down on replies (``Router.afeedback``), and adaptive routing from them."""

    #: move a model users keep rejecting for a task type behind the other models of that task's chains
    rerank: bool = True
    #: votes a model needs on a task type before they move it
    min_votes: int = Field(default=5, ge=1)
    #: a model whose share of "up" votes on a task type (add-one smoothed) is below this is moved back
    demote_below: Fraction = 0.35


class HTTPConfig(_Frozen):
    """How the router reaches providers: the connection pool and proxies."""

    #: connections open at once over all providers, and per host (0: no per-host limit)
    connection_limit: int = Field(default=1000, ge=1)
    connection_limit_per_host: int = Field(default=0, ge=0)
    #: a proxy for every provider request, e.g. ``http://user:pass@proxy.corp:3128`` (a secret: it may hold a
    #: password); https providers are reached through a CONNECT tunnel
    proxy: SecretStr | None = None
    #: without ``proxy``: use ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` from the environment, as the
    #: official SDKs do
    trust_env: bool = True

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            scheme = v.get_secret_value().split("://", 1)[0].lower() if "://" in v.get_secret_value() else ""
            if scheme not in ("http", "https"):
                raise ValueError("a proxy URL starts with http:// or https:// (SOCKS is not supported)")
        return v


class ClassifierConfig(_Frozen):
    """mmrouter's ``classifier`` section: which strategy labels prompts, and when low confidence escalates.

    The rules classifier always runs (it is free and takes microseconds). ``llm`` and ``embeddings`` then
    relabel the prompt's complexity and category (and confidence) with a model call before routing; a pinned
    request skips them, and when they fail the rules' labels stand, with the failure in the routing reason.
    """

    strategy: Literal["rules", "llm", "embeddings"] = "rules"
    #: confidence below this raises the prompt's tier one step (mmrouter's confidence-based escalation); unset: off
    threshold: Fraction | None = None
    #: llm: the alias of the (cheap) model that labels prompts
    model: str | None = None
    #: embeddings: the alias of the model whose embeddings endpoint embeds prompts
    embedding_model: str | None = None
    #: embeddings: a directory written by ``asyncrouter train`` (the labelled examples' embeddings)
    trained_model: str | None = None
    #: embeddings: neighbours that vote
    k: int = Field(default=7, ge=1)
    #: labels kept per normalised prompt (LRU), and for how long
    cache_size: int = Field(default=4096, ge=0)
    cache_ttl: Seconds = 3600.0
    #: the longest the llm / embeddings call may take before the rules' labels stand (within the request's deadline)
    timeout: PositiveSeconds = 5.0


class ProfileConfig(_Frozen):
    """A named routing profile: restricts and orders the models the planner may choose."""

    models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    prefer: Literal["cheapest", "strongest"] = "cheapest"
    max_cost_per_1k_output: Price | None = None


class RouteEntry(_Frozen):
    """mmrouter-style route: a model and its fallbacks for one (complexity, category) cell."""

    model: str
    fallbacks: tuple[str, ...] = ()


class Config(_Frozen):
    """The whole router configuration (a superset of routeforge's ``config.yaml``)."""

    default_model: str | None = None
    #: routeforge's run log: every committed tracker record is also appended to this file as one JSON object
    #: per line (routeforge's fields first). The same setting as ``tracker.log_path``; needs ``tracker.path``.
    log_path: str | None = None
    complexity_threshold: Fraction = DEFAULT_COMPLEXITY_THRESHOLD
    complexity_band: tuple[Fraction, Fraction] = DEFAULT_BAND
    meta_router_model: str | None = None
    meta_router_cache_size: int = Field(default=4096, ge=0)
    meta_router_cache_ttl: Seconds = 3600.0
    request_timeout: PositiveSeconds = DEFAULT_REQUEST_TIMEOUT
    models: tuple[ModelConfig, ...] = Field(min_length=1)
    profiles: dict[str, ProfileConfig] = Field(default_factory=dict)
    routes: dict[
        Literal["simple", "medium", "complex"], dict[Literal["factual", "reasoning", "creative", "code"], RouteEntry]
    ] = Field(default_factory=dict)
    cascade: CascadeConfig = CascadeConfig()
    quality: QualityConfig = QualityConfig()
    breakers: BreakersConfig = BreakersConfig()
    retries: RetriesConfig = RetriesConfig()
    budget: BudgetConfig = BudgetConfig()
    tracker: TrackerConfig = TrackerConfig()
    pricing: PricingConfig = PricingConfig()
    alerts: AlertsConfig = AlertsConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    http: HTTPConfig = HTTPConfig()

    @model_validator(mode="after")
    def _cross_check(self) -> Config:
        seen: dict[str, int] = {}
        for i, m in enumerate(self.models):
            if m.name in seen:
                raise _PathError(f"duplicate model alias {m.name!r} (also models[{seen[m.name]}])", f"models[{i}].name")
            seen[m.name] = i
            if m.provider == "openai_compatible" and not m.base_url:
                raise _PathError("openai_compatible models need a base_url", f"models[{i}].base_url")
            if m.provider not in KEYLESS_PROVIDERS and not m.key_values():
                raise _PathError(
                    f"provider {m.provider} needs at least one API key (api_keys or api_key_env)",
                    f"models[{i}].api_keys",
                )
        names = set(seen)
        for i, m in enumerate(self.models):
            for j, alias in enumerate(m.fallbacks):
                if alias not in names:
                    raise _PathError(f"names no configured model: {alias!r}", f"models[{i}].fallbacks[{j}]")
        for field_name in ("default_model", "meta_router_model"):
            value = getattr(self, field_name)
            if value is not None and value not in names:
                raise _PathError(f"names no configured model: {value!r} (known: {sorted(names)})", field_name)
        self._check_classifier(names)
        lo, hi = self.complexity_band
        if lo > hi:
            raise _PathError("lower bound above upper bound", "complexity_band")
        self._merge_log_path()
        for pname, profile in self.profiles.items():
            for j, alias in enumerate(profile.models):
                if alias not in names:
                    raise _PathError(f"names no configured model: {alias!r}", f"profiles.{pname}.models[{j}]")
        for cx, row in self.routes.items():
            for cat, entry in row.items():
                for alias in (entry.model, *entry.fallbacks):
                    if alias not in names:
                        raise _PathError(f"names no configured model: {alias!r}", f"routes.{cx}.{cat}")
        return self

    def _check_classifier(self, names: set[str]) -> None:
        cl = self.classifier
        for field_name in ("model", "embedding_model"):
            value = getattr(cl, field_name)
            if value is not None and value not in names:
                raise _PathError(
                    f"names no configured model: {value!r} (known: {sorted(names)})", f"classifier.{field_name}"
                )
        if cl.strategy == "llm" and cl.model is None:
            raise _PathError(
                "strategy llm needs classifier.model: the alias of a cheap model that labels prompts",
                "classifier.model",
            )
        if cl.strategy == "embeddings":
            if cl.embedding_model is None:
                raise _PathError(
                    "strategy embeddings needs classifier.embedding_model: a model with an embeddings endpoint",
                    "classifier.embedding_model",
                )
            if cl.trained_model is None:
                raise _PathError(
                    "strategy embeddings needs classifier.trained_model: run `asyncrouter train --output DIR` "
                    "(the bundled labelled set, or --data FILE for yours) and set it to DIR",
                    "classifier.trained_model",
                )

    def _merge_log_path(self) -> None:
        """Make ``log_path`` and ``tracker.log_path`` one setting, and refuse what cannot work.

        The tracker only sees its own section, so the top-level (routeforge) spelling is copied into it.
        """
        top, nested = self.log_path, self.tracker.log_path
        if top is not None and nested is not None and top != nested:
            raise _PathError(f"differs from tracker.log_path ({nested!r}); set one of them", "log_path")
        value = top if top is not None else nested
        if value is None:
            return
        field_path = "log_path" if top is not None else "tracker.log_path"
        if not value.strip():
            raise _PathError("empty path: leave it out (or null) for no JSON log", field_path)
        db = self.tracker.path
        if db is None:
            # The log mirrors the database (a line is written once its row is committed), and tracker.path: null
            # turns the tracker off altogether: say so rather than quietly ignore one of the two settings.
            raise _PathError(
                "the JSON run log needs the tracker, but tracker.path is null (tracking off); drop "
                "'tracker.path: null' (rows go to asyncrouter.db as well), or set tracker.path: ':memory:' to keep "
                "only this file on disk",
                field_path,
            )
        if db != ":memory:" and _same_file(value, db):
            raise _PathError(f"is the tracker database itself ({db!r}); pick another file", field_path)
        object.__setattr__(self, "log_path", value)
        if nested is None:
            object.__setattr__(self, "tracker", self.tracker.model_copy(update={"log_path": value}))

    def model(self, alias: str) -> ModelConfig:
        for m in self.models:
            if m.name == alias:
                return m
        raise KeyError(alias)

    @property
    def default_alias(self) -> str:
        """The layer-4 model: ``default_model``, or the cheapest configured model."""
        if self.default_model is not None:
            return self.default_model

        def price(m: ModelConfig) -> float:
            if m.cost_per_1k_input is None and m.cost_per_1k_output is None:
                return float("inf")  # unknown price: never assume it is free
            return (m.cost_per_1k_input or 0.0) + (m.cost_per_1k_output or 0.0)

        return min(self.models, key=price).name


def _same_file(a: str, b: str) -> bool:
    return os.path.abspath(os.path.expanduser(a)) == os.path.abspath(os.path.expanduser(b))


class _PathError(ValueError):
    """A cross-field error that knows its own path (raised inside validators)."""

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _resolve_env(value: Any, path: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", path=path or "<root>")

        return _ENV_RE.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _resolve_env(v, f"{path}.{k}" if path else str(k), env) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve_env(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    return value


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union", "literal[")) or part in {"str", "int", "float"}:
            continue
        else:
            out += f".{part}" if out else part
    return out or "<root>"


def load_config(data: Mapping[str, Any] | Config, *, env: Mapping[str, str] | None = None) -> Config:
    """Validate a mapping into a :class:`Config`, resolving ``${ENV}`` and naming the path of any error.

    Raises:
        ConfigError: the first problem found, e.g. ``models[2].cost_per_1k_input: Input should be greater
            than or equal to 0``. The offending value is never echoed, so secrets cannot leak.
    """
    if isinstance(data, Config):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}")
    resolved = _resolve_env(dict(data), "", os.environ if env is None else env)
    try:
        return Config.model_validate(resolved)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        first = errors[0]
        ctx_err = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _PathError):
            raise ConfigError(str(ctx_err), path=ctx_err.path) from None
        path = _loc_to_path(tuple(first["loc"]))
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(msg + more, path=path) from None


def load_yaml(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", path=str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}", path=str(p)) from None
    if data is None:
        raise ConfigError("config file is empty", path=str(p))
    return load_config(data)
