"""Several OpenAPI documents under one base path (`/v1`: openai.yaml, responses.yaml, anthropic.yaml).

Connexion 3.3 chains a second API under an already mounted base path as the first one's fallback
router, but a third replaces the second instead of following it (`RoutingMiddleware.add_api` sets the
fallback of every earlier mount to the newest API), so the middle document's routes answered 404.
`ChainedRoutingMiddleware` appends each API to the end of the chain: every document's routes are tried,
in the order they were added."""
from __future__ import annotations

import typing as t

from connexion.middleware.routing import RoutingAPI, RoutingMiddleware
from starlette.routing import Mount, Router


class ChainedRoutingMiddleware(RoutingMiddleware):
    def add_api(self, specification, base_path: t.Optional[str] = None, arguments: t.Optional[dict] = None,
                **kwargs) -> None:
        api = RoutingAPI(specification, base_path=base_path, arguments=arguments, next_app=self.app, **kwargs)
        for route in self.router.routes:
            if isinstance(route, Mount) and route.path == api.base_path:
                tail = route.app
                while isinstance(tail.default, Router):  # the APIs already chained under this base path
                    tail = tail.default
                tail.default = api.router
                return
        self.router.mount(api.base_path, app=api.router)


def use_chained_routing(middlewares: list) -> None:
    """Swap Connexion's RoutingMiddleware for ChainedRoutingMiddleware in an app's middleware list (after
    every add_middleware: their positions are resolved against RoutingMiddleware itself)."""
    middlewares[middlewares.index(RoutingMiddleware)] = ChainedRoutingMiddleware
