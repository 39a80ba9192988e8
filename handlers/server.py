"""GET /, /static/{name}, /health, /metrics, /status: the server's own routes (openapi/hearth.yaml)."""
from __future__ import annotations

from pathlib import Path

from connexion import context
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import FileResponse, JSONResponse, Response

from hearth.engine import api
from hearth.errors import SERVER_ERROR, ApiError, from_engine

STATIC = Path(__file__).resolve().parent.parent / "hearth" / "web" / "static"
_TYPES = {".js": "application/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
_NO_CACHE = {"Cache-Control": "no-cache"}  # revalidated (ETag) on every load: never a stale page after an upgrade


def _telemetry():
    return context.scope["state"]["telemetry"]


async def index():
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_NO_CACHE)


async def static(name: str):
    path = STATIC / name
    if path.suffix not in _TYPES or path.parent != STATIC or not path.is_file():
        raise ApiError(404, f"No such file: /static/{name}.")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_NO_CACHE)


async def health():
    state = _telemetry().state()
    if state == "ready":
        return JSONResponse({"status": "ok"})
    if state == "loading":
        raise from_engine(api.ModelLoading("The model is still loading; retry shortly."), "model")
    raise ApiError(503, f"No model is ready (state: {state}).", code="model_unavailable", type=SERVER_ERROR)


async def metrics():
    return Response(generate_latest(_telemetry().metrics), media_type=CONTENT_TYPE_LATEST)


async def status():
    return JSONResponse(_telemetry().status())
