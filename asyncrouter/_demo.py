"""The offline demo: the fake fleet, a mixed batch of prompts, and what the router did with them.

:func:`run_demo` starts :func:`asyncrouter.testing.default_fleet` on loopback (cheap, medium and strong fake
models with realistic latency, occasional hedging replies and faults), builds a :class:`~asyncrouter.Router`
pointing at it with the cascade on, a daily budget and an in-memory tracker, routes :func:`demo_prompts`
through :meth:`~asyncrouter.Router.astream_many` and returns a :class:`DemoResult`: where the prompts went, the
routing layers and tiers, every escalation and why, breaker and budget events, latency percentiles and the cost
against an all-strong baseline. ``asyncrouter demo`` renders it; tests and the README use it directly.

No API key and no network beyond 127.0.0.1 are involved.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from ._breaker import BreakerEvent
from ._budget import BudgetEvent, BudgetStatus
from ._clock import AnyioClock
from ._engine import Router
from ._models import Response
from .testing import FakeProviderServer, default_fleet

__all__ = [
    "DEFAULT_DEMO_BASELINE",
    "DEFAULT_DEMO_BUDGET_USD",
    "DEFAULT_DEMO_CONCURRENCY",
    "DEFAULT_DEMO_OUTAGE",
    "DEFAULT_DEMO_OUTAGE_MODEL",
    "DEFAULT_DEMO_PROMPTS",
    "DEFAULT_DEMO_SEED",
    "DemoPrompt",
    "DemoResult",
    "ModelShare",
    "demo_config",
    "demo_prompts",
    "run_demo",
]

#: How many prompts the demo routes by default.
DEFAULT_DEMO_PROMPTS: Final = 300
#: Seed of the prompt mix and of the fake fleet's replies and faults.
DEFAULT_DEMO_SEED: Final = 7
#: The daily cap the demo runs under, in USD: big enough to finish, small enough to show its states.
DEFAULT_DEMO_BUDGET_USD: Final = 1.0
#: Requests in flight at once.
DEFAULT_DEMO_CONCURRENCY: Final = 16
#: The model every request is priced against for the savings figure.
DEFAULT_DEMO_BASELINE: Final = "fake-strong"
#: The model that suffers an outage (every request answered HTTP 503) part of the way through, unless turned off.
DEFAULT_DEMO_OUTAGE_MODEL: Final = "fake-medium"
#: When the outage starts and ends, as fractions of the prompts done.
DEFAULT_DEMO_OUTAGE: Final = (0.3, 0.45)

#: Called as ``on_progress(done, total)`` after each finished prompt.
ProgressCallback: TypeAlias = Callable[[int, int], object]


# ------------------------------------------------------------------------------------------------ prompts


@dataclass(frozen=True, slots=True)
class DemoPrompt:
    """One generated prompt: its text, the kind it was generated as, its language and output cap.

    .. versionadded:: 0.1
    """

    text: str
    kind: str
    language: str
    max_tokens: int


# Output caps leave room for the strong fake model's longest replies (about 300 tokens), so a cap never truncates
# a reply by itself; long-form kinds get more headroom, as a caller would give them. The budget reserves each
# call's worst case from these caps, so they also set how much of the cap calls in flight hold.
_MAX_TOKENS: Final = {
    "factual": 400,
    "translation": 400,
    "summarisation": 400,
    "general": 400,
    "creative": 500,
    "code": 500,
    "reasoning": 500,
}
# Share of each kind in the mix (weights, not percentages).
_MIX: Final = {
    "factual": 25,
    "code": 20,
    "reasoning": 15,
    "creative": 15,
    "translation": 10,
    "summarisation": 10,
    "general": 5,
}

_COUNTRIES: Final = (
    ("Australia", "Australien", "Australia", "l'Australie", "オーストラリア", "澳大利亚"),
    ("Canada", "Kanada", "Canadá", "le Canada", "カナダ", "加拿大"),
    ("Brazil", "Brasilien", "Brasil", "le Brésil", "ブラジル", "巴西"),
    ("Japan", "Japan", "Japón", "le Japon", "日本", "日本"),
    ("Kenya", "Kenia", "Kenia", "le Kenya", "ケニア", "肯尼亚"),
    ("Norway", "Norwegen", "Noruega", "la Norvège", "ノルウェー", "挪威"),
    ("Peru", "Peru", "Perú", "le Pérou", "ペルー", "秘鲁"),
    ("Vietnam", "Vietnam", "Vietnam", "le Viêt Nam", "ベトナム", "越南"),
)
_FACTUAL_EN: Final = (
    "What is the capital of {c}?",
    "Who wrote {book}?",
    "When did {event}?",
    "What does {acronym} stand for?",
    "How many {small} are in a {big}?",
    "What is the boiling point of {liquid} at sea level?",
    "Which planet is {planet_fact}?",
    "Define {term} in one sentence.",
)
_BOOKS: Final = ("Pride and Prejudice", "One Hundred Years of Solitude", "Dune", "The Trial", "Things Fall Apart")
_EVENTS: Final = ("the Berlin Wall fall", "the first Moon landing happen", "the Suez Canal open", "the Euro launch")
_ACRONYMS: Final = ("GDP", "HTTP", "NASA", "UNESCO", "DNA", "SQL", "GPU")
_UNITS: Final = (("seconds", "day"), ("centimetres", "kilometre"), ("ounces", "pound"), ("bytes", "kibibyte"))
_LIQUIDS: Final = ("water", "ethanol", "liquid nitrogen")
_PLANETS: Final = ("closest to the sun", "the largest in the solar system", "known as the red planet")
_TERMS: Final = ("photosynthesis", "inflation", "entropy", "a hash table", "latency", "osmosis")

_CODE: Final = (
    "Write a Python function that {task} and explain its time complexity.",
    "Implement {algo} in {lang} with unit tests.",
    "Write a SQL query that {sql}.",
    "Fix the bug in this Python code and explain it:\n```python\n{snippet}\n```",
    "Refactor this {lang} function to be async and add retries with exponential backoff:\n```\n{snippet}\n```",
    "Write a FastAPI endpoint that {api}.",
    "Schreibe eine Python-Funktion, die {task_de}.",
    "Escribe una función en {lang} que {task_es}.",
    "用{lang}写一个函数，{task_zh}。",
)
_TASKS: Final = (
    "merges two sorted lists",
    "parses an ISO 8601 duration",
    "deduplicates a list while keeping order",
    "finds the longest palindromic substring",
    "validates an IBAN",
)
_TASKS_DE: Final = ("zwei sortierte Listen zusammenführt", "eine CSV-Datei einliest und Spalten summiert")
_TASKS_ES: Final = ("invierta una lista enlazada", "cuente las palabras de un archivo de texto")
_TASKS_ZH: Final = ("计算斐波那契数列的第n项", "检查一个字符串是否是回文")
_ALGOS: Final = ("Dijkstra's shortest path", "an LRU cache", "binary search", "a token bucket", "quicksort")
_LANGS: Final = ("Python", "Rust", "Go", "TypeScript", "Java")
_SQL: Final = (
    "returns the top 5 customers by revenue in 2024",
    "finds users who signed up but never ordered",
    "computes a 7-day rolling average of daily sales",
)
_SNIPPETS: Final = (
    "def mean(xs):\n    return sum(xs) / len(xs) + 1",
    "def fetch(urls):\n    for u in urls:\n        return requests.get(u)",
    "def last(items):\n    return items[len(items)]",
)
_APIS: Final = ("streams server-sent events", "uploads a file to S3", "paginates a list of orders")

_REASONING: Final = (
    "Prove that {claim}.",
    "A train leaves {city_a} at {h}:00 at {v1} km/h and another leaves {city_b} at {h}:30 at {v2} km/h towards it, "
    "{d} km apart. When do they meet? Explain step by step.",
    "If {x} workers build a wall in {y} days, how long do {z} workers need? Show your reasoning.",
    "Solve for x: {a}x + {b} = {c}. Show each step.",
    "Compare {tech_a} and {tech_b} and analyse the trade-offs for {context}.",
    "Why does {phenomenon}? Explain the mechanism step by step.",
    "Beweise, dass {claim_de}.",
    "Demuestra paso a paso que {claim_es}.",
)
_CLAIMS: Final = (
    "the square root of 2 is irrational",
    "there are infinitely many prime numbers",
    "the sum of the first n odd numbers is n squared",
)
_CLAIMS_DE: Final = ("es unendlich viele Primzahlen gibt", "die Wurzel aus 2 irrational ist")
_CLAIMS_ES: Final = ("la suma de los ángulos de un triángulo es 180 grados", "hay infinitos números primos")
_CITIES: Final = ("Lyon", "Porto", "Kraków", "Osaka", "Denver", "Nairobi")
_TECH: Final = (("PostgreSQL", "MongoDB"), ("Kafka", "RabbitMQ"), ("REST", "gRPC"), ("threads", "asyncio"))
_CONTEXTS: Final = ("a payments service", "a mobile game backend", "an analytics pipeline", "a chat application")
_PHENOMENA: Final = ("the sky look blue", "ice float on water", "a bicycle stay upright", "compound interest grow")

_CREATIVE: Final = (
    "Write a haiku about {topic}.",
    "Write a short story about {character} who {plot}.",
    "Suggest five names for {product}.",
    "Write a limerick about {topic}.",
    "Write a product description for {product} in a playful tone.",
    "Écris un court poème sur {topic_fr}.",
    "Escribe un cuento corto sobre {topic_es}.",
    "{topic_ja}についての短い詩を書いてください。",
)
_TOPICS: Final = ("autumn leaves", "a lighthouse in a storm", "morning coffee", "a city at night", "the first snow")
_TOPICS_FR: Final = ("la mer", "une gare la nuit", "le printemps")
_TOPICS_ES: Final = ("un dragón tímido", "una biblioteca mágica", "el último tren")
_TOPICS_JA: Final = ("桜", "夏の夜", "雨の日")
_CHARACTERS: Final = ("a retired astronaut", "a lighthouse keeper", "a curious robot", "a baker in Lisbon")
_PLOTS: Final = ("finds a letter from the future", "loses their memory every night", "befriends a storm")
_PRODUCTS: Final = ("a reusable water bottle", "a budgeting app", "a coffee subscription", "a smart plant pot")

_TRANSLATION: Final = (
    "Translate into {target}: '{sentence}'",
    "How do you say '{short}' in {target}?",
    "Übersetze ins Englische: '{sentence_de}'",
    "Traduce al inglés: '{sentence_es}'",
    "请把这句话翻译成英文：{sentence_zh}",
    "Traduis en anglais : « {sentence_fr} »",
)
_TARGETS: Final = ("Spanish", "German", "French", "Japanese", "Portuguese", "Italian")
_SENTENCES: Final = (
    "The meeting has been moved to Thursday afternoon.",
    "Please keep your receipt in case you need to return the item.",
    "Our train was delayed by forty minutes because of the snow.",
)
_SHORT: Final = ("thank you very much", "where is the station?", "good morning", "I am lost")
_SENTENCES_DE: Final = ("Der Zug fährt um acht Uhr ab.", "Könnten Sie mir bitte die Rechnung schicken?")
_SENTENCES_ES: Final = ("Mañana vamos a la playa con mis primos.", "El restaurante cierra a medianoche.")
_SENTENCES_ZH: Final = ("我们明天早上九点开会。", "这本书比我想象的更有意思。")
_SENTENCES_FR: Final = ("Le musée est fermé le lundi.", "Nous avons réservé une table pour quatre personnes.")

_SUMMARY: Final = (
    "Summarise the following text in two sentences:\n\n{paragraph}",
    "TL;DR please:\n\n{paragraph}",
    "Give me the three key points of this text:\n\n{paragraph}",
    "Fasse den folgenden Text in zwei Sätzen zusammen:\n\n{paragraph_de}",
)
_PARAGRAPHS: Final = (
    "The city council met on Tuesday to discuss the new cycling plan. Supporters argued that protected lanes would "
    "reduce accidents and encourage commuters to leave their cars at home, while shop owners worried about losing "
    "parking spaces in front of their stores. After three hours of debate the council approved a pilot on two "
    "streets, with a review of traffic, safety and sales figures planned after six months.",
    "Researchers studying sleep found that people who kept a regular bedtime, even at weekends, reported better "
    "concentration than those whose schedule varied by more than an hour. The effect held after accounting for "
    "total sleep time. The authors suggest that consistency may matter as much as duration, although they note "
    "that the study relied on self-reported data from fewer than two thousand adults.",
    "The company's quarterly report showed revenue up twelve percent, driven mostly by its subscription business, "
    "while hardware sales fell for the third quarter in a row. Management said it would cut two product lines and "
    "invest the savings in software and support. Analysts welcomed the focus but questioned whether subscription "
    "growth can continue as the market matures and competitors lower their prices.",
)
_PARAGRAPHS_DE: Final = (
    "Die Stadtwerke haben angekündigt, bis 2030 alle Busse auf Elektroantrieb umzustellen. Dafür werden neue "
    "Ladestationen an den Depots gebaut und die Fahrer geschult. Kritiker bemängeln die hohen Kosten, Befürworter "
    "verweisen auf geringere Wartungskosten und sauberere Luft in der Innenstadt.",
)

_GENERAL: Final = (
    "Hi! Can you help me plan my week?",
    "Give me some tips for {activity}.",
    "What should I pack for a weekend trip to {city_a}?",
    "Hallo! Hast du einen Tipp für {activity_de}?",
    "Какие книги ты посоветуешь для {activity_ru}?",
)
_ACTIVITIES: Final = ("learning to run 5k", "a job interview", "keeping houseplants alive", "saving money")
_ACTIVITIES_DE: Final = ("einen Umzug", "das Lernen für Prüfungen")
_ACTIVITIES_RU: Final = ("изучения истории", "отпуска на море")

_TEMPLATES: Final = {
    "factual": _FACTUAL_EN,
    "code": _CODE,
    "reasoning": _REASONING,
    "creative": _CREATIVE,
    "translation": _TRANSLATION,
    "summarisation": _SUMMARY,
    "general": _GENERAL,
}
_LANGUAGE_MARKERS: Final = (
    ("_de}", "de"),
    ("_es}", "es"),
    ("_fr}", "fr"),
    ("_ja}", "ja"),
    ("_zh}", "zh"),
    ("_ru}", "ru"),
)


def _fill(template: str, rng: random.Random) -> str:
    country = rng.choice(_COUNTRIES)
    small, big = rng.choice(_UNITS)
    tech_a, tech_b = rng.choice(_TECH)
    city_a, city_b = rng.sample(_CITIES, 2)
    x = rng.randint(3, 12)
    a, b = rng.randint(2, 9), rng.randint(1, 30)
    values: dict[str, object] = {
        "c": country[0],
        "book": rng.choice(_BOOKS),
        "event": rng.choice(_EVENTS),
        "acronym": rng.choice(_ACRONYMS),
        "small": small,
        "big": big,
        "liquid": rng.choice(_LIQUIDS),
        "planet_fact": rng.choice(_PLANETS),
        "term": rng.choice(_TERMS),
        "task": rng.choice(_TASKS),
        "task_de": rng.choice(_TASKS_DE),
        "task_es": rng.choice(_TASKS_ES),
        "task_zh": rng.choice(_TASKS_ZH),
        "algo": rng.choice(_ALGOS),
        "lang": rng.choice(_LANGS),
        "sql": rng.choice(_SQL),
        "snippet": rng.choice(_SNIPPETS),
        "api": rng.choice(_APIS),
        "claim": rng.choice(_CLAIMS),
        "claim_de": rng.choice(_CLAIMS_DE),
        "claim_es": rng.choice(_CLAIMS_ES),
        "city_a": city_a,
        "city_b": city_b,
        "h": rng.randint(6, 11),
        "v1": rng.choice((60, 80, 90, 120)),
        "v2": rng.choice((70, 100, 110)),
        "d": rng.choice((240, 300, 450)),
        "x": x,
        "y": rng.randint(4, 20),
        "z": x + rng.randint(1, 6),
        "a": a,
        "b": b,
        "tech_a": tech_a,
        "tech_b": tech_b,
        "context": rng.choice(_CONTEXTS),
        "phenomenon": rng.choice(_PHENOMENA),
        "topic": rng.choice(_TOPICS),
        "topic_fr": rng.choice(_TOPICS_FR),
        "topic_es": rng.choice(_TOPICS_ES),
        "topic_ja": rng.choice(_TOPICS_JA),
        "character": rng.choice(_CHARACTERS),
        "plot": rng.choice(_PLOTS),
        "product": rng.choice(_PRODUCTS),
        "target": rng.choice(_TARGETS),
        "sentence": rng.choice(_SENTENCES),
        "short": rng.choice(_SHORT),
        "sentence_de": rng.choice(_SENTENCES_DE),
        "sentence_es": rng.choice(_SENTENCES_ES),
        "sentence_zh": rng.choice(_SENTENCES_ZH),
        "sentence_fr": rng.choice(_SENTENCES_FR),
        "paragraph": rng.choice(_PARAGRAPHS),
        "paragraph_de": rng.choice(_PARAGRAPHS_DE),
        "activity": rng.choice(_ACTIVITIES),
        "activity_de": rng.choice(_ACTIVITIES_DE),
        "activity_ru": rng.choice(_ACTIVITIES_RU),
    }
    if "{a}x" in template:  # keep the equation solvable in whole numbers: a*x + b = c
        values["c"] = a * rng.randint(1, 12) + b
    return template.format(**values)


def _language(template: str) -> str:
    for marker, lang in _LANGUAGE_MARKERS:
        if marker in template:
            return lang
    if any("\u3040" <= ch <= "\u30ff" for ch in template):
        return "ja"
    if any("\u4e00" <= ch <= "\u9fff" for ch in template):
        return "zh"
    if any("\u0400" <= ch <= "\u04ff" for ch in template):
        return "ru"
    if template.startswith(("Schreibe", "Beweise", "Übersetze", "Fasse", "Hallo")):
        return "de"
    if template.startswith(("Escribe", "Demuestra", "Traduce")):
        return "es"
    if template.startswith(("Écris", "Traduis")):
        return "fr"
    return "en"


def demo_prompts(n: int = DEFAULT_DEMO_PROMPTS, *, seed: int = DEFAULT_DEMO_SEED) -> list[DemoPrompt]:
    """A varied, deterministic mix of prompts: short facts, code, reasoning and maths, creative writing,
    translation, summarisation and small talk, in English, German, Spanish, French, Japanese, Chinese and Russian.

    Args:
        n: how many prompts.
        seed: the same seed always gives the same list.

    Returns:
        ``n`` prompts, each with its kind, language and an output cap suited to it.

    Raises:
        ValueError: ``n`` is negative.

    .. versionadded:: 0.1
    """
    if n < 0:
        raise ValueError("n must not be negative")
    rng = random.Random(seed)
    kinds = list(_MIX)
    weights = [_MIX[k] for k in kinds]
    out: list[DemoPrompt] = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        template = rng.choice(_TEMPLATES[kind])
        if kind == "factual" and rng.random() < 0.35:
            # the same question in another language: the capital of one of the countries
            country = rng.choice(_COUNTRIES)
            lang, text = rng.choice(
                (
                    ("de", f"Was ist die Hauptstadt von {country[1]}?"),
                    ("es", f"¿Cuál es la capital de {country[2]}?"),
                    ("fr", f"Quelle est la capitale de {country[3]} ?"),
                    ("ja", f"{country[4]}の首都はどこですか？"),
                    ("zh", f"{country[5]}的首都是哪里？"),
                )
            )
            out.append(DemoPrompt(text, kind, lang, _MAX_TOKENS[kind]))
            continue
        out.append(DemoPrompt(_fill(template, rng), kind, _language(template), _MAX_TOKENS[kind]))
    return out


# ------------------------------------------------------------------------------------------------- result


@dataclass(slots=True)
class ModelShare:
    """Where prompts went: one model's accepted replies, calls and spend.

    Attributes:
        model: the model alias.
        requests: replies of this model that were returned.
        share: ``requests`` as a fraction of every returned reply.
        calls: attempts that reached the model (accepted, failed a gate, or errored).
        cost_usd: what every call to this model cost, escalations included.

    .. versionadded:: 0.1
    """

    model: str
    requests: int
    share: float
    calls: int
    cost_usd: float


@dataclass(slots=True)
class DemoResult:
    """What :func:`run_demo` measured.

    Attributes:
        prompts: prompts routed.
        ok: prompts that got a reply.
        failed: prompts that raised (by type in ``errors``).
        errors: error type -> count.
        error_examples: error type -> the first message of that type.
        models: per model, cheapest first.
        layers: routing layer -> requests.
        tiers: tier -> requests.
        tasks: task type -> requests.
        languages: prompt language -> prompts.
        escalated: replies that left at least one model before the accepted one.
        escalation_reasons: why a model was left: ``"gate hedging"``, ``"RateLimited"``, ... -> count.
        skips: why a model was skipped without a call: ``"breaker open"``, ``"budget"`` ... -> count.
        quality_failed: replies returned although every model failed the gates (the best one, marked).
        breaker_events: every breaker transition, in order.
        budget_events: every budget state change, in order.
        budget: the budget at the end.
        cost_usd: what the whole run cost, every attempt included.
        baseline_model: the model the run is priced against.
        baseline_cost_usd: the run's tokens priced at ``baseline_model``.
        savings_pct: ``1 - cost / baseline`` in percent (``None`` without a baseline cost).
        p50_latency_ms: median request latency.
        p95_latency_ms: 95th percentile request latency.
        outage: ``"model from prompt N to M"`` when an outage was injected, else ``None``.
        elapsed_s: wall time of the batch.
        seed: the seed used.
        speed: the fleet's latency multiplier.

    .. versionadded:: 0.1
    """

    prompts: int
    ok: int
    failed: int
    errors: dict[str, int]
    error_examples: dict[str, str]
    models: list[ModelShare]
    layers: dict[str, int]
    tiers: dict[str, int]
    tasks: dict[str, int]
    languages: dict[str, int]
    escalated: int
    escalation_reasons: dict[str, int]
    skips: dict[str, int]
    quality_failed: int
    breaker_events: list[BreakerEvent]
    budget_events: list[BudgetEvent]
    budget: BudgetStatus
    cost_usd: float
    baseline_model: str
    baseline_cost_usd: float
    savings_pct: float | None
    p50_latency_ms: float
    p95_latency_ms: float
    elapsed_s: float
    seed: int
    speed: float
    concurrency: int = DEFAULT_DEMO_CONCURRENCY
    outage: str | None = None

    def headline(self) -> str:
        """One line for people, e.g. ``"Cost $0.41 vs $2.87 all-strong: 86% saved"``."""
        short = self.baseline_model.removeprefix("fake-")
        text = f"Cost ${self.cost_usd:.2f} vs ${self.baseline_cost_usd:.2f} all-{short}"
        if self.savings_pct is not None:
            text += f": {self.savings_pct:.0f}% saved"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (events and the budget as nested objects)."""
        data = dataclasses.asdict(self)
        data["breaker_events"] = [e.to_dict() for e in self.breaker_events]
        data["budget_events"] = [
            {"state": e.state, "previous": e.previous, "spent": e.status.spent} for e in self.budget_events
        ]
        data["headline"] = self.headline()
        return data


