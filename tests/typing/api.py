"""Uses the public API the way DESIGN.md promises. Type-checked by mypy --strict in CI, never run."""

from __future__ import annotations

import anyio

from asyncrouter import (
    AllProvidersFailed,
    BreakerStatus,
    BudgetStatus,
    GateInput,
    ProviderError,
    RequestRecord,
    Response,
    ResponseMeta,
    Router,
    RoutingDecision,
    Stats,
)


async def must_mention_sources(reply: GateInput) -> str | None:
    return None if "source" in reply.content else "no sources"


async def main() -> None:
    router = Router.from_yaml("asyncrouter.yaml", quality_gates=[must_mention_sources])
    async with router:
        r: Response = await router.aroute("Write a FastAPI endpoint that streams SSE events")
        content: str = r.content
        meta: ResponseMeta = r.meta
        model: str = meta.model
        layer: str = meta.routing_layer
        cost: float = meta.estimated_cost_usd
        tokens: int = meta.input_tokens + meta.output_tokens
        for attempt in meta.attempts:
            reason: str = attempt.reason
            print(attempt.model, attempt.outcome, reason, attempt.cost_usd)
        r2 = await router.aroute(
            messages=[{"role": "user", "content": "hi"}], max_tokens=256, temperature=0.2, model="eco"
        )
        async with router.astream("Tell me a story") as stream:
            async for delta in stream:
                text: str = delta
                print(text)
        if stream.response is not None:
            print(stream.response.meta.output_tokens)
        results = await router.aroute_many(["a", "b"], concurrency=64)
        for item in results:
            if isinstance(item, Response):
                print(item.content)
            elif isinstance(item, ProviderError | AllProvidersFailed):
                print(item)
        async with router.astream_many(iter(["x"] * 10), concurrency=8) as batch:
            async for index, result in batch:
                print(index, result)
        decision: RoutingDecision = router.classify("Prove that sqrt(2) is irrational")
        chain: list[str] = decision.chain
        logs = await router.logs(last_n=5)
        stats: Stats = await router.stats()
        budget: BudgetStatus = router.budget.status()
        breakers: dict[str, BreakerStatus] = router.breakers.status()
        print(content, model, layer, cost, tokens, r2, chain, logs, stats.cost_usd, budget.remaining, breakers)


def script() -> None:
    # the synchronous API, for code with no event loop
    router = Router.from_yaml("asyncrouter.yaml")
    with router:
        sync: Response = router.route("hello", max_tokens=50)
        print(sync.content)
        for run in router.logs(last_n=5):
            record: RequestRecord = run
            print(record.model)
    router.close()


if __name__ == "__main__":
    anyio.run(main)
