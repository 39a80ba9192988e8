"""Session fixtures: the real server (uvicorn over the real model on a free loopback port)."""
from __future__ import annotations

import httpx
import pytest

from support import ROOT, RunningServer


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
