"""Helpers for the real-model engine tests."""
from __future__ import annotations

import asyncio
import time

from hearth.engine import ChatMessage, EngineConfig, LoadState, Prompt, SamplingParams, create_engine
from hearth.models import default_model_path

TIMEOUT = 240  # a hang guard, not a timing assert: the shared 2-core machine can be 20x oversubscribed


def make_engine(**kw):
    cfg = EngineConfig(model_path=str(default_model_path()), **kw)
    eng = create_engine(cfg)
    eng.start()
    deadline = time.monotonic() + 120
    while eng.state is LoadState.LOADING and time.monotonic() < deadline:
        time.sleep(0.02)
    assert eng.state is LoadState.READY
    return eng


def chat(text: str, system: str | None = None) -> Prompt:
    msgs = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", text),)
    return Prompt(messages=msgs)


def greedy(max_tokens=16, **kw) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, **kw)


async def collect(eng, prompt: Prompt, params: SamplingParams):
    """(text, text deltas, generation) with a timeout: no request waits forever. The Deltas themselves
    are in `generation.deltas`."""
    gen = None

    async def go():
        nonlocal gen
        gen = await eng.submit(prompt, params)
        gen.deltas = [d async for d in gen]
        texts = [d.text for d in gen.deltas]
        return "".join(texts), texts, gen

    try:
        return await asyncio.wait_for(go(), TIMEOUT)
    except asyncio.TimeoutError:
        if gen is not None:
            gen.cancel()  # do not leave it running for the next test
        raise AssertionError(f"request timed out after {TIMEOUT}s; engine stats {eng.stats()}")


def run(coro):
    return asyncio.run(coro)
