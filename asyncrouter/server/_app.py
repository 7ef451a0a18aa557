"""The aiohttp.web application: an OpenAI-compatible front for a :class:`~asyncrouter.Router`.

Routes::

    POST /v1/chat/completions    Chat Completions, streamed (SSE) or not
    POST /v1/messages            Anthropic's Messages API, streamed (SSE) or not (Claude Code, the anthropic SDKs)
    POST /v1/messages/count_tokens   the token estimate of a Messages request
    POST /v1/embeddings          OpenAI embeddings with a model alias (Router.aembed: no routing)
    POST /v1/feedback            a thumbs up or down on a tracked reply
    GET  /v1/models              auto, the profiles and the model aliases (OpenAI's list format)
    GET  /v1/models/{model}      one of those
    POST /v1beta/models/{model}:generateContent|streamGenerateContent|countTokens   Google's Gemini API (the
                                 google-genai SDKs, the Gemini CLI); also under /v1/models/...
    GET  /v1beta/models[/{model}]   the same names in Gemini's list format (also /v1/models[/{model}] when the
                                 request comes from a Gemini client: x-goog-api-key, x-goog-api-client or ?key=)
    GET  /healthz                status, plus breaker and budget summaries for authorised callers
    GET  /v1/asyncrouter/stats|logs|breakers|budget   the router's state as JSON (the dashboard's data)
    GET  /dashboard              the dashboard page (see :mod:`asyncrouter.server._dashboard`)

The handlers do the least work they can per request: the accepted model names, the model listing and the
secrets to scrub are computed once in :func:`create_app`; a reply is one :func:`json.dumps`.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import struct
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Protocol

from aiohttp import web

from .._engine import Router
from .._exceptions import CircuitOpen, RouterError
from .._models import Response
from ._anthropic import (
    OVERLOADED_REASON,
    OVERLOADED_STATUS,
    MessageEventEncoder,
    anthropic_error,
    count_tokens,
    message_body,
    parse_messages,
)
from ._dashboard import add_dashboard
from ._errors import ApiError, api_error_from
from ._gemini import (
    GEMINI_METHODS,
    GenerateStreamEncoder,
    gemini_error,
    generate_body,
    models_listing,
    parse_generate,
)
from ._gemini import count_tokens as gemini_count_tokens
from ._wire import (
    ChunkEncoder,
    ModelTable,
    completion_body,
    ignored_header,
    meta_headers,
    parse_chat,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ROUTER_KEY", "create_app"]

logger = logging.getLogger("asyncrouter.server")

#: Largest request body accepted (413 above it). Chat requests are small; images sent inline are not.
DEFAULT_MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: The router an application serves: ``app[ROUTER_KEY]``.
ROUTER_KEY: Final = web.AppKey("asyncrouter.router", Router)

_JSON: Final = "application/json"
_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # reverse proxies (nginx) would otherwise buffer the stream
}
_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def _error_response(error: ApiError) -> web.Response:
    return web.Response(status=error.status, body=error.body(), headers={**error.headers, "Content-Type": _JSON})


def _anthropic_response(error: ApiError) -> web.Response:
    """*error* in Anthropic's shape and status, for the ``/v1/messages`` endpoints."""
    status, payload, headers = anthropic_error(error)
    headers["Content-Type"] = _JSON
    reason = OVERLOADED_REASON if status == OVERLOADED_STATUS else None
    return web.Response(status=status, reason=reason, body=json.dumps(payload).encode(), headers=headers)


def _is_anthropic_path(path: str) -> bool:
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def _gemini_response(error: ApiError) -> web.Response:
    """*error* in Google's shape, for the Gemini endpoints."""
    status, payload, headers = gemini_error(error)
    headers["Content-Type"] = _JSON
    return web.Response(status=status, body=json.dumps(payload).encode(), headers=headers)


