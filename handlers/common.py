"""What every handler shares: the model, ids and timestamps, JSON answers, the client's connection."""
from __future__ import annotations

import hashlib
import time
import uuid
from typing import Awaitable, Callable

import anyio
from connexion import context
from starlette.responses import JSONResponse

from hearth.engine import api
from hearth.engine.registry import Lease, Registry
from hearth.errors import from_engine


def registry() -> Registry:
    return context.scope["state"]["registry"]


def use_model(req, kind: str = "llm") -> Lease:
    """The model serving `req.model` (loaded just in time if need be), held while the request is admitted:
    `with common.use_model(req) as model: ... await choices.submit_all(model, ...)`."""
    try:
        return registry().use(req.model, kind, ttl=getattr(req, "ttl", None))
    except api.EngineError as exc:
        raise from_engine(exc, "model") from None


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
