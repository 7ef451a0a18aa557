"""The routing classifier: what a prompt asks for and how hard it is, decided by rules in microseconds.

:class:`Classifier` is pure and synchronous: no I/O, no clock, no per-prompt cache. It reads the system prompt,
the **last** user turn (which dominates) and the size of earlier turns, scores them on weighted dimensions and
returns a :class:`Classification` carrying all three routing vocabularies at once:

* routeforge's ``task_type`` (code, reasoning, creative, translation, summarisation, factual, general),
* smart-llm-router's ``tier`` (simple, medium, complex, reasoning) and ``complexity_score``,
* mmrouter's ``complexity`` (simple, medium, complex) x ``category`` (factual, reasoning, creative, code).

How it stays fast. Everything is compiled once, in ``Classifier.__init__``:

* single-word keywords of space-delimited scripts (Latin, Cyrillic, Devanagari, Arabic) live in one dict; the
  prompt is lower-cased once and split into words (ASCII prompts as bytes: ``bytes.translate`` + ``split``, a
  table lookup per character; one precompiled regex otherwise), and one C-level ``frozenset.intersection``
  finds every distinct keyword, so a word matches only as a whole word ("important" never counts as "import")
  and only once per prompt. Past :data:`DEFAULT_SCAN_CHARS`, only the head and tail are looked up. The stop
  words that tell the Latin-script languages apart are left out of the ASCII table: only the ``language`` field
  reads them, so they are counted (one intersection per language) when it is first read;
* multi-word phrases and word-start stems run as **one** trie-shaped alternation regex per script family
  (ASCII prompts get an ASCII-only one), anchored at word starts, over the *instruction region* (the whole
  prompt, or its head and tail when long);
* CJK, kana, hangul and Thai-like keywords (and ``~``-marked stems) run as one trie-shaped substring regex whose
  hundreds of first characters are bucketed behind lookaheads, only when the prompt has such characters;
* code fences, code syntax, arithmetic, list items, question marks and separators come from a few structural
  regexes over the same region, skipped at once for plain prose;
* the scoring is straight-line code over locals: the weights it reads come out of the accumulator in one
  ``itemgetter`` call, the complexity terms in another (``compress`` skips the zero ones), a zero test skips a
  term that would add nothing, and the work that only rare prompts need (a system prompt, pasted material, a
  label override) sits behind one test;
* the result is filled in as a mutable draft and becomes a frozen :class:`Classification` by a class
  assignment; its ``signals`` are formatted, and the ``language`` of a Latin-script prompt settled, only when
  read (routing reads neither).

Length is measured in estimated tokens (:func:`asyncrouter._tokens.estimate_tokens`), which counts CJK text
by characters, not whitespace words.

Dimensions (names appear in ``signals``; ``extra_keywords`` may extend any of the keyword dimensions):
the fourteen of smart-llm-router (``reasoning_markers``, ``code_presence``, ``multi_step``,
``technical_terms``, length, ``creative_markers``, question complexity, ``constraints``, ``agentic_verbs``,
``imperatives``, ``output_format``, ``references``, ``domain_terms``, ``simple_indicators``, ``negation``)
plus the ones that tell categories and sizes apart (``analysis``, ``explanation``, ``math``,
``factual_markers``, ``translation``, ``summarisation``, ``depth``, ``brevity``, ``small_artefact``,
``medium_artefact``, ``large_artefact``). Each keyword table covers all eleven languages with the closed-class
words a request is built from (question words, explanation and comparison verbs, "how does X work" forms,
maths vocabulary, artefact nouns), with word-start stems for inflected languages (Russian, German, Romance).

Complexity is a weighted sum of these (plus length, listed requirements, requested word counts) cut at two
thresholds; the weights were fitted on the dev set's train split (see ``_PTS_SIMPLE_BELOW``). The category is
the strongest of four evidence scores; a naming noun together with a suggestion verb ("a catchy name for
my bakery", "起个名字") is creative, and the figures in pasted material are not a maths problem.

Overrides, as smart-llm-router documents them: two or more distinct reasoning markers force tier
``reasoning``; a huge prompt (more than :data:`DEFAULT_HUGE_PROMPT_TOKENS`) is at least ``complex``; a system
prompt that asks for JSON or a schema, or a JSON ``response_format``, floors the prompt at ``medium``. And, as
mmrouter labels them: a request for a proof or a derivation is ``complex``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import compress
from math import log2
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from ._exceptions import ConfigError
from ._tokens import estimate_messages_tokens, estimate_tokens, message_text
from ._types import Category, ComplexityLabel, TaskType, Tier

__all__ = [
    "DEFAULT_COMPLEX_THRESHOLD",
    "DEFAULT_HUGE_PROMPT_TOKENS",
    "DEFAULT_SCAN_CHARS",
    "DEFAULT_SIMPLE_THRESHOLD",
    "DIMENSIONS",
    "Classification",
    "Classifier",
]

#: Above this many estimated tokens (user turns, system prompt excluded) a prompt is at least ``complex``.
DEFAULT_HUGE_PROMPT_TOKENS: Final = 3000
#: ``complexity_score`` below this is ``simple``; it matches the default routing band's lower edge.
DEFAULT_SIMPLE_THRESHOLD: Final = 0.35
#: ``complexity_score`` at or above this is ``complex``; it matches the default routing band's upper edge.
DEFAULT_COMPLEX_THRESHOLD: Final = 0.65
#: Prompts longer than this many characters are scanned for phrases and structure in head + tail only.
DEFAULT_REGION_CHARS: Final = 1000
#: Prompts longer than this many characters are looked up for keywords in head + tail only.
DEFAULT_SCAN_CHARS: Final = 4000

# Dimension indices. Keyword dimensions first (their names are what extra_keywords accepts).
_REASONING, _CODE, _MULTI_STEP, _TECHNICAL, _CREATIVE, _CONSTRAINT, _AGENTIC, _IMPERATIVE = range(8)
_FORMAT, _REFERENCE, _DOMAIN, _SIMPLE, _NEGATION, _ANALYSIS, _EXPLAIN, _MATH = range(8, 16)
_FACT, _TRANSLATE, _SUMMARY, _DEPTH, _BREVITY, _SMALL, _MEDIUM, _LARGE = range(16, 24)
_LANG_EN, _LANG_DE, _LANG_ES, _LANG_PT, _LANG_FR = range(24, 29)
_NAMING, _SUGGEST, _PROOF = range(29, 32)
# Not a weight: how many distinct reasoning markers the user's text holds (two or more force tier "reasoning").
# Every keyword of reasoning_markers carries a 1.0 here too, so counting them costs no separate pass.
_MARKERS: Final = 32
_NDIM: Final = 33
_NO_WEIGHTS: Final = (0.0,) * _NDIM

#: Names of the keyword dimensions, in index order; the keys ``extra_keywords`` accepts.
DIMENSIONS: Final[tuple[str, ...]] = (
    "reasoning_markers",
    "code_presence",
    "multi_step",
    "technical_terms",
    "creative_markers",
    "constraints",
    "agentic_verbs",
    "imperatives",
    "output_format",
    "references",
    "domain_terms",
    "simple_indicators",
    "negation",
    "analysis",
    "explanation",
    "math",
    "factual_markers",
    "translation",
    "summarisation",
    "depth",
    "brevity",
    "small_artefact",
    "medium_artefact",
    "large_artefact",
)
_NKEYDIMS: Final = len(DIMENSIONS)
_SIGNAL_PREFIX: Final = tuple(f"{name}:" for name in DIMENSIONS)
# Internal dimensions: tables of their own, not in DIMENSIONS, never reported one by one in signals.
_INTERNAL_DIMS: Final = {"naming_nouns": _NAMING, "suggestion_verbs": _SUGGEST, "proof_requests": _PROOF}
_LANG_DIMS: Final = {
    "lang_en": _LANG_EN,
    "lang_de": _LANG_DE,
    "lang_es": _LANG_ES,
    "lang_pt": _LANG_PT,
    "lang_fr": _LANG_FR,
}
_LATIN_LANGS: Final = ("en", "de", "es", "pt", "fr")
_LATIN_LANG_DIMS: Final = slice(_LANG_EN, _LANG_FR + 1)

# ---------------------------------------------------------------------------------------------------------------
# Keyword tables: dimension -> language -> "entry|entry|...".
#   entry      a whole word (space-delimited scripts) or a substring (CJK, kana, hangul, Thai-like scripts)
#   "a b"      a phrase: whole words in sequence
#   "stem*"    a word-start stem: any word beginning with it
#   "~stem"    a substring anywhere (for scripts whose words take attached prefixes, e.g. Arabic)
#   ":w"       optional weight suffix (default 1.0)
# A keyword listed twice in one dimension counts once (the larger weight wins), and each distinct keyword
# counts once per prompt however often it occurs.
# ---------------------------------------------------------------------------------------------------------------
_TABLES: Final[dict[str, dict[str, str]]] = {
    "reasoning_markers": {
        "en": "prove|proof|proofs|theorem|lemma|corollary|axiom|axioms|derive|derivation|deduce|deduction|induction|"
        "contradiction|rigorous|rigorously|formally|formal proof|qed|syllogism|puzzle|riddle|step by step|"
        "step-by-step|show that|show your work|show the steps|show all steps|show your reasoning|"
        "explain your reasoning|walk through the logic|logic puzzle|deductions|work out",
        "zh": "证明|推导|定理|引理|公理|演绎|归纳法|反证法|严谨|一步一步|逐步|推理过程|逻辑题|谜题|解题过程",
        "ja": "証明|導出|定理|補題|公理|背理法|帰納法|厳密|順を追って|ステップバイステップ|段階的に|推論|論理パズル",
        "ko": "증명|귀납법|귀류법|엄밀|단계별로|단계적으로|차근차근|추론|논리 퍼즐|풀이 과정",
        "ru": "докажи|докажите|доказать|доказательство|доказательства|теорема|теорему|теоремы|лемма|аксиома|выведи|"
        "вывести|индукции|индукция|от противного|строго|строгое|строгим|по шагам|шаг за шагом|пошагово|головоломка|"
        "логическая задача",
        "de": "beweise|beweisen|beweis|beweises|herleitung|herleiten|leite|induktion|widerspruch|rigoros|"
        "schritt für schritt|schrittweise|logikrätsel|rätsel:0.5",
        "es": "demuestra|demostrar|demostración|demuestre|teorema|lema|axioma|deduce|deducir|inducción|contradicción|"
        "rigurosamente|riguroso|rigurosa|paso a paso|acertijo|rompecabezas",
        "pt": "prove|provar|demonstre|demonstrar|demonstração|teorema|lema|axioma|deduza|deduzir|indução|contradição|"
        "rigorosamente|rigoroso|passo a passo|enigma:0.5|charada:0.5",
        "fr": "démontre|démontrez|démontrer|démonstration|prouve|prouver|preuve|théorème|lemme|axiome|déduis|déduire|"
        "récurrence|absurde|rigoureusement|rigoureuse|étape par étape|énigme:0.5",
        "hi": "सिद्ध|प्रमाण|प्रमेय|साबित|चरण दर चरण|कदम दर कदम|पहेली|उपपत्ति",
        "ar": "أثبت أن|اثبت أن|برهن|برهان|إثبات|مبرهنة|استنتج|الاستقراء|بالتناقض|خطوة بخطوة|لغز",
    },
    "code_presence": {
        "en": "code:2|coding:2|codebase:2|function:2|functions:2|python:2.5|javascript:2.5|typescript:2.5|java:2|"
        "golang:2|rust:1.5|c++:2|c#:2|kotlin:2|swift|php:2|ruby|perl:2|scala:2|haskell:2|sql:2|regex:2|regexp:2|"
        "regular expression:2|api:1.5|apis:1.5|endpoint:2|endpoints:2|debug:2|debugging:2|refactor:2|refactoring:2|"
        "compile|compiler:1.5|bug:2|bugs:2|stack trace:2|traceback:2|exception:1.5|syntax error:2|syntax|script|"
        "bash:2|shell|powershell:2|git:2|github:1.5|docker:2|dockerfile:2|kubernetes|html:2|css:2|react:2|vue:2|"
        "vue.js:2|angular:2|django:2|flask:2|fastapi:2|node.js:2|nodejs:2|node|express|express.js:2|npm:2|pip:2|"
        "pytest:2|jest:2|junit:2|unittest:2|unit tests:2|unit test:2|pandas:2|numpy:2|json:0.5|linux|terminal|"
        "command line:1.5|cli:1.5|variable:2|variables:2|class:1.5|classes:1.5|method:1.5|methods|array:2|arrays:2|"
        "string|strings|integer|boolean:2|dict:2|list comprehension:2|loop|for loop:2|while loop:2|recursion:2|"
        "recursive:1.5|lambda:2|decorator:2|decorators:2|async:2|await:2|mutex:2|pointer:1.5|pointers:1.5|struct:2|"
        "backend:1.5|frontend:1.5|full-stack:2|database|query|queries|sqlite:2|mysql:2|postgresql:2|postgres:2|"
        "mongodb:2|redis:1.5|sqlalchemy:2|orm:2|spring boot:2|laravel:2|jwt|graphql:2|websocket:2|nginx:1.5|"
        "command:1.5|commands:1.5|repo:1.5|repository|commit:1.5|pull request:2|keyerror:2|indexerror:2|typeerror:2|"
        "valueerror:2|nullpointerexception:2|segfault:2|null|undefined|runtime|programming:2|programmer:1.5|program|"
        "implement|implementation|time complexity:2|binary search:2|linked list:2|hash map:2|hashmap:2|b-tree:2|"
        "lru:1.5|console.log:2|println:2|jquery:2|webpack:2|chrome extension:2|manifest|stdin:2|stdout:2|"
        "hello world:2|makefile:2|gradle:2|maven:2|cargo|gcc:2|jvm:2|.net:2|excel formula:2|vba:2|matlab:1.5|ide|"
        "software:0.5|developer:0.5|snippet:1.5|compile error:2|error message|crash:0.5|tuple:2|iterator:2|generator|"
        "callback:2|callbacks:2|middleware:2|router:0.5|migrations|schema:0.5|ci|typescript's:2|oop:2|"
        "solid principles:2|div:2|print:0.5|csv:0.5|xml:0.5|yaml:0.5|deploy:0.5|containers:0.5|cron:2|crontab:2|"
        "ssh:1.5|localhost:1.5|port:0.5|http|docker compose:2|rest api:2|microservice|unit-tests:2|integer overflow:2|"
        "big-o:2|o(n):2|o(1):2|scratch:0.5|dart|elixir:1.5|lua:1.5|in python|in javascript|in java|in rust|in sql|"
        "in c++|in go|in bash|in typescript|in c#|in php|in ruby|in kotlin|in swift|en python|en javascript|em python|"
        "em javascript|en java|em java|на python|на javascript|на java|const:1.5|var|vim:2|emacs:2|vscode:2|"
        "git commit:2|bot|crawler:1.5|scraper:1.5|websockets:2|tic-tac-toe:0.5|fizzbuzz:2|vs code:2",
        "zh": "代码:2|函数:2|编程:2|程序:1.5|报错:2|调试:2|接口|数据库|算法|脚本:1.5|变量:2|前端:1.5|后端:1.5|编译:2|"
        "重构:2|正则:2|数组:2|字符串:2|循环|递归:1.5|命令行:1.5|远程分支:2|分支:0.5|核心代码:2|测试方案|单元测试:2|"
        "怎么查看:0.5|命令:1.5|终端:1.5|文件:0.5",
        "ja": "コード:2|関数:2|プログラム:1.5|プログラミング:2|実装:1.5|バグ:2|デバッグ:2|変数:2|クラス|データベース|"
        "スクリプト:1.5|コマンド:1.5|リファクタリング:2|配列:2|文字列:1.5|ループ|再帰:1.5|エラー|フロントエンド:1.5|"
        "バックエンド:1.5|正規表現:2|ユニットテスト:2|依存性注入:2|ターミナル:1.5|ファイル:0.5|コミット:2|ブランチ:2",
        "ko": "코드:2|함수:2|프로그램:1.5|프로그래밍:2|구현:1.5|버그:2|디버그:2|디버깅:2|변수:2|클래스|데이터베이스|"
        "스크립트:1.5|명령어:1.5|리팩토링:2|리팩터링:2|배열:2|문자열:1.5|반복문:1.5|루프|무한 루프:2|재귀:1.5|에러|"
        "오류|파이썬:2|자바스크립트:2|자바:2|백엔드:1.5|프론트엔드:1.5|정규식:2|테스트 코드:2|리스트|커밋:2|브랜치:2|"
        "터미널:1.5|파일:0.5",
        "ru": "код:2|кода:2|коде:2|кодом:2|функция:2|функцию:2|функции:2|программа|программу|программирование:2|"
        "программиста:1.5|программист:1.5|отладка:2|отладить:2|баг:2|ошибку:0.5|ошибка:0.5|класс|класса|классов|"
        "переменная:2|переменную:2|скрипт:1.5|скрипта:1.5|командой|запрос:0.5|запросы:0.5|база данных|базы данных|"
        "рефакторинг:2|отрефактори:2|отрефакторь:2|микросервис|массив:2|массива:2|списка:0.5|списке:0.5|строку:0.5|"
        "цикл|рекурсия:1.5|юнит-тесты:2|тесты:0.5|реализуй:1.5|реализовать:1.5|дубликаты:0.5|функци*:2|скрипт*:1.5|"
        "программ*|массив*:2|запуст*:0.5|процесс*:0.5|репозитор*:2|коммит*:2|ветк*:0.5",
        "de": "funktion:2|funktionen:2|programm:1.5|programmieren:2|programmierung:2|klasse|klassen|variable:2|"
        "skript:1.5|befehl:1.5|datenbank|abfrage|refaktoriere:2|refaktorieren:2|refactoring:2|schleife|fehlermeldung|"
        "webanwendung|implementiere:1.5|implementieren:1.5|branch|unit-tests:2|views|modelle:0.5|tupel:2|liste:0.5|"
        "funktion*:2|skript*:1.5|programmier*:2|datei*:0.5|befehl*:1.5|verzeichnis*",
        "es": "código:2|función:2|funciones:2|programa|programación:2|programar:2|clase:0.5|variable:2|comando:1.5|"
        "base de datos|consulta:0.5|refactoriza:2|refactorizar:2|implementa:1.5|bucle|cadena:0.5|pruebas unitarias:2|"
        "minúsculas:0.5|array:2|archivos ocultos|funci*:1.5|código*:2|programa*|script:1.5|librería:1.5|"
        "biblioteca:0.5|archivo*:0.5|carpeta:0.5",
        "pt": "código:2|função:2|funções:2|programa|programação:2|programar:2|classe:0.5|classes:0.5|variável:2|"
        "comando:1.5|banco de dados|consulta:0.5|refatore:2|refatorar:2|implemente:1.5|laço|erro:0.5|erro de índice:2|"
        "testes automatizados|testes:0.5|commits:2|funç*:2|código*:2|script:1.5|biblioteca|arquivo*:0.5|pasta:0.5",
        "fr": "code:2|fonction:2|fonctions:2|programme|programmation:2|programmer:2|classe:0.5|classes:0.5|variable:2|"
        "commande:1.5|base de données|requête|refactorise:2|refactoriser:2|implémente:1.5|implémenter:1.5|boucle|"
        "erreur:0.5|tests unitaires:2|chaîne:0.5|fichier:0.5|fonction*:2|script:1.5|bibliothèque|fichier*:0.5|"
        "dossier*:0.5|répertoire",
        "hi": "कोड:2|फ़ंक्शन:2|फंक्शन:2|प्रोग्राम:1.5|प्रोग्रामिंग:2|कमांड:1.5|डेटाबेस|बग:2|वेरिएबल:2|स्क्रिप्ट|एरर|"
        "इम्प्लीमेंट:1.5|क्लास|लिस्ट|फ़ाइल:0.5|फाइल:0.5",
        "ar": "كود:2|الكود:2|~برمج:2|دالة:2|الدالة:2|الخطأ:0.5|خطأ:0.5|قاعدة بيانات|قاعدة البيانات|بايثون:2|جافا:2|"
        "جافاسكريبت:2|سكريبت:1.5|لينكس:1.5|الأمر:0.5|اختبارات وحدات:2|متغير:1.5|أوامر:1.5|ملف:0.5|إصدار:0.5",
    },
    "multi_step": {
        "en": "first|then|next|finally|afterwards|after that|and then|step 1|step one|phase|phases|phased|stages|"
        "milestones",
        "zh": "首先|然后|接着|最后|第一步|其次|分阶段",
        "ja": "まず|次に|最後に|それから|第一に|段階",
        "ko": "먼저|그다음|그 다음|마지막으로|첫째|단계",
        "ru": "сначала|затем|потом|наконец|после этого|во-первых|этапы|поэтапно",
        "de": "zuerst|dann|danach|schließlich|anschließend|erstens|phasen",
        "es": "primero|luego|después|finalmente|fases|etapas",
        "pt": "primeiro|depois|então|finalmente|etapas|fases",
        "fr": "abord|ensuite|puis|enfin|finalement|étapes",
        "hi": "पहले|फिर|उसके बाद|अंत में|चरणों",
        "ar": "أولا|أولًا|ثم|بعد ذلك|أخيرا|أخيرًا|مراحل",
    },
    "technical_terms": {
        "en": "algorithm|algorithms|architecture|architectural|distributed|scalability|scalable|scaling|microservice|"
        "microservices|latency|throughput|concurrency|concurrent|thread-safe|encryption|protocol|authentication|"
        "authorization|infrastructure|load balancer|load balancing|deployment|kubernetes|cluster|consensus|"
        "replication|sharding|partitioning|failover|idempotency|idempotent|rate limiter|rate limiting|caching|cache|"
        "kafka|message queue|event-driven|serverless|multi-tenant|observability|monitoring|ci/cd|pipeline|"
        "orchestration|high availability|high-availability|fault tolerance|real-time|websocket|oauth|jwt|tls|dns|tcp|"
        "udp|grpc|graphql|schema|migrations|orm|indexing|transaction|transactions|machine learning|neural network|"
        "gradient|optimization|optimisation|compiler|interpreter|parser|tokenizer|ast|kernel|benchmark|profiling|"
        "performance|pagination|validation|proration|billing|sliding window|snapshot|raft|paxos|b-tree|lru|o(1)|"
        "metrics|readiness|hpa|ingress|replicas|backend|database schema|api|rest api|securitisation|leverage|"
        "regulatory",
        "zh": "架构|分布式|算法|高并发|并发|微服务|缓存|集群|一致性|协议|加密|认证|负载均衡|部署|容器|表设计|限流|"
        "异步|消息队列|性能|扩展性|可扩展|快照|节点|防止超卖",
        "ja": "アーキテクチャ|分散|アルゴリズム|認証|スケーラビリティ|マイクロサービス|キャッシュ|データベース設計|"
        "非同期|リアルタイム|並行|暗号化|負荷分散|パフォーマンス|依存性注入",
        "ko": "아키텍처|분산|알고리즘|인증|확장성|마이크로서비스|캐시|동시성|비동기|배포|장애 대응|로드 밸런서|성능|"
        "스키마|메트릭|트래픽|데이터베이스 스키마",
        "ru": "архитектура|архитектуру|архитектуры|распределённый|распределенный|алгоритм|алгоритма|масштабирование|"
        "масштабированию|микросервис|аутентификация|согласованности|согласованность|очередь|идемпотентность|кэш|"
        "производительность|репликация|шардирование|отказоустойчивость",
        "de": "architektur|verteilt|verteilte|algorithmus|skalierbarkeit|skalierbar|authentifizierung|latenz|"
        "durchsatz|verschlüsselung|infrastruktur|bereitstellung|schnittstelle|benutzerrollen|rest-api",
        "es": "arquitectura|distribuido|distribuida|algoritmo|escalabilidad|escalable|autenticación|microservicios|"
        "latencia|cifrado|infraestructura|despliegue|tiempo real|concurrencia",
        "pt": "arquitetura|distribuído|distribuída|algoritmo|escalabilidade|escalável|autenticação|microsserviços|"
        "latência|criptografia|infraestrutura|implantação|tempo real|concorrência",
        "fr": "architecture|distribué|distribuée|algorithme|scalabilité|évolutivité|authentification|latence|"
        "chiffrement|infrastructure|déploiement|temps réel|concurrence",
        "hi": "आर्किटेक्चर|एल्गोरिदम|एल्गोरिथम|डेटाबेस|ऑथेंटिकेशन|स्केलेबिलिटी|सर्वर|ग्रेडिंग",
        "ar": "البنية|خوارزمية|الخوارزمية|المصادقة|قابلية التوسع|الخوادم|خادم|واجهة برمجية",
    },
    "creative_markers": {
        "en": "story:2.5|stories:2.5|short story:3|poem:3|poems:3|poetry:3|poetic:2|haiku:3|limerick:3|sonnet:3|ode:2|"
        "ballad:2|verse:2|verses:1.5|stanza:2|stanzas:2|rhyme:2.5|rhymes:2.5|rhyming:2.5|couplet:2.5|song:2|songs:2|"
        "lyrics:3|jingle:3|slogan:3|slogans:3|tagline:3|catchphrase:3|motto:2|joke:3|jokes:3|pun:3|puns:2.5|funny|"
        "humorous:1.5|fiction:2.5|fictional:2|flash fiction:3|tale:2.5|fairy tale:3|fable:3|bedtime story:3|novel:2.5|"
        "novella:3|chapter:1.5|screenplay:3|scene:1.5|dialogue:2|monologue:2.5|character:1.5|characters:1.5|"
        "protagonist:2.5|plot|narrator:2.5|narrative:1.5|point-of-view:1.5|cliffhanger:3|twist ending:2.5|fantasy:2|"
        "sci-fi:2|science fiction:2.5|horror story:3|imagine:1.5|creative:1.5|toast:2|speech:1.5|eulogy:2.5|caption:2|"
        "hashtags:2|blurb:2.5|ad copy:3|copywriting:3|marketing copy:3|campaign:1.5|brand story:3|"
        "product description:2.5|name for:3|name ideas:2.5|names for:3|nickname:2.5|title for:2.5|come up with|invent|"
        "make up:1.5|birthday message:2.5|greeting card:2.5|love letter:3|wedding|pickup line:3|rpg:2|tabletop:1.5|"
        "worldbuilding:3|npcs:2|picture book:3|children's book:3|comedy:2|stand-up:2.5|rap:2.5|iambic:3|"
        "rhyme scheme:3|storyline:2.5|storytelling:2.5|whimsical:2|persuasive|cover letter:1.5|instagram|tweet:1.5|"
        "poet:2|ad scripts:2.5|tv ad:2|sounds more poetic:3|heartfelt:1.5|bio:2|greeting:2|congratulations:2|"
        "birthday:1.5|anniversary:1.5|thank-you note:2.5|thank you note:2.5|wishes:1.5|vows:2.5|play|three-act:3|"
        "stage directions:2.5|act|roles|fun|catchy:2|witty:2|silly:1.5|cute:1.5|motivational quote:3|motivational:1.5|"
        "quote|drama:2|radio drama:3|radio play:3|skit:3|fables:3|lullaby:3|rap verse:3|hashtag:2|episodes|sonnets:3|"
        "haikus:3|limericks:3",
        "zh": "故事:2.5|首诗:3|写诗:3|小诗:3|古诗:2.5|诗歌:3|现代诗:3|短句:2|写一句:1.5|诗词:3|小说:2.5|歌词:3|"
        "广告语:3|口号:3|标语:3|起名:3|起一个:1.5|名字:1.5|笑话:3|剧本:3|文案:2.5|创作:2|童话:3|散文:2.5|对联:3|"
        "营销方案:2.5|祝福:2.5|祝福语:3|祝贺:2|生日:1.5|致辞:2|一封信:2|写一封:1.5|贺卡:2.5|情书:3|演讲稿:2|"
        "品牌故事:3|武侠:2.5|短视频脚本:2|情节:1.5|结局:1.5|短诗:3|一首:2.5|作诗:3|打油诗:3|藏头诗:3|段子:2.5|台词:2|"
        "剧情:1.5|话剧:3|相声:3|小品:2.5|取名:3|取个:1.5|网名:2.5|昵称:2|小故事:2.5|写一首:2.5",
        "ja": "物語:3|詩を:3|の詩:2.5|詩:2|俳句:3|短歌:3|小説:2.5|歌詞:3|キャッチコピー:3|スローガン:3|名前:1.5|"
        "ジョーク:3|冗談:2|童話:3|ストーリー:2.5|スピーチ:2|脚本:2.5|ブランディング:2|ファンタジー:2|主人公:2.5|"
        "お祝い:1.5|メッセージ:1.5|誕生日:1.5|演劇:2.5|手紙:1.5|キャッチフレーズ:3|おもしろい:1.5|面白い:1.5|店名:2.5|"
        "名前を考え:3|名前をつけ:3|ネーミング:3|タイトル:1.5|短い詩:3|ポエム:3|川柳:3|台本:3|劇:2|童謡:3|子守唄:3",
        "ko": "이야기:2.5|시를 써:3|시를 지어:3|짧은 시:3|시 한 편:3|소설:2.5|가사:3|슬로건:3|홍보 문구:3|문구:2|"
        "이름 좀:2.5|이름을 지어:3|지어 주세요:1.5|지어줘:1.5|농담:3|동화:3|편지:2|캠페인:1.5|광고 영상:2|대본:2.5|"
        "등장인물:2.5|반전:1.5|복선:2.5|생신 축하:2|캐치프레이즈:3|축하 메시지:2.5|축하:1.5|생일:1.5|재미있는:1.5|"
        "노래:2|동시:2.5|글귀:2|카피:2|이름 추천:3|웹소설:3|축사:2.5|연설문:2|이름 하나:2|이름 지어:3|이름을 추천:3|"
        "채널명:2.5|닉네임:3|자장가:3|희곡:3|연극:2.5|콩트:3|랩 가사:3|광고 문구:3|이야기를:2.5",
        "ru": "рассказ:2.5|рассказа:2|стих:3|стихи:3|стихотворение:3|поэма:3|сказка:3|сказку:3|сказки:2|роман:1.5|"
        "песня:2|песню:2|слоган:3|название:1.5|придумай:1.5|сочини:2.5|шутка:3|шутку:3|анекдот:3|сценарий:1.5|"
        "сценария:1.5|сценариев:1.5|кампанию:1.5|рекламную:2|героя|героев|развязка:2|фантастический:2|четверостишие:3|"
        "стишок:3|речь:1.5|свадьбу|поздравление:2.5|поздравь:2|пожелание:2|тост:2|открытку:2|смешное:1.5|забавное:1.5|"
        "повесть:3|повести:3|пьеса:3|пьесу:3|пьесы:3|радиопостановк*:3|сценк*:3|басн*:3|колыбельн*:3|стих*:3|поэм*:3|"
        "рассказы|рассказов|сказк*:3|имя для:3|название для:3|слоган*:3|детектив*:2|глав",
        "de": "geschichte|kurzgeschichte:3|gedicht:3|gedichte:3|märchen:3|roman:1.5|lied:2|liedtext:3|slogan:3|"
        "werbeslogan:3|namen:1.5|witz:3|drehbuch:3|drehbücher:3|erzählung:2.5|werbekampagne:2.5|kampagne:1.5|reim:2.5|"
        "strophe:2.5|perspektiven|wendung:1.5|rückblenden:2.5|markengeschichte:3|fantasie:2|theaterstück:3|"
        "theaterstücks:3|regieanweisungen:2.5|figuren:1.5|rede:1.5|hochzeit|glückwunsch:2.5|glückwünsche:2.5|"
        "geburtstag:1.5|lustiges:1.5|lustige:1.5|trinkspruch:2.5|grußkarte:2.5|dankesbrief:2|hörspiel:3|hörspiels:3|"
        "sketch:3|fabel:3|schlaflied:3|wiegenlied:3|gedicht*:3|novelle:3|namen für:3|name für:3|reim*:2.5|witz*:3|"
        "lustig*:1.5",
        "es": "cuento:3|cuentos:3|historia|relato:3|poema:3|poesía:3|novela:2.5|canción:2.5|eslogan:3|nombre:1.5|"
        "chiste:3|guion:2.5|guiones:2.5|campaña:1.5|publicitaria:1.5|narradores:2.5|narrador:2.5|verso:2|rima:2.5|"
        "personajes:2|inventa:1.5|felicitación:2.5|felicitar:2|cumpleaños:1.5|divertido:1.5|divertida:1.5|brindis:2.5|"
        "mensaje|discurso:1.5|boda|obra de teatro:3|radionovela:3|radioteatro:3|fábula:3|canción de cuna:3|nana:2|"
        "poema*:3|cuento*:3|relato*:3|novela*:2.5|nombre para:3|chiste*:3|sketch:3|microrrelato:3",
        "pt": "conto:3|contos:3|história|poema:3|poesia:3|romance:1.5|canção:2.5|slogan:3|nome:1.5|piada:3|"
        "roteiro:2.5|roteiros:2.5|campanha:1.5|personagens:2|verso:2|rima:2.5|mensagem|aniversário:1.5|divertida:1.5|"
        "divertido:1.5|parabéns:2|felicitações:2.5|brinde:2|discurso:1.5|casamento|apelido:2.5|peça de teatro:3|"
        "peça:1.5|radionovela:3|fábula:3|canção de ninar:3|poema*:3|conto*:3|crônica:2.5|nome para:3|piada*:3|"
        "roteiro*:2.5|esquete:3|cordel:3",
        "fr": "histoire|conte:3|poème:3|poésie:3|nouvelle:1.5|roman:1.5|chanson:2.5|slogan:3|nom|blague:3|scénario:2|"
        "scénarios:2|campagne:1.5|publicitaire:1.5|narrateurs:2.5|narrateur:2.5|personnages:2|rime:2.5|discours:1.5|"
        "mariage|anniversaire:1.5|félicitations:2.5|drôle:1.5|amusant:1.5|toast:2|carte|pièce de théâtre:3|pièce:1.5|"
        "sketch:3|fable:3|berceuse:3|chanson*:2.5|poème*:3|conte*:3|nom pour:3|slogan*:3|blague*:3|dialogue:2",
        "hi": "कहानी:3|कविता:3|गीत:2.5|नारा:3|नाम:1.5|चुटकुला:3|उपन्यास:2.5|अभियान:1.5|विज्ञापन:1.5|शायरी:3|ब्रांड|"
        "भाषण:1.5|बधाई:2.5|शुभकामना:2.5|शुभकामनाएं:2.5|जन्मदिन:1.5|मज़ेदार:1.5|मजेदार:1.5|संदेश|नाटक:3|लोरी:3|दोहा:3|"
        "चुटकुले:3|व्यंग्य:2.5",
        "ar": "قصة:3|القصة:3|قصيدة:3|شعر:2|الشعر:2|رواية:2.5|أغنية:2.5|شعارًا:3|شعار:2|الشعار:2|اسمًا:1.5|اسم|نكتة:3|"
        "حملة:1.5|تسويقية:1.5|إعلانات:1.5|سيناريو:2|حكاية:3|~تهنئة:2.5|~معايدة:2.5|عيد ميلاد:1.5|مضحكة:1.5|طريفة:1.5|"
        "خطاب:1.5|مسرحية:3|~مسرحي:2.5|~قصيد:3|~قصص:2.5|~تهويدة:3|خاطرة:2.5",
    },
    "constraints": {
        "en": "must|exactly|at most|at least|no more than|no longer than|ensure|make sure|limit|strictly|only|"
        "required|requirement|requirements|maximum|minimum|under|within|each|every|keep it|constraints|should|cannot",
        "zh": "必须|至少|最多|不超过|要求|确保|每个|每天|限制",
        "ja": "必ず|以内|以上|少なくとも|最大|条件|それぞれ|ごと",
        "ko": "반드시|이상|이내|최소|최대|포함해|각각|모두",
        "ru": "должен|должно|должна|должны|обязательно|не более|не менее|минимум|максимум|строго|каждый|нужны",
        "de": "muss|müssen|genau|höchstens|mindestens|maximal|jede|jeden|jeder|berücksichtige",
        "es": "debe|deben|exactamente|como máximo|al menos|mínimo|máximo|cada",
        "pt": "deve|devem|exatamente|no máximo|pelo menos|cada",
        "fr": "doit|doivent|exactement|au maximum|au moins|chaque",
        "hi": "अवश्य|कम से कम|अधिकतम|ज़रूर|हर",
        "ar": "يجب|على الأقل|بحد أقصى|كل",
    },
    "agentic_verbs": {
        "en": "deploy|install|run|execute|verify|commit|push|configure|set up|migrate|provision|automate|edit file|"
        "edit the file|create a file|open a pull request|rollback|upgrade|monitor|schedule",
        "zh": "部署|安装|运行|执行|配置|迁移|上线",
        "ja": "デプロイ|インストール|実行|設定|移行",
        "ko": "배포|설치|실행|설정|마이그레이션",
        "ru": "разверни|развернуть|установи|установить|запусти|выполни|настрой|настроить",
        "de": "bereitstellen|installiere|installieren|ausführen|konfigurieren|migrieren",
        "es": "despliega|desplegar|instala|instalar|ejecuta|configura|migrar",
        "pt": "implante|instale|instalar|execute|configure|migrar",
        "fr": "déploie|déployer|installe|installer|exécute|configurer|migrer",
        "hi": "इंस्टॉल|डिप्लॉय|चलाओ|चलाइए",
        "ar": "ثبت|تثبيت|شغل|تشغيل",
    },
    "imperatives": {
        "en": "implement|build|create|fix|write|design|develop|make|generate|add|produce|construct|draft|compose|"
        "rewrite|convert|optimize|optimise",
        "zh": "实现|设计|编写|写一|开发|构建|创建|生成|修复|写一个|写一首|写一篇|帮我写|写个|写篇|写段",
        "ja": "実装|設計|書いて|作成|開発|構築|作って|修正|書いてください|作成して",
        "ko": "구현|설계|작성|개발|구축|만들어|수정|써 주세요|써줘|써 줘|지어 주세요|지어줘|짜 주세요|짜 줘",
        "ru": "напиши|реализуй|спроектируй|создай|разработай|исправь|построй|сделай|составь",
        "de": "schreibe|schreib|implementiere|entwirf|erstelle|entwickle|baue|behebe",
        "es": "escribe|implementa|diseña|crea|desarrolla|construye|corrige|haz|elabora",
        "pt": "escreva|implemente|projete|crie|desenvolva|construa|corrija|faça",
        "fr": "écris|implémente|conçois|crée|développe|construis|corrige|rédige",
        "hi": "लिखिए|लिखो|बनाइए|बनाओ|डिज़ाइन|विकसित|लिखें|बनाएं",
        "ar": "اكتب|صمم|نفذ|أنشئ|طور|اكتبي",
    },
    "output_format": {
        "en": "json|yaml|table|tables|schema|csv|markdown|bullet points|bullets|bullet|xml|headings|numbered list|"
        "checklist|checklists|spreadsheet|outline|appendix|format",
        "zh": "表格|json|标题|列表",
        "ja": "一覧表|見出し|箇条書き|表も",
        "ko": "표로|소제목|목록",
        "ru": "таблицу|таблица|таблицей|списком|заголовками|подзаголовками",
        "de": "tabelle|überschriften|checkliste|zeittafel",
        "es": "tabla|títulos|cronología",
        "pt": "tabela|títulos|lista de verificação|linha do tempo",
        "fr": "tableau|titres|sous-titres|chronologie",
        "hi": "तालिका|सूची|शीर्षक|समयरेखा",
        "ar": "جدول|جدولًا|قائمة|عناوين|خط زمني",
    },
    "references": {
        "en": "above|below|following|attached|the docs|documentation|previous|earlier|aforementioned|this code|"
        "here is|here's|this text|this article|excerpt|as mentioned|this email|this sentence",
        "zh": "以下|下面|上面|这段|附件",
        "ja": "以下|次の|上記|この",
        "ko": "다음|아래|위의|이 코드",
        "ru": "ниже|выше|следующий|этот|этого|этом",
        "de": "folgenden|unten|oben|diesen|dieser|diese",
        "es": "siguiente|abajo|arriba|este|esta",
        "pt": "seguinte|abaixo|acima|esse|este|essa",
        "fr": "suivant|ci-dessous|ci-dessus|cette|ce",
        "hi": "नीचे|ऊपर|इस",
        "ar": "التالي|أدناه|أعلاه|هذا",
    },
    "domain_terms": {
        "en": "quantum|fpga|homomorphic|genomics|thermodynamics|eigenvalue|eigenvalues|topology|cryptography|"
        "bioinformatics|epidemiology|econometrics|pharmacokinetics|relativity|entanglement|lagrangian|hamiltonian|"
        "fourier|stochastic|bayesian|keynesian|utilitarian|deontological|securitisation|monetary policy|macroeconomic|"
        "jurisprudence|triage",
        "zh": "量子|拓扑|热力学|基因组|相对论",
        "ja": "量子|熱力学|位相幾何",
        "ko": "양자|열역학",
        "ru": "квантовый|квантовая|термодинамика|топология",
        "de": "quantenmechanik|thermodynamik",
        "es": "cuántica|termodinámica",
        "pt": "quântica|termodinâmica",
        "fr": "quantique|thermodynamique",
        "hi": "क्वांटम",
        "ar": "الكم|الكمومية",
    },
    "simple_indicators": {
        "en": "what is|what's|who is|who was|who wrote|who invented|who painted|who discovered|when did|when was|"
        "where is|where are|how many|how much|how far|how tall|how old|how long|what year|which planet|which country|"
        "define|definition|meaning of|hello|hi|hey|thanks|thank you|capital|yes or no|true or false|name the|"
        "what does|stand for|what time",
        "zh": "是什么|是谁|哪里|哪个|多少|什么意思|你好|谢谢|首都|作者是谁|有多长|有多高|是哪|哪一年|叫什么|什么时候|"
        "多大|多远|几个|几岁",
        "ja": "何ですか|とは|誰|どこ|いつ|いくら|どのくらい|こんにちは|ありがとう|首都|何年|何という|何人|何個|"
        "何メートル",
        "ko": "무엇|뭐예요|누구|어디|언제|얼마|몇|안녕하세요|수도는|만들었나요|몇 년|누가|무엇인가요|뭐야|몇 개|몇 명",
        "ru": "что такое|кто|где|когда|сколько|какая|какой|какое|столица|привет|спасибо|как называется|как зовут|"
        "в каком году|как переводится|как будет",
        "de": "was ist|wer|wo|wann|wie viel|wie viele|wie hoch|welche|welcher|hauptstadt|hallo|danke|was bedeutet|"
        "wie heißt|in welchem jahr|welches",
        "es": "qué es|quién|dónde|cuándo|cuánto|cuántos|cuántas|cuál|capital|hola|gracias|qué significa|cómo se llama|"
        "en qué año|cuál es",
        "pt": "o que é|quem|onde|quando|quanto|quantos|quantas|qual|capital|olá|obrigado|obrigada|o que significa|"
        "como se chama|em que ano|qual é",
        "fr": "qu'est-ce|qui a|où|quand|combien|quel|quelle|capitale|bonjour|merci|que veut dire|que signifie|"
        "comment s'appelle|en quelle année|quel est|quelle est",
        "hi": "क्या है|कौन|कहाँ|कब|कितना|कितने|कितनी|राजधानी|नमस्ते|धन्यवाद|किसने|कौन सा|कौन सी|किस साल|क्या मतलब|का अर्थ",
        "ar": "ما هي|ما هو|من هو|أين|متى|كم|عاصمة|مرحبا|شكرا|ما معنى|في أي عام|كم عدد|ما اسم",
    },
    "negation": {
        "en": "not|without|except|never|no|none|neither|nor|avoid|don't|doesn't|isn't",
        "zh": "不要|不能|没有|除了|不超过",
        "ja": "ない|以外|せずに",
        "ko": "않|없이|제외",
        "ru": "не|без|кроме|никогда",
        "de": "nicht|ohne|außer|kein|keine|nie",
        "es": "no|sin|excepto|nunca",
        "pt": "não|sem|exceto|nunca",
        "fr": "pas|sans|sauf|jamais",
        "hi": "नहीं|बिना|सिवाय",
        "ar": "لا|بدون|ليس|إلا",
    },
    "analysis": {
        "en": "compare:1.5|comparing|comparison|versus|vs|difference|differences|differ|pros and cons:1.5|pros|cons|"
        "advantages|disadvantages|benefits and drawbacks|trade-off:1.5|trade-offs:1.5|tradeoff:1.5|tradeoffs:1.5|"
        "trade off|analyse:1.5|analyze:1.5|analysis:1.5|analyzing|analysing|evaluate:1.5|evaluation|assess:1.5|"
        "assessment|critique|implications|consequences|impact|which is better|is it better|should i|should we|weigh|"
        "argument|arguments|argue|justify|recommend|recommendation|better|worse|scenarios|strategy|sensitive|reasoned|"
        "for and against|strongest|risks",
        "zh": "比较:1.5|对比:1.5|区别|优缺点:1.5|优点|缺点|分析:1.5|评估|利弊|影响|哪个好|哪个更|更适合|建议|风险评估|"
        "值得|划算|优劣|好处和坏处|应该选|该选|如何选择|怎么选|权衡|取舍",
        "ja": "比較:1.5|違い|メリット|デメリット|分析:1.5|評価|長所|短所|影響|対策|どちらがいい|どちらが|どっちが|"
        "比べて|メリットとデメリット|長所と短所|利点|欠点|べきか|すべき|検討",
        "ko": "비교:1.5|차이|장단점:1.5|장점|단점|분석:1.5|평가|영향|추천:0.5|원인|어떤 것이 더|더 나은|더 좋은|"
        "뭐가 더|무엇이 더|어떤 게 더|나을까|나은지|좋을까|이점|해야 할까",
        "ru": "сравни:1.5|сравнить|сравнение|разница|отличие|отличия|плюсы|минусы|анализ|проанализируй:1.5|оцени|"
        "оценка|последствия|преимущества|недостатки|обоснуй|аргументы|лучше|что лучше|сравн*|разниц*|отлича*|отличи*|"
        "преимуществ*|недостат*|анализ*|проанализир*|оцен*|выгодн*|стоит ли|хуже|что выбрать|за и против",
        "de": "vergleiche:1.5|vergleich|unterschied|unterschiede|vorteile|nachteile|vor- und nachteile|analysiere:1.5|"
        "analyse|bewerte|bewertung|auswirkungen|folgen|begründete|empfehle|besser|lohnt|vergleich*|unterschied*|"
        "vorteil*|nachteil*|analysier*|bewert*|abwäg*|lohnt sich|sollte ich|sollten wir|was ist besser|empfehl*",
        "es": "compara:1.5|comparar|comparación|diferencia|diferencias|ventajas|desventajas|analiza:1.5|análisis|"
        "evalúa|evaluar|consecuencias|impacto|conviene|escenarios|mejor|contras|compar*|diferenci*|ventaja*|"
        "desventaja*|analiz*|evalú*|evalu*|vale la pena|debería|es mejor|pros y contras",
        "pt": "compare:1.5|comparar|comparação|diferença|diferenças|vantagens|desvantagens|analise:1.5|análise|avalie|"
        "avaliar|impactos|consequências|recomende|justificativas|melhor|prós|contras|compar*|diferenç*|vantage*|"
        "desvantage*|analis*|avali*|vale a pena|compensa|deveria|é melhor|prós e contras",
        "fr": "compare:1.5|comparer|comparaison|différence|différences|avantages|inconvénients|analyse:1.5|analyser|"
        "évalue|évaluer|conséquences|impact|argumentée|recommande|meilleur|mieux|compar*|différenc*|avantage*|"
        "inconvénient*|analys*|évalu*|vaut-il mieux|faut-il|devrais-je|pour et contre",
        "hi": "तुलना:1.5|अंतर|फायदे|नुकसान|विश्लेषण:1.5|मूल्यांकन|प्रभाव|सिफ़ारिश|कारणों|बेहतर|फ़ायदे|लाभ और हानि|क्या चुनें",
        "ar": "قارن:1.5|مقارنة|الفرق|مزايا|المزايا|عيوب|العيوب|حلل:1.5|تحليل|قيم|تقييم|آثار|تأثير|توصية|أفضل|أيهما|"
        "الأفضل|إيجابيات|سلبيات|هل يجب|هل ينبغي",
    },
    "explanation": {
        "en": "why|how does|how do|how did|how come|explain|explaining|explanation|what causes|reason|reasons|"
        "mechanism|how it works|work|what happens when|what happens if|what makes|how exactly|why's|whys",
        "zh": "为什么|为何|原因|原理|解释|怎么回事|为啥|怎么会|是如何|是怎么|如何工作|怎么工作|如何运作|工作原理|"
        "如何形成|怎么形成|如何产生|怎么产生|怎么来的|为什么会|讲解|阐述|说明一下|解释一下|什么原因",
        "ja": "なぜ|どうして|理由|仕組み|原理|説明|どのように|どうやって|どういう仕組み|のはなぜ|はなぜ|理由を",
        "ko": "왜|이유|원리|어떻게 작동|설명|어떻게 작용|어떻게 만들어지|어떻게 생기|어떻게 생겨|어떻게 일어나|"
        "어떻게 형성|어떻게 움직|어떻게 변하|이유가|이유는",
        "ru": "почему|зачем|как работает|объясни|объясните|отчего|как работа*|как устроен*|как образу*|как возника*|"
        "как возник*|как появ*|как происход*|как действу*|как функционир*|как влия*|объясн*|в чём разница|"
        "в чем разница|чем отлича*|каким образом|что происходит",
        "de": "warum|wieso|weshalb|wie funktioniert|erkläre|erklären|grund|wie funktionier*|wie entsteh*|"
        "wie entstand*|wie wirk*|wie kommt es|wodurch|erklär*|was passiert",
        "es": "por qué|cómo funciona|explica|explicar|razón|porqué|cómo funciona*|cómo se forma*|cómo se produce*|"
        "cómo surge*|cómo afecta*|a qué se debe|explica*|explíca*|qué pasa cuando|qué pasa si|qué ocurre",
        "pt": "por que|por quê|como funciona|explique|explicar|razão|como funciona*|como se forma*|como surg*|"
        "como acontece*|o que acontece|explica*|expliqu*",
        "fr": "pourquoi|comment fonctionne|explique|expliquer|raison|comment fonctionne*|comment marche*|"
        "comment se form*|comment se produi*|d'où vient|qu'est-ce qui|expliqu*",
        "hi": "क्यों|कैसे काम|कारण|समझाइए|समझाओ|कैसे बनत*|कैसे होत*|कैसे काम*|कैसे पैदा*|कैसे चलत*|समझाएं|समझाएँ",
        "ar": "لماذا|كيف يعمل|سبب|أسباب|اشرح|فسر|لم|~كيف ي:0.8|~كيف ت:0.8|كيف يتم|كيف تتم|ما سبب|ما أسباب|"
        "ما الذي يجعل|اشرح لي|~يشرح",
    },
    "math": {
        "en": "calculate|compute|solve|equation|equations|percent|percentage|probability|integral|derivative|sum|"
        "average|divided|multiplied|times|plus|minus|square root|prime|prime number|factorial|ratio|fraction|larger|"
        "bigger|smaller|heavier|cheaper|next number|sequence|digits|if|odd|even|multiply|divide|how old|what day|"
        "break even|geometric|arithmetic|math|mathematical|algebra|true or false|greater|how many:0.5|how much:0.5|"
        "divisible|remainder|multiple of|seconds:0.5|minutes:0.5|hours:0.5|km:0.5|miles:0.5|kilometers:0.5|meters:0.5|"
        "kg:0.5|pounds:0.5|liters:0.5|ounces:0.5|squared|cubed|cube root|to the power|power of|gcd|lcm|"
        "greatest common divisor|least common multiple|percent of|average of|median|fahrenheit|celsius|convert:0.5",
        "zh": "计算|解方程|方程|百分之|概率|打折|打八折|原价|哪个大|星期几|质数|素数|鸡兔同笼|如果|多少:0.5|多少秒|"
        "多少分钟|多少小时|多少公里|平方|立方|开方|平方根|根号|乘以|除以|加上|减去|等于多少|几倍|平均数|最大公约数|"
        "最小公倍数|公约数|公倍数|百分比|余数",
        "ja": "計算|解いて|方程式|確率|割引|何曜日|素数|何分後|なら|いくら:0.5|何秒|何分|何時間|何キロ|平方根|二乗|"
        "2乗|掛ける|かける|割る|足す|何倍|最大公約数|最小公倍数|公約数|パーセント",
        "ko": "계산|풀어|방정식|확률|소수인가요|무슨 요일|만약|곱하고|더했더니|얼마:0.5|몇 초|몇 분|몇 시간|몇 킬로|"
        "제곱|제곱근|곱하기|나누기|더하기|빼기|몇 배|최대공약수|최소공배수|퍼센트",
        "ru": "вычисли|посчитай|реши|решите|уравнение|процент|процентов|вероятность|простое число|сколько будет|"
        "больше|если|задачу|сколько:0.5|секунд:0.5|минут:0.5|часах:0.5|часов:0.5|километров:0.5|квадрат*|корень|корня|"
        "степен*|умнож*|раздели*|делить|сложи*|вычти|вычесть|процент*|среднее|дроб*|уравнени*|чему равен*|чему равно|"
        "сумма|сумму",
        "de": "berechne|rechne|löse|gleichung|prozent|wahrscheinlichkeit|primzahl|wenn|fläche|umfang|wie viel:0.5|"
        "sekunden:0.5|minuten:0.5|stunden:0.5|quadrat*|wurzel|hoch|potenz|multiplizier*|dividier*|geteilt|plus|minus|"
        "durchschnitt|bruch|ergibt",
        "es": "calcula|resuelve|ecuación|por ciento|porcentaje|probabilidad|número primo|si|números|cuánto:0.5|"
        "segundos:0.5|minutos:0.5|horas:0.5|al cuadrado|al cubo|raíz cuadrada|raíz|potencia|multiplica*|divide*|"
        "dividido|promedio|fracción|cuánto es|cuánto da|suma|resta",
        "pt": "calcule|resolva|equação|por cento|porcentagem|probabilidade|número primo|maior|idade|quanto:0.5|sobra|"
        "segundos:0.5|minutos:0.5|horas:0.5|ao quadrado|ao cubo|raiz quadrada|raiz|potência|multiplica*|divid*|média|"
        "fração|quanto é|quanto dá|soma|subtração",
        "fr": "calcule|résous|équation|pour cent|pourcentage|probabilité|nombre premier|si|combien font|combien:0.5|"
        "secondes:0.5|heures:0.5|au carré|au cube|racine carrée|racine|puissance|multipli*|divis*|moyenne|fraction|"
        "combien fait|somme|soustraction",
        "hi": "गणना|हल|समीकरण|प्रतिशत|प्रायिकता|अभाज्य|अगर|यदि|लाभ|मूल्य|कितना:0.5|सेकंड:0.5|मिनट:0.5|घंटे:0.5|"
        "वर्गमूल|गुणा|भाग|घटा|औसत|भिन्न|कितना होगा|कितने का|कितना होता",
        "ar": "احسب|حل المسألة|معادلة|بالمئة|نسبة|احتمال|أولي|إذا|يساوي|كم:0.5|ثانية:0.5|دقيقة:0.5|ساعة:0.5|"
        "الجذر التربيعي|جذر|تربيع|ضرب|قسمة|طرح|متوسط|كسر|كم يساوي",
    },
    "factual_markers": {
        "en": "what:0.5|who:0.5|when:0.5|where:0.5|which:0.5|tell me about|describe|list:0.5|overview|history|"
        "biography|explain what:1.5|facts|information|guide|timeline|reference|summary of|main|key|rules|symptoms|"
        "documents|habits|tips|steps to|how do i:0.5|how to:0.5|how can i:0.5|give me:0.5",
        "zh": "介绍|介绍一下|由来|习俗|历史|攻略|指南|全面介绍|描述|讲讲|说说",
        "ja": "教えてください|教えて|歴史|由来|ガイド|過ごし方|解説|紹介|説明して|おすすめ",
        "ko": "알려주세요|알려 주세요|역사|풍습|가이드|정리해|소개|설명해",
        "ru": "расскажи|расскажите|история|истории|путеводитель|обзор|руководство|опиши|опишите|описание",
        "de": "erzähl|erzähle|geschichte der|leitfaden|überblick|informationen|beschreibe|beschreiben|übersicht",
        "es": "háblame|historia de|guía|informe|información|describe|descripción|cuéntame",
        "pt": "fale|história do|história da|guia|panorama|informações|descreva|descrever|conte",
        "fr": "parle-moi|histoire du|histoire de|guide|présentation|informations|décris|décrire|présente",
        "hi": "बताइए|बताओ|इतिहास|गाइड|जानकारी|वर्णन|दीजिए",
        "ar": "حدثني|تاريخ|دليل|دليلًا|تقرير|تقريرًا|معلومات|صف|اوصف|معالم",
    },
    "translation": {
        "en": "translate|translation|translated|how do you say|how to say|in english|into english|into spanish|"
        "into french|into german|into italian|into japanese|into chinese|in spanish|in french|in japanese|in german|"
        "in italian|in chinese|carpe diem",
        "zh": "翻译|译成|翻成|用英语|英文",
        "ja": "訳して|翻訳|英語で|英語に",
        "ko": "번역|영어로",
        "ru": "переведи|переведите|перевод|перевести|по-английски|на английский",
        "de": "übersetze|übersetzen|übersetzung|ins englische|auf englisch",
        "es": "traduce|traducir|traducción|al inglés|en inglés",
        "pt": "traduza|traduzir|tradução|em inglês|como se diz",
        "fr": "traduis|traduire|traduction|en anglais",
        "hi": "अनुवाद|अंग्रेज़ी में|अंग्रेजी में",
        "ar": "ترجم|ترجمة|بالإنجليزية|إلى الإنجليزية",
    },
    "summarisation": {
        "en": "summarise|summarize|summary|summarising|summarizing|tl;dr|tldr|key points|main points|recap|condense|"
        "shorten|gist|synopsis|sum up|executive summary",
        "zh": "总结|概括|摘要|要点|整理出|归纳|提炼|概述",
        "ja": "要約|まとめて|要点|まとめ|整理して",
        "ko": "요약|정리해:0.5|요점",
        "ru": "перескажи|резюме|резюмируй|кратко изложи|основные мысли|суммируй|кратко перескажи|выдели главное",
        "de": "fasse|zusammen|zusammenfassung|zusammenfassen|fasse zusammen|kernpunkte",
        "es": "resume|resumen|resumir|puntos clave|sintetiza",
        "pt": "resuma|resumo|resumir|pontos principais|sintetize",
        "fr": "résume|résumé|résumer|points clés|synthèse|synthétise",
        "hi": "सारांश|संक्षेप",
        "ar": "لخص|تلخيص|ملخص",
    },
    "depth": {
        "en": "detailed|comprehensive|in-depth|in depth|thorough|thoroughly|extensive|exhaustive|complete|full|"
        "in detail|elaborate|production-ready|end-to-end|from scratch|deep dive|holistic|rigorous|rigorously|several|"
        "multiple|full-fledged|fully|all aspects|everything you know|a-z",
        "zh": "详细|全面|深入|完整|系统地|严谨|严格|深度|透彻|全方位|各个方面|完整的|详尽",
        "ja": "詳しく|詳細|網羅|完全|包括的|徹底|厳密|徹底的|網羅的|詳細に|本格的|ゼロから",
        "ko": "자세히|상세히|상세|완벽한|깊이|전체|모두 포함|엄밀|자세하게|구체적으로|깊이 있게|심층|종합적|처음부터",
        "ru": "подробно|подробный|подробную|развёрнутый|развернутый|полный|полноценную|детально|всесторонне|глубоко|"
        "строгим|подробн*|детальн*|развёрнут*|развернут*|полноценн*|полн*|всесторонн*|глубок*|исчерпывающ*|комплексн*|"
        "обстоятельн*",
        "de": "ausführlich|ausführlichen|ausführliche|umfassend|umfassenden|detailliert|vollständig|komplette|"
        "gründlich|ausführlich*|umfassend*|detailliert*|vollständig*|komplett*|gründlich*|tiefgehend*|eingehend*|"
        "vollwertig*",
        "es": "detallado|detallada|completo|completa|exhaustivo|en profundidad|a fondo|rigurosamente|detallad*|"
        "complet*|exhaustiv*|profund*|minucios*|riguros*|integral",
        "pt": "detalhado|detalhada|completo|completa|aprofundada|aprofundado|de forma aprofundada|detalhad*|complet*|"
        "aprofundad*|profund*|minucios*|rigoros*|abrangente*|exaustiv*",
        "fr": "détaillé|détaillée|complet|complète|approfondi|en profondeur|exhaustif|rigoureusement|détaillé*|"
        "complets|complètes|approfondi*|profond*|exhausti*|rigoureu*|minutieu*",
        "hi": "विस्तृत|विस्तार से|पूरी|गहराई से|संपूर्ण|विस्तार|पूरा|पूर्ण|गहन|व्यापक",
        "ar": "شامل|شاملًا|مفصل|مفصلًا|بالتفصيل|بعمق|متكاملة|كامل|مفصلا|شاملا|معمق|كاملًا|كاملا",
    },
    "brevity": {
        "en": "briefly|brief|short:0.5|in one sentence|one word|quick|quickly|one-liner|one line|in a nutshell|"
        "roughly|just|simple terms:0.5",
        "zh": "简单|一句话|简短",
        "ja": "一文で|簡単に|短く",
        "ko": "간단히|한 줄|한 문장",
        "ru": "кратко|коротко|одним словом|в одном предложении",
        "de": "kurz|kurze|knapp|in einem satz",
        "es": "breve|brevemente|en una frase",
        "pt": "breve|brevemente|em uma frase|poucas linhas",
        "fr": "brièvement|bref|en une phrase",
        "hi": "संक्षेप में|एक वाक्य",
        "ar": "باختصار|في جملة",
    },
    "small_artefact": {
        "en": "name|names|nickname|title|slogan|tagline|pun|one-liner|one-line|haiku|rhyme|rhymes with|a word|synonym|"
        "antonym|couplet|caption|hashtag|hashtags|command|one-sentence|single sentence|abbreviation|acronym|stand for|"
        "spell|plural|one-line joke|yes or no|true or false|version|joke",
        "zh": "名字|起名|广告语|标语|口号|一句|命令|写一句",
        "ja": "名前|キャッチコピー|俳句|一文|コマンド|一句",
        "ko": "이름|문구|한 줄|명령어|한 문장",
        "ru": "название|слоган|командой|команда|имя|одним словом",
        "de": "namen|slogan|werbeslogan|befehl|einem satz",
        "es": "nombre|eslogan|comando|una frase",
        "pt": "nome|slogan|comando|uma frase",
        "fr": "nom|slogan|commande|une phrase",
        "hi": "नाम|नारा|कमांड|एक वाक्य",
        "ar": "اسم|اسمًا|شعار|شعارًا|الأمر|جملة واحدة",
    },
    "medium_artefact": {
        "en": "function|method|class|poem|story|limerick|sonnet|lyrics|song|email|letter|message|toast|speech|"
        "dialogue|script|query|component|dockerfile|description|blurb|paragraph|example|tests|unit tests|"
        "regular expression|bedtime story|short story|biography|overview|caption|paragraphs|verse|chorus|describe|"
        "tell me about|history|program|programme|bot|note|play|bio:0.5|pitch|why|what are:0.6|main:0.5|"
        "key features:0.7|features:0.5|steps:0.5|ways:0.5|tips:0.5|types:0.5|benefits:0.5|causes:0.7|symptoms:0.5|"
        "plot|fable|lullaby|rap|essay:0.5|recipe:0.5|short poem|cover letter",
        "zh": "函数|程序|首诗|小诗|写诗|故事|分别:0.7|讲了什么|有哪些:0.6|特点:0.7|作用:0.7|过程:0.7|原理|意义:0.7|"
        "主要:0.5|邮件|介绍|总结|由来|习俗|历史|一封信|祝福|祝福语|一段|描述|讲讲|说说理由|短诗|一首|诗歌|歌词|一封|"
        "演讲|祝酒词|脚本|代码:0.5|小故事|童话|写一首|写一封|演讲稿",
        "ja": "関数|プログラム|詩を|の詩|物語|どんな:0.6|特徴:0.7|方法:0.5|仕組み|メール|スピーチ|手紙|メッセージ|"
        "紹介|おすすめ|理由|過ごし方|歴史|解説|由来|詩|短い詩|歌詞|エッセイ|作文|子守唄|童話",
        "ko": "함수|프로그램|시를 써|짧은 시|축사|어떤 것들:0.6|특징:0.7|방법:0.5|원리|이야기|편지|이메일|메시지|소개|"
        "설명해|풍습|역사|대해 알려|노래|가사|연설|이야기를|자장가|동화|랩 가사|연설문|축하 메시지",
        "ru": "функцию|функция|программу|какие:0.6|причины:0.7|сюжет|четверостишие|особенности:0.7|основные:0.5|"
        "стихотворение|рассказ|сказку|письмо|стих|расскажи|истории|историю|поздравление|опиши|опишите|речь|тост|"
        "стихотворен*|стих*|песн*|письм*|сказк*|басн*|функци*|скрипт*|колыбельн*",
        "de": "funktion|programm|welche sind:0.6|was sind:0.6|merkmale:0.7|wichtigsten:0.5|gedicht|geschichte|e-mail|"
        "brief|rede|erzähl|erzähle|beschreibe|beschreiben|gedicht*|lied|liedtext|märchen|fabel|funktion*|skript|"
        "schlaflied",
        "es": "función|programa|cuáles son:0.6|características:0.7|principales:0.5|poema|cuento|correo|carta|discurso|"
        "háblame|historia|mensaje|consulta|describe|cuéntame|poema*|canción*|cuento*|relato*|fábula|funci*|script|"
        "nana|canción de cuna",
        "pt": "função|programa|quais são:0.6|características:0.7|principais:0.5|poema|história|carta|discurso|fale|"
        "mensagem|descreva|conte|poema*|canção|e-mail|conto*|fábula|funç*|script|canção de ninar",
        "fr": "fonction|programme|quels sont:0.6|quelles sont:0.6|caractéristiques:0.7|principales:0.5|principaux:0.5|"
        "poème|histoire|lettre|discours|parle-moi|message|décris|présente|poème*|chanson*|e-mail|courriel|conte*|"
        "fable|fonction*|script|berceuse",
        "hi": "फ़ंक्शन|फंक्शन|प्रोग्राम|कौन से:0.6|कौन-कौन:0.6|विशेषताएं:0.7|प्रमुख:0.5|मुख्य:0.5|कविता|कहानी|पत्र|"
        "ईमेल|बताइए|के बारे में|इतिहास|संदेश|समझाइए|वर्णन|भाषण|गीत|चिट्ठी|लोरी|function",
        "ar": "دالة|برنامج|أهم:0.5|خصائص:0.7|قصيدة|قصة|رسالة|حدثني|تاريخ|اشرح|مزايا|صف|خطاب|~قصيد|أغنية|~تهويدة",
    },
    "large_artefact": {
        "en": "system:0.6|systems:0.6|application|platform|architecture|novel|novella|chapter|chapters|campaign|guide|"
        "handbook|report|curriculum|course|framework|full-stack|pipeline|engine|compiler|interpreter|screenplay|book|"
        "series|encyclopedia|strategy|roadmap|business plan|thesis|whitepaper|study guide|timeline|essay|article|saas|"
        "extension|service|migration|codebase|module|prove:2.5|proof:2.5|theorem:1.5|derive|outline|setting|"
        "campaign setting|plan:0.5|pitch|episode guide|acts:0.6|episodes:0.6|scenes:0.6|cantos|season:0.5|bible:0.6|"
        "treatment:0.6|itinerary:0.6|manual:0.6",
        "zh": "系统|架构|小说|方案|攻略|指南|报告|平台|应用|策划|长篇|证明:2|第一章|章节|三幕|大纲|世界观|完整的",
        "ja": "システム|アーキテクチャ|長編|ガイド|レポート|報告書|設計|第一章|証明:2|ブランディング|一から|演劇|"
        "脚本:0.5|章ごと|世界観|企画|構成",
        "ko": "시스템|아키텍처|장편|가이드|보고서|캠페인|기획|백엔드|증명:2|웹소설|세계관|장별|1화|앱|플랫폼",
        "ru": "систему:0.6|система:0.6|архитектуру|роман|путеводитель|руководство|отчёт|отчет|кампанию|стратегию|"
        "микросервис|обзор|докажи:2|доказательство:2|докажите:2|сценарий:0.5|фильма|глав*:0.8|эпизод*:0.6|сцен*:0.5|"
        "повесть|приложени*:0.6|платформ*|сервис*:0.6|интернет-магазин|руководств*|путеводител*|справочник*|отчёт*|"
        "доклад*|стратеги*|план:0.5",
        "de": "architektur|roman|leitfaden|bericht|kampagne|werbekampagne|strategie|webanwendung|anwendung|überblick|"
        "handbuch|beweise:2|theaterstück|theaterstücks|akt:0.5|kapitel|akten:0.6|akte:0.6|episoden:0.6|szenen:0.6|"
        "plattform|system:0.6|konzept:0.6|businessplan",
        "es": "sistema:0.6|arquitectura|novela|guía|informe|campaña|estrategia|aplicación:0.5|plataforma|demuestra:2|"
        "capítulos|actos:0.6|episodios:0.6|escenas:0.6|entregas:0.6|manual:0.6|plan:0.5",
        "pt": "sistema:0.6|arquitetura|romance|guia|relatório|campanha|estratégia|aplicação|plataforma|panorama|"
        "prove:2|capítulos|atos:0.6|episódios:0.6|cenas:0.6|manual:0.6|plano:0.5",
        "fr": "système:0.6|architecture|roman|guide|rapport|campagne|stratégie|application|plateforme|présentation|"
        "démontre:2|chapitres|actes:0.6|épisodes:0.6|scènes:0.6|manuel:0.6|plan:0.5",
        "hi": "प्रणाली|सिस्टम|आर्किटेक्चर|उपन्यास|गाइड|रिपोर्ट|अभियान|रणनीति|सिद्ध:2|अध्याय|अध्यायों|दृश्य|application|लेख:0.5|योजना",
        "ar": "نظام|نظامًا|البنية|رواية|دليل|دليلًا|تقرير|تقريرًا|حملة|استراتيجية|تطبيق|أثبت أن:2|برهن:2|فصول|فصل:0.5|"
        "مشاهد|حلقات|منصة|خطة",
    },
    # A thing to be named (nouns) and a request to come up with one (verbs, and the adjectives such requests use):
    # together they make a naming request, which is creative ("a catchy name for my bakery"); apart, they are
    # not ("what is the name of the river").
    "naming_nouns": {
        "en": "name|names|nickname|slogan|tagline|hashtag|hashtags|username|motto|brand name",
        "zh": "名字|名称|店名|起名|取名|口号|广告语|标语|昵称|网名",
        "ja": "名前|店名|ネーミング|キャッチコピー|スローガン|ニックネーム|愛称",
        "ko": "이름|슬로건|닉네임|채널명|상호|가게명",
        "ru": "имя|имени|название|названия|слоган|девиз|никнейм",
        "de": "name|namen|slogan|spitzname|motto",
        "es": "nombre|nombres|eslogan|apodo|lema",
        "pt": "nome|nomes|slogan|apelido|lema",
        "fr": "nom|noms|slogan|surnom|devise",
        "hi": "नाम|नारा|टैगलाइन",
        "ar": "اسم|اسمًا|اسما|شعار|شعارًا|لقب",
    },
    "suggestion_verbs": {
        "en": "suggest|recommend|come up with|think of|brainstorm|invent|propose|ideas|good|catchy|cute|funny|"
        "creative|original|clever",
        "zh": "起个|起一个|取个|取一个|想一|推荐|建议|好听|可爱|有创意|响亮|好记",
        "ja": "考えて|つけて|付けて|提案|おすすめ|候補|案を",
        "ko": "지어|추천|만들어|정해|생각해|아이디어",
        "ru": "придумай|придумайте|предложи|предложите|подбери|подскажи|посоветуй|хорошее|красивое|смешное|"
        "оригинальное|креативное",
        "de": "schlag|vorschlag*|empfiehl|überleg|lustig*|kreativ*|guten|schönen|witzig*|originell*",
        "es": "sugiere|sugiéreme|propón|proponme|recomienda|inventa|piensa|bonito|original|creativo|divertido|gracioso",
        "pt": "sugira|sugere|invente|pense|recomende|criativo|bonito|divertido|engraçado|original",
        "fr": "propose|proposez|suggère|suggérez|invente|imagine|drôle|original|joli|rigolo|sympa|créatif",
        "hi": "सुझाओ|सुझाइए|सुझाव|रखो|रखें|अच्छा|अच्छी|बढ़िया|मज़ेदार",
        "ar": "اقترح|اقترحي|ابتكر|فكر|جميل|مميز|مبتكر|طريف",
    },
    # Asking for a proof or a derivation: with a reasoning category, at least complex (mmrouter: "prove a theorem").
    "proof_requests": {
        "en": "prove|proof|proofs|derive|derivation",
        "zh": "证明|推导",
        "ja": "証明|導出",
        "ko": "증명",
        "ru": "докажи|докажите|доказать|доказательство|выведи|вывести",
        "de": "beweise|beweisen|beweis|herleitung|herleiten|leite",
        "es": "demuestra|demostrar|demostración|demuestre",
        "pt": "prove|provar|demonstre|demonstrar|demonstração",
        "fr": "démontre|démontrez|démontrer|démonstration|prouve|prouver|preuve",
        "hi": "सिद्ध|प्रमाण|साबित",
        "ar": "أثبت أن|اثبت أن|برهن|برهان|إثبات",
    },
    # Language markers for Latin-script text: common words distinctive for each language.
    "lang_en": {
        "en": "the|is|are|what|how|why|which|who|and|of|to|for|with|this|that|you|your|my|i|me|please|can|could|would|"
        "should|write|explain|give|does|it|about|from|be|tell",
    },
    "lang_de": {
        "de": "der|die|das|und|ist|nicht|ein|eine|einen|einem|wie|warum|ich|mir|mich|mit|für|zu|auf|bitte|welche|"
        "welcher|den|dem|des|oder|auch|sich|von|im|zum|zur|über|schreibe|schreib|erkläre|gib|wer|wo|wann|sind|kann|"
        "mein|meine|unser|unsere|eines",
    },
    "lang_es": {
        "es": "el|los|las|qué|es|y|cómo|una|con|del|cuál|cuáles|son|está|mi|quién|dónde|cuándo|cuánto|explica|escribe|"
        "dame|hay|muy|pero|al|lo|sobre|según|de|la|que|un|por|para|como|se|no|en|o|mis|tus",
    },
    "lang_pt": {
        "pt": "os|é|não|uma|um|você|do|da|dos|das|em|na|nos|nas|são|qual|quais|quem|onde|quando|quanto|escreva|faça|"
        "meu|minha|seu|sua|ao|pelo|pela|isso|esse|essa|também|muito|mas|tudo|pode|olá|obrigado|de|que|por|para|como|"
        "se|o|a|e",
    },
    "lang_fr": {
        "fr": "le|les|des|est|et|du|une|qu|quel|quelle|quels|quelles|comment|pourquoi|je|vous|nous|pour|dans|avec|"
        "cette|ces|sont|il|elle|au|aux|sur|pas|ne|qui|où|écris|donne|moi|mon|ma|mes|peux|l|j|de|la|que|un|en|d",
    },
}

# ---------------------------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------------------------

# Letters of space-delimited scripts (Latin incl. accents, Greek, Cyrillic, Armenian, Hebrew, Arabic with its
# marks, Devanagari with its vowel signs, Bengali). Python's \w would split Devanagari words at vowel signs and
# would glue CJK runs onto neighbouring Latin words ("用Python写"), so the class is spelled out.
_WORD_CHARS = (
    "0-9a-z_\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0300-\u036f\u0370-\u03ff\u0400-\u052f"
    "\u0531-\u058f\u05d0-\u05ea\u0610-\u061a\u0620-\u065f\u066e-\u06d3\u06d5-\u06ef\u06fa-\u06ff"
    "\u0900-\u0963\u0966-\u097f\u0980-\u09ff\u1e00-\u1eff"
)
_TOKEN_RE: Final = re.compile(f"[{_WORD_CHARS}][{_WORD_CHARS}+#]*")
_ENTRY_IS_WORD_RE: Final = re.compile(f"[{_WORD_CHARS}][{_WORD_CHARS}+#]*")
# ASCII fast path: every punctuation mark except the ones that live inside code words (c++, c#, snake_case)
# becomes a space, then split() does the rest. The bytes table is what prompts use (bytes.translate indexes a
# 256-byte table; str.translate looks each character up in a dict): 2x faster than a regex pass on short text.
_ASCII_SPLIT: Final = str.maketrans({c: " " for c in string.punctuation if c not in "+#_"})
_ASCII_SPLIT_BYTES: Final = bytes(32 if chr(b) in string.punctuation and chr(b) not in "+#_" else b for b in range(256))
# Scripts written without spaces between words: keywords match as substrings, length counts characters.
_SUBSTRING_SCRIPT_RE: Final = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\u1100-\u11ff\u3130-\u318f\uf900-\ufaff]"
)
# One pass over a non-ASCII region finds runs of each script; group numbers name the script.
_SCRIPT_RUN_RE: Final = re.compile(
    "([\u3040-\u30ff]+)"  # 1 kana
    "|([\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+)"  # 2 hangul
    "|([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)"  # 3 han
    "|([\u0400-\u052f]+)"  # 4 cyrillic
    "|([\u0900-\u097f]+)"  # 5 devanagari
    "|([\u0600-\u06ff\u0750-\u077f]+)"  # 6 arabic
    "|([a-z\u00c0-\u024f]+)"  # 7 latin
    "|([\u0e00-\u0eff\u0370-\u03ff\u0590-\u05ff\u1000-\u109f\u1780-\u17ff]+)"  # 8 other
)
# Any letter outside the Latin script (and its combining marks): CJK, hangul, Cyrillic, Devanagari, Arabic, ...
_NON_LATIN_RE: Final = re.compile("[\u0370-\u1dff\u2e80-\ua4cf\uac00-\ud7af\uf900-\ufaff\ufb1d-\ufdff\ufe70-\ufeff]")
_SCRIPT_LANG: Final = {1: "ja", 2: "ko", 3: "zh", 4: "ru", 5: "hi", 6: "ar", 8: "other"}
# Structure of the instruction region, one group per feature (m.lastindex says which).
# Structure, measured with C-level string methods where possible and a regex only when its trigger is present.
# These regexes run over every prompt, so each is written to start with a literal character or one character
# class: sre then scans for candidate positions in C instead of entering the matcher at every position (an order
# of magnitude on a paragraph). Identifier-led patterns therefore anchor on "(" or "." and look behind.
_CODE_TRIGGER_RE: Final = re.compile(r"[{}()=<>`;|&]")
# Any character that one of the structural regexes below needs; without one, _structure takes a short cut.
_STRUCTURE_TRIGGER_RE: Final = re.compile(r"[{}()=<>`;|&~\d\n^]")
_CODE_SYNTAX_RE: Final = re.compile(
    r"`[^`\n]{1,80}`|\{|\}|;[ \t]*(?:\n|$)|=>|->|::|==|!=|\+=|&&|\|\||<(?:/?[a-z][a-z0-9]*>)"
    r"|\.(?<=[a-z0-9_]\.)[a-z_][a-z0-9_]*\(|\((?<=[a-z0-9_]\()[a-z0-9_,\s\"']*\)",
    re.MULTILINE,
)
_DIGIT_RE: Final = re.compile(r"\d")
_MATH_SYMBOL_RE: Final = re.compile(r"[√∑∫²³≤≥≠π]")
_POWER_RE: Final = re.compile(r"\^(?<=[a-z]\^)\s*\d|\^(?<=[a-z] \^)\s*\d|\|(?=[a-z]\|)")
# One pass over the digits: a number (1), arithmetic after it (2: "3 + 4", "15%"; 3: "3x +"), or the unit that
# makes it a requested output length in words (4: "a 2,000-word story").
_NUMBER_RE: Final = re.compile(
    r"(\d(?:\d{0,2}(?:[,. \u00a0]\d{3})+|[\d.,]*))"
    r"(?:\s*([-+*/×÷^=<>]\s*[\d(]|%)|([a-z]\s*[-+=])"
    r"|[\s-]*(words?|wörter\w*|palabras|palavras|mots|слов\w*|字|자|단어|文字|शब्द\w*|كلمة))?"
)
_LIST_ITEM_RE: Final = re.compile(r"\n[ \t]*(?:\d{1,2}[.)]|[-*•])[ \t]")
_NUMBER_COMMA_RE: Final = re.compile(r",\s?(?=\d)")
_INLINE_ITEM_RE: Final = re.compile(r"\((?:\d{1,2}|[a-h])\)[ \t]")
# Where pasted material starts: a colon before a quote, a fence or a line break, or a blank line.
_MATERIAL_RE: Final = re.compile(r":[ \t]*(?=\n|[\"'«“「`])|：[ \t]*(?=\n|[\"'«“「`])|\n[ \t]*\n")
_MATERIAL_MIN_TOKENS: Final = 25
_MATERIAL_WEIGHT: Final = 0.3  # pasted material adds length, but far less than instructions do
# Hints for Latin-script languages from their letters: (characters, language dimension, weight).
_LATIN_HINTS: Final = (
    ("ñ¿¡", _LANG_ES, 2.0),
    ("ãõ", _LANG_PT, 2.0),
    ("ßäöü", _LANG_DE, 2.0),
    ("èùœëîï", _LANG_FR, 1.5),  # not ê or à: Portuguese writes them too (você, à)
    ("ê", _LANG_PT, 0.5),
    ("ç", _LANG_PT, 0.5),
    ("ç", _LANG_FR, 0.5),
)
_LATIN_HINT_CHARS: Final = frozenset("".join(chars for chars, _, _ in _LATIN_HINTS))
_WORD_BOUNDARY_AFTER = f"(?![{_WORD_CHARS}])"

_WORD_BOUNDARY_BEFORE = f"(?<![{_WORD_CHARS}])"
_ASCII_BOUNDARY_AFTER: Final = "(?![0-9a-z_])"
_ASCII_BOUNDARY_BEFORE: Final = "(?<![0-9a-z_])"
_JSON_TYPES: Final = frozenset({"json_object", "json_schema", "json"})
_QUESTION_MARKS: Final = ("?", "？", "؟")
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})
_CATEGORY_ORDER: Final[tuple[Category, ...]] = ("code", "creative", "reasoning", "factual")

# Scoring weights. Complexity is a sum of "points"; the thresholds below split it into simple/medium/complex,
# and the same points map linearly onto complexity_score so that the split lands on the routing band's edges.
# The complexity weights below were fitted as an ordinal logistic regression (simple < medium < complex) on the
# dev set's train split, regularised towards the earlier hand-set weights, and rounded: a smooth fit leaves wider
# margins than hand-tuning to every training prompt, and held-out accuracy says it generalises better.
_PTS_SIMPLE_BELOW: Final = -0.28
_PTS_COMPLEX_FROM: Final = 3.73
_PTS_LENGTH: Final = 1.4  # per unit of 0.9 * log2(length / 25 tokens), that unit clamped to [-1, 2.5]
_PTS_MEDIUM_EVIDENCE: Final = 1.9  # an explanation or a moderate artefact asked for (evidence capped at 1)
_PTS_MEDIUM_EXTRA: Final = 0.11  # per unit of further medium evidence (capped at 3)
_PTS_SEPARATOR: Final = 0.48  # per comma / semicolon in the instruction (at most 10): listed requirements
_PTS_LIST_ITEM: Final = 0.2  # per list item (at most 6)
_PTS_QUESTION: Final = 0.3  # per question mark after the first (at most 3)
_PTS_CODE_BLOCK: Final = 0.17
_PTS_WORDS_300: Final = 0.48  # an explicit length of 300-799 words
_PTS_WORDS_800: Final = 1.26  # 800 words or more
_BODY_WEIGHT: Final = 0.25  # keywords seen only in the middle of a long prompt (pasted material) count less
_SYSTEM_WEIGHT: Final = 0.3  # the system prompt adds format/constraint/role signals, not the task itself
_LANG_LENGTH_FACTOR: Final = {"zh": 0.75, "ja": 0.65, "ko": 0.6}
# Linear complexity terms: (dimension, points per unit of keyword weight, cap on the weight counted).
_PTS_TERMS: Final = {
    _REASONING: (0.74, 2.0),
    _DEPTH: (0.91, 2.0),
    _LARGE: (1.55, 3.0),
    _SMALL: (-0.92, 1.5),
    _SIMPLE: (-0.5, 1.5),
    _BREVITY: (-0.51, 1.0),
    _TRANSLATE: (-0.5, 1.0),
    _TECHNICAL: (0.23, 6.0),
    _CONSTRAINT: (0.46, 3.0),
    _MULTI_STEP: (0.17, 3.0),
    _FORMAT: (0.28, 2.0),
    _DOMAIN: (0.23, 2.0),
    _AGENTIC: (0.11, 3.0),
    _IMPERATIVE: (0.24, 3.0),
    _NEGATION: (0.24, 2.0),
}
# The same, in dimension order, for one C-level pass: _pts_values(acc) reads the fifteen weights at once,
# compress() skips the zero ones (most of them), and the loop adds the rest in dimension order.
_PTS_DIMS: Final = tuple(sorted(_PTS_TERMS))
_pts_values: Final = itemgetter(*_PTS_DIMS)
_PTS_W_CAP: Final = tuple(_PTS_TERMS[d] for d in _PTS_DIMS)
# The weights the category, tier and task type read (Classifier.classify unpacks them in this order).
_scored_values: Final = itemgetter(
    _CODE,
    _TECHNICAL,
    _CREATIVE,
    _IMPERATIVE,
    _NAMING,
    _SUGGEST,
    _MATH,
    _EXPLAIN,
    _ANALYSIS,
    _REASONING,
    _SIMPLE,
    _FACT,
    _TRANSLATE,
    _SUMMARY,
    _MEDIUM,
    _PROOF,
    _MARKERS,
)
_PTS_SPAN: Final = _PTS_COMPLEX_FROM - _PTS_SIMPLE_BELOW
_SCORE_BAND: Final = DEFAULT_COMPLEX_THRESHOLD - DEFAULT_SIMPLE_THRESHOLD
_SCORE_MEDIUM_TOP: Final = DEFAULT_COMPLEX_THRESHOLD - 0.001
_SCORE_SIMPLE_TOP: Final = DEFAULT_SIMPLE_THRESHOLD - 0.001
_EDGE_UNIT: Final = _PTS_SPAN / 2.15  # confidence keeps the calibration it had on the earlier 2.15-point band
_LOG_FLOOR: Final = -1.0
_CONFIDENCE_CLEAR: Final = 0.35 + 0.4 * 1.0  # the confidence's base and margin term, for a clear winner
_MESSAGE_OVERHEAD: Final = estimate_messages_tokens([{"content": ""}])  # tokens a message costs beyond its text
_HALF_REGION: Final = DEFAULT_REGION_CHARS // 2
_NO_STRUCTURE: Final = (0, 0, 0, 0, 0, 0)  # fences, syntax, math, list items, numbers, words asked for: plain prose


def _length_points(units: float) -> float:
    """Complexity points for the length of the instruction: 0.9 * log2(units / 25 tokens), clamped, scaled."""
    v = 0.9 * log2(units / 25.0) if units > 1.0 else _LOG_FLOOR
    return _PTS_LENGTH * (-1.0 if v < -1.0 else 2.5 if v > 2.5 else v)


# The length points of every whole number of tokens a short prompt can have, computed once by the same function:
# a float key equal to an int finds the same entry, so only discounted (fractional) lengths call log2.
_LENGTH_POINTS: Final[dict[float, float]] = {units: _length_points(units) for units in range(256)}


def _parse_entries(spec: str) -> Iterable[tuple[str, float]]:
    for raw in spec.split("|"):
        entry = raw.strip()
        if not entry:
            continue
        weight = 1.0
        head, sep, tail = entry.rpartition(":")
        if sep and head and _is_number(tail):
            entry, weight = head, float(tail)
        yield " ".join(entry.lower().split()), weight


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _trie_pattern(
    keys: Iterable[str],
    *,
    prefix_keys: frozenset[str] = frozenset(),
    bounded: bool,
    boundary_after: str = _WORD_BOUNDARY_AFTER,
    bucket: int = 0,
) -> str:
    """A regex alternation shaped as a trie, so the engine rejects a position after one character test.

    With ``bounded`` each key must end at a word boundary unless it is in ``prefix_keys`` (a stem). The
    alternation is greedy, so the longest key wins where keys share a prefix.

    sre tries the alternatives of a branch one after another, so a trie whose root has hundreds of first
    characters (CJK keywords) costs hundreds of tests per position. With ``bucket``, the root's alternatives are
    grouped that many at a time, each group behind a lookahead on its first characters, and the whole behind a
    lookahead on all of them (which lets sre skip impossible positions in C): about 2.5x faster on CJK text.
    """
    trie: dict[str, Any] = {}
    for key in keys:
        node = trie
        for ch in key:
            node = node.setdefault(ch, {})
        node["\0end"] = key in prefix_keys or not bounded
        node.setdefault("\0word", False)
        if bounded and key not in prefix_keys:
            node["\0word"] = True

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if not ch.startswith("\0")]
        if node.get("\0word"):
            alts.append(boundary_after)
        if node.get("\0end"):
            alts.append("")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    firsts = sorted(ch for ch in trie if not ch.startswith("\0"))
    if not bucket or len(firsts) <= bucket:
        return emit(trie)
    groups = []
    for i in range(0, len(firsts), bucket):
        chunk = firsts[i : i + bucket]
        group = "|".join(re.escape(ch) + emit(trie[ch]) for ch in chunk)
        groups.append(f"(?=[{''.join(re.escape(ch) for ch in chunk)}])(?:{group})")
    return f"(?=[{''.join(re.escape(ch) for ch in firsts)}])(?:{'|'.join(groups)})"


def _script_family(text: str) -> str:
    for ch in text:
        if ch.isalpha() or ch.isdigit():
            code = ord(ch)
            if code < 0x0250:
                return "latin"
            return "other"
    return "latin"


class _ClassificationSlots:
    """The storage of a :class:`Classification`: its fields, plus the evidence its signals are formatted from
    until someone reads them. Slots live here, not in the dataclass, so that :class:`_Draft` can share them."""

    __slots__ = (
        "_evidence",
        "category",
        "complexity",
        "complexity_score",
        "confidence",
        "input_tokens",
        "language",
        "signals",
        "task_matched",
        "task_type",
        "tier",
    )
    _evidence: tuple[Any, ...]
    task_type: TaskType
    task_matched: bool
    complexity_score: float
    tier: Tier
    complexity: ComplexityLabel
    category: Category
    confidence: float
    signals: tuple[str, ...]
    language: str
    input_tokens: int


@dataclass(frozen=True)
class Classification(_ClassificationSlots):
    """The routing decision for one prompt.

    Attributes:
        task_type: routeforge's task: code, reasoning, creative, translation, summarisation, factual, general.
        task_matched: whether task detection found real evidence (``False`` means ``general``: no match).
        complexity_score: 0.0-1.0; below 0.35 is simple, 0.65 and above is complex.
        tier: smart-llm-router's tier: simple, medium, complex, reasoning.
        complexity: mmrouter's complexity: simple, medium, complex.
        category: mmrouter's category: factual, reasoning, creative, code.
        confidence: 0.0-1.0; how clearly the evidence separates the winner from the runner-up.
        signals: the human-readable signals that decided it, e.g. ``("reasoning_markers:2", "lang:de")``. Built
            on first access: routing never reads them, so a request does not pay for formatting them.
        language: detected language of the last user turn: en, zh, ja, ko, ru, de, es, pt, fr, hi, ar, other.
            Which Latin-script language (en, de, es, pt, fr) is settled on first access, for the same reason.
        input_tokens: estimated input tokens of the whole chat (:func:`estimate_messages_tokens`).

    .. versionadded:: 0.1.0
    """

    __slots__ = ()  # the storage is _ClassificationSlots'

    task_type: TaskType
    task_matched: bool
    complexity_score: float
    tier: Tier
    complexity: ComplexityLabel
    category: Category
    confidence: float
    signals: tuple[str, ...]
    language: str
    input_tokens: int

    if not TYPE_CHECKING:  # hidden from type checkers, which would otherwise accept any attribute name

        def __getattr__(self, name: str) -> Any:
            # Only reached when normal lookup fails: a slot that Classifier.classify leaves to be filled in on
            # first read, from the evidence it keeps: ``signals`` always, ``language`` for Latin-script prompts.
            # The value is computed once and stored (the slot's descriptor bypasses frozenness).
            if name == "signals":
                value: Any = _format_signals(self.language, *_kept_evidence(self, name))
                _SET_SIGNALS(self, value)
                return value
            if name == "language":
                _, acc, _, _, _, _, _, uncounted, stop_words = _kept_evidence(self, name)
                value = _latin_language(acc, uncounted, stop_words)
                _SET_LANGUAGE(self, value)
                return value
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for setter, value in zip(_CLASSIFICATION_SLOTS, state, strict=True):
            setter(self, value)

    def to_dict(self) -> dict[str, Any]:
        """The classification as plain JSON-ready data."""
        return {
            "task_type": self.task_type,
            "task_matched": self.task_matched,
            "complexity_score": self.complexity_score,
            "tier": self.tier,
            "complexity": self.complexity,
            "category": self.category,
            "confidence": self.confidence,
            "signals": list(self.signals),
            "language": self.language,
            "input_tokens": self.input_tokens,
        }


# Member descriptors of the slots: __setstate__ and the lazy signals write through them (frozenness is enforced
# by Classification.__setattr__, which they bypass).
_CLASSIFICATION_SLOTS: Final = tuple(getattr(Classification, f.name).__set__ for f in fields(Classification))
_SET_SIGNALS: Final = _ClassificationSlots.__dict__["signals"].__set__
_SET_LANGUAGE: Final = _ClassificationSlots.__dict__["language"].__set__
_EVIDENCE: Final = _ClassificationSlots.__dict__["_evidence"]
_new_object = object.__new__


def _kept_evidence(c: Classification, name: str) -> tuple[Any, ...]:
    """What Classifier.classify kept to fill in ``name`` on first read (an AttributeError when nothing was kept)."""
    try:
        evidence: tuple[Any, ...] = _EVIDENCE.__get__(c)
    except AttributeError:
        raise AttributeError(f"{type(c).__name__!r} object has no attribute {name!r}") from None
    return evidence


class _Draft(_ClassificationSlots):
    """A classification being filled in. Plain attribute stores on a slotted class are the cheapest way to set
    ten fields (a frozen dataclass's __init__ goes through object.__setattr__ for each); once filled, the draft
    becomes a :class:`Classification` by a class assignment (``draft.__class__ = ...``: the draft has no frozen
    __setattr__ in the way), which the shared slot layout allows."""

    __slots__ = ()


def _format_signals(
    language: str,
    events: list[str],
    acc: list[float],
    fences: int,
    syntax: int,
    mathy: int,
    questions: int,
    last_tokens: int,
    uncounted: _Uncounted | None,
    stop_words: tuple[frozenset[bytes], ...],
) -> tuple[str, ...]:
    """The human-readable signals: overrides and flags first, then each keyword dimension, structure, length."""
    out = list(events)
    # Weights are never negative, so a keyword dimension that matched anything has a non-zero weight.
    for d in range(_NKEYDIMS):
        if acc[d]:
            out.append(f"{_SIGNAL_PREFIX[d]}{acc[d]:g}")
    if fences:
        out.append("code_block")
    if syntax:
        out.append(f"code_syntax:{syntax}")
    if mathy:
        out.append(f"math_syntax:{mathy}")
    if questions > 1:
        out.append(f"questions:{questions}")
    out.append(f"length:{last_tokens}")
    out.append(f"lang:{language}")
    return tuple(out)


# An ASCII prompt's words whose stop words are still to be counted: all of them, or (head words, all words).
_Uncounted = list[bytes] | tuple[list[bytes], list[bytes]]


def _latin_language(acc: list[float], uncounted: _Uncounted | None, stop_words: tuple[frozenset[bytes], ...]) -> str:
    """The Latin-script language with the most stop-word weight; ties go to the earlier (en, de, es, pt, fr).

    ``uncounted``, when given, holds the words of an ASCII prompt whose stop words are still to be counted.
    """
    weights = acc[_LATIN_LANG_DIMS]
    if uncounted is not None:
        for i, weight in enumerate(_stop_word_weights(stop_words, uncounted)):
            weights[i] += weight
    return _LATIN_LANGS[weights.index(max(weights))]


def _band_score(raw: float, complexity: ComplexityLabel) -> float:
    """``raw`` (the points mapped onto 0-1) kept inside ``complexity``'s band of ``complexity_score``.

    Only a complex score can leave 0-1 this way: the negative weights are capped, so the lowest possible points
    still score above 0 (a unit test checks).
    """
    if complexity == "complex":
        return DEFAULT_COMPLEX_THRESHOLD if raw < DEFAULT_COMPLEX_THRESHOLD else 1.0 if raw > 1.0 else raw
    if complexity == "medium":
        return (
            DEFAULT_SIMPLE_THRESHOLD
            if raw < DEFAULT_SIMPLE_THRESHOLD
            else _SCORE_MEDIUM_TOP
            if raw > _SCORE_MEDIUM_TOP
            else raw
        )
    return raw if raw <= _SCORE_SIMPLE_TOP else _SCORE_SIMPLE_TOP


def _stop_word_weights(stop_words: tuple[frozenset[bytes], ...], uncounted: _Uncounted) -> list[float]:
    """The stop-word weight of each Latin-script language (en, de, es, pt, fr) in an ASCII prompt.

    Args:
        stop_words: each language's stop words (the classifier's ``_ascii_stop_words``).
        uncounted: the prompt's words; or, when pasted material or a long middle count less, the words of its
            instruction (``head``) and of all of it: each stop word weighs 1, one found only beyond the head 1/4.
    """
    if type(uncounted) is list:
        return [len(words.intersection(uncounted)) for words in stop_words]
    head, everything = uncounted
    weights = []
    for words in stop_words:
        found = words.intersection(head)
        weights.append(len(found) + _BODY_WEIGHT * len(words.intersection(everything) - found))
    return weights


_Hits = dict[str, tuple[tuple[int, float], ...]]
_AsciiHits = dict[bytes, tuple[tuple[int, float], ...]]


class Classifier:
    """Rule-based prompt classifier: pure, synchronous, compiled once.

    Args:
        extra_keywords: more keywords per dimension, e.g. ``{"code_presence": ["terraform"],
            "creative_markers": ["villanelle:3"]}``. Keys are names from :data:`DIMENSIONS`; entries use the
            table syntax (``"a b"`` phrase, ``"stem*"`` word-start stem, ``"~x"`` substring, ``":w"`` weight).

    Raises:
        ConfigError: an ``extra_keywords`` key is not a known dimension.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_ascii_keys",
        "_ascii_phrase_re",
        "_ascii_stop_words",
        "_ascii_words",
        "_other_phrase_map",
        "_other_phrase_re",
        "_phrase_map",
        "_phrase_re",
        "_substr_always",
        "_substr_ascii",
        "_substr_map",
        "_substr_re",
        "_word_keys",
        "_words",
    )

    def __init__(self, *, extra_keywords: Mapping[str, Sequence[str]] | None = None) -> None:
        index = {name: i for i, name in enumerate(DIMENSIONS)} | _LANG_DIMS | _INTERNAL_DIMS
        # key -> {dim: weight}; a key listed twice in one dimension keeps its largest weight, never the sum.
        merged: dict[str, dict[int, float]] = {}
        prefix_keys: set[str] = set()
        substring_keys: set[str] = set()

        def add(dim: int, spec: str) -> None:
            for key, weight in _parse_entries(spec):
                if key.startswith("~"):
                    key = key[1:]
                    substring_keys.add(key)
                elif _SUBSTRING_SCRIPT_RE.search(key):
                    substring_keys.add(key)
                elif key.endswith("*"):
                    key = key[:-1]
                    prefix_keys.add(key)
                if not key:
                    continue
                slot = merged.setdefault(key, {})
                slot[dim] = max(weight, slot.get(dim, 0.0))

        for name, per_lang in _TABLES.items():
            for spec in per_lang.values():
                add(index[name], spec)
        for name, entries in (extra_keywords or {}).items():
            if name not in index or name in _LANG_DIMS or name in _INTERNAL_DIMS:
                raise ConfigError(
                    f"unknown classifier dimension {name!r} (known: {', '.join(DIMENSIONS)})",
                    path=f"extra_keywords.{name}",
                )
            if isinstance(entries, str):
                entries = [entries]
            add(index[name], "|".join(entries))

        words: _Hits = {}
        phrases: _Hits = {}
        others: _Hits = {}
        substrings: _Hits = {}
        for key, dims in merged.items():
            if _REASONING in dims:
                dims[_MARKERS] = 1.0  # counted once per distinct keyword, whatever its weight
            packed = tuple(sorted(dims.items()))
            if key in substring_keys:
                substrings[key] = packed
            elif key not in prefix_keys and _ENTRY_IS_WORD_RE.fullmatch(key):
                words[key] = packed
            elif _script_family(key) == "latin":
                phrases[key] = packed
            else:
                others[key] = packed
        self._words = words
        self._word_keys = frozenset(words)
        # ASCII prompts are split as bytes (bytes.translate is a table lookup, str.translate a dict lookup per
        # character), so the ASCII keys are kept as bytes too.
        # Stop words only vote for a Latin-script language, each with weight 1, and only the language field reads
        # the vote, which routing never does. So the ASCII table leaves those entries out and an ASCII prompt's
        # stop words are counted by one set intersection per language when the language is first read (see
        # _latin_language), instead of a loop turn per word on every request.
        ascii_words: _AsciiHits = {}
        stop_words: list[set[bytes]] = [set() for _ in _LATIN_LANGS]
        for key, packed in words.items():
            if key.isascii():
                encoded = key.encode()
                kept = []
                for d, w in packed:
                    if _LANG_EN <= d <= _LANG_FR and w == 1.0:
                        stop_words[d - _LANG_EN].add(encoded)
                    else:
                        kept.append((d, w))
                if kept:
                    ascii_words[encoded] = tuple(kept)
        self._ascii_words = ascii_words
        self._ascii_keys = frozenset(ascii_words)
        self._ascii_stop_words = tuple(frozenset(words) for words in stop_words)
        self._phrase_map = phrases
        self._other_phrase_map = others
        self._substr_map = substrings
        pk = frozenset(prefix_keys)
        # The look-behind comes first: mid-word positions, most of them, fail after one character test.
        self._phrase_re = re.compile(_WORD_BOUNDARY_BEFORE + _trie_pattern(phrases, prefix_keys=pk, bounded=True))
        # ASCII prompts can only match ASCII phrases, and for ASCII text the word-character class shrinks to
        # [0-9a-z_]: a smaller trie and cheaper boundary tests (about a quarter faster).
        ascii_phrases = [key for key in phrases if key.isascii()]
        self._ascii_phrase_re = re.compile(
            _ASCII_BOUNDARY_BEFORE
            + _trie_pattern(ascii_phrases, prefix_keys=pk, bounded=True, boundary_after=_ASCII_BOUNDARY_AFTER)
        )
        self._other_phrase_re = re.compile(
            _WORD_BOUNDARY_BEFORE + _trie_pattern(others, prefix_keys=pk, bounded=True, bucket=16)
        )
        self._substr_re = re.compile(_trie_pattern(substrings, bounded=False, bucket=64)) if substrings else None
        # Latin substring keys must be searched in accented Latin prompts too, and ASCII ones in ASCII prompts
        # (only extra_keywords add such keys: the tables' Latin-family ones, "2乗" and "1화", are not ASCII).
        self._substr_always = any(_script_family(k) == "latin" for k in substrings)
        self._substr_ascii = self._substr_re if any(k.isascii() for k in substrings) else None

    # ------------------------------------------------------------------------------------------------------------
    def classify_text(self, prompt: str, *, system: str | None = None) -> Classification:
        """Classify a single prompt, optionally with a system prompt.

        Args:
            prompt: the user's text.
            system: an optional system prompt.

        Returns:
            The :class:`Classification`.
        """
        if system:
            return self.classify([{"role": "system", "content": system}, {"role": "user", "content": prompt}])
        return self.classify([{"role": "user", "content": prompt}])

    def classify(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: bool = False,
        response_format: Mapping[str, Any] | None = None,
    ) -> Classification:
        """Classify a chat: the last user turn dominates, the system prompt adds signals, history adds context.

        Args:
            messages: OpenAI-style chat messages (``content`` a string or a list of parts).
            tools: whether the request offers tools (an agentic signal).
            response_format: the request's ``response_format``; a JSON type floors complexity at medium.

        Returns:
            The :class:`Classification`. The same input always gives the same output.
        """
        # --- pick the turns -------------------------------------------------------------------------------------
        if len(messages) == 1:
            # The common case, a single prompt: no history, no system prompt, one token estimate.
            last = messages[0].get("content")
            if type(last) is not str:
                last = message_text(messages[0])
            low = last.lower()
            if last.isascii():
                # estimate_tokens(last), inlined: for ASCII text it is a character count, four to a token.
                n = len(last)
                last_tokens = (n + 3) >> 2
                ascii_text = True
            else:
                last_tokens = estimate_tokens(last)
                ascii_text = low.isascii()
                if not ascii_text:
                    low = low.replace("\u2019", "'")
                n = len(low)
            user_tokens = input_tokens = last_tokens + _MESSAGE_OVERHEAD  # all of it the user's
            system = ""
            context_tokens = 0
        else:
            n_msgs = len(messages)
            last_i = n_msgs - 1
            while last_i >= 0 and messages[last_i].get("role", "user") != "user":
                last_i -= 1
            if last_i < 0:
                last_i = n_msgs - 1  # no user turn at all: classify the final message instead
            last = message_text(messages[last_i]) if last_i >= 0 else ""
            parts = [message_text(m) for m in messages if m.get("role") in _SYSTEM_ROLES]
            system = "\n".join(parts) if parts else ""
            input_tokens = estimate_messages_tokens(messages)
            last_tokens = estimate_tokens(last)
            system_tokens = estimate_tokens(system) if system else 0
            context_tokens = max(0, input_tokens - last_tokens - system_tokens - _MESSAGE_OVERHEAD * n_msgs)
            user_tokens = input_tokens - system_tokens
            low = last.lower()
            ascii_text = low.isascii()
            if not ascii_text:
                low = low.replace("\u2019", "'")
            n = len(low)

        acc = [*_NO_WEIGHTS]
        # Phrases and structure are read in the region (the head and tail of a long prompt), keywords in a longer
        # scan of it; most prompts are shorter than both, and then all three are the prompt itself.
        if n > DEFAULT_REGION_CHARS:
            region = low[:_HALF_REGION] + "\n" + low[-_HALF_REGION:]
            scan = (
                low[: DEFAULT_SCAN_CHARS - _HALF_REGION] + "\n" + low[-_HALF_REGION:] if n > DEFAULT_SCAN_CHARS else low
            )
            instr = region
        else:
            instr = region = scan = low
        # The instruction is what the user asks for; material pasted after "...:" or a blank line is its input,
        # so it adds length at a discount and its words count less. The final line often holds the question.
        units: float = last_tokens  # an int (a key of _LENGTH_POINTS) unless the material discounts it
        if ":" in low or "\n" in low or (not ascii_text and "：" in low):
            split = _MATERIAL_RE.search(low, 0, _HALF_REGION)
            if split is not None and split.start() >= 8:
                rest_tokens = estimate_tokens(low[split.end() :])
                if rest_tokens >= _MATERIAL_MIN_TOKENS:
                    # The last line is the question only when it looks like one: a short line that asks, or one
                    # set apart from the material by a blank line or a closing fence. Otherwise it is material.
                    nl = low.rfind("\n")
                    tail = low[nl + 1 :].strip()
                    before = low[:nl].rstrip(" \t")
                    if len(tail) > 200 or not (tail.endswith(_QUESTION_MARKS) or before.endswith(("\n", "```", "~~~"))):
                        tail = ""
                    instr = low[: split.start()] + "\n" + tail
                    units = max(1, last_tokens - rest_tokens) + _MATERIAL_WEIGHT * rest_tokens

        # --- keywords --------------------------------------------------------------------------------------------
        # Words are looked up in at most DEFAULT_SCAN_CHARS: the head and the tail of a very long prompt, whose
        # middle is pasted material that counts at a quarter weight anyway.
        # str keys for other scripts, bytes keys for ASCII prompts: one code path for both.
        hits: Any
        table: Any
        # An ASCII prompt's words, while their stop words are not yet counted (see Classifier.__init__): only the
        # language reads them, so they are counted when it is first read, unless a system prompt has to add its
        # own weight to theirs first.
        uncounted: _Uncounted | None
        if ascii_text:
            table = self._ascii_words
            uncounted = scan.encode().translate(_ASCII_SPLIT_BYTES).split()
            hits = self._ascii_keys.intersection(uncounted)
            phrase_re = self._ascii_phrase_re
        else:
            table = self._words
            toks = _TOKEN_RE.findall(scan)
            hits = self._word_keys.intersection(toks)
            phrase_re = self._phrase_re
            uncounted = None
        if instr is low:
            for key in hits:  # the hot path, inlined
                for d, w in table[key]:
                    acc[d] = acc[d] + w  # not +=: two fewer opcodes, and floats add no differently
        else:
            head: Any
            if uncounted is not None:
                tokens = instr.encode().translate(_ASCII_SPLIT_BYTES).split()
                head = self._ascii_keys.intersection(tokens)
                uncounted = (tokens, uncounted)  # stop words beyond the instruction weigh a quarter
            else:
                head = self._word_keys.intersection(_TOKEN_RE.findall(instr))
            _accumulate(head, table, acc)
            _accumulate_scaled(hits - head, table, _BODY_WEIGHT, acc, markers=True)
        found = phrase_re.findall(instr)
        if found:
            phrases = self._phrase_map
            for key in set(found):  # each distinct phrase once, like the words above
                for d, w in phrases[key]:
                    acc[d] = acc[d] + w
        language = ""  # settled when first read, unless the script settles it now
        if not ascii_text:
            language = self._scan_non_ascii(instr, acc)
            if language == "ar":
                # Arabic glues conjunctions, prepositions and the article onto words ("وعيوب", "بالتفصيل").
                _accumulate(self._word_keys.intersection(_arabic_stems(toks)) - hits, self._words, acc)
            if not language:
                hinted = _LATIN_HINT_CHARS.intersection(instr)  # one C-level pass over the text
                if hinted:
                    for chars, d, w in _LATIN_HINTS:
                        if not hinted.isdisjoint(chars):
                            acc[d] += w
        elif self._substr_ascii:
            _accumulate(set(self._substr_ascii.findall(instr)), self._substr_map, acc)

        # --- structure -------------------------------------------------------------------------------------------
        # Code syntax anywhere in the prompt makes it a code task; arithmetic, counts and questions are read from
        # the instruction only (figures in a pasted report are not a maths problem).
        if _STRUCTURE_TRIGGER_RE.search(region) is None:
            # Plain prose (most short prompts): no code, digits, lists or brackets; only the punctuation counts.
            fences, syntax, mathy, items, numbers, asked_words = _NO_STRUCTURE
            questions = region.count("?")
            seps = region.count(",")  # and no ";": it is one of the trigger's characters
            if not ascii_text:
                questions += region.count("？") + region.count("؟")
                seps += region.count("，") + region.count("、") + region.count("،") + region.count("；")
                mathy = len(_MATH_SYMBOL_RE.findall(region))
        else:
            fences, syntax, mathy, items, questions, seps, numbers, asked_words = _structure(region, ascii_text)
        if instr is not region:
            _, _, mathy, items, questions, seps, numbers, asked_words = _structure(instr, ascii_text)

        # --- system prompt, tools, response format ---------------------------------------------------------------
        json_floor = False
        events: list[str] = []  # overrides and flags, the first signals
        if system:
            if uncounted is not None:  # the user's stop words first, as for every other keyword
                for i, weight in enumerate(_stop_word_weights(self._ascii_stop_words, uncounted)):
                    acc[_LANG_EN + i] += weight
                uncounted = None
            sys_low = system.lower()
            if "json" in sys_low or "schema" in sys_low:
                json_floor = True
                events.append("system:json")
            sys_region = sys_low[:DEFAULT_REGION_CHARS]
            sys_tokens = (
                sys_region.translate(_ASCII_SPLIT).split() if sys_region.isascii() else (_TOKEN_RE.findall(sys_region))
            )
            # The system prompt's keywords add weight, but they are not the user's reasoning markers.
            _accumulate_scaled(
                self._word_keys.intersection(sys_tokens), self._words, _SYSTEM_WEIGHT, acc, markers=False
            )
        if response_format:
            rf_type = response_format.get("type")
            if rf_type in _JSON_TYPES:
                json_floor = True
                events.append(f"response_format:{rf_type}")

        # --- category --------------------------------------------------------------------------------------------
        # The weights the rest reads, fetched in one C-level call. Conditional expressions instead of min(): this
        # runs on every request and builtin calls add up. Weights are never negative, so a zero test skips a term
        # that would add nothing.
        (
            code_w,
            technical,
            creative_w,
            imperative,
            naming,
            suggest,
            math_w,
            explain_w,
            analysis,
            reasoning,
            simple,
            fact,
            translate,
            summary,
            medium,
            proof,
            markers,
        ) = _scored_values(acc)
        code_s = code_w if code_w < 8.0 else 8.0
        if fences:
            code_s += 3.0
        if syntax:
            code_s += 0.6 * (syntax if syntax < 5 else 5)
        if technical:
            code_s += 0.3 * (technical if technical < 3.0 else 3.0)
        creative_s = creative_w if creative_w < 8.0 else 8.0
        if naming and (suggest or imperative):
            creative_s += 2.5  # a naming request
        if imperative:
            # "write/build/design ..." asks for an artefact: its kind decides the category.
            if code_w >= 2.0:
                code_s += 1.0
            if creative_s >= 2.5:
                creative_s += 1.0
        math_s = math_w
        if mathy:
            math_s += mathy if mathy < 3 else 3
        if numbers:
            if numbers >= 2:
                math_s += 1.0 + 0.4 * (numbers - 2 if numbers < 5 else 3)
            elif math_s > 0:
                math_s += 0.5
        reasoning_s = 0.0
        explain = explain_w + analysis
        if explain:
            if analysis:
                reasoning_s += 1.4 * (analysis if analysis < 4.0 else 4.0)
            if explain_w:
                reasoning_s += 1.5 * (explain_w if explain_w < 2.5 else 2.5)
        if math_s:
            reasoning_s += 1.3 * (math_s if math_s < 4.0 else 4.0)
        if reasoning:
            reasoning_s += 2.0 * (reasoning if reasoning < 3.0 else 3.0)
        # Factual evidence: simple and factual markers (0.9 a unit, at most 3), translation and summary (1.6, at
        # most 2), on top of a base that wins when nothing else does.
        factual_s = 0.8
        if simple:
            factual_s += 0.9 * (simple if simple < 3.0 else 3.0)
        if fact:
            factual_s += 0.9 * (fact if fact < 3.0 else 3.0)
        if translate:
            factual_s += 1.6 * (translate if translate < 2.0 else 2.0)
        if summary:
            factual_s += 1.6 * (summary if summary < 2.0 else 2.0)
        if explain and not fences and not syntax:
            # Choosing between programming languages is a judgement call, not a coding task: the languages are
            # what is compared, so their code weight moves to reasoning.
            langs = (_PROGRAMMING_LANGUAGES_ASCII if ascii_text else _PROGRAMMING_LANGUAGES).intersection(hits)
            if len(langs) >= 2:
                topic = sum(w for pairs in map(table.__getitem__, langs) for d, w in pairs if d == _CODE)
                code_s = max(0.0, code_s - topic)
                reasoning_s += 1.5 * min(len(langs), 3)
        # The winner and the runner-up (the second-highest score); ties go to the earlier of code, creative,
        # reasoning, factual.
        scores = (code_s, creative_s, reasoning_s, factual_s)
        _, _, runner_up, top = sorted(scores)
        category = _CATEGORY_ORDER[scores.index(top)]

        # --- complexity ------------------------------------------------------------------------------------------
        if translate and instr is not region:
            units = last_tokens  # a translation is as long as the material it translates
        if language and language in _LANG_LENGTH_FACTOR:
            units *= _LANG_LENGTH_FACTOR[language]
        try:
            pts = _LENGTH_POINTS[units]
        except KeyError:  # a discounted (fractional) or very long length
            pts = _length_points(units)
        values = _pts_values(acc)
        for (w, cap), v in compress(zip(_PTS_W_CAP, values, strict=True), values):
            pts += w * (v if v < cap else cap)
        if medium or explain:
            # Explaining and producing a moderate artefact are both "medium" evidence: they do not add up to complex.
            strongest = medium if medium > explain else explain
            pts += _PTS_MEDIUM_EVIDENCE * (strongest if strongest < 1.0 else 1.0)
            v = medium + explain - 1.0
            if v > 0.0:
                pts += _PTS_MEDIUM_EXTRA * (v if v < 3.0 else 3.0)
        if asked_words >= 100:
            # An explicit length in words: a hundred or more is at least a moderate artefact, thousands are long.
            pts = max(pts, _PTS_SIMPLE_BELOW + 0.3)
            if asked_words >= 300:
                pts += _PTS_WORDS_800 if asked_words >= 800 else _PTS_WORDS_300
        if seps:
            pts += _PTS_SEPARATOR * (seps if seps < 10 else 10)
        if items:
            pts += _PTS_LIST_ITEM * (items if items < 6 else 6)
        if questions > 1:
            pts += _PTS_QUESTION * (questions - 1 if questions < 4 else 3)
        if fences:
            pts += _PTS_CODE_BLOCK
        if context_tokens:
            pts += min(0.4, context_tokens / 3000.0)
        if tools:
            pts += 0.5
            events.append("tools")
        # The label, its score and the distance to the nearer label boundary (for the confidence). Points map
        # linearly onto 0-1 so that the split lands on the routing band's edges, and the score is kept inside its
        # label's band (the clamps of _band_score, written out here for the common case).
        raw = DEFAULT_SIMPLE_THRESHOLD + (pts - _PTS_SIMPLE_BELOW) / _PTS_SPAN * _SCORE_BAND
        complexity: ComplexityLabel
        if pts < _PTS_SIMPLE_BELOW:
            complexity = "simple"
            edge = _PTS_SIMPLE_BELOW - pts
            score = raw if raw <= _SCORE_SIMPLE_TOP else _SCORE_SIMPLE_TOP
        elif pts >= _PTS_COMPLEX_FROM:
            complexity = "complex"
            edge = pts - _PTS_COMPLEX_FROM
            score = DEFAULT_COMPLEX_THRESHOLD if raw < DEFAULT_COMPLEX_THRESHOLD else 1.0 if raw > 1.0 else raw
        else:
            complexity = "medium"
            a = pts - _PTS_SIMPLE_BELOW
            b = _PTS_COMPLEX_FROM - pts
            edge = a if a * a < b * b else b
            score = (
                DEFAULT_SIMPLE_THRESHOLD
                if raw < DEFAULT_SIMPLE_THRESHOLD
                else _SCORE_MEDIUM_TOP
                if raw > _SCORE_MEDIUM_TOP
                else raw
            )
        # The overrides move the label, and the score with it.
        if proof and category == "reasoning" and complexity != "complex":
            complexity = "complex"
            score = _band_score(raw, complexity)
            events.append("override:proof")
        if json_floor and complexity == "simple":
            complexity = "medium"
            score = _band_score(raw, complexity)
            events.append("override:json_floor")
        if user_tokens > DEFAULT_HUGE_PROMPT_TOKENS and complexity != "complex":
            complexity = "complex"
            score = _band_score(raw, complexity)
            events.append("override:huge_prompt")
        draft = _new_object(_Draft)
        # Three decimals, rounding half up: flooring is several times cheaper than round(x, 3).
        draft.complexity_score = (score * 1000.0 + 0.5) // 1.0 / 1000.0
        draft.complexity = complexity

        # --- tier ------------------------------------------------------------------------------------------------
        if markers >= 2.0:
            draft.tier = "reasoning"
            events.append("override:reasoning_markers")
        elif category == "reasoning" and reasoning >= 1.0 and complexity != "simple":
            draft.tier = "reasoning"
        else:
            draft.tier = complexity

        # --- task type (routeforge's, from the category and the evidence behind it) --------------------------------
        draft.task_matched = True
        if category == "code":
            draft.task_type = "code"
        elif translate and (category != "creative" or (translate >= 1.0 and creative_s < 3.0)):
            draft.task_type = "translation"
        elif summary:
            draft.task_type = "summarisation"
        elif category == "creative":
            draft.task_type = "creative"
        elif category == "reasoning":
            draft.task_type = "reasoning" if reasoning + math_s + analysis >= explain_w else "factual"
        elif simple + fact + explain_w > 0:
            draft.task_type = "factual"
        else:
            draft.task_type = "general"
            draft.task_matched = False

        # --- confidence ------------------------------------------------------------------------------------------
        # How clearly the winning category leads (top >= 0.8, the factual base, so the sum is never 0), and how far
        # the points are from the nearer label boundary, in the units of the original 2.15-point band. At most
        # 0.35 + 0.4 + 0.25 == 1.0 exactly, so no clamp is needed before rounding.
        margin = (top - runner_up) / (top + runner_up)
        confidence = _CONFIDENCE_CLEAR if margin > 0.5 else 0.35 + 0.4 * (2.0 * margin)
        confidence += 0.25 if edge >= _EDGE_UNIT else 0.25 * (edge / _EDGE_UNIT)
        draft.confidence = (confidence * 1000.0 + 0.5) // 1.0 / 1000.0

        draft.category = category
        if language:
            draft.language = language
        draft.input_tokens = input_tokens
        # What signals and a Latin-script language are made from when first read (_format_signals' arguments).
        draft._evidence = (
            events,
            acc,
            fences,
            syntax,
            mathy,
            questions,
            last_tokens,
            uncounted,
            self._ascii_stop_words,
        )
        draft.__class__ = Classification  # type: ignore[assignment]  # same slots: the draft becomes the result
        return draft  # type: ignore[return-value]  # it is a Classification now

    # ------------------------------------------------------------------------------------------------------------
    def _scan_non_ascii(self, region: str, acc: list[float]) -> str:
        """The language of a non-ASCII region (by script runs), plus its non-Latin phrase and substring hits."""
        if _NON_LATIN_RE.search(region) is None:
            # Accented Latin only (de, es, pt, fr, ...): the caller decides by stop words; skip the script scan.
            if self._substr_re is not None and self._substr_always:
                _accumulate(set(self._substr_re.findall(region)), self._substr_map, acc)
            return ""
        counts = [0.0] * 9
        first = 0
        for m in _SCRIPT_RUN_RE.finditer(region):
            g = m.lastindex or 0
            size = m.end() - m.start()
            if g in (1, 2, 3):
                counts[g] += size * 0.5  # a CJK character is roughly half a word
            else:
                counts[g] += 1.0
            if not first:
                first = g
        if first:
            counts[first] += 1.5  # the instruction usually comes first
        if counts[4] or counts[5] or counts[6]:
            _accumulate(set(self._other_phrase_re.findall(region)), self._other_phrase_map, acc)
        if self._substr_re is not None:
            _accumulate(set(self._substr_re.findall(region)), self._substr_map, acc)
        best = 7
        for g in (1, 2, 3, 4, 5, 6, 8):
            if counts[g] > counts[best]:
                best = g
        if best == 3 and counts[1] > 0:
            best = 1  # kanji with any kana is Japanese
        return _SCRIPT_LANG.get(best, "")