# ------------------------------------------------------------------------------------------------ running


def demo_config(srv: FakeProviderServer, *, budget_usd: float | None, speed: float, tracker: str) -> dict[str, Any]:
    """The router configuration the demo uses, pointing at *srv*.

    Args:
        srv: the running fake fleet.
        budget_usd: the daily cap (``None``: no cap).
        speed: the fleet's latency multiplier; backoff between retries shrinks with it.
        tracker: the tracker's database path (``":memory:"`` keeps nothing).

    .. versionadded:: 0.1
    """
    # Breakers reopen for a trial after a second (scaled with the fleet), so a short run shows the whole cycle.
    reset = 0.5 * max(speed, 0.1)
    return srv.config_dict(
        default_model="fake-cheap",
        cascade={"enabled": True},
        breakers={
            "model": {"fail_max": 5, "reset_timeout": reset},
            "provider": {"fail_max": 20, "reset_timeout": reset},
        },
        retries={"max_attempts": 2, "backoff_base": 0.25 * speed, "backoff_max": 2.0 * max(speed, 0.05)},
        budget={"daily_limit_usd": budget_usd, "on_exhausted": "reject", "backend": "memory"},
        tracker={"path": tracker},
    )


_GATE_RE: Final = re.compile(r"gate (\S+?):")


