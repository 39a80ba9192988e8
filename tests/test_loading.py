"""A request while the model loads gets 503 + Retry-After, then succeeds once it is loaded (real model)."""
import time

import httpx

from conftest import RunningServer


def test_503_while_loading_then_200():
    running = RunningServer(env={"HEARTH_TEST_LOAD_DELAY": "2"}, wait_ready=False)
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        r = httpx.post(f"{running.url}/chat/completions", json=body)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "model_loading"
        deadline = time.monotonic() + 120
        while (r := httpx.post(f"{running.url}/chat/completions", json=body, timeout=60)).status_code == 503:
            assert time.monotonic() < deadline, "the model never finished loading"
            time.sleep(0.2)
        assert r.status_code == 200
    finally:
        running.stop()