_PROGRAMMING_LANGUAGES: Final = frozenset(
    {
        "python",
        "javascript",
        "typescript",
        "java",
        "golang",
        "rust",
        "c++",
        "c#",
        "kotlin",
        "swift",
        "php",
        "ruby",
        "scala",
        "haskell",
        "perl",
        "scratch",
        "dart",
        "elixir",
        "lua",
    }
)
_PROGRAMMING_LANGUAGES_ASCII: Final = frozenset(name.encode() for name in _PROGRAMMING_LANGUAGES)
_ARABIC_PROCLITICS: Final = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ف", "ب", "ل")


def _arabic_stems(tokens: Iterable[str]) -> set[str]:
    """Each Arabic word with its leading conjunction/preposition/article removed (at most one prefix)."""
    out: set[str] = set()
    for tok in tokens:
        for prefix in _ARABIC_PROCLITICS:
            if len(tok) > len(prefix) + 2 and tok.startswith(prefix):
                out.add(tok[len(prefix) :])
                if prefix in ("و", "ف", "ب", "ل"):
                    continue
                break
    return out


def _structure(text: str, ascii_text: bool) -> tuple[int, int, int, int, int, int, int, int]:
    """Structural counts: code fences, code syntax, math, list items, questions, separators, numbers, and the
    requested output length in words.

    Plain prose, with none of the characters of _STRUCTURE_TRIGGER_RE, is counted by the caller in line; an
    instruction cut from pasted material always holds the line break it was joined with.
    """
    mathy = numbers = asked_words = items = 0
    fences = 1 if "```" in text or "~~~" in text else 0
    syntax = len(_CODE_SYNTAX_RE.findall(text)) if _CODE_TRIGGER_RE.search(text) is not None else 0
    if _DIGIT_RE.search(text) is not None:
        if "^" in text or "|" in text:
            mathy += len(_POWER_RE.findall(text))
        for m in _NUMBER_RE.finditer(text):
            digits, op, var_op, unit = m.groups()
            if op or var_op:
                mathy += 1
            elif unit:
                asked_words = max(asked_words, int("".join(ch for ch in digits if ch.isdigit())))
            elif len(digits) == 4 and digits[0] in "12" and digits.isdigit():
                continue  # a year is a date, not arithmetic
            numbers += 1
    if not ascii_text:
        mathy += len(_MATH_SYMBOL_RE.findall(text))
    if "\n" in text:
        items = len(_LIST_ITEM_RE.findall("\n" + text))
    if "(" in text or ")" in text:
        items += len(_INLINE_ITEM_RE.findall(text))  # "(1) a summary, (2) the decisions, ..."
    questions = text.count("?")
    seps = text.count(",") + text.count(";")
    if seps and numbers:
        seps -= len(_NUMBER_COMMA_RE.findall(text))  # "2, 4, 8" and "1,000" list numbers, not requirements
    if not ascii_text:
        questions += text.count("？") + text.count("؟")
        seps += text.count("，") + text.count("、") + text.count("،") + text.count("；")
    return fences, syntax, mathy, items, questions, seps, numbers, asked_words


def _accumulate(keys: Iterable[Any], table: Mapping[Any, tuple[tuple[int, float], ...]], acc: list[float]) -> None:
    """Add each distinct matched keyword's weights once (and count its reasoning marker, if it is one)."""
    for key in keys:
        for d, w in table[key]:
            acc[d] = acc[d] + w


def _accumulate_scaled(
    keys: Iterable[Any],
    table: Mapping[Any, tuple[tuple[int, float], ...]],
    scale: float,
    acc: list[float],
    *,
    markers: bool,
) -> None:
    """Add each distinct matched keyword's weights once, times ``scale``; with ``markers`` a reasoning marker
    counts as one (the count is not a weight), without it not at all (the system prompt's are not the user's)."""
    for key in keys:
        for d, w in table[key]:
            if d != _MARKERS:
                acc[d] = acc[d] + w * scale
            elif markers:
                acc[d] = acc[d] + w