def _left_reasons(response: Response) -> Iterator[tuple[str, str]]:
    """``("escalation" | "skip", label)`` for each model a request left or skipped."""
    for a in response.meta.attempts:
        if a.outcome == "gate_failed":
            gates = _GATE_RE.findall(a.reason) or ["quality"]
            for gate in gates:
                yield "escalation", f"gate {gate}"
        elif a.outcome == "error":
            label = a.error_type or "error"
            if a.status_code:
                label += f" (HTTP {a.status_code})"
            yield "escalation", label
        elif a.outcome == "skipped":
            reason = a.reason.lower()
            if "breaker" in reason:
                yield "skip", "breaker open"
            elif reason.startswith("budget"):
                yield "skip", "budget"
            elif "context" in reason:
                yield "skip", "context window"
            else:
                yield "skip", a.reason.split(":")[0] or "skipped"


async def run_demo(
    *,
    prompts: int = DEFAULT_DEMO_PROMPTS,
    seed: int = DEFAULT_DEMO_SEED,
    speed: float = 1.0,
    budget_usd: float | None = DEFAULT_DEMO_BUDGET_USD,
    concurrency: int = DEFAULT_DEMO_CONCURRENCY,
    faults: bool = True,
    outage: bool = True,
    tracker: str = ":memory:",
    on_progress: ProgressCallback | None = None,
) -> DemoResult:
    """Route a mixed batch through a router in front of the fake fleet and report what happened.

    Args:
        prompts: how many prompts (see :func:`demo_prompts`).
        seed: seeds the prompt mix and the fleet's replies and faults.
        speed: the fleet's latency multiplier: ``1.0`` realistic, ``0`` instant.
        budget_usd: the daily cap (``None``: no cap).
        concurrency: requests in flight at once.
        faults: ``False`` turns off the fleet's random faults.
        outage: inject an outage of :data:`DEFAULT_DEMO_OUTAGE_MODEL` (HTTP 503 to every request) over the
            :data:`DEFAULT_DEMO_OUTAGE` part of the run, so its breaker opens, the cascade routes around it, and a
            half-open trial closes it once the model is back.
        tracker: the tracker database (``":memory:"`` by default; a file keeps the records for
            ``asyncrouter stats``).
        on_progress: called as ``on_progress(done, total)`` after each prompt.

    Returns:
        The :class:`DemoResult`.

    Raises:
        ValueError: ``prompts``, ``speed`` or ``concurrency`` out of range.

    .. versionadded:: 0.1
    """
    if prompts < 1:
        raise ValueError("prompts must be at least 1")
    if speed < 0:
        raise ValueError("speed must not be negative")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    batch = demo_prompts(prompts, seed=seed)
    clock = AnyioClock()
    models: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    calls: Counter[str] = Counter()
    spend: dict[str, float] = {}
    escalated = quality_failed = 0
    healthy: dict[str, float] = {}
    breaker_events: list[BreakerEvent] = []
    budget_events: list[BudgetEvent] = []
    outage_from, outage_to = (
        (max(1, round(len(batch) * DEFAULT_DEMO_OUTAGE[0])), max(2, round(len(batch) * DEFAULT_DEMO_OUTAGE[1])))
        if outage
        else (None, None)
    )
    async with FakeProviderServer(models=default_fleet(speed=speed, faults=faults), seed=seed, record=False) as srv:
        config = demo_config(srv, budget_usd=budget_usd, speed=speed, tracker=tracker)
        async with Router.from_dict(config, seed=seed) as router:
            router.breakers.subscribe(breaker_events.append)
            router.budget.subscribe(budget_events.append)
            items = [{"prompt": p.text, "max_tokens": p.max_tokens} for p in batch]
            started = clock.monotonic()
            done = 0
            async with router.astream_many(items, concurrency=concurrency) as results:
                async for _, result in results:
                    done += 1
                    if isinstance(result, BaseException):
                        name = type(result).__name__
                        errors[name] += 1
                        examples.setdefault(name, str(result))
                    else:
                        meta = result.meta
                        models[meta.model] += 1
                        layers[meta.routing_layer] += 1
                        tiers[meta.tier] += 1
                        tasks[meta.task_type] += 1
                        escalated += meta.escalations > 0
                        quality_failed += not meta.quality_passed
                        for a in meta.attempts:
                            if a.outcome in ("ok", "gate_failed", "error"):
                                calls[a.model] += 1
                                spend[a.model] = spend.get(a.model, 0.0) + a.cost_usd
                        for kind, label in _left_reasons(result):
                            (reasons if kind == "escalation" else skips)[label] += 1
                    if done == outage_from:
                        healthy = dict(srv.models[DEFAULT_DEMO_OUTAGE_MODEL].faults)
                        srv.set_faults(DEFAULT_DEMO_OUTAGE_MODEL, {"503": 1.0})
                    elif done == outage_to:
                        srv.set_faults(DEFAULT_DEMO_OUTAGE_MODEL, healthy)
                    if on_progress is not None:
                        on_progress(done, len(batch))
            elapsed = clock.monotonic() - started
            stats = await router.stats(baseline=DEFAULT_DEMO_BASELINE)
            budget = router.budget.status()
            order = router.prices
    ok = sum(models.values())
    shares = [
        ModelShare(
            model=alias,
            requests=models[alias],
            share=models[alias] / ok if ok else 0.0,
            calls=calls[alias],
            cost_usd=spend.get(alias, 0.0),
        )
        for alias in sorted(order, key=lambda a: order[a].input_per_1k + order[a].output_per_1k)
    ]
    savings = stats.savings
    return DemoResult(
        prompts=len(batch),
        ok=ok,
        failed=sum(errors.values()),
        errors=dict(errors.most_common()),
        error_examples=examples,
        models=shares,
        layers=dict(layers.most_common()),
        tiers=dict(tiers.most_common()),
        tasks=dict(tasks.most_common()),
        languages=dict(Counter(p.language for p in batch).most_common()),
        escalated=escalated,
        escalation_reasons=dict(reasons.most_common()),
        skips=dict(skips.most_common()),
        quality_failed=quality_failed,
        breaker_events=breaker_events,
        budget_events=budget_events,
        budget=budget,
        cost_usd=stats.cost_usd,
        baseline_model=DEFAULT_DEMO_BASELINE,
        baseline_cost_usd=savings.baseline_cost_usd if savings is not None else 0.0,
        savings_pct=savings.savings_pct if savings is not None else None,
        p50_latency_ms=stats.p50_latency_ms,
        p95_latency_ms=stats.p95_latency_ms,
        elapsed_s=elapsed,
        seed=seed,
        speed=speed,
        concurrency=concurrency,
        outage=f"{DEFAULT_DEMO_OUTAGE_MODEL} from prompt {outage_from} to {outage_to}" if outage else None,
    )
