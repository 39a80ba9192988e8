"""Per-request limits over the real model: prompt tokens, n x max_tokens, wall-clock time."""
from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from support import InProcessServer, RunningServer
from hearth import limits
from hearth.engine import api
from hearth.errors import ApiError

COUNTING = "Count from 1 to 100: 1, 2, 3,"  # greedy, SmolLM2 keeps counting well past 1,900 tokens


@pytest.fixture(scope="module")
def limited():
    running = RunningServer("--max-prompt-tokens", "40", "--max-request-tokens", "4096", "--request-timeout", "1",
                            "--ctx-size", "2048", "--parallel", "2")
    yield running.url
    running.stop()


def post(url, path, body):
    return httpx.post(f"{url}{path}", json=body, timeout=120)


@pytest.mark.parametrize("path,body,param", [
    ("/completions", {"model": "m", "prompt": "word " * 60, "max_tokens": 1}, "prompt"),
    ("/completions", {"model": "m", "prompt": ["word " * 25, "word " * 25], "max_tokens": 1}, "prompt"),
    ("/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "word " * 60}], "max_tokens": 1},
     "messages"),
])
def test_prompt_over_the_limit_is_400_context_length_exceeded(limited, path, body, param):
    r = post(limited, path, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == param
    assert "at most 40 prompt tokens" in error["message"]


def test_chat_choices_share_one_prompt(limited):
    """n choices of one prompt count its tokens once."""
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "n": 3, "max_tokens": 1}
    assert post(limited, "/chat/completions", body).status_code == 200


def test_n_times_max_tokens_over_the_budget_is_422(limited):
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "n": 4, "max_tokens": 1100}
    r = post(limited, "/chat/completions", body)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_value" and error["param"] == "max_tokens" and "4400" in error["message"]


def test_without_max_tokens_each_choice_gets_its_share_of_the_budget(monkeypatch):
    monkeypatch.setattr(limits, "current", lambda: limits.Limits(max_request_tokens=4096))
    assert limits.cap_max_tokens(4, None, 2048, "max_tokens") == 1024  # 4 x the 2,048 ceiling is over
    assert limits.cap_max_tokens(2, None, 2048, "max_tokens") is None  # 2 x 2,048 fits: no cap
    assert limits.cap_max_tokens(4, 1024, 2048, "max_tokens") == 1024
    with pytest.raises(ApiError) as caught:
        limits.cap_max_tokens(4, 1025, 2048, "max_completion_tokens")
    assert caught.value.status == 422 and caught.value.param == "max_completion_tokens"


def test_timeout_ends_a_plain_answer_with_finish_reason_length(limited):
    r = post(limited, "/completions", {"model": "m", "prompt": COUNTING, "max_tokens": 1900, "temperature": 0})
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "length"
    # cut short (none at all on a machine busy enough), not by the context: 19 + 1,900 < 2,048
    assert body["usage"]["completion_tokens"] < 1900


def test_timeout_ends_a_stream_with_finish_reason_length_then_done(limited):
    body = {"model": "m", "prompt": [COUNTING, COUNTING], "max_tokens": 1900, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{limited}/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    finishes = {c["choices"][0]["index"]: c["choices"][0]["finish_reason"] for c in chunks
                if c["choices"] and c["choices"][0]["finish_reason"]}
    assert finishes == {0: "length", 1: "length"}
    assert chunks[-1]["usage"]["completion_tokens"] < 2 * 1900


@pytest.fixture(scope="module")
def queued():
    """A server with two sequences and a 1 s request timeout, whose engine the test can fill directly."""
    running = InProcessServer({"limits": limits.Limits(request_timeout=1)}, n_parallel=2, n_ctx=2048, n_threads=1)
    yield running
    running.stop()


def occupy(engine, n: int):
    """`n` sequences submitted to the engine itself (no request timeout), running until the returned
    function is called; returns once they are all running."""
    running, release = threading.Event(), threading.Event()

    async def hold() -> None:
        gens = [await engine.submit(api.Prompt(text=COUNTING), api.SamplingParams(max_tokens=1900, temperature=0))
                for _ in range(n)]
        while engine.stats()["running"] < n:
            await asyncio.sleep(0.01)
        running.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        for g in gens:
            g.cancel()
        for g in gens:
            async for _ in g:
                pass

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    assert running.wait(120), "the engine never ran the sequences"

    def done() -> None:
        release.set()
        thread.join(120)

    return done


def test_a_request_still_queued_when_its_time_runs_out_gets_503_queue_timeout(queued):
    """Every sequence busy past the 1 s timeout: a plain request never starts and gets 503 (not an empty
    "length" answer); a stream, whose 200 is sent, ends with the same error as an event. Nothing is left
    queued afterwards."""
    before = queued.stats()
    release = occupy(queued.engine, 2)
    try:
        r = post(queued.url, "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                                                   "max_tokens": 5})
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        error = r.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "queue_timeout")
        assert "waited 1 s in the queue without starting" in error["message"]
        body = {"model": "m", "prompt": "Hi", "max_tokens": 5, "stream": True}
        with httpx.stream("POST", f"{queued.url}/completions", json=body, timeout=120) as s:
            assert s.status_code == 200
            events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
        assert [json.loads(e)["error"]["code"] for e in events[:-1]] == ["queue_timeout"]
        assert events[-1] == "[DONE]"
    finally:
        release()
    stats = queued.wait_idle()
    assert stats["waiting"] == 0 and stats["cancelled"] - before["cancelled"] == 4  # 2 timed out, 2 released
    r = post(queued.url, "/completions", {"model": "m", "prompt": "Hi", "max_tokens": 2})
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
