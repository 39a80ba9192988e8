"""Running a request's choices: admit them all or none, merge their Deltas as they come, or collect
them whole."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator

import anyio
from connexion import context

from handlers.common import until_done_or_disconnect
from hearth import limits
from hearth.engine import api
from hearth.engine.registry import Lease
from hearth.errors import ApiError, from_engine, internal

FAILED = "error"  # a ChoiceDelta's finish_reason when the engine failed the choice


async def submit_all(model: Lease, prompts: list[api.Prompt], params: list[api.SamplingParams],
                     param: str) -> list[api.Generation]:
    """Admit every choice to the same model, or none: on an error the ones already admitted are cancelled."""
    generations: list[api.Generation] = []
    try:
        for prompt, p in zip(prompts, params):
            generations.append(await model.submit(prompt, p))
    except api.EngineError as exc:
        for g in generations:
            g.cancel()
        raise from_engine(exc, param) from None
    limits.check_prompt(prompts, generations, param)
    return limits.with_deadline(generations)


@dataclass(slots=True)
class ChoiceDelta:
    index: int
    text: str = ""
    tokens: tuple[api.TokenOut, ...] = ()
    tool_calls: tuple[api.ToolCallDelta, ...] = ()
    finish_reason: str | None = None  # OpenAI's word, or FAILED; set on a choice's last ChoiceDelta only
    error: ApiError | None = None  # with FAILED: what to answer (None: the engine failed, a 500)


async def _choice(index: int, g: api.Generation) -> AsyncIterator[ChoiceDelta]:
    try:
        async for d in g:
            if d.text or d.tokens or d.tool_calls:
                yield ChoiceDelta(index, d.text, d.tokens, d.tool_calls)
    except api.GenerationFailed:
        yield ChoiceDelta(index, finish_reason=FAILED)
        return
    if (error := limits.queue_timeout(g)) is not None:  # its time ran out before it left the queue
        yield ChoiceDelta(index, finish_reason=FAILED, error=error)
        return
    yield ChoiceDelta(index, finish_reason=g.finish_reason.value)


async def deltas(generations: list[api.Generation]) -> AsyncIterator[ChoiceDelta]:
    """Every choice's Deltas as they come, then one ChoiceDelta per choice carrying its finish_reason
    (FAILED, with the error to answer, when the engine failed it or its time ran out in the queue)."""
    if len(generations) == 1:
        async for d in _choice(0, generations[0]):
            yield d
        return
    queue: asyncio.Queue[ChoiceDelta] = asyncio.Queue()

    async def pump(index: int, g: api.Generation) -> None:
        async for d in _choice(index, g):
            queue.put_nowait(d)

    async with anyio.create_task_group() as tg:
        for i, g in enumerate(generations):
            tg.start_soon(pump, i, g)
        for _ in generations:
            while (d := await queue.get()).finish_reason is None:
                yield d
            yield d
        # every pump has put its final ChoiceDelta; the task group exits at once


@dataclass
class Collected:
    """Whole choices: text, the tokens that spell it, tool-call fragments, finish reasons; usage."""

    texts: list[str]
    tokens: list[list[api.TokenOut]]
    tool_calls: list[list[api.ToolCallDelta]]
    finish_reasons: list[str]
    usage: dict = field(default_factory=dict)


def usage(generations: list[api.Generation], prompt_tokens: int | None = None) -> dict:
    prompt = sum(g.prompt_tokens for g in generations) if prompt_tokens is None else prompt_tokens
    completion = sum(g.completion_tokens for g in generations)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def collect(generations: list[api.Generation], prompt_tokens: int | None = None) -> Collected:
    """Run the choices to the end; a client that disconnects meanwhile cancels them."""
    n = len(generations)
    texts: list[list[str]] = [[] for _ in range(n)]
    done = Collected([], [[] for _ in range(n)], [[] for _ in range(n)], ["stop"] * n)
    errors: list[ApiError] = []

    async def gather() -> None:
        async for d in deltas(generations):
            texts[d.index].append(d.text)
            done.tokens[d.index].extend(d.tokens)
            done.tool_calls[d.index].extend(d.tool_calls)
            if d.finish_reason:
                done.finish_reasons[d.index] = d.finish_reason
            if d.error is not None:
                errors.append(d.error)

    await until_done_or_disconnect(gather, context.receive, generations)
    if FAILED in done.finish_reasons:
        raise errors[0] if errors else internal(api.GenerationFailed("the engine failed a request"))
    done.texts = ["".join(t) for t in texts]
    done.usage = usage(generations, prompt_tokens)
    return done
