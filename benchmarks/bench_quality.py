"""Quality gates: Python bytecodes and time per ``QualityGates.check()`` call, by kind of reply.

    python benchmarks/bench_quality.py [--quick] [--json OUT]

Every routed request runs the built-in gates on its reply, so their cost is part of the router's overhead
(issue #6). Cases: replies like the fake fleet's ``fake-cheap`` sends to the eight benchmark prompts (the overhead
benchmark's requests), a 360-character English answer, the same with curly quotes and dashes (non-ASCII text takes
the general path), a CJK answer, a hedged answer (a phrase found: the slow path), and a 2,000-character prompt.

Bytecodes are counted with :class:`benchmarks._common.BytecodeCounter`: a count the machine's load cannot move.
Times are ``time.perf_counter_ns`` per call, garbage collection disabled, p50 in microseconds. The one target: on
the fleet-like replies, at most a third of the 1,390 bytecodes per call that the gates cost before their phrase
matching moved into compiled regexes.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncrouter._config import QualityConfig
from asyncrouter._quality import GateInput, QualityGates
from asyncrouter.testing._behaviour import compose_text, keywords
from benchmarks._common import PROMPTS, BytecodeCounter, Figure, Result, figure, make_result, script_main, timed

#: Bytecodes per check() on the fleet-like replies before the regex matcher, and the target: a third of that.
BYTECODES_BEFORE: Final = 1390
BYTECODE_TARGET: Final = BYTECODES_BEFORE / 3
DEFAULT_CALLS = 20_000
QUICK_CALLS = 500
# The task types the classifier gives the eight benchmark prompts (fixed here: this times the gates, not it).
_TASKS: Final = ("factual", "translation", "summarisation", "code", "reasoning", "creative", "reasoning", "reasoning")
_CJK = "瑞利散射使天空呈现蓝色：空气分子对短波长的阳光散射得比长波长强得多，所以蓝光从天空的各个方向到达我们的眼睛。"


def _cases() -> dict[str, list[GateInput]]:
    rng = random.Random(0)
    fleet = [
        GateInput(
            prompt=p, task_type=t, content=compose_text(rng, rng.randint(25, 70), keywords(p)), finish_reason="stop"
        )
        for p, t in zip(PROMPTS, _TASKS, strict=True)
    ]
    answer = compose_text(random.Random(3), 62, ["sky", "blue"])[:360]
    typographic = answer.replace(", ", " — ").replace(" the ", " “the” ")

    def one(prompt: str, task: str, content: str) -> list[GateInput]:
        return [GateInput(prompt=prompt, task_type=task, content=content, finish_reason="stop")]

    return {
        "fleet-like replies (8 prompts)": fleet,
        "360-char English reply": one("Why is the sky blue?", "reasoning", answer),
        "360-char reply, curly quotes and dashes": one("Why is the sky blue?", "reasoning", typographic),
        "CJK reply": one("天空为什么是蓝色的？", "reasoning", _CJK * 3),
        "hedged reply": one("Why is the sky blue?", "reasoning", "I'm not sure, but " + answer),
        "2,000-char prompt": one("Summarise this: " + "The committee met on Tuesday. " * 66, "summarisation", answer),
    }


def _bytecodes(gates: QualityGates, inputs: Sequence[GateInput]) -> float:
    counter = BytecodeCounter()
    with counter.enabled():
        for gi in inputs:
            gates.check(gi)
    return counter.by_area.get("asyncrouter/_quality.py", 0) / len(inputs)


def _p50_us(gates: QualityGates, inputs: Sequence[GateInput], calls: int) -> float:
    check, perf = gates.check, time.perf_counter_ns
    rounds = max(1, calls // len(inputs))
    samples: list[int] = []
    for gi in inputs:
        for _ in range(20):  # warm up
            check(gi)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for gi in inputs:
                t0 = perf()
                check(gi)
                samples.append(perf() - t0)
    finally:
        gc.enable()
    samples.sort()
    return samples[len(samples) // 2] / 1000.0


def run(quick: bool = False) -> Result:
    """Count and time ``check()`` on each case; the result the runner prints and writes."""
    calls = QUICK_CALLS if quick else DEFAULT_CALLS
    gates = QualityGates(QualityConfig())
    figures: list[Figure] = []
    details: dict[str, dict[str, float]] = {}
    with timed() as elapsed:
        for name, inputs in _cases().items():
            for gi in inputs:  # the cases are what they say: clean replies pass, the hedged one does not
                assert gates.check(gi).passed is (name != "hedged reply"), (name, gates.check(gi))
            bytecodes = _bytecodes(gates, inputs)
            p50 = _p50_us(gates, inputs, calls)
            details[name] = {"bytecodes": round(bytecodes, 1), "p50_us": round(p50, 3)}
            if name.startswith("fleet-like"):
                figures.append(figure(f"{name}: bytecodes per check()", bytecodes, "", target=BYTECODE_TARGET, op="<="))
            else:
                figures.append(figure(f"{name}: bytecodes per check()", bytecodes, ""))
            figures.append(figure(f"{name}: check() p50", p50, "us"))
    notes = [
        f"target: a third of the {BYTECODES_BEFORE} bytecodes per check() on the fleet-like replies before the "
        "phrase matching moved into compiled regexes",
        "bytecodes are those of asyncrouter/_quality.py (C work, such as the regex scans, is not counted)",
    ]
    return make_result("quality", figures, notes, details=details, seconds=elapsed())


def main(argv: Sequence[str] | None = None) -> int:
    return script_main(run, argv, description=__doc__.split("\n", 1)[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(main())
