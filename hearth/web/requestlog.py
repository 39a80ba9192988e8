"""One log line per request (id, route, model, status, tokens, TTFT, duration), X-Request-Id on every
response, and the counts behind /metrics. Text or JSON lines (`hearth serve --log-format json`)."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from time import perf_counter

import yaml

from hearth.web.record import RequestRecord, current, request_id
from hearth.web.telemetry import Telemetry

log = logging.getLogger("hearth.web")

UNMATCHED = "(unmatched)"
_QUIET_PATHS = ("/", "/health", "/metrics", "/status", "/favicon.ico")
_QUIET_PREFIXES = ("/static/", "/docs")


def quiet(path: str) -> bool:
    """The page, its polls, probes and the docs: counted in /metrics, kept out of the request log
    (unless they answer 500; a 503 from /health while loading is expected) and of the in-flight figure."""
    return path in _QUIET_PATHS or path.startswith(_QUIET_PREFIXES) or path.endswith("/openapi.json")


def route_templates(specs: list[Path]) -> dict[str, str]:
    """operationId -> the route template with its base path (/v1/models/{model_id}): the `route`
    label, whose values are bounded by the spec, whatever paths clients send."""
    routes = {}
    for spec in specs:
        doc = yaml.safe_load(spec.read_text())
        base = (doc.get("servers") or [{"url": ""}])[0]["url"].rstrip("/")
        for path, operations in (doc.get("paths") or {}).items():
            for op in operations.values():
                if isinstance(op, dict) and "operationId" in op:
                    routes[op["operationId"]] = base + path
    return routes


class RequestLogMiddleware:
    def __init__(self, app, telemetry: Telemetry, routes: dict[str, str]):
        self.app, self.telemetry, self.routes = app, telemetry, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rec = RequestRecord(request_id(incoming.decode("latin-1")), time.time(), scope["method"], scope["path"])
        header = (b"x-request-id", rec.id.encode())
        scope.setdefault("extensions", {})  # shared with Connexion's copies: its routing result lands here
        scope.setdefault("state", {})["telemetry"] = self.telemetry
        is_quiet = quiet(scope["path"])
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = current.set(rec)
        self.telemetry.in_flight += not is_quiet
        began = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            rec.duration = perf_counter() - began
            self.telemetry.in_flight -= not is_quiet
            current.reset(token)
            rec.status = status
            operation = scope["extensions"].get("connexion_routing", {}).get("operation_id")
            rec.route = self.routes.get(operation, UNMATCHED)
            if self.telemetry.finish(rec, is_quiet):
                log.info(_text(rec), extra={"event": "request", "fields": _fields(rec)})


def _fields(r: RequestRecord) -> dict:
    return {
        "request_id": r.id, "method": r.method, "route": r.route, "path": r.path, "model": r.model,
        "status": r.status, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "ttft_ms": None if r.ttft is None else round(r.ttft * 1000, 1), "duration_ms": round(r.duration * 1000, 1),
    }


def _text(r: RequestRecord) -> str:
    parts = [r.id, r.method, r.path, str(r.status)]
    if r.model:
        parts.append(f"model={r.model}")
    if r.prompt_tokens or r.completion_tokens:
        parts.append(f"tokens={r.prompt_tokens}+{r.completion_tokens}")
    if r.ttft is not None:
        parts.append(f"ttft={r.ttft * 1000:.0f}ms")
    parts.append(f"{r.duration * 1000:.0f}ms")
    return " ".join(parts)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, event, message, and the event's own fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(),
               "event": getattr(record, "event", "log"), "message": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s hearth: %(message)s", datefmt="%H:%M:%S")


def configure(log_format: str = "text") -> None:
    """Request lines and server events to stderr, whatever the level of other loggers; the JSON
    format applies to every `hearth` logger (errors with their request id included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    for name in ("hearth.web", "hearth.registry"):  # requests; model loads (telemetry) and unloads (registry)
        events = logging.getLogger(name)
        events.handlers[:] = [handler]
        events.setLevel(logging.INFO)
        events.propagate = False
    if log_format == "json":
        root = logging.getLogger("hearth")
        root.handlers[:] = [handler]
        root.propagate = False
