"""States the real model is brought into on purpose (no model loaded), and the one a real model cannot
reach on demand (an engine failure), which a fake engine stands in for. Loading: tests/system/test_loading.py;
overload: tests/system/test_concurrency.py (both over the real model)."""
import json

import pytest

from support import FakeEngine, ask

pytestmark = pytest.mark.anyio
CHAT = {"model": "any", "messages": [{"role": "user", "content": "hi"}]}


async def post(engine, path, body):
    return await ask(engine, "POST", "/v1" + path, json=body)


@pytest.mark.parametrize("path,body", [("/chat/completions", CHAT), ("/completions", {"model": "m", "prompt": "a"}),
                                       ("/embeddings", {"model": "m", "input": "a"})])
async def test_no_model_loaded_is_404_model_not_found(path, body):
    r = await post(None, path, body)  # a registry with nothing loaded and nothing on disk
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "model_not_found"), error


@pytest.mark.parametrize("n", [1, 2])
async def test_engine_failure_is_a_500_server_error_not_a_hang(n):
    r = await post(FakeEngine(fail_after=1), "/chat/completions", {**CHAT, "n": n})
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error" and "request id" in error["message"]


async def test_engine_failure_mid_stream_sends_an_error_event():
    r = await post(FakeEngine(fail_after=1), "/completions", {"model": "m", "prompt": "a", "stream": True})
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert '"text":"Hel"' in events[0]
    assert json.loads(events[1])["error"]["type"] == "server_error"
