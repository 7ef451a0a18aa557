"""The router inside an aiohttp.web service. No API keys.

The application's cleanup context owns the router: it is opened when the app starts and closed (tracker drained,
HTTP session closed) when it stops, in the same task, which is what the router asks for. Handlers reach it
through an ``AppKey``. The example starts the service on a free port, calls it once with an aiohttp client,
prints the answer and exits.

Run it with ``python examples/aiohttp_service.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anyio
from aiohttp import web

from asyncrouter import ProviderError, Router, RouterError
from asyncrouter.testing import FakeProviderServer, default_fleet

ROUTER = web.AppKey("router", Router)


async def router_context(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: the router is open exactly while the app runs."""
    async with app[ROUTER]:
        yield


async def ask(request: web.Request) -> web.Response:
    body = await request.json()
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return web.json_response({"error": 'send {"prompt": "..."}'}, status=400)
    router = request.app[ROUTER]
    try:
        r = await router.aroute(prompt, max_tokens=300)
    except ProviderError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    except RouterError as exc:  # budget, breakers, every model failed
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=503)
    m = r.meta
    return web.json_response({"answer": r.content, "model": m.model, "tier": m.tier, "cost_usd": m.estimated_cost_usd})


def create_app(router: Router) -> web.Application:
    app = web.Application()
    app[ROUTER] = router
    app.cleanup_ctx.append(router_context)
    app.router.add_post("/ask", ask)
    return app


async def main() -> None:
    async with FakeProviderServer(models=default_fleet(speed=0.2, faults=False), seed=2) as fleet:
        router = Router.from_dict(fleet.config_dict(default_model="fake-cheap"))
        runner = web.AppRunner(create_app(router))
        await runner.setup()  # runs the cleanup context's startup half: the router opens
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            url = f"http://{host}:{port}/ask"
            print(f"service listening on {url}")
            async with aiohttp.ClientSession() as session:
                payload = {"prompt": "Write a Python function that checks whether a string is a palindrome."}
                async with session.post(url, json=payload) as resp:
                    data = await resp.json()
                    print(f"HTTP {resp.status}: model={data['model']} tier={data['tier']} cost=${data['cost_usd']:.6f}")
                    print(f"answer: {data['answer'][:100]}...")
        finally:
            await runner.cleanup()  # the router closes here
    print("service stopped")


if __name__ == "__main__":
    anyio.run(main)
