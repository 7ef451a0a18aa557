"""A small daily cap, hit: warn, downgrade to cheaper models, then BudgetExceeded. No API keys.

Every call first reserves its worst-case cost (``max_tokens`` at the model's output price), so spend never
overshoots the cap, however many calls run at once. As the day's spend crosses ``warn_at`` and
``downgrade_at`` the budget changes state (subscribers hear it); above ``downgrade_at`` the planner drops one
tier, and a model whose worst case no longer fits is skipped for a cheaper one. Once not even the cheapest call
fits, ``on_exhausted: reject`` raises :class:`~asyncrouter.BudgetExceeded` (``cheapest`` would keep going on the
cheapest model while anything is left).

Run it with ``python examples/budget_cap.py``.
"""

from __future__ import annotations

import anyio

from asyncrouter import BudgetEvent, BudgetExceeded, Router
from asyncrouter.testing import FakeProviderServer, default_fleet

CAP_USD = 0.02


def on_change(event: BudgetEvent) -> None:
    s = event.status
    print(f"  budget {event.previous} -> {event.state}: spent ${s.spent:.5f} of ${s.limit:.2f}")


async def main() -> None:
    async with FakeProviderServer(models=default_fleet(speed=0, faults=False), seed=1) as fleet:
        config = fleet.config_dict(
            default_model="fake-cheap",
            budget={"daily_limit_usd": CAP_USD, "warn_at": 0.5, "downgrade_at": 0.8, "on_exhausted": "reject"},
        )
        async with Router.from_dict(config) as router:
            router.budget.subscribe(on_change)
            print(f"daily cap ${CAP_USD:.2f}; routing code prompts until the cap says no")
            last = ""
            for i in range(1, 500):
                prompt = f"Write a Python function number {i} that merges two sorted lists."
                try:
                    r = await router.aroute(prompt, max_tokens=300)
                except BudgetExceeded as exc:
                    print(f"request {i}: BudgetExceeded: {exc}")
                    break
                line = f"{r.meta.model} (tier {r.meta.tier}, budget {router.budget.state})"
                if line != last:  # one line per change of model, tier or state
                    skipped = [a.model for a in r.meta.attempts if a.outcome == "skipped"]
                    why = f"; skipped {', '.join(skipped)}: worst case did not fit" if skipped else ""
                    print(f"request {i}: {line}, ${r.meta.estimated_cost_usd:.5f}{why}")
                    last = line

            status = router.budget.status()
            print()
            print(
                f"budget.status(): state={status.state} spent=${status.spent:.5f} reserved=${status.reserved:.5f} "
                f"remaining=${status.remaining or 0:.5f} limit=${status.limit or 0:.2f} day={status.day}"
            )
            assert status.spent <= CAP_USD


if __name__ == "__main__":
    anyio.run(main)
