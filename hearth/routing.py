"""Several OpenAPI documents under one base path (`/v1`: openai.yaml, responses.yaml, anthropic.yaml).

Connexion 3.3 chains a second API under an already mounted base path as the first one's fallback
router, but a third replaces the second instead of following it (`RoutingMiddleware.add_api` sets the
fallback of every earlier mount to the newest API), so the middle document's routes answered 404.
`ChainedRoutingMiddleware` appends each API to the end of the chain: every document's routes are tried,
in the order they were added. Its Swagger UI middleware does not chain at all (only the first document
under a base path served its openapi.json): `ChainedSwaggerUIMiddleware` chains the same way."""
from __future__ import annotations

import typing as t

from connexion.middleware.routing import RoutingAPI, RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIAPI, SwaggerUIMiddleware
from starlette.routing import Mount, Router


def _chain(router: Router, base_path: str, api_router: Router) -> None:
    """Mount `api_router` at `base_path`, or make it the fallback of the last router already there."""
    for route in router.routes:
        if isinstance(route, Mount) and route.path == base_path:
            tail = route.app
            while isinstance(tail.default, Router):  # the APIs already chained under this base path
                tail = tail.default
            tail.default = api_router
            return
    router.mount(base_path, app=api_router)


class ChainedRoutingMiddleware(RoutingMiddleware):
    def add_api(self, specification, base_path: t.Optional[str] = None, arguments: t.Optional[dict] = None,
                **kwargs) -> None:
        api = RoutingAPI(specification, base_path=base_path, arguments=arguments, next_app=self.app, **kwargs)
        _chain(self.router, api.base_path, api.router)


class ChainedSwaggerUIMiddleware(SwaggerUIMiddleware):
    def add_api(self, specification, base_path: t.Optional[str] = None, arguments: t.Optional[dict] = None,
                **kwargs) -> None:
        api = SwaggerUIAPI(specification, base_path=base_path, arguments=arguments, default=self.default_fn, **kwargs)
        _chain(self.router, api.base_path, api.router)


def use_chained_routing(middlewares: list) -> None:
    """Swap Connexion's RoutingMiddleware and SwaggerUIMiddleware for the chained ones in an app's middleware
    list (after every add_middleware: their positions are resolved against Connexion's classes themselves)."""
    middlewares[middlewares.index(RoutingMiddleware)] = ChainedRoutingMiddleware
    middlewares[middlewares.index(SwaggerUIMiddleware)] = ChainedSwaggerUIMiddleware
