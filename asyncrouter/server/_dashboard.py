"""The dashboard: read-only JSON endpoints over the router's state, and one self-contained page that draws them.

Routes (added by :func:`~asyncrouter.server.create_app` unless ``dashboard=False``)::

    GET /v1/asyncrouter/stats      Router.stats(): totals, breakdowns, savings    ?since=24h&until=...&baseline=ALIAS
    GET /v1/asyncrouter/logs       Router.logs(): the newest records, newest first  ?last_n=50&model=ALIAS&status=ok
    GET /v1/asyncrouter/breakers   router.breakers.status(): every circuit breaker
    GET /v1/asyncrouter/budget     router.budget.status(): today's spend against the cap
    GET /dashboard                 the page (HTML); /dashboard/app.js and /dashboard/app.css beside it

The JSON is what ``asyncrouter stats|logs|breakers|budget --json`` prints, and needs the API's key (the same
bearer check as ``/v1/chat/completions``): the logs hold prompt previews. The page and its script and style
sheet hold no data and are public; the script asks for the key once, keeps it in ``sessionStorage`` (gone when
the tab closes) and sends it as ``Authorization: Bearer <key>`` on its fetches.

The page loads nothing from elsewhere and runs under a strict Content-Security-Policy (scripts and styles from
the server only, no inline script, no inline handler, fetches to the server only), and the script writes every
value with ``textContent``. The JSON escapes ``<``, ``>`` and ``&`` as ``\\u003c`` and so on, so a prompt
preview holding markup is inert even where a careless consumer pastes the body into HTML.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Final, Protocol

from aiohttp import web

from .._engine import Router
from .._exceptions import RouterError
from ._errors import ApiError

__all__ = [
    "DASHBOARD_PATH",
    "DEFAULT_LOGS_LAST_N",
    "DEFAULT_REFRESH_SECONDS",
    "MAX_LOGS_LAST_N",
    "add_dashboard",
]

#: Where the page is served.
DASHBOARD_PATH: Final = "/dashboard"
#: Records ``/v1/asyncrouter/logs`` returns when ``last_n`` is not given.
DEFAULT_LOGS_LAST_N: Final = 50
#: The most records one ``/v1/asyncrouter/logs`` call returns.
MAX_LOGS_LAST_N: Final = 1000
#: Seconds between the page's refreshes (``/dashboard?refresh=N``; ``0`` stops them). Kept in step with app.js.
DEFAULT_REFRESH_SECONDS: Final = 5

_API_PREFIX: Final = "/v1/asyncrouter"
_STATUSES: Final = frozenset({"ok", "error", "cancelled"})

# The page: its own origin only, nothing inline, not framed. 'self' for scripts and styles (the two files
# beside the page) rather than a nonce: the page is a constant, cached, and needs no per-response secret.
_PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Data is never a document: nothing loads or runs in it even if a browser is pointed at it.
_DATA_CSP: Final = "default-src 'none'; frame-ancestors 'none'; sandbox"
_COMMON_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",  # a JSON body is never sniffed into HTML
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_JSON_HEADERS: Final = {
    **_COMMON_HEADERS,
    "Content-Type": "application/json",
    "Content-Security-Policy": _DATA_CSP,
    "Cache-Control": "no-store",  # live figures and prompt previews: neither cached nor kept by a proxy
}
# (file in static/, Content-Type)
_STATIC: Final = {
    "": ("dashboard.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
# Characters that could end a string inside HTML or a <script>, escaped the way JSON allows.
_HTML_UNSAFE: Final = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class _Auth(Protocol):
    """The server's bearer check (``_Server`` in ``_app.py``)."""

    def authorized(self, request: web.Request, *, x_api_key: bool = False) -> bool: ...

    def unauthorized(self) -> web.Response: ...


def _finite(value: Any) -> Any:
    """*value* with every NaN or infinity replaced by ``None``: browsers' ``JSON.parse`` refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False).translate(_HTML_UNSAFE)
    return web.Response(status=status, body=text.encode(), headers={**_JSON_HEADERS, **(headers or {})})


def _error(error: ApiError) -> web.Response:
    return _json(error.payload(), status=error.status, headers=dict(error.headers))


def _window(request: web.Request, name: str) -> datetime | timedelta | None:
    """The ``since`` / ``until`` query parameter, in the CLI's forms: ``24h``, ``7d``, an ISO date/time."""
    text = request.query.get(name)
    if text is None or not text.strip():
        return None
    # Imported here, not at the top: the CLI module pulls in rich, which an embedded server never needs.
    from ..cli import parse_since

    try:
        return parse_since(text)
    except argparse.ArgumentTypeError as exc:
        raise ApiError(400, str(exc), code="invalid_window", param=name) from None


