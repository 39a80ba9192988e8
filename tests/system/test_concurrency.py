"""Concurrent requests queue and none truncates another; a disconnect cancels its sequence and frees its
cells, asserted by the engine's own counters (not by how fast the next request is answered)."""
import asyncio

import httpx
import pytest
from openai import AsyncOpenAI

from support import InProcessServer

COUNTING = "Count from 1 to 100: 1, 2, 3,"
LONG = 1900  # far more tokens than the test lets run: a sequence still running at the end was not cancelled


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
def one_slot():
    """One sequence at a time and no waiting room: a request that finds the slot taken gets 503."""
    running = InProcessServer(n_parallel=1, n_ctx=2048, max_queue=0)
    yield running
    running.stop()


def abandon_stream(url: str) -> None:
    body = {"model": "m", "prompt": COUNTING, "max_tokens": LONG, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/completions", json=body, timeout=60) as r:
        assert next(r.iter_lines()).startswith("data: ")  # it is running; now the client goes away


def test_disconnect_mid_stream_cancels_the_sequence_and_frees_its_cells(one_slot):
    before = one_slot.wait_idle()
    for _ in range(3):
        abandon_stream(one_slot.url)
        one_slot.wait_idle()  # the slot is free again before the next stream (max_queue 0 would refuse it)
    after = one_slot.wait_idle()
    assert after["cancelled"] - before["cancelled"] == 3, (before, after)
    assert after["finished"] == before["finished"]
    assert after["kv_tokens_running"] == 0  # no cell is held for a sequence
    assert after["completion_tokens"] - before["completion_tokens"] < 3 * LONG
    r = httpx.post(f"{one_slot.url}/completions", json={"model": "m", "prompt": "Hi", "max_tokens": 4}, timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4  # with max_queue 0: the slot is free


def test_disconnect_while_waiting_for_a_plain_answer_cancels_the_sequence(one_slot):
    before = one_slot.wait_idle()
    body = {"model": "m", "prompt": COUNTING, "max_tokens": LONG, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{one_slot.url}/completions", json=body, timeout=1.5)
    after = one_slot.wait_idle()
    assert after["cancelled"] - before["cancelled"] == 1, (before, after)
    assert after["kv_tokens_running"] == 0
    assert after["completion_tokens"] - before["completion_tokens"] < LONG


def test_a_request_beyond_the_slot_and_the_queue_is_503_server_overloaded(one_slot):
    one_slot.wait_idle()
    body = {"model": "m", "prompt": COUNTING, "max_tokens": LONG, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{one_slot.url}/completions", json=body, timeout=60) as running:
        lines = running.iter_lines()  # held: a collected line iterator closes the response (a disconnect)
        assert next(lines).startswith("data: ")
        for path, extra in (("/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
                            ("/completions", {"prompt": "hi"})):
            r = httpx.post(f"{one_slot.url}{path}", json={"model": "m", "max_tokens": 2, **extra}, timeout=60)
            assert r.status_code == 503, (path, r.text, one_slot.stats())
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] == "server_overloaded"
    assert one_slot.wait_idle()["rejected"] >= 2
