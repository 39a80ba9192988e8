"""What every handler shares: its Request (the routed model), ids and timestamps, JSON answers, the
client's connection."""
from __future__ import annotations

import hashlib
import time
import uuid
from typing import Awaitable, Callable

import anyio
from connexion import context
from starlette.responses import JSONResponse

from hearth import limits
from hearth.engine import api
from hearth.errors import from_engine
from hearth.models.registry import Registry
from hearth.models.request import Request


def registry() -> Registry:
    return context.scope["state"]["registry"]


def request(model: str, kind: str = "llm", ttl: float | None = None) -> Request:
    """The Request for a body's `model` (loaded just in time if need be), with this server's limits; the
    model is held until admitted: `with common.request(req.model) as request: ... await submit(request, ...)`."""
    budget = limits.current()
    try:
        return registry().use(model, kind, ttl, timeout=budget.request_timeout,
                              max_prompt_tokens=budget.max_prompt_tokens)
    except api.EngineError as exc:
        raise from_engine(exc, "model") from None


async def submit(request: Request, prompts: list[api.Prompt], params: list[api.SamplingParams], param: str) -> None:
    """Admit every choice, or none; `param` names the body field holding the prompt (for errors)."""
    try:
        await request.submit(prompts, params)
    except api.EngineError as exc:
        raise from_engine(exc, param) from None


async def count_prompt(model: str, prompt: api.Prompt, param: str) -> int:
    """The prompt's length in tokens, as a request for `model` would take it: rendered and tokenized by
    the engine, admitted only to be cancelled at once (nothing is evaluated). A prompt over the context
    is counted too (the count endpoints answer it; only generating refuses it)."""
    with request(model) as req:
        try:
            await req.submit([prompt], [api.SamplingParams(max_tokens=1)])
        except api.ContextLengthExceeded as exc:
            return exc.prompt_tokens
        except api.EngineError as exc:
            raise from_engine(exc, param) from None
    req.cancel()
    return req.prompt_tokens


def system_fingerprint(m: api.ModelInfo | None) -> str:
    """OpenAI's "backend configuration" id, as a string (strict clients reject null): the model that
    answered (id, file time, context ceiling). It changes when a different model or configuration serves."""
    key = f"{m.id}|{m.created}|{m.n_ctx}" if m else ""
    return "fp_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def dump(model) -> dict:
    return model.model_dump(mode="json", exclude_unset=True)


def json_response(model) -> JSONResponse:
    return JSONResponse(dump(model))


async def until_done_or_disconnect(work: Callable[[], Awaitable[None]], receive, request: Request) -> None:
    """Run `work` to its end unless the client disconnects first (noticed even while no token is
    being produced); either way, the request is cancelled when this returns."""

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
        request.cancel()
