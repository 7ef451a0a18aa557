"""An OpenAI-compatible HTTP server in front of a :class:`~asyncrouter.Router` (aiohttp.web).

Point any OpenAI client at it and let the router pick the model::

    from openai import OpenAI

    client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="...")   # the key in ASYNCROUTER_API_KEY
    r = client.chat.completions.with_raw_response.create(model="auto", messages=[...])
    r.headers["X-AsyncRouter-Model"]     # the alias that answered; also -Provider, -Routing-Layer, -Cost-USD, ...

Run it with ``asyncrouter serve --config asyncrouter.yaml`` or ``await serve(router)``; embed it in your own
aiohttp service with :func:`create_app`.

``model`` takes ``"auto"``, a profile (``eco``, ``premium``, ``free``, ``agentic`` or the config's), a model
alias (pinned), the same behind a ``smart/`` or ``asyncrouter/`` prefix (``smart/auto``), or a provider model
id that names exactly one configured model. Non-streamed replies carry the routing metadata in
``X-AsyncRouter-*`` headers; streamed ones carry it in the final chunk's ``x_asyncrouter`` object (the router
settles the model, cost and escalations only as the stream ends). Errors use OpenAI's error shape and status
codes (see :mod:`asyncrouter.server._errors` for the table).

It also speaks Anthropic's Messages API (``POST /v1/messages``, streamed or not, and
``POST /v1/messages/count_tokens``), so Claude Code (``ANTHROPIC_BASE_URL=http://127.0.0.1:8080``,
``ANTHROPIC_MODEL=auto``) and the ``anthropic`` SDKs route through it; the key may then come as ``x-api-key``.
Those replies carry the same ``X-AsyncRouter-*`` headers (streams: ``x_asyncrouter`` in ``message_delta``) and
errors use Anthropic's shape (see :mod:`asyncrouter.server._anthropic`).

And Google's Gemini API (``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent``,
``:countTokens``, ``GET /v1beta/models``; also under ``/v1``), so the ``google-genai`` SDKs and the Gemini CLI
(``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8080``) route through it; the key may then come as ``x-goog-api-key``
or ``?key=``, and errors use Google's shape (see :mod:`asyncrouter.server._gemini`).

A dashboard comes with it: open ``http://127.0.0.1:8080/dashboard`` (:data:`DASHBOARD_PATH`) for totals, cost
per day, breakdowns by model, task, tier and routing layer, recent requests, breakers and budget, refreshed
every few seconds (``?refresh=N``, ``?since=24h``). Its data is JSON under ``/v1/asyncrouter/`` (``stats``,
``logs``, ``breakers``, ``budget``) behind the same key as the API; the page asks for the key once and keeps
it in the tab's ``sessionStorage``. ``create_app(..., dashboard=False)`` (``serve --no-dashboard``) leaves all
of it out. See :mod:`asyncrouter.server._dashboard`.

.. versionadded:: 0.1
"""

from ._app import DEFAULT_MAX_BODY_BYTES, ROUTER_KEY, create_app
from ._dashboard import DASHBOARD_PATH
from ._serve import DEFAULT_API_KEY_ENV, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SHUTDOWN_TIMEOUT, serve

__all__ = [
    "DASHBOARD_PATH",
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "ROUTER_KEY",
    "create_app",
    "serve",
]