def _is_gemini_client(request: web.Request) -> bool:
    """Whether a ``GET /v1/models[/...]`` comes from a Gemini client (google-genai uses ``/v1`` with a base URL):
    those send ``x-goog-api-client`` and their key as ``x-goog-api-key`` or ``?key=``; OpenAI clients never do."""
    headers = request.headers
    return "x-goog-api-key" in headers or "x-goog-api-client" in headers or "key" in request.query


def _is_gemini_path(method: str, path: str) -> bool:
    # /v1/models/... is also OpenAI's (GET); only POSTs there are Gemini's
    return path.startswith("/v1beta/") or (method == "POST" and path.startswith("/v1/models/"))


class _Frames(Protocol):
    """The bytes of one streamed reply in one wire format (see :meth:`_Server.stream`)."""

    def open(self, first: str | None) -> bytes: ...

    def delta(self, text: str) -> bytes: ...

    def close(self, final: Response) -> bytes: ...

    def error(self, error: ApiError) -> bytes: ...


class _ChatFrames:
    """Chat Completions chunks: the role chunk, content chunks, tool calls, the finish (and usage) chunk, DONE."""

    __slots__ = ("_enc", "_include_usage")

    def __init__(self, enc: ChunkEncoder, *, include_usage: bool) -> None:
        self._enc = enc
        self._include_usage = include_usage

    def open(self, first: str | None) -> bytes:
        return self._enc.role() + (self._enc.content(first) if first else b"")

    def delta(self, text: str) -> bytes:
        return self._enc.content(text)

    def close(self, final: Response) -> bytes:
        tail = [self._enc.tool_calls(final.tool_calls)] if final.tool_calls else []
        tail.append(self._enc.finish(final))
        if self._include_usage:
            tail.append(self._enc.usage(final))
        tail.append(ChunkEncoder.DONE)
        return b"".join(tail)

    def error(self, error: ApiError) -> bytes:
        return self._enc.error(error)


