"""A cascade with your own async quality gates. No API keys.

The built-in gates (empty, too short, hedging, refusal, truncated, invalid JSON, missing tool call) run first;
when they pass, each custom gate runs in order. A gate returns ``True`` or ``None`` to accept the reply, or
``False`` or a reason to reject it; a rejected reply sends the request on to the next, stronger model. A gate
can be a plain ``async def`` (named after the function) or an object with a ``name`` and an async ``__call__``
(:class:`~asyncrouter.QualityGate`), e.g. one that asks a judge model.

Run it with ``python examples/custom_gate.py``.
"""

from __future__ import annotations

import anyio

from asyncrouter import GateInput, Router
from asyncrouter.testing import FakeProviderServer, default_fleet

LONG_FORM = ("explain", "write", "prove", "compare", "describe")


class MinWords:
    """Long-form answers need at least ``words`` words: a stand-in for a call to a judge model."""

    name = "min_words"

    def __init__(self, words: int) -> None:
        self.words = words

    async def __call__(self, reply: GateInput, /) -> str | None:
        if not reply.prompt.lower().startswith(LONG_FORM):
            return None  # a short question may get a short answer: not this gate's business
        n = len(reply.content.split())
        return None if n >= self.words else f"{n} words < {self.words} for a long-form answer"


async def on_topic(reply: GateInput) -> bool:
    """The reply must mention at least one of the prompt's longer words."""
    words = {w.strip(".,?!'\"").lower() for w in reply.prompt.split() if len(w) > 5}
    text = reply.content.lower()
    return not words or any(w in text for w in words)


PROMPTS = [
    "Explain step by step why compound interest grows exponentially.",
    "Write a short story about a lighthouse keeper who befriends a storm.",
    "What is the capital of Norway?",
    "Prove that the sum of the first n odd numbers is n squared.",
]


async def main() -> None:
    async with FakeProviderServer(models=default_fleet(speed=0.1, faults=False), seed=4) as fleet:
        config = fleet.config_dict(default_model="fake-cheap")
        async with Router.from_dict(config, quality_gates=[MinWords(80), on_topic]) as router:
            for prompt in PROMPTS:
                r = await router.aroute(prompt, max_tokens=600)
                m = r.meta
                print(f"{prompt[:70]!r}")
                for a in m.attempts:
                    verdict = "accepted" if a.outcome == "ok" else f"{a.outcome}: {a.reason}"
                    print(f"  {a.model:<12} {verdict}")
                words = len(r.content.split())
                print(f"  -> {m.model}, {words} words, ${m.estimated_cost_usd:.5f}, quality passed: {m.quality_passed}")


if __name__ == "__main__":
    anyio.run(main)
