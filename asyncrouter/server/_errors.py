"""OpenAI-shaped errors for the HTTP server, and the one table that maps router errors onto them.

Every error the server sends has OpenAI's shape, so the official clients raise their typed errors::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": null}}

The mapping (one function, :func:`api_error_from`)::

    invalid JSON, bad or missing params     400 invalid_request_error      (param names the field)
    every provider rejected the request     400 invalid_request_error      (code context_length_exceeded, ...)
    missing or wrong bearer key             401 invalid_request_error      code invalid_api_key
    unknown model                           404 invalid_request_error      code model_not_found
    body above the size limit               413 invalid_request_error      code request_too_large
    BudgetExceeded                          429 insufficient_quota         code budget_exceeded, x-should-retry: false
    AllProvidersFailed, QualityGateFailed   502 upstream_error             x-should-retry: false
    a provider error after streaming began  502 / 504 upstream_error
    CircuitOpen, NoRouteError, not open     503 service_unavailable        Retry-After when a breaker says when

``BudgetExceeded`` is a 429 (not a 402) because that is what OpenAI itself answers when an account's quota is
spent (``insufficient_quota``): clients already know it, and ``x-should-retry: false`` tells the official SDKs
not to retry a cap that will not lift until the budget day rolls over. The router has already retried each
model and walked its chain before a 502, so those carry ``x-should-retry: false`` as well.

Messages never carry a key: each passes through :func:`asyncrouter._exceptions.redact` with every key the
server knows (the server's own and each model's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Final

from .._exceptions import (
    AllProvidersFailed,
    BadRequestError,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ContentPolicyError,
    ContextLengthExceeded,
    NoRouteError,
    ProviderError,
    ProviderTimeout,
    QualityGateFailed,
    RouterError,
    redact,
)

__all__ = ["ApiError", "api_error_from"]

#: The longest error message the server sends; a cascade's summary of every attempt can get long.
MAX_MESSAGE_CHARS: Final = 2000
_NO_RETRY: Final = {"x-should-retry": "false"}


class ApiError(Exception):
    """An error the server answers with: an HTTP status and OpenAI's error object.

    Raised inside the server while parsing a request, and built from router errors by :func:`api_error_from`.
    """

    __slots__ = ("code", "headers", "message", "param", "status", "type")

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers: Mapping[str, str] = headers or {}

    def payload(self) -> dict[str, object]:
        """The JSON object: ``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return json.dumps(self.payload()).encode()

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.type!r}, code={self.code!r}, param={self.param!r})"


def _clean(exc: BaseException, secrets: Sequence[str]) -> str:
    text = redact(str(exc), secrets)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _rejected_code(errors: Sequence[BaseException]) -> str | None:
    """When every attempt was refused as a bad request, the code to answer 400 with; else ``None``."""
    if not errors or not all(isinstance(e, BadRequestError) for e in errors):
        return None
    if any(isinstance(e, ContextLengthExceeded) for e in errors):
        return "context_length_exceeded"
    if any(isinstance(e, ContentPolicyError) for e in errors):
        return "content_policy_violation"
    return "upstream_rejected"


def api_error_from(exc: BaseException, *, secrets: Sequence[str] = (), retry_in: float | None = None) -> ApiError:
    """Map an error raised by :class:`~asyncrouter.Router` onto the status and error object the server sends.

    Args:
        exc: the router's error (a :class:`~asyncrouter.RouterError`).
        secrets: keys to scrub from the message.
        retry_in: seconds until an open breaker lets a trial through, for ``Retry-After`` on a 503.

    Returns:
        The :class:`ApiError` to answer with.
    """
    message = _clean(exc, secrets)
    if isinstance(exc, BudgetExceeded):
        return ApiError(429, message, type="insufficient_quota", code="budget_exceeded", headers=_NO_RETRY)
    if isinstance(exc, AllProvidersFailed):
        code = _rejected_code(exc.errors)
        if code is not None:
            return ApiError(400, message, code=code, param="messages" if code != "upstream_rejected" else None)
        return ApiError(502, message, type="upstream_error", code="all_providers_failed", headers=_NO_RETRY)
    if isinstance(exc, QualityGateFailed):
        return ApiError(502, message, type="upstream_error", code="quality_gate_failed", headers=_NO_RETRY)
    if isinstance(exc, CircuitOpen | NoRouteError):
        headers: dict[str, str] = {}
        if retry_in is not None and math.isfinite(retry_in):
            headers["Retry-After"] = str(max(1, math.ceil(retry_in)))
        code = "circuit_open" if isinstance(exc, CircuitOpen) else "no_route"
        return ApiError(503, message, type="service_unavailable", code=code, headers=headers)
    if isinstance(exc, ProviderError):  # only reaches the server from a stream that already started
        if isinstance(exc, ProviderTimeout):
            return ApiError(504, message, type="upstream_error", code="upstream_timeout")
        return ApiError(502, message, type="upstream_error", code="upstream_error")
    if isinstance(exc, ConfigError):
        if exc.path == "model":
            return ApiError(404, message, code="model_not_found", param="model")
        return ApiError(400, message, param=exc.path)
    if isinstance(exc, RouterError):
        return ApiError(503, message, type="service_unavailable", code="router_unavailable")
    return ApiError(500, "internal server error", type="server_error", code="internal_error")
