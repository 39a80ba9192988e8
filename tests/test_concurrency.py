"""Concurrent requests queue and none truncates another; a disconnect frees the engine at once."""
import asyncio
import time

import httpx
import pytest
from openai import AsyncOpenAI

from conftest import RunningServer

COUNTING = "Count from 1 to 100: 1, 2, 3,"


async def stream_completion(client, prompt, max_tokens, **extra):
    text, finish = "", None
    stream = await client.completions.create(model="m", prompt=prompt, max_tokens=max_tokens, stream=True,
                                             stream_options={"include_usage": True}, **extra)
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].text
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    return text, finish, usage.completion_tokens


def test_concurrent_streams_each_complete_with_their_own_tokens(server):
    async def main():
        async with AsyncOpenAI(base_url=server, api_key="k", max_retries=0, timeout=180) as client:
            prompts = [f"{COUNTING[:-1]} {i}," for i in range(6)]
            alone = [await stream_completion(client, p, 24, temperature=0) for p in prompts[:2]]
            together = await asyncio.gather(*(stream_completion(client, p, 24, temperature=0) for p in prompts))
        for text, finish, tokens in together:
            assert tokens == 24 and finish == "length" and text
        assert [t[0] for t in together[:2]] == [t[0] for t in alone]

    asyncio.run(asyncio.wait_for(main(), 300))


@pytest.fixture(scope="module")
def one_slot_server():
    running = RunningServer("--parallel", "1", "--ctx-size", "2048")
    yield running.url
    running.stop()


def test_disconnect_mid_stream_frees_the_only_slot(one_slot_server):
    body = {"model": "m", "prompt": COUNTING, "max_tokens": 1900, "temperature": 0, "stream": True}
    for _ in range(3):  # three abandoned long streams: if any kept generating, the next request would queue
        with httpx.stream("POST", f"{one_slot_server}/completions", json=body, timeout=60) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
    started = time.monotonic()
    r = httpx.post(f"{one_slot_server}/completions", json={**body, "stream": False, "max_tokens": 4}, timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    # 1,900 abandoned tokens take well over 10 s here; a freed slot answers in well under that
    assert time.monotonic() - started < 10


def test_disconnect_while_waiting_for_a_plain_answer_frees_the_slot(one_slot_server):
    body = {"model": "m", "prompt": COUNTING, "max_tokens": 1900, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{one_slot_server}/completions", json=body, timeout=1.5)
    started = time.monotonic()
    r = httpx.post(f"{one_slot_server}/completions", json={**body, "max_tokens": 4}, timeout=120)
    assert r.status_code == 200 and time.monotonic() - started < 10
