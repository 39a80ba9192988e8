"""States a real model cannot be held in on demand (loading, a full queue, an engine failure),
through the real app over a fake engine."""
import json

import httpx
import pytest

from fake_engine import FakeEngine
from hearth.app import create_app
from hearth.engine import api

pytestmark = pytest.mark.anyio
CHAT = {"model": "any", "messages": [{"role": "user", "content": "hi"}]}


async def post(engine, path, body):
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test/v1") as client:
        return await client.post(path, json=body)


@pytest.mark.parametrize("path,body", [("/chat/completions", CHAT), ("/completions", {"model": "m", "prompt": "a"}),
                                       ("/embeddings", {"model": "m", "input": "a"})])
async def test_loading_is_503_with_retry_after(path, body):
    r = await post(FakeEngine(state=api.LoadState.LOADING), path, body)
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == {"message": "The model is still loading.", "type": "server_error", "param": None,
                                 "code": "model_loading"}


async def test_full_queue_is_503_server_overloaded():
    r = await post(FakeEngine(overloaded=True), "/chat/completions", {**CHAT, "stream": True})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "server_overloaded"


async def test_no_model_is_404_model_not_found():
    r = await post(FakeEngine(state=api.LoadState.EMPTY), "/chat/completions", CHAT)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


async def test_models_list_is_empty_while_loading():
    transport = httpx.ASGITransport(app=create_app(FakeEngine(state=api.LoadState.LOADING)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test/v1") as client:
        assert (await client.get("/models")).json() == {"object": "list", "data": []}


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
