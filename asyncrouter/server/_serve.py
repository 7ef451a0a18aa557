"""Run the OpenAI-compatible server until cancelled or told to stop by SIGINT / SIGTERM, then drain.

Shutdown order: ``/healthz`` turns 503, the listening socket closes (no new connections), idle keep-alive
connections close, in-flight requests get up to ``shutdown_timeout`` seconds to finish (then they are
cancelled), and last the router closes, which writes every queued tracker record.
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

import anyio
import anyio.lowlevel
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from anyio.abc import TaskStatus

from .._config import Config
from .._engine import Router
from .._exceptions import ConfigError
from ._app import DEFAULT_MAX_BODY_BYTES, create_app, mark_closing
from ._dashboard import DASHBOARD_PATH

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "serve",
]

logger = logging.getLogger("asyncrouter.server")

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
#: The environment variable holding the bearer key clients must send.
DEFAULT_API_KEY_ENV: Final = "ASYNCROUTER_API_KEY"
#: Seconds in-flight requests get to finish at shutdown before they are cancelled.
DEFAULT_SHUTDOWN_TIMEOUT: Final = 30.0


def is_loopback(host: str) -> bool:
    """Whether *host* only accepts connections from this machine (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or "" = every interface): assume it is reachable from elsewhere


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _router(router_or_config: Router | Config | Mapping[str, Any] | str | os.PathLike[str]) -> Router:
    if isinstance(router_or_config, Router):
        return router_or_config
    if isinstance(router_or_config, str | os.PathLike):
        return Router.from_yaml(router_or_config)
    return Router(router_or_config)


async def _stop_on_signal(signals: AsyncIterator[int], stop: anyio.Event) -> None:
    async for signum in signals:
        logger.info("asyncrouter server: %s received, shutting down", signal.Signals(signum).name)
        stop.set()
        return


async def _stop_when_cancelled(stop: anyio.Event, *, task_status: TaskStatus[None]) -> None:
    """Turn the caller's cancellation into a stop request for the (shielded) server lifetime."""
    try:
        task_status.started()
        await anyio.sleep_forever()
    finally:
        stop.set()


async def _run(
    router: Router,
    app: web.Application,
    runner: web.AppRunner,
    *,
    host: str,
    port: int,
    authenticated: bool,
    dashboard: bool,
    on_ready: Callable[[str], object] | None,
    handle_signals: bool,
    stop: anyio.Event,
) -> None:
    """The server's whole life: open the router, listen, wait for *stop*, drain, close the router."""
    async with router:
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            url = _url(str(bound_host), int(bound_port))
            logger.info("asyncrouter server listening on %s (%s)", url, "bearer auth" if authenticated else "no auth")
            if dashboard:
                logger.info("asyncrouter dashboard on %s%s", url, DASHBOARD_PATH)
            with contextlib.ExitStack() as stack:
                signals = None
                if handle_signals and threading.current_thread() is threading.main_thread():
                    # installed before on_ready: a signal sent once the caller knows the URL is never missed
                    signals = stack.enter_context(anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM))
                if on_ready is not None:
                    result = on_ready(url)
                    if inspect.isawaitable(result):
                        await result
                async with anyio.create_task_group() as tg:
                    if signals is not None:
                        tg.start_soon(_stop_on_signal, signals, stop)
                    await stop.wait()
                    tg.cancel_scope.cancel()
        finally:
            mark_closing(app)
            await runner.cleanup()  # stop listening, let in-flight requests finish (bounded), close connections
            logger.info("asyncrouter server stopped; closing the router")


class _AccessLogger(AbstractAccessLogger):
    """One line per request: client, method, path, status, bytes, seconds. The query string is left out: Gemini
    clients may send their key as ``?key=``, and no key may reach a log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.6f',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


async def serve(
    router_or_config: Router | Config | Mapping[str, Any] | str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    api_key_env: str = DEFAULT_API_KEY_ENV,
    on_ready: Callable[[str], object] | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    allow_remote_without_auth: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    passthrough_fields: tuple[str, ...] = (),
    handle_signals: bool = True,
    access_log: bool = False,
    dashboard: bool = True,
) -> None:
    """Serve the OpenAI-compatible API (see :func:`create_app`) until cancelled, SIGINT or SIGTERM.

    The router is opened here and closed on the way out (``serve`` owns it): in-flight requests get
    *shutdown_timeout* seconds to finish, then the tracker's queue is written before ``serve`` returns.

    Authentication: the bearer key is read from the environment variable *api_key_env*. When it is unset or
    empty there is no authentication, and ``serve`` then refuses to listen on anything but a loopback address
    (``127.0.0.1``, ``::1``, ``localhost``) unless *allow_remote_without_auth* is true: an open router spends
    your provider keys for whoever finds it.

    Args:
        router_or_config: a :class:`~asyncrouter.Router`, a :class:`~asyncrouter.Config` or mapping, or the
            path of a YAML config.
        host: the address to listen on.
        port: the port; ``0`` picks a free one (*on_ready* receives the URL).
        api_key_env: the environment variable holding the key clients must send.
        on_ready: called with the base URL (``http://127.0.0.1:8080``) once the server accepts connections;
            may be async.
        shutdown_timeout: seconds in-flight requests get to finish at shutdown.
        allow_remote_without_auth: listen on a non-loopback address without a key.
        max_body_bytes: the largest request body accepted (413 above it).
        passthrough_fields: extra request fields forwarded to providers (see :func:`create_app`).
        handle_signals: stop on SIGINT / SIGTERM (only possible in the main thread; ignored elsewhere).
        access_log: log one line per request on ``aiohttp.access`` (off by default: it costs throughput).
        dashboard: serve the dashboard at ``/dashboard`` and its data under ``/v1/asyncrouter/`` (see
            :func:`create_app`).

    Raises:
        ConfigError: no key is set and *host* is not a loopback address (``path`` is ``"host"``), or the
            configuration is invalid.
        OSError: the address cannot be bound.

    .. versionadded:: 0.1
    """
    api_key = os.environ.get(api_key_env) or None
    if api_key is None and not is_loopback(host) and not allow_remote_without_auth:
        raise ConfigError(
            f"refusing to listen on {host!r} without authentication: set {api_key_env}, listen on 127.0.0.1, "
            "or pass allow_remote_without_auth=True",
            path="host",
        )
    router = _router(router_or_config)
    app = create_app(
        router,
        api_key=api_key,
        max_body_bytes=max_body_bytes,
        passthrough_fields=passthrough_fields,
        dashboard=dashboard,
    )
    runner = web.AppRunner(
        app,
        handle_signals=False,  # signals are ours (anyio), so cancellation and signals share one shutdown path
        handler_cancellation=True,  # a client that hangs up cancels its request: no tokens paid for nobody
        shutdown_timeout=shutdown_timeout,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        access_log_class=_AccessLogger,
    )
    # The server's life runs shielded: a cancelled caller must not tear down the router (and its tracker writer)
    # under requests still in flight. Cancellation only asks it to stop; serve() re-raises it once all is closed.
    stop = anyio.Event()
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        await tg.start(_stop_when_cancelled, stop)
        try:
            with anyio.CancelScope(shield=True):
                await _run(
                    router,
                    app,
                    runner,
                    host=host,
                    port=port,
                    authenticated=api_key is not None,
                    dashboard=dashboard,
                    on_ready=on_ready,
                    handle_signals=handle_signals,
                    stop=stop,
                )
        except BaseException as exc:  # re-raised below as it is, not wrapped in the task group's ExceptionGroup
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    await anyio.lowlevel.checkpoint_if_cancelled()
