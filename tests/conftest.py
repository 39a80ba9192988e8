"""Shared fixtures: the real server (uvicorn over the real model on a free loopback port)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
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
        (ROOT / ".pytest_cache").mkdir(exist_ok=True)  # the server's log, which some tests read
        self.log = open(ROOT / f".pytest_cache/server-{self.port}.log", "w")
        if not {"--store-path", "--no-store"} & set(args):  # stored responses: the server's own file, not ~/.cache
            args = (*args, "--store-path", str(ROOT / f".pytest_cache/responses-{self.port}.sqlite3"))
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


class InProcessServer:
    """The real app over an engine this process holds, served by uvicorn from a thread on a free loopback
    port, so that a test can read the engine's counters (`engine.stats()`) beside the HTTP answers.
    `app_options`: create_app's keywords (limits, api_keys, ...); the rest is the EngineConfig."""

    def __init__(self, app_options: dict | None = None, **config):
        import uvicorn

        from hearth.app import create_app
        from hearth.engine import EngineConfig, LoadState, create_engine
        from hearth.models import default_model_path

        self.engine = create_engine(EngineConfig(model_path=str(default_model_path()), **config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        app = create_app(self.engine, **(app_options or {}))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="in-process-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 180
        while not (self.server.started and self.engine.state is LoadState.READY):
            assert self.thread.is_alive() and self.engine.state is not LoadState.FAILED, "in-process server failed"
            assert time.monotonic() < deadline, "in-process server did not become ready"
            time.sleep(0.05)

    def stats(self) -> dict:
        return self.engine.stats()

    def wait_idle(self, timeout: float = 120) -> dict:
        """The engine's counters once nothing is outstanding (a hang guard, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while (stats := self.engine.stats())["outstanding"] or stats.get("running"):
            assert time.monotonic() < deadline, f"the engine never went idle: {stats}"
            time.sleep(0.05)
        return stats

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


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
