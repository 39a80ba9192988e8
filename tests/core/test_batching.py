"""Continuous batching with the real model: each stream gets exactly its own tokens, alone or under load.

The guarantee (see hearth/engine/model_runner.py): every sequence has its own KV stream, and llama.cpp
then computes a sequence's logits bit-identically whatever else shares the batch and however its prompt
is chunked. So greedy AND seeded outputs are the same alone, under load, from the prefix cache or not.
"""
import asyncio

import pytest

from hearth.engine import Overloaded, Prompt, SamplingParams

from support import TIMEOUT, cancel_while_decoding, chat, collect, greedy, make_engine, run

PROMPTS = [chat(q) for q in (
    "Name three fruits.", "What is 2 + 2?", "Say hello in Spanish.", "Describe a cat in one sentence.",
    "What colour is the sky?", "Give me a word that rhymes with moon.",
)]
SEEDED = SamplingParams(temperature=0.9, top_p=0.9, max_tokens=20, seed=1234)


def test_interleaved_streams_match_their_solo_runs(engine):
    params = [greedy(20) if i % 2 == 0 else SEEDED for i in range(len(PROMPTS))]
    solo = [run(collect(engine, p, k))[0] for p, k in zip(PROMPTS, params)]

    async def together():
        return await asyncio.gather(*(collect(engine, p, k) for p, k in zip(PROMPTS, params)))

    for text, want in zip([r[0] for r in run(together())], solo):
        assert text == want
    assert len(set(solo)) == len(solo)  # distinct prompts really gave distinct streams


def test_more_requests_than_slots_all_complete(engine):
    n = engine.stats()["n_parallel"] * 3

    async def burst():
        return await asyncio.gather(*(collect(engine, chat(f"Count to {i}."), greedy(6)) for i in range(n)))

    results = run(burst())
    assert all(g.finish_reason in ("stop", "length") for _, _, g in results)
    s = engine.stats()
    assert s["running"] == 0 and s["waiting"] == 0 and s["outstanding"] == 0


def test_cancel_during_decoding_frees_the_slot(engine):
    before = engine.stats()
    s = cancel_while_decoding(engine)
    assert s["cancelled"] == before["cancelled"] + 1
    assert s["running"] == 0 and s["outstanding"] == 0 and s["kv_tokens_running"] == 0
    assert s["completion_tokens"] - before["completion_tokens"] < 50  # it really stopped


def test_cancel_during_prefill_frees_the_slot(engine):
    before = engine.stats()

    async def go():
        gen = await engine.submit(Prompt(text="word " * 400), greedy(50))
        gen.cancel()
        for _ in range(300):
            s = engine.stats()
            if s["outstanding"] == 0:
                return s, [d async for d in gen]
            await asyncio.sleep(0.02)
        return engine.stats(), []

    s, deltas = run(asyncio.wait_for(go(), TIMEOUT))
    assert s["cancelled"] == before["cancelled"] + 1 and s["outstanding"] == 0 and s["kv_tokens_running"] == 0
    assert s["prefill_tokens"] - before["prefill_tokens"] < 400


def test_a_full_queue_is_overloaded_at_once():
    eng = make_engine(n_ctx=256, n_parallel=1, max_queue=1)
    try:
        async def go():
            a = await eng.submit(chat("Tell me a long story."), greedy(40))
            b = await eng.submit(chat("Tell me another story."), greedy(4))
            with pytest.raises(Overloaded):
                await eng.submit(chat("And a third."), greedy(4))
            ra = [d async for d in a]
            rb = [d async for d in b]
            c = await eng.submit(chat("Now there is room."), greedy(2))  # the queue drained
            return ra, rb, [d async for d in c]

        ra, rb, rc = run(asyncio.wait_for(go(), TIMEOUT))
        assert ra and rb and rc
        assert eng.stats()["rejected"] == 1
    finally:
        eng.close()


def test_a_stalled_client_does_not_stall_the_others(engine):
    async def go():
        stalled = await engine.submit(chat("Write a long story about the sea."), greedy(40))  # never read
        text, _, gen = await collect(engine, chat("What is 2 + 2?"), greedy(8))
        rest = [d async for d in stalled]  # everything was buffered meanwhile
        return text, rest, stalled

    text, rest, stalled = run(asyncio.wait_for(go(), TIMEOUT))
    assert text and rest and stalled.finish_reason in ("stop", "length")
