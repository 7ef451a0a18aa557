"""asyncrouter: route each LLM prompt to the right model, asynchronously."""

from ._breaker import BreakerEvent, BreakerStatus
from ._budget import BudgetEvent, BudgetStatus
from ._config import Config
from ._engine import BatchStream, LogQuery, Router, RouteStream
from ._exceptions import (
    AllProvidersFailed,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ContentPolicyError,
    ContextLengthExceeded,
    MalformedResponse,
    NoRouteError,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    QualityGateFailed,
    QuotaExhausted,
    RateLimited,
    RouterError,
    StreamInterrupted,
)
from ._experiment import Experiment, ExperimentStatus
from ._judge import QualityReport, judge_quality
from ._models import Attempt, RequestRecord, Response, ResponseMeta
from ._planner import RoutingDecision
from ._quality import GateInput, GateResult, QualityGate
from ._store import Stats
from ._types import NOT_GIVEN

__version__ = "0.1.0.dev0"

__all__ = [
    "NOT_GIVEN",
    "AllProvidersFailed",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "BatchStream",
    "BreakerEvent",
    "BreakerStatus",
    "BudgetEvent",
    "BudgetExceeded",
    "BudgetStatus",
    "CircuitOpen",
    "Config",
    "ConfigError",
    "ContentPolicyError",
    "ContextLengthExceeded",
    "Experiment",
    "ExperimentStatus",
    "GateInput",
    "GateResult",
    "LogQuery",
    "MalformedResponse",
    "NoRouteError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderOverloaded",
    "ProviderRejected",
    "ProviderServerError",
    "ProviderTimeout",
    "QualityGate",
    "QualityGateFailed",
    "QualityReport",
    "QuotaExhausted",
    "RateLimited",
    "RequestRecord",
    "Response",
    "ResponseMeta",
    "RouteStream",
    "Router",
    "RouterError",
    "RoutingDecision",
    "Stats",
    "StreamInterrupted",
    "judge_quality",
]
