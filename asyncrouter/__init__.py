"""asyncrouter: route each LLM prompt to the right model, asynchronously."""

from ._config import Config
from ._engine import BatchStream, Router, RouteStream
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
from ._models import Attempt, Response, ResponseMeta
from ._planner import RoutingDecision
from ._types import NOT_GIVEN

__version__ = "0.1.0.dev0"

__all__ = [
    "NOT_GIVEN",
    "AllProvidersFailed",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "BatchStream",
    "BudgetExceeded",
    "CircuitOpen",
    "Config",
    "ConfigError",
    "ContentPolicyError",
    "ContextLengthExceeded",
    "MalformedResponse",
    "NoRouteError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderOverloaded",
    "ProviderRejected",
    "ProviderServerError",
    "ProviderTimeout",
    "QualityGateFailed",
    "QuotaExhausted",
    "RateLimited",
    "Response",
    "ResponseMeta",
    "RouteStream",
    "Router",
    "RouterError",
    "RoutingDecision",
    "StreamInterrupted",
]
