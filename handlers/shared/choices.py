"""A request's choices collected whole, for a non-streamed answer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from connexion import context

from handlers.shared import reasoning
from handlers.shared.common import until_done_or_disconnect
from hearth.engine import api
from hearth.errors import ApiError, from_engine, internal
from hearth.models.request import FAILED, ChoiceDelta, Request


@dataclass
class Collected:
    """Whole choices: text, the tokens that spell it, tool-call fragments, finish reasons; usage."""

    texts: list[str]
    tokens: list[list[api.TokenOut]]
    tool_calls: list[list[api.ToolCallDelta]]
    finish_reasons: list[str]
    usage: dict = field(default_factory=dict)
    reasonings: list[str] = field(default_factory=list)  # <think> text split out of `texts` (split_reasoning)


def failure(error: api.EngineError | None, param: str) -> ApiError:
    """What a failed choice answers: an engine failure is a 500 (logged); a queue timeout its 503."""
    if error is None or isinstance(error, api.GenerationFailed):
        return internal(api.GenerationFailed("the engine failed a request"))
    return from_engine(error, param)


async def run_split(request: Request, feed: Callable[[str, ChoiceDelta], object], param: str) -> str:
    """Run a one-choice request to its end, feeding each (reasoning, delta) to `feed`; returns the finish
    reason. A failed choice raises its error; the client's disconnect cancels the request."""
    result: list[str] = []

    async def gather() -> None:
        async for thought, d in reasoning.split(request):
            if d.finish_reason == FAILED:
                raise failure(d.error, param)
            feed(thought, d)
            if d.finish_reason:
                result.append(d.finish_reason)

    await until_done_or_disconnect(gather, context.receive, request)
    return result[0]


async def collect(request: Request, prompt_tokens: int | None = None, split_reasoning: bool = False) -> Collected:
    """Run the choices to the end; a client that disconnects meanwhile cancels them. A failed choice
    raises its error (a 500 for an engine failure, 503 queue_timeout). `split_reasoning`: <think> text
    goes to `reasonings`, not `texts`."""
    n = len(request.generations)
    texts: list[list[str]] = [[] for _ in range(n)]
    done = Collected([], [[] for _ in range(n)], [[] for _ in range(n)], ["stop"] * n, reasonings=[""] * n)
    errors: list[api.EngineError] = []

    async def gather() -> None:
        deltas = reasoning.split(request) if split_reasoning else ((None, d) async for d in request.deltas())
        async for thought, d in deltas:
            if thought:
                done.reasonings[d.index] += thought
            texts[d.index].append(d.text)
            done.tokens[d.index].extend(d.tokens)
            done.tool_calls[d.index].extend(d.tool_calls)
            if d.finish_reason:
                done.finish_reasons[d.index] = d.finish_reason
            if d.error is not None:
                errors.append(d.error)

    await until_done_or_disconnect(gather, context.receive, request)
    if FAILED in done.finish_reasons:
        raise from_engine(errors[0], "messages") if errors else internal(api.GenerationFailed("the engine failed"))
    done.texts = ["".join(t) for t in texts]
    done.usage = request.usage(prompt_tokens)
    return done
