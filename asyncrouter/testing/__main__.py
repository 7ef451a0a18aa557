"""``python -m asyncrouter.testing``: serve the default fake fleet on loopback until Ctrl-C.

Prints the base URL of every wire format and an asyncrouter config snippet that points at the fleet, so
``asyncrouter route --config <that file> "..."`` works with no API keys at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import get_args

import yaml

from asyncrouter._types import ProviderName

from ._server import DEFAULT_HOST, DEFAULT_SEED, FakeProviderServer, default_fleet

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m asyncrouter.testing",
        description="Serve fake LLM providers (OpenAI, Anthropic, OpenRouter, HuggingFace, Ollama formats).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for replies and faults")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="latency multiplier: 1 realistic, 0 instant (default: 1)"
    )
    parser.add_argument("--no-faults", action="store_true", help="serve without random faults")
    parser.add_argument(
        "--provider",
        choices=get_args(ProviderName),
        default="openai",
        help="provider kind used in the printed config snippet (default: %(default)s)",
    )
    parser.add_argument("--api-key", action="append", dest="api_keys", help="accept only this key (repeatable)")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    if args.speed < 0:
        raise SystemExit("--speed must not be negative")
    fleet = default_fleet(speed=args.speed, faults=not args.no_faults)
    async with FakeProviderServer(
        models=fleet, seed=args.seed, host=args.host, port=args.port, api_keys=args.api_keys
    ) as srv:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Ctrl-C and SIGTERM (a process manager, a test) both end the wait, so the server always closes
        # through its async context manager. Windows has no add_signal_handler: there Ctrl-C raises
        # KeyboardInterrupt, which main() absorbs.
        signals = (signal.SIGINT, signal.SIGTERM)
        with contextlib.suppress(NotImplementedError):
            for sig in signals:
                loop.add_signal_handler(sig, stop.set)
        print(f"asyncrouter fake provider fleet listening on {srv.url}")
        print(f"  openai / huggingface / ollama-openai: {srv.openai_url}")
        print(f"  anthropic:                            {srv.anthropic_url}")
        print(f"  openrouter:                           {srv.openrouter_url}")
        print(f"  ollama (native /api/chat):            {srv.ollama_url}")
        print("models:", ", ".join(srv.models))
        print("# asyncrouter config snippet:")
        print(yaml.safe_dump(srv.config_dict(provider=args.provider), sort_keys=False), end="")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            await stop.wait()
        finally:
            with contextlib.suppress(NotImplementedError):
                for sig in signals:
                    loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fleet until interrupted; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
