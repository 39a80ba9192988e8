"""One API request, from routing to its last token: the object every protocol adapter drives.

    with registry.use(body_model, "llm", ttl) as request:   # routed; the model is held until admitted
        sampling = ...request.info...                          # the serving model (n_ctx, id)
        await request.submit(prompts, params)                  # every choice admitted, or none
    async for d in request.deltas(): ...                       # the choices' output, merged, then their ends
    request.cancel()                                           # idempotent: the client went away, or done

What it does beside the engine (what used to be three proxies):
- deadline: `timeout` seconds after admission the choices are cancelled; a running one then ends with
  finish_reason "length", and a request none of whose choices left the queue ends with QueueTimeout;
- the prompt budget: more than `max_prompt_tokens` (each distinct prompt counted once) cancels the
  choices and raises ContextLengthExceeded;
- timing and telemetry: the Hooks see admission, each choice's first token and every later Delta.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from time import perf_counter
from typing import AsyncIterator, Sequence

import anyio

from hearth.engine import api
from hearth.models.hooks import Hooks

FAILED = "error"  # a ChoiceDelta's finish_reason when the choice failed


@dataclass(slots=True)
class ChoiceDelta:
    index: int
    text: str = ""
    tokens: tuple[api.TokenOut, ...] = ()
    tool_calls: tuple[api.ToolCallDelta, ...] = ()
    finish_reason: str | None = None  # OpenAI's word, or FAILED; set on a choice's last ChoiceDelta only
    error: api.EngineError | None = None  # with FAILED: GenerationFailed or QueueTimeout


class Request:
    def __init__(self, instance, hooks: Hooks, *, timeout: float | None = None,
                 max_prompt_tokens: int | None = None):
        self._instance, self.hooks = instance, hooks
        self.id, self.type = instance.id, instance.type
        self.timeout, self.max_prompt_tokens = timeout, max_prompt_tokens
        self.generations: list[api.Generation] = []
        self.admitted_at = 0.0  # perf_counter() once every choice is admitted
        self.seen = 0  # tokens delivered to the handler (a cancelled choice may not have counted them yet)
        self.embedded_tokens = 0
        self.expired = False
        self.record = None  # the hooks' own: the request log's record of this request
        self._timer: asyncio.TimerHandle | None = None
        self._held = True
        instance.holds += 1
        instance.last_active = time.monotonic()

    @property
    def info(self) -> api.ModelInfo:
        return self._instance.info

    # the hold on the model, until admission ------------------------------------------------------
    def __enter__(self) -> "Request":
        return self

    def __exit__(self, *exc) -> None:
        if self._held:
            self._held = False
            self._instance.holds -= 1
            self._instance.last_active = time.monotonic()

    # admission -----------------------------------------------------------------------------------
    async def submit(self, prompts: Sequence[api.Prompt], params: Sequence[api.SamplingParams]) -> None:
        """Admit one choice per (prompt, params), all or none: an EngineError leaves nothing running."""
        engine = self._instance.engine
        try:
            for prompt, p in zip(prompts, params):
                self.generations.append(await engine.submit(prompt, p))
            self._check_prompt_budget(prompts)
        except api.EngineError:
            self.cancel()
            raise
        self.admitted_at = perf_counter()
        self.hooks.admitted(self)
        if self.timeout:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    async def embed(self, texts: Sequence[str]) -> api.Embeddings:
        result = await self._instance.engine.embed(texts)
        self.embedded_tokens = result.prompt_tokens
        self.hooks.admitted(self)
        return result

    def _check_prompt_budget(self, prompts: Sequence[api.Prompt]) -> None:
        if self.max_prompt_tokens is None:
            return
        seen, total = set(), 0
        for prompt, g in zip(prompts, self.generations):
            if id(prompt) not in seen:
                seen.add(id(prompt))
                total += g.prompt_tokens
        if total > self.max_prompt_tokens:
            raise api.ContextLengthExceeded(f"This server accepts at most {self.max_prompt_tokens} prompt tokens "
                                            f"per request, but the request has {total}.", total,
                                            self.max_prompt_tokens)

    def _expire(self) -> None:
        self.expired = True
        for g in self.generations:
            g.cancel()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for g in self.generations:
            g.cancel()

    # results -------------------------------------------------------------------------------------
    @property
    def prompt_tokens(self) -> int:
        """Of the first choice (the choices of one chat request share their prompt)."""
        return self.generations[0].prompt_tokens if self.generations else self.embedded_tokens

    @property
    def completion_tokens(self) -> int:
        return sum(g.completion_tokens for g in self.generations)

    def usage(self, prompt_tokens: int | None = None) -> dict:
        """OpenAI's usage; `prompt_tokens` defaults to every choice's prompt summed (completions' prompts)."""
        prompt = sum(g.prompt_tokens for g in self.generations) if prompt_tokens is None else prompt_tokens
        completion = self.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def finish_reason(self, g: api.Generation) -> api.FinishReason | None:
        reason = g.finish_reason
        if self.expired and reason in (None, api.FinishReason.CANCELLED):
            return api.FinishReason.LENGTH
        return reason

    def _queue_timeout(self) -> api.QueueTimeout | None:
        if not self.expired or any(g.started for g in self.generations):
            return None
        return api.QueueTimeout(f"The server is busy: this request waited {self.timeout:g} s in the queue without "
                                "starting (--request-timeout). Retry later; fewer requests at once, or a server "
                                "with more --parallel sequences, make the wait shorter.")

    async def _choice(self, index: int, g: api.Generation) -> AsyncIterator[ChoiceDelta]:
        hooks, last = self.hooks, 0.0
        try:
            async for d in g:
                k = len(d.tokens)
                if k:
                    now = perf_counter()
                    if last:
                        hooks.tokens(self, k, now - last)
                    else:
                        hooks.first_token(self, k, now - self.admitted_at)
                    last = now
                    self.seen += k
                if d.text or k or d.tool_calls:
                    yield ChoiceDelta(index, d.text, d.tokens, d.tool_calls)
        except api.GenerationFailed as exc:
            yield ChoiceDelta(index, finish_reason=FAILED, error=exc)
            return
        if (error := self._queue_timeout()) is not None:
            yield ChoiceDelta(index, finish_reason=FAILED, error=error)
            return
        yield ChoiceDelta(index, finish_reason=self.finish_reason(g).value)

    async def deltas(self) -> AsyncIterator[ChoiceDelta]:
        """Every choice's output as it comes, then one ChoiceDelta per choice with its finish_reason (FAILED,
        with the error, when the engine failed it or its time ran out in the queue)."""
        if len(self.generations) == 1:
            async for d in self._choice(0, self.generations[0]):
                yield d
            return
        queue: asyncio.Queue[ChoiceDelta] = asyncio.Queue()

        async def pump(index: int, g: api.Generation) -> None:
            async for d in self._choice(index, g):
                queue.put_nowait(d)

        async with anyio.create_task_group() as tg:
            for i, g in enumerate(self.generations):
                tg.start_soon(pump, i, g)
            for _ in self.generations:
                while (d := await queue.get()).finish_reason is None:
                    yield d
                yield d
            # every pump has put its final ChoiceDelta; the task group exits at once
