"""What the completion handlers share: engine access, sampling parameters, running choices, SSE."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable

import anyio
from connexion import context
from starlette.responses import JSONResponse, StreamingResponse

from hearth import limits
from hearth.engine import api
from hearth.errors import from_engine, internal, invalid_value

SEED_SPACE = 2**32


def engine() -> api.Engine:
    return context.scope["state"]["engine"]


def model_id() -> str:
    model = engine().model
    return model.id if model else ""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def sampling(req, n_choices: int) -> list[api.SamplingParams]:
    """The request's sampling parameters, one set per choice (seeds differ per choice)."""
    if getattr(req, "logprobs", None):
        raise invalid_value("logprobs", "logprobs are not supported by this server.")
    name, max_tokens = "max_tokens", req.max_tokens
    if getattr(req, "max_completion_tokens", None) is not None:
        name, max_tokens = "max_completion_tokens", req.max_completion_tokens
    if max_tokens == 0:
        raise invalid_value(name, f"{name} must be at least 1, or -1 for no limit.")
    model = engine().model
    if model and max_tokens is not None and max_tokens > model.n_ctx:
        raise invalid_value(name, f"{name} ({max_tokens}) exceeds the model's context ceiling ({model.n_ctx} tokens).")
    stop = req.stop.root if req.stop is not None else None
    stop = (stop,) if isinstance(stop, str) else tuple(getattr(stop, "root", stop) or ())
    seed = None if req.seed is None else req.seed % SEED_SPACE
    base = api.SamplingParams(
        temperature=0.8 if req.temperature is None else req.temperature,
        top_p=0.95 if req.top_p is None else req.top_p,
        max_tokens=limits.cap_max_tokens(n_choices, None if max_tokens in (None, -1) else max_tokens,
                                         model.n_ctx if model else None, name),
        stop=tuple(s for s in stop if s),
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
    )
    return [
        api.SamplingParams(**{**base.__dict__, "seed": None if seed is None else (seed + i) % SEED_SPACE})
        for i in range(n_choices)
    ]


async def submit_all(prompts: list[api.Prompt], params: list[api.SamplingParams], param: str) -> list[api.Generation]:
    """Admit every choice or none: on an error the ones already admitted are cancelled."""
    generations: list[api.Generation] = []
    try:
        for prompt, p in zip(prompts, params):
            generations.append(await engine().submit(prompt, p))
    except api.EngineError as exc:
        for g in generations:
            g.cancel()
        raise from_engine(exc, param) from None
    limits.check_prompt(prompts, generations, param)
    return limits.with_deadline(generations)


@dataclass
class Delta:
    index: int
    text: str
    finish_reason: str | None = None


FAILED = "error"  # a Delta's finish_reason when the engine failed the choice


async def _choice(index: int, g: api.Generation) -> AsyncIterator[Delta]:
    try:
        async for text in g:
            if text:
                yield Delta(index, text)
    except api.GenerationFailed:
        yield Delta(index, "", FAILED)
        return
    yield Delta(index, "", g.finish_reason)


async def deltas(generations: list[api.Generation]) -> AsyncIterator[Delta]:
    """Every choice's text deltas as they come, then one Delta per choice carrying its finish_reason
    (FAILED when the engine failed it)."""
    if len(generations) == 1:
        async for d in _choice(0, generations[0]):
            yield d
        return
    queue: asyncio.Queue[Delta] = asyncio.Queue()

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
        # every pump has put its final Delta; the task group exits at once


@dataclass
class Collected:
    texts: list[str]
    finish_reasons: list[str]
    usage: dict


def usage(generations: list[api.Generation], prompt_tokens: int | None = None) -> dict:
    prompt = sum(g.prompt_tokens for g in generations) if prompt_tokens is None else prompt_tokens
    completion = sum(g.completion_tokens for g in generations)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def until_done_or_disconnect(work: Callable[[], Awaitable[None]], receive, generations) -> None:
    """Run `work` to its end unless the client disconnects first (noticed even while no token is
    being produced); either way, the generations are cancelled when this returns."""

    async def run(cancel_scope: anyio.CancelScope) -> None:
        await work()
        cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, tg.cancel_scope)
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()
    finally:
        for g in generations:
            g.cancel()


async def collect(generations: list[api.Generation], prompt_tokens: int | None = None) -> Collected:
    """Run the choices to the end; a client that disconnects meanwhile cancels them."""
    texts = ["" for _ in generations]
    reasons = ["stop" for _ in generations]

    async def gather() -> None:
        async for d in deltas(generations):
            texts[d.index] += d.text
            if d.finish_reason:
                reasons[d.index] = d.finish_reason

    await until_done_or_disconnect(gather, context.receive, generations)
    if FAILED in reasons:
        raise internal(api.GenerationFailed("the engine failed a request"))
    return Collected(texts, reasons, usage(generations, prompt_tokens))


def failure_event() -> dict:
    """What a stream sends, in place of further chunks, when the engine failed it (as OpenAI does)."""
    error = internal(api.GenerationFailed("the engine failed a streamed request"))
    return {"error": {"message": error.message, "type": error.type, "param": None, "code": None}}


def dump(model) -> dict:
    return model.model_dump(mode="json", exclude_unset=True)


def json_response(model) -> JSONResponse:
    return JSONResponse(dump(model))


class EventStream(StreamingResponse):
    """SSE over a chunk generator. The generations are cancelled when the stream ends for any
    reason, the client's disconnect included."""

    def __init__(self, chunks: AsyncIterator[dict], generations: list[api.Generation]):
        super().__init__(
            self._encode(chunks),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.generations = generations

    @staticmethod
    async def _encode(chunks: AsyncIterator[dict]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def __call__(self, scope, receive, send):
        async def stream() -> None:
            try:
                await self.stream_response(send)
            except OSError:
                pass  # the client went away mid-write

        await until_done_or_disconnect(stream, receive, self.generations)


async def respond(req, generations, stream_chunks: Callable, build_response: Callable, prompt_tokens=None):
    """The handler's answer: an SSE stream of `stream_chunks`, or the whole `build_response` as JSON."""
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return EventStream(stream_chunks(generations, include_usage), generations)
    return json_response(build_response(await collect(generations, prompt_tokens)))
