"""While the real model loads, every generating route answers 503 + Retry-After, then 200 once loaded.

The load is held back by tests/hooked_server.py's engine factory (a 135M model otherwise loads in ~1 s)."""
import time

import httpx
import pytest

from support import RunningServer

BODIES = {
    "/chat/completions": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
    "/completions": {"model": "m", "prompt": "hi", "max_tokens": 2},
    "/embeddings": {"model": "m", "input": "hi"},
}


@pytest.fixture(scope="module")
def loading_server():
    running = RunningServer(load_delay=6, wait_ready=False)  # HTTP up, model held back
    yield running.url
    running.stop()


def test_503_model_loading_on_every_route_then_200(loading_server):
    assert httpx.get(f"{loading_server}/models").json() == {"object": "list", "data": []}
    for path, body in BODIES.items():
        r = httpx.post(f"{loading_server}{path}", json=body)
        assert r.status_code == 503, (path, r.status_code, r.text)
        assert int(r.headers["retry-after"]) >= 1
        error = r.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "model_loading"), error
    deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
    for path, body in BODIES.items():
        while (r := httpx.post(f"{loading_server}{path}", json=body, timeout=60)).status_code == 503:
            assert time.monotonic() < deadline, "the model never finished loading"
            time.sleep(0.2)
        assert r.status_code == 200, (path, r.text)
    assert httpx.get(f"{loading_server}/models").json()["data"]
