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
The body size limit (413) lives in hearth/app.py; the prompt budget and the deadline are enforced
by the Request (hearth/models/request.py), with the values here.
"""
from __future__ import annotations

from dataclasses import dataclass

from hearth.errors import invalid_value

DEFAULT_REQUEST_TOKENS = 32768
DEFAULT_TIMEOUT = 600.0


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
