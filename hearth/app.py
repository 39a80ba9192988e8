"""The ASGI app: Connexion routes every document in openapi/ to handlers/, over the model registry."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import yaml
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from hearth import auth, errors, limits as request_limits, shutdown
from hearth.models.registry import Registry
from hearth.routing import use_chained_routing
from hearth.store import ResponseStore, StoreMiddleware
from hearth.validation import OpenAIJSONBodyValidator
from hearth.web.requestlog import RequestLogMiddleware, route_templates
from hearth.web.telemetry import Telemetry

SPECS = sorted((Path(__file__).resolve().parent.parent / "openapi").glob("*.yaml"))  # each names its own base path
MAX_BODY_BYTES = 8 * 1024 * 1024
DOCS = "/docs"  # Swagger UI of every spec, served from the swagger-ui-bundle package (no CDN)


def _base_path(spec: Path) -> str:
    return (yaml.safe_load(spec.read_text()).get("servers") or [{"url": ""}])[0]["url"].rstrip("/")


def _spec_url(spec: Path) -> str:
    """Where a document is served as JSON: <base>/openapi.json, or /v1/openapi-NAME.json for the documents
    that share /v1 with openai.yaml (responses, anthropic)."""
    base = _base_path(spec)
    return f"{base}/openapi.json" if spec.stem == "openai" or base != "/v1" else f"{base}/openapi-{spec.stem}.json"


def _swagger_ui(spec: Path, specs: list[Path]) -> SwaggerUIOptions:
    """The root document serves itself and Swagger UI at /docs, listing every document; the others are
    served by SpecMiddleware (Connexion's spec serving keeps one document per base path)."""
    if _base_path(spec):
        return SwaggerUIOptions(swagger_ui=False, serve_spec=False)
    urls = [{"url": _spec_url(s), "name": s.name} for s in specs]
    return SwaggerUIOptions(swagger_ui_path=DOCS, swagger_ui_config={"urls": urls, "urls.primaryName": "openai.yaml"})


class SpecMiddleware:
    """GET each document under a base path as JSON, at `_spec_url` (as written: its $refs unresolved)."""

    def __init__(self, app, specs: list[Path]):
        self.app = app
        self.documents = {_spec_url(s): json.dumps(yaml.safe_load(s.read_text())).encode() for s in specs
                          if _base_path(s)}

    async def __call__(self, scope, receive, send):
        body = self.documents.get(scope.get("path")) if scope["type"] == "http" else None
        if body is None or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})


class RegistryMiddleware:
    """Hands the model registry to handlers through the request scope (`handlers.shared.common.registry()`)."""

    def __init__(self, app, registry: Registry):
        self.app, self.registry = app, registry

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("state", {})["registry"] = self.registry
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed chunked."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                raise errors.body_too_large()
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise errors.body_too_large()
            return message

        await self.app(scope, counting_receive, send)


def create_app(registry: Registry, *, max_body_bytes: int = MAX_BODY_BYTES, cors_origins=("*",), api_keys=(),
               limits: request_limits.Limits | None = None, drain: shutdown.Drain | None = None,
               startup=(), store: ResponseStore | None = None) -> AsyncApp:
    """The server over `registry`; `startup`: the catalog entries it loads at start (`registry.startup(path)`);
    `store`: where stored responses are kept (None: nothing is stored)."""
    routes = route_templates(SPECS)
    telemetry = Telemetry(registry.snapshot, routes)
    registry.hooks = telemetry  # every model's loads and every request's tokens are counted

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await registry.start(startup)
        try:
            yield
        finally:
            await registry.close()

    app = AsyncApp(__name__, lifespan=lifespan)
    for spec in SPECS:
        app.add_api(
            spec,
            validator_map={"body": {"application/json": OpenAIJSONBodyValidator}},
            swagger_ui_options=_swagger_ui(spec, SPECS),
        )
    app.add_middleware(
        CORSMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=list(cors_origins),
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "X-Request-Id"],
        max_age=600,
    )
    app.add_middleware(RequestLogMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, telemetry=telemetry,
                       routes=routes)
    # outermost first: keys (before anything reads the body), the shutdown drain, then the rest
    app.add_middleware(auth.ApiKeyMiddleware, position=MiddlewarePosition.BEFORE_SWAGGER, keys=tuple(api_keys))
    if drain is not None:
        app.add_middleware(shutdown.DrainMiddleware, position=MiddlewarePosition.BEFORE_SWAGGER, drain=drain)
    app.add_middleware(SpecMiddleware, position=MiddlewarePosition.BEFORE_SWAGGER, specs=SPECS)
    app.add_middleware(request_limits.LimitsMiddleware, position=MiddlewarePosition.BEFORE_ROUTING,
                       limits=limits or request_limits.Limits())
    app.add_middleware(BodyLimitMiddleware, position=MiddlewarePosition.BEFORE_ROUTING, max_bytes=max_body_bytes)
    app.add_middleware(RegistryMiddleware, position=MiddlewarePosition.BEFORE_ROUTING, registry=registry)
    app.add_middleware(StoreMiddleware, position=MiddlewarePosition.BEFORE_ROUTING, store=store)
    use_chained_routing(app.middleware.middlewares)  # three documents share /v1
    app.add_error_handler(errors.ApiError, errors.handle_api_error)
    app.add_error_handler(ProblemException, errors.handle_problem)
    app.add_error_handler(HTTPException, errors.handle_http_exception)
    app.add_error_handler(Exception, errors.handle_unexpected)
    return app
