"""Optional API keys: `Authorization: Bearer <key>` (or Anthropic's `x-api-key: <key>`) on every route
once keys are configured.

Off unless keys are given (`--api-key`, repeatable, or HEARTH_API_KEY, comma-separated): on
loopback the machine is the security boundary, as LM Studio and the reference documents have it.

What stays open when keys are on, and why:
- CORS preflight (OPTIONS with Access-Control-Request-Method): browsers never send credentials on
  a preflight, so requiring them would break every browser client; a preflight runs no handler.
- GET /health: liveness probes (systemd, Docker, load balancers) carry no secrets; it reveals the
  load state only.
Everything else, unknown routes and /metrics included, answers 401 `invalid_api_key` without a
valid key, in OpenAI's error body, before the body is read.
"""
from __future__ import annotations

import hmac
import ipaddress
import os

from hearth.errors import ApiError

ENV = "HEARTH_API_KEY"
OPEN_PATHS = frozenset({"/health", "/"})  # probes, and the page, which holds no secret and asks for the key
OPEN_PREFIXES = ("/static/",)  # the page's own files


def configured_keys(flags: list[str] | None) -> tuple[str, ...]:
    """Keys from the flags, else from HEARTH_API_KEY (comma-separated); empty entries dropped."""
    raw = list(flags or []) or os.environ.get(ENV, "").split(",")
    return tuple(k.strip() for k in raw if k.strip())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def exposure_warning(host: str, keys: tuple[str, ...]) -> str | None:
    if keys or is_loopback(host):
        return None
    return (f"hearth: WARNING: listening on {host} without an API key: anyone who can reach this machine "
            f"can use the model. Add --api-key KEY (or set {ENV}), or bind to 127.0.0.1.")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def bearer_info(token: str) -> dict:
    """Connexion's hook for the spec's bearer scheme; the check itself is ApiKeyMiddleware's (it also
    covers routes outside the specs), so this only accepts what already got through."""
    return {"sub": "api-key"}


def api_key_info(key: str, required_scopes=None) -> dict:
    """The same for the `x-api-key` header scheme (openapi/anthropic.yaml)."""
    return {"sub": "api-key"}


class ApiKeyMiddleware:
    def __init__(self, app, keys: tuple[str, ...]):
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _allowed(self, token: bytes) -> bool:
        ok = False
        for key in self.keys:  # compare with every key, in constant time
            ok |= hmac.compare_digest(token, key)
        return ok

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.keys or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            return await self.app(scope, receive, send)
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if not auth and b"x-api-key" in headers:  # Anthropic's clients (ANTHROPIC_API_KEY)
            scheme, token = b"bearer", headers[b"x-api-key"]
        elif not auth:
            raise unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY' "
                               "(or 'x-api-key: YOUR_KEY').")
        if scheme.lower() != b"bearer" or not self._allowed(token.strip()):
            raise unauthorized("Incorrect API key provided.")
        await self.app(scope, receive, send)
