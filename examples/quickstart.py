"""Quickstart: start the fake fleet, route a few prompts, and print how each one was routed. No API keys.

Run it with ``python examples/quickstart.py``. Swap the fleet for your own ``asyncrouter.yaml``
(``asyncrouter init --provider openai``) and ``Router.from_yaml("asyncrouter.yaml")`` to use real models.
"""

from __future__ import annotations

import anyio

from asyncrouter import Router
from asyncrouter.testing import FakeProviderServer, default_fleet

PROMPTS = [
    "What is the capital of Australia?",
    "Write a Python function that merges two sorted lists and explain its complexity.",
    "Prove that there are infinitely many prime numbers.",
    "Übersetze ins Englische: 'Der Zug fährt um acht Uhr ab.'",
    "Write a short story about a lighthouse keeper who finds a letter from the future.",
]


async def main() -> None:
    # Three fake models on 127.0.0.1 (cheap, medium, strong) with a fifth of realistic latency.
    async with FakeProviderServer(models=default_fleet(speed=0.2, faults=False), seed=1) as fleet:
        config = fleet.config_dict(default_model="fake-cheap")  # tracker in memory
        async with Router.from_dict(config) as router:
            decision = router.classify(PROMPTS[2])  # the decision alone: no call, no I/O
            print(f"classify: task={decision.task_type} tier={decision.tier} chain={' -> '.join(decision.chain)}")
            print(f"          reason: {decision.reason}")
            print()

            for prompt in PROMPTS:
                r = await router.aroute(prompt, max_tokens=400)
                m = r.meta
                print(f"{prompt[:60]!r}")
                print(
                    f"  -> {m.model} ({m.routing_layer}, tier {m.tier}, task {m.task_type}): "
                    f"{m.input_tokens}+{m.output_tokens} tokens, ${m.estimated_cost_usd:.6f}, "
                    f"{m.latency_ms:.0f} ms, {m.escalations} escalation(s)"
                )
                for a in m.attempts:
                    if a.outcome != "ok":
                        print(f"     left {a.model}: {a.reason}")
                print(f"     {r.content[:90]}...")

            print()
            print("stream: ", end="")
            async with router.astream("Write a haiku about the sea", max_tokens=100) as stream:
                async for delta in stream:
                    print(delta, end="", flush=True)
            print()
            if stream.response is not None:
                print(f"  streamed by {stream.response.meta.model}, {stream.response.meta.output_tokens} tokens")

            stats = await router.stats(baseline="fake-strong")
            print()
            print(f"requests: {stats.requests}, cost ${stats.cost_usd:.4f}")
            if stats.savings is not None and stats.savings.savings_pct is not None:
                print(
                    f"all-strong would have cost ${stats.savings.baseline_cost_usd:.4f}: "
                    f"{stats.savings.savings_pct:.0f}% saved"
                )


if __name__ == "__main__":
    anyio.run(main)
