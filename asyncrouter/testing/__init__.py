"""Test helpers you can use in your own test suite: a fake clock and the fake provider fleet.

:class:`FakeProviderServer` is a real aiohttp server on loopback that speaks the OpenAI, Anthropic,
OpenRouter, HuggingFace-router and Ollama wire formats, with scripted latency, hedging, faults and
deterministic replies. ``python -m asyncrouter.testing`` runs the :func:`default_fleet` until Ctrl-C.

.. versionadded:: 0.1
"""

from ._behaviour import FAULT_KINDS, FakeModel, FakeRequest, FaultKind, RecordedRequest, WireFormat
from ._clock import FakeClock
from ._server import ALL_PROVIDERS, FakeProviderServer, default_fleet

__all__ = [
    "ALL_PROVIDERS",
    "FAULT_KINDS",
    "FakeClock",
    "FakeModel",
    "FakeProviderServer",
    "FakeRequest",
    "FaultKind",
    "RecordedRequest",
    "WireFormat",
    "default_fleet",
]
