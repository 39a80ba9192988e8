"""Shared fixtures: the real server (uvicorn over the real model on a free loopback port)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """`python -m hearth serve` in a subprocess; `url` is its base URL (…/v1).

    `load_delay`: serve through tests/hooked_server.py, whose engine factory holds the real model's load
    back that many seconds (the 503 `model_loading` window, on demand)."""

    def __init__(self, *args: str, env: dict | None = None, wait_ready: bool = True, timeout: float = 180,
                 load_delay: float | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        key = (env or {}).get("HEARTH_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.log = open(ROOT / f".pytest_cache/server-{self.port}.log", "w") if (ROOT / ".pytest_cache").is_dir() \
            else subprocess.DEVNULL
        launcher = ["-m", "hearth"] if load_delay is None else \
            [str(ROOT / "tests" / "hooked_server.py"), "--load-delay", str(load_delay)]
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, "serve", "--port", str(self.port), *args],
            env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        self._wait(timeout, ready=wait_ready)

    def _wait(self, timeout: float, ready: bool) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                r = httpx.get(f"{self.url}/models", timeout=2, headers=self.headers)
                if not ready or r.json()["data"]:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def server() -> str:
    """Base URL of the real server over the default model, shared by the whole session."""
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    running = RunningServer()
    yield running.url
    running.stop()


@pytest.fixture(scope="session")
def model_id(server) -> str:
    return httpx.get(f"{server}/models").json()["data"][0]["id"]


@pytest.fixture
def anyio_backend():
    return "asyncio"
