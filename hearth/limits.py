"""Per-request limits: prompt tokens, generated tokens (n x max_tokens), wall-clock time.

What a client sees (chosen so that OpenAI's SDKs handle it without special code):
- a prompt over --max-prompt-tokens: 400 `context_length_exceeded` (param messages/prompt), the
  code clients already handle by trimming the conversation;
- n x max_tokens over --max-request-tokens: 422 `invalid_value` (param max_tokens); without an
  explicit max_tokens each choice is capped at the budget / n instead (finish_reason "length");
- past --request-timeout seconds, a request that had started (admitted into the batch): the answer
  so far with finish_reason "length", as a plain reply or as the last chunks of a stream (llama.cpp's
  server does the same with its time limit, counted from the start of generation). Not an error
  status: the SDKs retry 408 and 5xx, and retrying a request that ran out of time while running
  only spends the same time again;
- past --request-timeout seconds, a request still queued (none of its choices started): 503
  `queue_timeout` with Retry-After, OpenAI's answer when it has no capacity (the SDKs retry it once
  the queue may have drained; nothing was computed for it). A stream, whose 200 is already sent,
  ends with that error as an event instead (as the engine's failures do).
The body size limit (413) lives in hearth/app.py.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hearth.engine import api
from hearth.errors import SERVER_ERROR, ApiError, invalid_value

DEFAULT_REQUEST_TOKENS = 32768
DEFAULT_TIMEOUT = 600.0
QUEUE_RETRY_AFTER = 5  # seconds: a queue that held a request for its whole timeout does not drain at once


@dataclass(frozen=True)
class Limits:
    max_prompt_tokens: int | None = None  # None: the context ceiling decides
    max_request_tokens: int = DEFAULT_REQUEST_TOKENS  # completion tokens over all choices of a request
    request_timeout: float | None = DEFAULT_TIMEOUT  # seconds; None: no limit


class LimitsMiddleware:
    """Hands the limits to handlers through the request scope (`current()`)."""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("state", {})["limits"] = self.limits
        await self.app(scope, receive, send)


def current() -> Limits:
    from connexion import context

    try:
        return context.scope["state"].get("limits") or Limits()
    except (KeyError, RuntimeError):  # outside a request (unit tests of helpers)
        return Limits()


def cap_max_tokens(n: int, max_tokens: int | None, n_ctx: int | None, param: str) -> int | None:
    """The per-choice max_tokens to use: refused (422) when n x max_tokens is over the budget;
    without a max_tokens, capped to budget // n when the context ceiling alone would exceed it."""
    budget = current().max_request_tokens
    if max_tokens is not None:
        if n * max_tokens > budget:
            raise invalid_value(param, f"n ({n}) x {param} ({max_tokens}) = {n * max_tokens} exceeds this server's "
                                       f"limit of {budget} generated tokens per request.")
        return max_tokens
    if n_ctx is not None and n * n_ctx > budget:
        return max(1, budget // n)
    return None


def check_prompt(prompts: list, generations: list[api.Generation], param: str) -> None:
    """400 context_length_exceeded when the request's prompts (each distinct one counted once) are
    over --max-prompt-tokens; the admitted generations are cancelled first."""
    limit = current().max_prompt_tokens
    if limit is None:
        return
    seen, total = set(), 0
    for prompt, g in zip(prompts, generations):
        if id(prompt) not in seen:
            seen.add(id(prompt))
            total += g.prompt_tokens
    if total > limit:
        for g in generations:
            g.cancel()
        raise ApiError(400, f"This server accepts at most {limit} prompt tokens per request, but the request has "
                            f"{total}.", code="context_length_exceeded", param=param)


class Deadline:
    """One request's --request-timeout, shared by its generations: when it expires they are cancelled."""

    def __init__(self, generations: list[api.Generation], seconds: float):
        self.generations, self.seconds, self.expired = generations, seconds, False

    def expire(self) -> None:
        self.expired = True
        for g in self.generations:
            g.cancel()

    def queue_timeout(self) -> ApiError | None:
        """The 503 to answer instead, when the time ran out before any of the request's choices started."""
        if not self.expired or any(getattr(g, "started", True) for g in self.generations):
            return None
        return ApiError(503, f"The server is busy: this request waited {self.seconds:g} s in the queue without "
                             "starting (--request-timeout). Retry later; fewer requests at once, or a server with "
                             "more --parallel sequences, make the wait shorter.",
                        code="queue_timeout", type=SERVER_ERROR, headers={"Retry-After": str(QUEUE_RETRY_AFTER)})


class TimedGeneration:
    """A Generation that ends, with finish_reason "length", when the request's time runs out."""

    def __init__(self, inner: api.Generation, deadline: Deadline):
        self._inner, self.deadline = inner, deadline

    def __getattr__(self, name):  # prompt_tokens, completion_tokens, started, ...
        return getattr(self._inner, name)

    @property
    def finish_reason(self) -> api.FinishReason | None:
        reason = self._inner.finish_reason
        if self.deadline.expired and reason in (None, api.FinishReason.CANCELLED):
            return api.FinishReason.LENGTH
        return reason

    def __aiter__(self):
        return self._inner.__aiter__()

    def cancel(self) -> None:
        self._inner.cancel()


def with_deadline(generations: list[api.Generation]) -> list[api.Generation]:
    """The generations, ended as "length" after --request-timeout seconds (the timer goes away with them)."""
    seconds = current().request_timeout
    if not seconds or not generations:
        return generations
    deadline = Deadline(generations, seconds)
    timed = [TimedGeneration(g, deadline) for g in generations]
    handle = asyncio.get_running_loop().call_later(seconds, deadline.expire)
    for t in timed:
        t.cancel = _and_then(t.cancel, handle.cancel)  # ending the request (any way) stops the timer
    return timed


def queue_timeout(generation: api.Generation) -> ApiError | None:
    """The 503 a request gets instead of its answer when its time ran out while it was still queued."""
    deadline = getattr(generation, "deadline", None)
    return deadline.queue_timeout() if isinstance(deadline, Deadline) else None


def _and_then(first, second):
    def both() -> None:
        first()
        second()

    return both
