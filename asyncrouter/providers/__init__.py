"""Native wire formats over aiohttp: OpenAI-compatible family, Anthropic Messages, Ollama native.

Each format is a pure :class:`Provider` (build the request, parse the reply, decode a stream);
:class:`ModelClient` sends what it builds through the router's one HTTP session.
"""

from ._anthropic import AnthropicFormat
from ._base import KeyCheck, Provider, StreamDecoder, normalise_finish_reason
from ._client import ModelClient, provider_for
from ._keys import KeyPool
from ._ollama import OllamaNativeFormat
from ._openai import OpenAIFormat

__all__ = [
    "AnthropicFormat",
    "KeyCheck",
    "KeyPool",
    "ModelClient",
    "OllamaNativeFormat",
    "OpenAIFormat",
    "Provider",
    "StreamDecoder",
    "normalise_finish_reason",
    "provider_for",
]
