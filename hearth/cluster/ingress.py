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

Models and figures across replicas (every replica holds the same models, so any replica serves any
request and prefix routing stays free to choose), through Ray Serve's `DeploymentHandle.broadcast`, which
calls every running replica at once, past the router and the slots (never waiting behind a generation):
- POST /api/v1/models/load and /unload go to every replica; the answer comes when all have answered
  (`merge.answer_of`);
- a request that made its replica load a model just in time (a `jit` item in its stream) has every
  replica start loading it too (`HearthReplica.ensure`; a replica that has it does nothing);
- GET /status, /metrics, /v1/models, /v1/models/{id} and /api/v1/models go to every replica, and the
  answers are merged into the single server's shapes (`merge.py`). The replicas check API keys.
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

from hearth.auth import ApiKeyMiddleware
from hearth.cluster import merge
from hearth.cluster import prefix as prefixes
from hearth.cluster.asgi import portable_scope
from hearth.errors import ApiError

log = logging.getLogger("hearth.cluster")
STATS_PATH = "/cluster/stats"
REPLICA_GONE = (RayActorError, ActorUnavailableError)
MANAGEMENT = ("/api/v1/models/load", "/api/v1/models/unload")  # POSTed to every replica
VIEWS = ("/status", "/metrics", "/v1/models", "/api/v1/models")  # GET: every replica's answer, merged
MODEL_PREFIX = "/v1/models/"
# Ray's proxy sets the request id; the length is the merged body's; no one replica answered it
DROPPED = (b"x-request-id", b"content-length", b"x-hearth-replica")


@dataclass(frozen=True)
class IngressSettings:
    max_body_bytes: int = 8 * 1024 * 1024
    api_keys: tuple[str, ...] = ()
    router: str = "prefix"


def error_body(message: str, code: str, type: str = "server_error", param=None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type, "param": param, "code": code}}).encode()


async def send_error(send, status: int, message: str, code: str, retry_after: float | None = None,
                     type: str = "server_error", param=None, headers=()) -> None:
    headers = [(b"content-type", b"application/json"), *headers]
    if retry_after is not None:
        headers += [(b"retry-after", str(max(1, round(retry_after))).encode()),
                    (b"retry-after-ms", str(max(1, round(retry_after * 1000))).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": error_body(message, code, type, param)})


async def send_answer(send, answer: merge.Answer) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def authorized(scope, send, keys: tuple[str, ...]) -> bool:
    """Hearth's own key check (hearth/auth.py) for the routes the ingress answers itself; a 401 is sent."""
    passed = False

    async def through(*_):
        nonlocal passed
        passed = True

    try:
        await ApiKeyMiddleware(through, keys)(scope, None, None)
    except ApiError as exc:
        await send_error(send, exc.status, exc.message, exc.code, type=exc.type,
                         headers=[(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()])
    return passed


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
        path, method = scope["path"], scope["method"]
        if path == STATS_PATH:
            return await ing.send_stats(scope, send)
        if (method == "GET" and (path in VIEWS or path.startswith(MODEL_PREFIX))) or \
                (method == "POST" and path in MANAGEMENT):
            return await ing.everywhere(portable_scope(scope), bytes(body), send)
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
        self.every = replicas  # .broadcast(method, ...): every running replica
        self.settings = settings
        self._spreading: set[asyncio.Task] = set()

    def router(self):
        from hearth.cluster.policy import ROUTERS

        return ROUTERS.get(serve.get_replica_context().app_name)

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
                        elif item[0] == "jit":
                            self.spread(item[2])
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

    # models and figures across replicas -------------------------------------------------------------
    def spread(self, keys: list[str]) -> None:
        """A replica loads `keys` just in time for a request: every replica starts loading them too."""
        for key in keys:
            task = asyncio.ensure_future(self.every.broadcast("ensure", key).results_async(return_exceptions=True))
            self._spreading.add(task)
            task.add_done_callback(self._spreading.discard)

    async def everywhere(self, scope: dict, body: bytes, send) -> None:
        """A model load or unload, or a view the ingress merges, on every replica; answered when all did."""
        try:
            answers = await self.every.broadcast("call", scope, body).results_async(return_exceptions=True)
        except Exception as exc:  # no replica running (DeploymentUnavailableError)
            log.warning("hearth cluster: a broadcast found no replica: %s", exc)
            answers = []
        answers = sorted(a for a in answers if not isinstance(a, BaseException))  # by replica id
        path = scope["path"]
        failed = [a[1:] for a in answers if a[1] != 200]
        if not answers:
            return await send_error(send, 503, "No replica could answer this request (they are restarting); "
                                    "retry after a moment.", "replica_unavailable", 1.0)
        if path in MANAGEMENT or path.startswith(MODEL_PREFIX):  # one model: found on any replica
            answer = merge.answer_of(path, [a[1:] for a in answers])
        elif failed:  # 401 without the key, as each replica answers it
            answer = failed[0]
        else:
            answer = self.merged(path, {a[0]: a[3] for a in answers}, answers[0][2])
        status, headers, body = answer
        await send_answer(send, (status, [(k, v) for k, v in headers if k.lower() not in DROPPED], body))

    @staticmethod
    def merged(path: str, bodies: dict[str, bytes], headers) -> merge.Answer:
        """The merged body, with a replica's headers (its CORS headers among them) but its length."""
        if path == "/metrics":
            return 200, headers, merge.metrics({rid: b.decode() for rid, b in bodies.items()})
        views = {rid: json.loads(b) for rid, b in bodies.items()}
        if path == "/status":
            return 200, headers, merge.json_body(merge.status(views))
        if path == "/api/v1/models":
            return 200, headers, merge.json_body(merge.lmstudio_models(views))
        return 200, headers, merge.json_body(merge.openai_models(views))

    # the cluster's own route ------------------------------------------------------------------------
    async def send_stats(self, scope, send) -> None:
        if not await authorized(scope, send, self.settings.api_keys):
            return
        router = self.router()
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