def _last_n(request: web.Request) -> int:
    text = request.query.get("last_n")
    if text is None:
        return DEFAULT_LOGS_LAST_N
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_LOGS_LAST_N:
        raise ApiError(400, f"last_n must be a whole number from 1 to {MAX_LOGS_LAST_N}", param="last_n")
    return n


class _Dashboard:
    """The handlers, bound to one router and the server's key check."""

    def __init__(self, router: Router, auth: _Auth, pages: dict[str, tuple[bytes, str]]) -> None:
        self.router = router
        self.auth = auth
        self.pages = pages
        self.models = frozenset(m.name for m in router.config.models)

    def _guard(self, request: web.Request) -> web.Response | None:
        if self.auth.authorized(request):
            return None
        response = self.auth.unauthorized()
        response.headers.update(_COMMON_HEADERS)
        return response

    async def stats(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        baseline = request.query.get("baseline") or None
        try:
            since, until = _window(request, "since"), _window(request, "until")
            if baseline is not None and baseline not in self.models:
                raise ApiError(400, f"unknown baseline model {baseline!r}", code="model_not_found", param="baseline")
            if self.router.tracker is None:
                raise ApiError(
                    409, "tracking is disabled (tracker.path is null): there are no stats", code="tracking_disabled"
                )
            stats = await self.router.stats(since=since, until=until, baseline=baseline)
        except ApiError as error:
            return _error(error)
        except RouterError as exc:  # the router is closed, or the tracker failed
            return _error(_router_error(exc))
        return _json(stats.to_dict())

    async def logs(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        status = request.query.get("status") or None
        model = request.query.get("model") or None
        try:
            last_n = _last_n(request)
            since, until = _window(request, "since"), _window(request, "until")
            if status is not None and status not in _STATUSES:
                raise ApiError(400, f"status must be one of {', '.join(sorted(_STATUSES))}", param="status")
            records = await self.router.logs(last_n=last_n, model=model, since=since, until=until, status=status)
        except ApiError as error:
            return _error(error)
        except RouterError as exc:
            return _error(_router_error(exc))
        return _json([r.to_dict() for r in records])

    async def breakers(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return _json({name: dataclasses.asdict(s) for name, s in self.router.breakers.status().items()})

    async def budget(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        backend = self.router.config.budget.backend
        try:
            # a shared backend: read the other processes' spend too, as `asyncrouter budget` does
            status = await self.router.budget.refresh() if backend == "redis" else self.router.budget.status()
        except RouterError as exc:
            return _error(_router_error(exc))
        data = dataclasses.asdict(status)
        data["backend"] = backend
        return _json(data)

    def page(self, suffix: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        body, content_type = self.pages[suffix]
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {
            **_COMMON_HEADERS,
            "Content-Type": content_type,
            "Content-Security-Policy": _PAGE_CSP,
            "Cache-Control": "no-cache",  # revalidate (cheap, by ETag): an upgrade shows at once
            "ETag": etag,
        }

        async def handler(request: web.Request) -> web.Response:
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
            return web.Response(body=body, headers=headers)

        return handler


def _router_error(exc: RouterError) -> ApiError:
    # Not api_error_from: its mapping is about routing a request (budget, breakers, providers), and none of
    # that applies to reading state. A router that cannot answer is unavailable.
    return ApiError(503, str(exc), type="service_unavailable", code="router_unavailable")


def _load_static() -> dict[str, tuple[bytes, str]]:
    root = resources.files("asyncrouter.server").joinpath("static")
    return {suffix: (root.joinpath(name).read_bytes(), ctype) for suffix, (name, ctype) in _STATIC.items()}


def add_dashboard(app: web.Application, router: Router, auth: _Auth) -> None:
    """Add the dashboard's routes (see the module docstring) to *app*, guarded by *auth*'s key check."""
    board = _Dashboard(router, auth, _load_static())
    app.router.add_get(f"{_API_PREFIX}/stats", board.stats)
    app.router.add_get(f"{_API_PREFIX}/logs", board.logs)
    app.router.add_get(f"{_API_PREFIX}/breakers", board.breakers)
    app.router.add_get(f"{_API_PREFIX}/budget", board.budget)
    for suffix in _STATIC:
        app.router.add_get(DASHBOARD_PATH + suffix, board.page(suffix))
