"""What every handler shares: the engine, ids and timestamps, JSON answers, the client's connection."""
from __future__ import annotations

import hashlib
import time
import uuid
from typing import Awaitable, Callable

import anyio
from connexion import context
from starlette.responses import JSONResponse

from hearth.engine import api


def engine() -> api.Engine:
    return context.scope["state"]["engine"]


def model_id() -> str:
    model = engine().model
    return model.id if model else ""


def system_fingerprint() -> str:
    """OpenAI's "backend configuration" id, as a string (strict clients reject null): the model that
    answered (id, file time, context ceiling). It changes when a different model or configuration serves."""
    m = engine().model
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
