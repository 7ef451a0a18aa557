"""The whole asyncrouter error tree, in one place.

::

    RouterError
    ├── ConfigError(ValueError)          bad configuration; the message names the field path
    ├── NoRouteError                     no model can take the request (all skipped: breakers, context, budget)
    ├── CircuitOpen                      a pinned model's breaker is open and no fallback remains
    ├── BudgetExceeded                   the daily cap would be exceeded (on_exhausted: reject)
    ├── QualityGateFailed                every reply failed the gates and quality.on_all_failed is "raise"
    ├── AllProvidersFailed(.errors)      every attempt of a request errored; holds each attempt's error
    └── ProviderError(.provider, .model, .status_code, .request_id)
        ├── ProviderTimeout(TimeoutError)
        ├── ProviderConnectionError(ConnectionError)
        │   └── StreamInterrupted        the connection closed before the stream finished
        ├── RateLimited(.retry_after)    429 (transient)
        ├── ProviderServerError          5xx
        │   ├── ProviderOverloaded       529 / overloaded_error
        │   └── MalformedResponse        a 2xx body or stream event that is not the format it claims
        └── ProviderRejected             the request itself is refused; retrying will not help
            ├── AuthenticationError      401 / 403
            ├── QuotaExhausted           429 insufficient_quota / billing: retrying will not help
            └── BadRequestError          400 / 404 / 413 / 422
                ├── ContextLengthExceeded
                └── ContentPolicyError

Errors carry the provider, the model alias, the HTTP status and the provider's request id. They never carry an
API key: provider messages are passed through :func:`redact` before they are stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "AllProvidersFailed",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigError",
    "ContentPolicyError",
    "ContextLengthExceeded",
    "MalformedResponse",
    "NoRouteError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderOverloaded",
    "ProviderRejected",
    "ProviderServerError",
    "ProviderTimeout",
    "QualityGateFailed",
    "QuotaExhausted",
    "RateLimited",
    "RouterError",
    "StreamInterrupted",
    "redact",
]

# Shapes of common API secrets. Used as a last line of defence on any provider-supplied text we keep.
_SECRET_RE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|sk-ant-[A-Za-z0-9_\-]{6,}|sk-or-[A-Za-z0-9_\-]{6,}|hf_[A-Za-z0-9]{6,}"
    r"|(?i:bearer)\s+[A-Za-z0-9_\-\.=]{6,})"
)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Return *text* with every known secret and anything shaped like an API key replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _SECRET_RE.sub("***", text)


class RouterError(Exception):
    """Root of every error asyncrouter raises on purpose."""


class ConfigError(RouterError, ValueError):
    """The configuration is invalid. ``path`` names the offending field, e.g. ``models[2].cost_per_1k_input``."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class NoRouteError(RouterError):
    """No configured model can take this request; the message says why each was skipped."""


class CircuitOpen(RouterError):
    """The circuit breaker for ``name`` is open and nothing else can take the request."""

    def __init__(self, message: str, *, name: str = "") -> None:
        self.name = name
        super().__init__(message)


class BudgetExceeded(RouterError):
    """The daily budget cannot cover the worst-case cost of this request."""

    def __init__(self, message: str, *, spent: float = 0.0, reserved: float = 0.0, limit: float = 0.0) -> None:
        self.spent = spent
        self.reserved = reserved
        self.limit = limit
        super().__init__(message)


class QualityGateFailed(RouterError):
    """Every model's reply failed the quality gates and the router is configured to raise."""

    def __init__(self, message: str, *, attempts: Sequence[object] = ()) -> None:
        self.attempts = list(attempts)
        super().__init__(message)


class AllProvidersFailed(RouterError):
    """Every attempt of a request failed. ``errors`` holds each attempt's error, in order."""

    def __init__(self, message: str, *, errors: Sequence[BaseException] = ()) -> None:
        self.errors: list[BaseException] = list(errors)
        super().__init__(message)


class ProviderError(RouterError):
    """A provider call failed.

    Attributes:
        provider: the provider kind, e.g. ``"openai"``.
        model: the model alias from the config.
        status_code: the HTTP status, or ``None`` when no response arrived.
        request_id: the provider's request id (``x-request-id`` / ``request-id``) when it sent one.
    """

    #: Whether the router may retry this error on the same model.
    retryable: bool = True
    #: Whether this outcome counts as a failure for circuit breakers.
    counts_as_failure: bool = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.request_id = request_id
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        parts = [f"[{where}]" if where else "", f"HTTP {self.status_code}" if self.status_code else "", self.message]
        text = " ".join(p for p in parts if p)
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self) -> tuple[object, ...]:  # keep errors picklable across processes
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[ProviderError], message: str, state: dict[str, object]) -> ProviderError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._format())
    return err


class ProviderTimeout(ProviderError, TimeoutError):
    """The provider did not answer within the attempt's timeout."""


class ProviderConnectionError(ProviderError, ConnectionError):
    """The connection failed or was reset."""


class StreamInterrupted(ProviderConnectionError):
    """The stream ended (connection closed) before its final event."""


class RateLimited(ProviderError):
    """HTTP 429. ``retry_after`` (seconds) is parsed from ``Retry-After`` or ``retry-after-ms`` when sent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ProviderServerError(ProviderError):
    """HTTP 5xx from the provider."""


class ProviderOverloaded(ProviderServerError):
    """The provider is overloaded (Anthropic's 529 ``overloaded_error``, or a 503 that says so)."""


class MalformedResponse(ProviderServerError):
    """The provider answered 2xx but the body or a stream event was not valid for its format."""


class ProviderRejected(ProviderError):
    """The provider refused the request itself; retrying the same request will not help."""

    retryable = False
    counts_as_failure = False


class AuthenticationError(ProviderRejected):
    """401/403: the key is invalid or lacks permission. The key is taken out of rotation."""


class QuotaExhausted(ProviderRejected):
    """The account's quota or credit is exhausted (429 ``insufficient_quota``, 402)."""


class BadRequestError(ProviderRejected):
    """400/404/413/422: the request is invalid for this provider or model."""


class ContextLengthExceeded(BadRequestError):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""


class ContentPolicyError(BadRequestError):
    """The provider refused the content under its usage policy."""
