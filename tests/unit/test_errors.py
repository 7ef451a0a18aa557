from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from asyncrouter import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextLengthExceeded,
    ProviderError,
    ProviderOverloaded,
    ProviderServerError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
)
from asyncrouter._exceptions import redact
from asyncrouter._http import error_from_payload, error_from_response, parse_retry_after


def oa(message: str, type_: str = "", code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": code}}).encode()


def an(type_: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "headers", "body", "cls"),
    [
        pytest.param(500, {}, oa("boom", "server_error"), ProviderServerError, id="500"),
        pytest.param(502, {}, b"<html>bad gateway</html>", ProviderServerError, id="502-html"),
        pytest.param(503, {}, oa("The engine is currently overloaded"), ProviderOverloaded, id="503-overloaded"),
        pytest.param(529, {}, an("overloaded_error", "Overloaded"), ProviderOverloaded, id="529-anthropic"),
        pytest.param(
            429,
            {"retry-after": "3"},
            oa("Rate limit reached", "requests", "rate_limit_exceeded"),
            RateLimited,
            id="429",
        ),
        pytest.param(
            429,
            {},
            oa("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            QuotaExhausted,
            id="quota",
        ),
        pytest.param(402, {}, b'{"error":{"message":"Insufficient credits"}}', QuotaExhausted, id="402-openrouter"),
        pytest.param(
            401,
            {},
            oa("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
            AuthenticationError,
            id="401",
        ),
        pytest.param(403, {}, an("permission_error", "no access"), AuthenticationError, id="403"),
        pytest.param(
            400,
            {},
            oa(
                "This model's maximum context length is 8192 tokens", "invalid_request_error", "context_length_exceeded"
            ),
            ContextLengthExceeded,
            id="context-openai",
        ),
        pytest.param(
            400,
            {},
            an("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            ContextLengthExceeded,
            id="context-anthropic",
        ),
        pytest.param(
            400,
            {},
            oa("Your request was rejected by our safety system", "invalid_request_error", "content_policy_violation"),
            ContentPolicyError,
            id="policy",
        ),
        pytest.param(
            404,
            {},
            oa("The model `x` does not exist", "invalid_request_error", "model_not_found"),
            BadRequestError,
            id="404",
        ),
        pytest.param(422, {}, b"unprocessable", BadRequestError, id="422"),
        pytest.param(408, {}, b"", ProviderTimeout, id="408"),
    ],
)
def test_status_and_body_map_to_one_class(
    status: int, headers: dict[str, str], body: bytes, cls: type[ProviderError]
) -> None:
    err = error_from_response(status, {"x-request-id": "req_123", **headers}, body, provider="openai", model="mini")
    assert type(err) is cls
    assert err.status_code == status
    assert err.provider == "openai"
    assert err.model == "mini"
    assert err.request_id == "req_123"
    assert "openai/mini" in str(err)


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "Thu, 01 Jan 2026 00:00:10 GMT"}, now=1767225600.0) == 10.0
    err = error_from_response(429, {"retry-after-ms": "250"}, b"{}", provider="anthropic", model="m")
    assert isinstance(err, RateLimited)
    assert err.retry_after == 0.25


def test_retryability_flags() -> None:
    assert RateLimited("x").retryable
    assert RateLimited("x").counts_as_failure
    assert ProviderServerError("x").retryable
    for cls in (AuthenticationError, BadRequestError, ContextLengthExceeded, QuotaExhausted, ContentPolicyError):
        assert not cls("x").retryable
        assert not cls("x").counts_as_failure


def test_stream_error_payload_without_status() -> None:
    err = error_from_payload(
        None, {"error": {"code": 502, "message": "Provider returned error"}}, provider="openrouter", model="m"
    )
    assert isinstance(err, ProviderServerError)
    assert err.status_code == 502
    err2 = error_from_payload(
        None,
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        provider="anthropic",
        model="m",
    )
    assert isinstance(err2, ProviderOverloaded)


def test_secrets_are_redacted_from_provider_messages() -> None:
    key = "sk-proj-abcdefghijklmnop1234"
    body = oa(
        f"Incorrect API key provided: {key}. You can find your key at ...", "invalid_request_error", "invalid_api_key"
    )
    err = error_from_response(401, {}, body, provider="openai", model="m", secrets=[key])
    assert key not in str(err)
    assert key not in repr(err)
    assert "***" in str(err)
    # unknown secrets shaped like keys are masked too
    assert "sk-ant-api03-zzzzzzzzzz" not in redact("bad key sk-ant-api03-zzzzzzzzzz")
    assert "Bearer abcdefghijkl" not in redact("header Bearer abcdefghijkl")


def test_errors_pickle() -> None:
    err = RateLimited("slow down", retry_after=1.5, provider="openai", model="m", status_code=429, request_id="r1")
    back: Any = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimited
    assert back.retry_after == 1.5
    assert back.request_id == "r1"
    assert str(back) == str(err)
