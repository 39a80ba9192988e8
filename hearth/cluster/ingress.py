"""`HearthIngress`: the cluster's HTTP entry. It serves every route Hearth serves by forwarding the
request, whole, to a replica through a deployment handle and streaming the replica's ASGI messages
back: Hearth's own app in the replica does the routing, validation, errors, auth, limits and SSE, so
the cluster answers exactly as one Hearth does.

Here only: the body is read (at most the body limit and one byte more: the replica answers 413, or 401
first when keys are set), its prompt prefix is computed for the router (`prefix.py`), and the failures
only a cluster has get Hearth's error body:
- Ray Serve's queue limit for the replicas (`max_queued_requests`, BackPressureError): 503
  `server_overloaded` with Retry-After, as Hearth's own full queue answers;
- the replica died before answering: the request goes once more to another replica (nothing was sent),
  then 503 `replica_unavailable` with Retry-After;
- the replica died mid-stream: an SSE stream ends with an error event (`replica_failed`) and `[DONE]`,
  as Hearth ends a failed stream; a JSON body cut short is a reset connection, never a hang.
A client that goes away cancels the handle call; the replica's app sees its disconnect and frees the slot.
`GET /cluster/stats` (not in openapi/: the cluster's own) shows the router's view of each replica.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError, TaskCancelledError
from ray.serve.exceptions import BackPressureError
from starlette.responses import Response

from hearth.cluster import prefix as prefixes
from hearth.cluster.asgi import portable_scope

log = logging.getLogger("hearth.cluster")
STATS_PATH = "/cluster/stats"
REPLICA_GONE = (RayActorError, ActorUnavailableError)


@dataclass(frozen=True)
class IngressSettings:
    max_body_bytes: int = 8 * 1024 * 1024
    api_keys: tuple[str, ...] = ()
    router: str = "prefix"


def error_body(message: str, code: str, type: str = "server_error", param=None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type, "param": param, "code": code}}).encode()


async def send_error(send, status: int, message: str, code: str, retry_after: float | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers += [(b"retry-after", str(max(1, round(retry_after))).encode()),
                    (b"retry-after-ms", str(max(1, round(retry_after * 1000))).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": error_body(message, code)})


class _Forward(Response):
    """A Starlette response (Ray Serve calls it with the request's ASGI channels) that forwards; nothing of
    Response's own state is used."""

    def __init__(self, ingress: "HearthIngress"):  # noqa: super().__init__ would render a body
        self.ingress = ingress

    async def __call__(self, scope, receive, send):
        ing = self.ingress
        body, more = bytearray(), True
        while more and len(body) <= ing.settings.max_body_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == STATS_PATH:
            return await ing.send_stats(scope, send)
        prefix = prefixes.of_request(scope["path"], bytes(body))
        work = asyncio.ensure_future(ing.forward(portable_scope(scope), bytes(body), prefix, send))

        async def watch_disconnect():
            while (await receive())["type"] != "http.disconnect":
                pass
            work.cancel()

        watcher = asyncio.ensure_future(watch_disconnect()) if not more else None
        try:
            await work
        except asyncio.CancelledError:
            if not work.done():
                work.cancel()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()


class HearthIngress:
    def __init__(self, replicas, settings: IngressSettings):
        self.replicas = replicas.options(stream=True, method_name="handle")
        self.settings = settings

    async def __call__(self, request):
        return _Forward(self)

    async def forward(self, scope: dict, body: bytes, prefix: prefixes.Prefix, send) -> None:
        sse, started = False, False
        for attempt in (1, 2):
            call = self.replicas.remote(scope, body, prefix=(prefix.blocks, prefix.chars))
            try:
                async for batch in call:
                    for item in batch:
                        if item[0] == "start":
                            _, status, headers = item
                            sse = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                                      for k, v in headers)
                            headers = [(k, v) for k, v in headers if k.lower() != b"x-request-id"]  # Ray's proxy
                            # sets it (the client's own id, or its request id, which Hearth adopted)
                            await send({"type": "http.response.start", "status": status, "headers": headers})
                            started = True
                        else:
                            await send({"type": "http.response.body", "body": item[1], "more_body": item[2]})
                return
            except BackPressureError as exc:
                return await send_error(
                    send, 503, "The server is overloaded: every replica's queue is full; retry after a moment.",
                    "server_overloaded", getattr(exc, "_retry_after_s", None) or 1.0)
            except REPLICA_GONE as exc:
                log.warning("hearth cluster: a replica failed (attempt %d, started=%s): %s", attempt, started, exc)
                if not started and attempt == 1:
                    continue  # nothing was sent: another replica answers it
                if not started:
                    return await send_error(send, 503, "No replica could answer this request (they are restarting); "
                                            "retry after a moment.", "replica_unavailable", 1.0)
                if sse:
                    event = error_body("The replica serving this stream failed; the answer is incomplete. "
                                       "Retry the request.", "replica_failed")
                    await send({"type": "http.response.body", "body": b"data: " + event + b"\n\n", "more_body": True})
                    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
                    return
                raise  # a JSON body cut short: the connection is reset, the client sees the failure
            except (asyncio.CancelledError, TaskCancelledError):
                call.cancel()  # the client went away: the replica's app sees its disconnect
                raise
            finally:
                with contextlib.suppress(Exception):
                    call.cancel()

    async def send_stats(self, scope, send) -> None:
        from hearth.cluster.policy import ROUTERS

        if self.settings.api_keys:
            auth = dict(scope.get("headers", [])).get(b"authorization", b"").decode(errors="replace")
            if not any(auth == f"Bearer {k}" for k in self.settings.api_keys):
                return await send_error(send, 401, "Incorrect API key provided.", "invalid_api_key")
        router = ROUTERS.get(serve.get_replica_context().app_name)
        policy = getattr(router, "policy", None)
        out = {
            "router": self.settings.router,
            "replicas": router.replica_stats() if router else {},
            "decisions": dict(policy.decisions) if policy else None,
            "model": {rid: {"capacity": m.capacity, "prompts": len(m.entries), "in_flight": m.in_flight}
                      for rid, m in policy.replicas.items()} if policy else None,
        }
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(out).encode()})