class _Server:
    """The handlers of one application, bound to its router and settings."""

    def __init__(
        self, router: Router, *, api_key: str | None, max_body_bytes: int, passthrough_fields: Iterable[str]
    ) -> None:
        self.router = router
        self.closing = False
        self._key = api_key.encode() if api_key else None
        self._max_body = max_body_bytes
        self._passthrough = frozenset(passthrough_fields)
        self._models = ModelTable(router.config)
        secrets = [k for m in router.config.models for k in m.key_values()]
        if api_key:
            secrets.append(api_key)
        self._secrets = tuple(secrets)
        created = int(router.clock.time())
        listing = self._models.listing(created=created)
        self._listing_body = json.dumps(listing).encode()
        self._model_entries: dict[str, dict[str, Any]] = {m["id"]: m for m in listing["data"]}
        self._model_bodies = {name: json.dumps(m).encode() for name, m in self._model_entries.items()}
        windows = {m.name: m.context_window for m in router.config.models}
        self._gemini_models = {m["name"]: m for m in models_listing(self._models, context_windows=windows)["models"]}
        self._gemini_listing_body = json.dumps({"models": list(self._gemini_models.values())}).encode()

    # -- shared ---------------------------------------------------------------------------------------------

    def authorized(self, request: web.Request, *, x_api_key: bool = False) -> bool:
        """Whether *request* carries the server's key: ``Authorization: Bearer <key>``, or with *x_api_key* also
        Anthropic's ``x-api-key: <key>`` (Claude Code sends one or the other, the SDKs ``x-api-key``)."""
        if self._key is None:
            return True
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken does not depend on how much of the key a guess got right
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._key):
            return True
        if x_api_key:
            key = request.headers.get("x-api-key")
            return key is not None and hmac.compare_digest(key.strip().encode(), self._key)
        return False

    @staticmethod
    def unauthorized() -> web.Response:
        # never echo what the client sent: a near-miss key in a log or an error page is still a key
        error = ApiError(
            401,
            "Incorrect or missing API key: send it as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="asyncrouter"'},
        )
        return _error_response(error)

    def authorized_gemini(self, request: web.Request) -> bool:
        """Whether *request* carries the server's key as the Gemini clients send it: ``x-goog-api-key: <key>``
        (the SDKs, the Gemini CLI) or ``?key=<key>``; ``Authorization: Bearer <key>`` works too."""
        if self.authorized(request):
            return True
        assert self._key is not None  # authorized() admits every request when there is no key
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        return key is not None and hmac.compare_digest(key.strip().encode(), self._key)

    @staticmethod
    def unauthorized_gemini() -> web.Response:
        error = ApiError(
            401,
            "API key not valid: send the server's key as 'x-goog-api-key: <key>', '?key=<key>' or "
            "'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )
        return _gemini_response(error)

    @staticmethod
    def unauthorized_anthropic() -> web.Response:
        error = ApiError(
            401, "invalid x-api-key: send the server's key as 'x-api-key: <key>' or 'Authorization: Bearer <key>'."
        )
        return _anthropic_response(error)

    def api_error(self, exc: BaseException) -> ApiError:
        retry_in = None
        if isinstance(exc, CircuitOpen):
            waits = [s.retry_in for s in self.router.breakers.status().values() if s.retry_in is not None]
            retry_in = min(waits) if waits else None
        return api_error_from(exc, secrets=self._secrets, retry_in=retry_in)

    async def read_json(self, request: web.Request) -> Any:
        length = request.content_length
        if length is not None and length > self._max_body:
            raise _too_large(self._max_body)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(self._max_body) from None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from None

    def created(self) -> int:
        return int(self.router.clock.time())

    # -- handlers -------------------------------------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return self.unauthorized()
        try:
            call = parse_chat(await self.read_json(request), models=self._models, passthrough=self._passthrough)
        except ApiError as error:
            return _error_response(error)
        if call.stream:
            rid = uuid.uuid4().hex
            headers = dict(_SSE_HEADERS)
            headers["X-AsyncRouter-Request-Id"] = rid
            if call.ignored:
                headers["X-AsyncRouter-Ignored-Params"] = ignored_header(call.ignored)
            # The chunks' model is the requested name until the final chunk, which names the alias that answered
            # (the router does not say which model streams before the stream ends).
            enc = ChunkEncoder(completion_id="chatcmpl-" + rid, created=self.created(), model=call.requested)
            frames = _ChatFrames(enc, include_usage=call.include_usage)
            return await self.stream(
                request, call.messages, call.model, call.params, rid=rid, frames=frames, headers=headers
            )
        try:
            response = await self.router.aroute(messages=call.messages, model=call.model, **call.params)
        except RouterError as exc:
            return _error_response(self.api_error(exc))
        headers = meta_headers(response.meta)
        headers["Content-Type"] = _JSON
        if call.ignored:
            headers["X-AsyncRouter-Ignored-Params"] = ignored_header(call.ignored)
        body = completion_body(response, completion_id="chatcmpl-" + response.meta.request_id, created=self.created())
        return web.Response(body=body, headers=headers)

    async def stream(
        self,
        request: web.Request,
        messages: list[dict[str, Any]],
        model: str,
        params: dict[str, Any],
        *,
        rid: str,
        frames: _Frames,
        headers: dict[str, str],
        error_response: Callable[[ApiError], web.Response] = _error_response,
    ) -> web.StreamResponse:
        """Stream one routed reply as *frames* encodes it (Chat Completions chunks or Anthropic events)."""
        async with self.router.astream(messages=messages, model=model, request_id=rid, **params) as stream:
            # Wait for the first delta before sending anything: until then the router may still fall back to
            # another model, and an error (budget, no model, every provider down) gets its proper HTTP status.
            try:
                first: str | None = await anext(stream)
            except StopAsyncIteration:
                first = None  # a reply without text (tool calls only)
            except RouterError as exc:
                return error_response(self.api_error(exc))
            response = web.StreamResponse(headers=headers)
            try:
                await response.prepare(request)
                await response.write(frames.open(first))
                async for delta in stream:
                    await response.write(frames.delta(delta))
                final = stream.response
                if final is None:  # pragma: no cover  (the router always ends a stream with its response)
                    raise RouterError("the stream ended without a response")
                await response.write(frames.close(final))
            except ConnectionError:
                return response  # the client went away; leaving the block closes the router's stream
            except Exception as exc:
                if not isinstance(exc, RouterError):
                    logger.exception("asyncrouter server: stream failed")
                error = self.api_error(exc)
                try:
                    await response.write(frames.error(error))
                except ConnectionError:
                    return response
        await response.write_eof()
        return response

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/messages``: Anthropic's Messages API (see :mod:`asyncrouter.server._anthropic`)."""
        if not self.authorized(request, x_api_key=True):
            return self.unauthorized_anthropic()
        try:
            call = parse_messages(await self.read_json(request), models=self._models, passthrough=self._passthrough)
        except ApiError as error:
            return _anthropic_response(error)
        if call.stream:
            rid = uuid.uuid4().hex
            headers = dict(_SSE_HEADERS)
            headers["X-AsyncRouter-Request-Id"] = headers["request-id"] = rid
            if call.ignored:
                headers["X-AsyncRouter-Ignored-Params"] = ignored_header(call.ignored)
            frames = MessageEventEncoder(message_id="msg_" + rid, model=call.requested, call=call)
            return await self.stream(
                request,
                call.messages,
                call.model,
                call.params,
                rid=rid,
                frames=frames,
                headers=headers,
                error_response=_anthropic_response,
            )
        try:
            response = await self.router.aroute(messages=call.messages, model=call.model, **call.params)
        except RouterError as exc:
            return _anthropic_response(self.api_error(exc))
        headers = meta_headers(response.meta)
        headers["request-id"] = response.meta.request_id  # the anthropic SDKs expose it as ``_request_id``
        headers["Content-Type"] = _JSON
        if call.ignored:
            headers["X-AsyncRouter-Ignored-Params"] = ignored_header(call.ignored)
        body = message_body(response, message_id="msg_" + response.meta.request_id, call=call)
        return web.Response(body=body, headers=headers)

    async def count_tokens(self, request: web.Request) -> web.Response:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``, the router's own estimate; no model call."""
        if not self.authorized(request, x_api_key=True):
            return self.unauthorized_anthropic()
        try:
            body = await self.read_json(request)
            call = parse_messages(body, models=self._models, passthrough=self._passthrough, count_only=True)
        except ApiError as error:
            return _anthropic_response(error)
        payload = json.dumps({"input_tokens": count_tokens(call)}).encode()
        return web.Response(body=payload, headers={"Content-Type": _JSON})

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1beta/models/{model}:{method}``: Google's Gemini API (see :mod:`asyncrouter.server._gemini`)."""
        if not self.authorized_gemini(request):
            return self.unauthorized_gemini()
        model, sep, method = request.match_info["target"].rpartition(":")
        if not sep or method not in GEMINI_METHODS:
            return _gemini_response(
                ApiError(404, f"method {method[:80]!r} not found: use {', '.join(sorted(GEMINI_METHODS))}")
            )
        alt = request.query.get("alt")
        if method == "streamGenerateContent" and alt not in (None, "sse", "json"):
            return _gemini_response(ApiError(400, "alt must be 'sse' (what the SDKs send) or 'json'"))
        try:
            body = await self.read_json(request)
            call = parse_generate(
                body,
                model=model.removeprefix("models/"),
                models=self._models,
                passthrough=self._passthrough,
                count_only=method == "countTokens",
            )
        except ApiError as error:
            return _gemini_response(error)
        if method == "countTokens":
            payload = json.dumps({"totalTokens": gemini_count_tokens(call)}).encode()
            return web.Response(body=payload, headers={"Content-Type": _JSON})
        if method == "streamGenerateContent":
            rid = uuid.uuid4().hex
            sse = alt == "sse"
            headers = dict(_SSE_HEADERS) if sse else {"Content-Type": _JSON, "Cache-Control": "no-cache"}
            headers["X-AsyncRouter-Request-Id"] = rid
            if call.ignored:
                headers["X-AsyncRouter-Ignored-Params"] = ignored_header(call.ignored)
            frames = GenerateStreamEncoder(response_id=rid, model=call.requested, sse=sse)
            return await self.stream(
                request,
                call.messages,
                call.model,
                call.params,
                rid=rid,
                frames=frames,
                headers=headers,
                error_response=_gemini_response,
            )
        try:
            response = await self.router.aroute(messages=call.messages, model=call.model, **call.params)
        except RouterError as exc:
            return _gemini_response(self.api_error(exc))
        headers = meta_headers(response.meta)
        headers["Content-Type"] = _JSON
        if call.ignored:
            headers["X-AsyncRouter-Ignored-Params"] = ignored_header(call.ignored)
        return web.Response(body=generate_body(response, response_id=response.meta.request_id), headers=headers)

    async def gemini_models(self, request: web.Request) -> web.Response:
        """``GET /v1beta/models``: the accepted names in Gemini's ``models.list`` shape."""
        if not self.authorized_gemini(request):
            return self.unauthorized_gemini()
        return web.Response(body=self._gemini_listing_body, headers={"Content-Type": _JSON})

    async def gemini_model(self, request: web.Request) -> web.Response:
        """``GET /v1beta/models/{model}``: one of those (any accepted spelling describes what it resolves to)."""
        if not self.authorized_gemini(request):
            return self.unauthorized_gemini()
        name = request.match_info["model"].removeprefix("models/")
        try:
            entry = dict(self._gemini_models["models/" + self._models.resolve(name)], name="models/" + name)
        except ApiError as error:
            return _gemini_response(error)
        return web.Response(body=json.dumps(entry).encode(), headers={"Content-Type": _JSON})

    async def feedback(self, request: web.Request) -> web.Response:
        """``POST /v1/feedback``: ``{"request_id": ..., "rating": "up" | "down", "comment": ...}`` on a tracked
        reply (its ``X-AsyncRouter-Request-Id``); answers the stored vote."""
        if not self.authorized(request):
            return self.unauthorized()
        try:
            body = await self.read_json(request)
            if not isinstance(body, dict):
                raise ApiError(400, "the body must be a JSON object")
            request_id, rating, comment = body.get("request_id"), body.get("rating"), body.get("comment")
            if not isinstance(request_id, str) or not request_id:
                raise ApiError(400, "request_id must be a non-empty string", param="request_id")
            if not isinstance(rating, str | int) or isinstance(rating, float):
                raise ApiError(400, "rating must be 'up' or 'down' (or 1 / -1)", param="rating")
            if comment is not None and not isinstance(comment, str):
                raise ApiError(400, "comment must be a string", param="comment")
            if self.router.tracker is None:
                raise ApiError(409, "tracking is off (tracker.path is null): no feedback", code="tracking_disabled")
            try:
                vote = await self.router.afeedback(request_id, rating, comment=comment)
            except LookupError as exc:  # UnknownRequest
                raise ApiError(404, str(exc), code="request_not_found", param="request_id") from None
            except ValueError as exc:
                raise ApiError(400, str(exc), param="rating") from None
        except ApiError as error:
            return _error_response(error)
        return web.Response(body=json.dumps(vote.to_dict()).encode(), headers={"Content-Type": _JSON})

    async def embeddings(self, request: web.Request) -> web.Response:
        """``POST /v1/embeddings`` in OpenAI's format, through :meth:`Router.aembed`: ``model`` names a configured
        alias with an embeddings endpoint (there is no routing for embeddings); ``encoding_format`` float or
        base64 (the official SDK asks for base64), ``dimensions`` passed on."""
        if not self.authorized(request):
            return self.unauthorized()
        try:
            body = await self.read_json(request)
            texts, alias, dimensions, encoding = _embeddings_call(body, (m.name for m in self.router.config.models))
            try:
                reply = await self.router.aembed(texts, model=alias, dimensions=dimensions)
            except ValueError as exc:  # ConfigError: no embeddings endpoint
                raise ApiError(400, str(exc), param="model") from None
            except RouterError as exc:
                raise self.api_error(exc) from None
        except ApiError as error:
            return _error_response(error)
        data = [
            {"object": "embedding", "index": i, "embedding": _b64_floats(v) if encoding == "base64" else v}
            for i, v in enumerate(reply.vectors)
        ]
        usage = {"prompt_tokens": reply.input_tokens, "total_tokens": reply.input_tokens}
        out = {"object": "list", "data": data, "model": alias, "usage": usage}
        return web.Response(body=json.dumps(out).encode(), headers={"Content-Type": _JSON})

    async def list_models(self, request: web.Request) -> web.Response:
        if _is_gemini_client(request):
            return await self.gemini_models(request)
        if not self.authorized(request):
            return self.unauthorized()
        return web.Response(body=self._listing_body, headers={"Content-Type": _JSON})

    async def get_model(self, request: web.Request) -> web.Response:
        if _is_gemini_client(request):
            return await self.gemini_model(request)
        if not self.authorized(request):
            return self.unauthorized()
        name = request.match_info["model"]
        body = self._model_bodies.get(name)
        if body is None:
            try:  # any accepted spelling ("smart/auto", a provider model id) describes what it resolves to
                entry = dict(self._model_entries[self._models.resolve(name)], id=name)
            except ApiError as error:
                return _error_response(error)
            body = json.dumps(entry).encode()
        return web.Response(body=body, headers={"Content-Type": _JSON})

    async def healthz(self, request: web.Request) -> web.Response:
        """``ok`` | ``degraded`` (a breaker open, budget past warn) with 200; ``unavailable`` | ``shutting_down``
        with 503. Breaker and budget details only for callers that could call the API."""
        router = self.router
        budget = router.budget.status()
        blocked = router.breakers.snapshot()
        total = len(router.config.models)
        exhausted = budget.state == "exhausted" and router.config.budget.on_exhausted == "reject"
        if self.closing:
            status = "shutting_down"
        elif len(blocked) >= total or exhausted:
            status = "unavailable"
        elif blocked or budget.state != "normal":
            status = "degraded"
        else:
            status = "ok"
        body: dict[str, Any] = {"status": status}
        if self.authorized(request):
            body["models"] = {"total": total, "available": total - len(blocked), "blocked": dict(blocked)}
            body["breakers"] = {name: s.state for name, s in router.breakers.status().items() if s.state != "closed"}
            body["budget"] = {
                "state": budget.state,
                "spent_usd": budget.spent,
                "reserved_usd": budget.reserved,
                "remaining_usd": budget.remaining,
                "limit_usd": budget.limit,
                "day": budget.day,
            }
        code = 503 if status in ("unavailable", "shutting_down") else 200
        return web.Response(status=code, body=json.dumps(body).encode(), headers={"Content-Type": _JSON})


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {limit} bytes", code="request_too_large")


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, ...) and unexpected ones (500) in OpenAI's error shape (Anthropic's under
    ``/v1/messages``)."""
    respond = _anthropic_response if _is_anthropic_path(request.path) else _error_response
    if _is_gemini_path(request.method, request.path):
        respond = _gemini_response
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return respond(ApiError(exc.status, exc.reason, code=_HTTP_CODES.get(exc.status)))
    except Exception:
        logger.exception("asyncrouter server: unhandled error on %s %s", request.method, request.path)
        return respond(ApiError(500, "internal server error", type="server_error", code="internal_error"))


def create_app(
    router: Router,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    passthrough_fields: Iterable[str] = (),
    dashboard: bool = True,
) -> web.Application:
    """Build the aiohttp application for *router*: OpenAI's Chat Completions, Anthropic's Messages API and
    Google's Gemini API.

    The application does not open or close the router: do that around it (:func:`serve` does), e.g. with
    ``async with router:`` or in a ``cleanup_ctx``. Requests arriving while it is closed get a 503.

    Args:
        router: the router that answers every request.
        api_key: the bearer key clients must send (``Authorization: Bearer <key>``; the ``/v1/messages``
            endpoints also take it as ``x-api-key: <key>``, the Gemini ones as ``x-goog-api-key: <key>`` or
            ``?key=<key>``); ``None`` or ``""`` disables authentication. It is
            never logged or echoed.
        max_body_bytes: the largest request body accepted; larger ones get a 413 ``request_too_large``.
        passthrough_fields: request fields, beyond the ones the router understands, to forward to the provider
            unchanged (as ``extra_body``), e.g. ``("frequency_penalty", "presence_penalty")`` when every
            configured model accepts them. Other unknown fields are ignored and named in the reply's
            ``X-AsyncRouter-Ignored-Params`` header.
        dashboard: serve the dashboard: the page at ``/dashboard`` (public: it holds no data) and its data at
            ``/v1/asyncrouter/stats``, ``logs``, ``breakers`` and ``budget`` (behind *api_key*, like the API:
            the logs hold prompt previews). With ``False`` none of those routes exist.

    Returns:
        The application; ``app[ROUTER_KEY]`` is the router.

    .. versionadded:: 0.1
    """
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    server = _Server(router, api_key=api_key, max_body_bytes=max_body_bytes, passthrough_fields=passthrough_fields)
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_json_errors])
    app[ROUTER_KEY] = router
    app[_SERVER_KEY] = server
    app.router.add_post("/v1/chat/completions", server.chat_completions)
    app.router.add_post("/v1/messages", server.messages)
    app.router.add_post("/v1/messages/count_tokens", server.count_tokens)
    app.router.add_post("/v1/feedback", server.feedback)
    app.router.add_post("/v1/embeddings", server.embeddings)
    app.router.add_get("/v1/models", server.list_models)
    app.router.add_get("/v1/models/{model:.+}", server.get_model)
    app.router.add_get("/healthz", server.healthz)
    for version in ("/v1beta", "/v1"):
        app.router.add_post(version + "/models/{target:.+}", server.gemini)
    app.router.add_get("/v1beta/models", server.gemini_models)
    app.router.add_get("/v1beta/models/{model:.+}", server.gemini_model)
    if dashboard:
        add_dashboard(app, router, server)
    return app


_SERVER_KEY: Final = web.AppKey("asyncrouter.server", _Server)


def mark_closing(app: web.Application) -> None:
    """Make ``/healthz`` answer 503 ``shutting_down`` (load balancers stop sending) while the server drains."""
    app[_SERVER_KEY].closing = True


def _embeddings_call(body: Any, aliases: Iterable[str]) -> tuple[list[str], str, int | None, str]:
    """(texts, alias, dimensions, encoding) of an OpenAI embeddings request, or an :class:`ApiError` naming the
    field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    alias = body.get("model")
    if not isinstance(alias, str) or alias not in set(aliases):
        raise ApiError(
            404 if isinstance(alias, str) else 400,
            f"model {str(alias)[:60]!r} is not a configured model: embeddings take a model alias (no routing)",
            code="model_not_found",
            param="model",
        )
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ApiError(400, "input must be a string or a non-empty list of strings", param="input")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise ApiError(400, "dimensions must be a positive integer", param="dimensions")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be 'float' or 'base64'", param="encoding_format")
    return texts, alias, dimensions, encoding


def _b64_floats(vector: list[float]) -> str:
    """A vector as OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
