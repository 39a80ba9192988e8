"""A request's choices collected whole, for a non-streamed answer."""
from __future__ import annotations

from dataclasses import dataclass, field

from connexion import context

from handlers.shared.common import until_done_or_disconnect
from hearth.engine import api
from hearth.errors import from_engine, internal
from hearth.models.request import FAILED, Request


@dataclass
class Collected:
    """Whole choices: text, the tokens that spell it, tool-call fragments, finish reasons; usage."""

    texts: list[str]
    tokens: list[list[api.TokenOut]]
    tool_calls: list[list[api.ToolCallDelta]]
    finish_reasons: list[str]
    usage: dict = field(default_factory=dict)


async def collect(request: Request, prompt_tokens: int | None = None) -> Collected:
    """Run the choices to the end; a client that disconnects meanwhile cancels them. A failed choice
    raises its error (a 500 for an engine failure, 503 queue_timeout)."""
    n = len(request.generations)
    texts: list[list[str]] = [[] for _ in range(n)]
    done = Collected([], [[] for _ in range(n)], [[] for _ in range(n)], ["stop"] * n)
    errors: list[api.EngineError] = []

    async def gather() -> None:
        async for d in request.deltas():
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
