"""A throwaway redis-server on 127.0.0.1 for tests: free port, temp dir, no persistence."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_server_binary", "require_redis_server", "running_redis"]

STARTUP_TIMEOUT = 10.0


def redis_server_binary() -> str | None:
    """The redis-server executable, or None."""
    return shutil.which("redis-server")


def require_redis_server() -> str:
    """The redis-server path; skip when it is missing, unless CI is set: then missing it is a failure."""
    binary = redis_server_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed but CI is set: the Redis tests must run in CI")
        pytest.skip("redis-server binary not found (install redis-server; with CI set this fails instead)")
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process. ``command()`` speaks just enough RESP for PING, FLUSHALL and the like."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        last_error = ""
        for _ in range(5):  # another process may grab the port between probing and binding
            self.port = _free_port()
            log = self.workdir / f"redis-{self.port}.log"
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir), "--logfile", str(log)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if self.command("PING") == b"+PONG":
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            last_error = log.read_text(errors="replace")[-2000:] if log.exists() else "no log"
            self.stop()
        raise RuntimeError(f"redis-server did not start: {last_error}")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def command(self, *args: str) -> bytes:
        """Send one command; return the first line of the reply (enough for status and integer replies)."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload)
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0]


@contextmanager
def running_redis(workdir: Path, binary: str | None = None) -> Iterator[RedisServer]:
    """Start a redis-server in ``workdir``, yield it once it answers PING, and always terminate it."""
    server = RedisServer(binary or require_redis_server(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
