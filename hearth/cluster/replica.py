"""`HearthReplica`: one whole Hearth (its models, registry, scheduler and prefix cache) in a Ray Serve replica.

The app is built here, in the replica's process, by `hearth.cluster.app.build_app`; `__init__` returns
once the startup models are ready, so Ray Serve routes nothing to a replica still loading. `handle`
is called through a deployment handle with `stream=True`: it runs the request through Hearth's ASGI
app in process (`asgi.InProcessApp`) and yields the response's ASGI messages in batches, so a stream
crosses the handle token by token and a cancelled call is Hearth's client disconnect.

Models across replicas: a request that makes this replica load a model just in time says so in its
stream (a `("jit", replica, keys)` item after the response start); the ingress then has every replica
load it too (`ensure`). Model loads and unloads, and the routes the ingress merges (/status, /metrics,
the model lists), reach every replica through `call`, whole.
"""
from __future__ import annotations

import asyncio
import os
import time

from ray import serve

from hearth.cluster import app as hearth_app
from hearth.cluster.asgi import InProcessApp

REPLICA_HEADER = b"x-hearth-replica"
LOAD_TIMEOUT_S = 600.0


class HearthReplica:
    async def __init__(self, settings: hearth_app.ReplicaSettings):
        app, self._registry, names = hearth_app.build_app(settings)
        self._app = InProcessApp(app)
        await self._app.start()
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while (states := [hearth_app.state_of(self._registry, n) for n in names]) and \
                not all(s in ("ready", "failed") for s in states):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the models {names} did not load in {LOAD_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)
        if states[0] == "failed":
            raise RuntimeError(hearth_app.load_error(self._registry) or f"model {names[0]} failed to load")
        self._id = serve.get_replica_context().replica_id.unique_id
        self._ongoing, self._started = 0, 0
        self._reuse = {"reuse_measured": 0, "reuse_hits": 0}

    async def handle(self, scope: dict, body: bytes, prefix=None):
        """The response to one HTTP request, as batches of compact ASGI messages (asgi.Message).
        `prefix` is for the router (it reads the call's arguments), not used here."""
        self._ongoing += 1
        self._started += 1
        alone, epoch, before = self._ongoing == 1, self._started, hearth_app.engine_stats(self._registry)
        had = hearth_app.instance_keys(self._registry)
        try:
            async for batch in self._app.stream(scope, body):
                if batch[0][0] == "start":
                    kind, status, headers = batch[0]
                    batch[0] = (kind, status, headers + [(REPLICA_HEADER, self._id.encode())])
                    new = {k for i, k in hearth_app.instance_keys(self._registry).items() if i not in had}
                    if new:  # this request started a just-in-time load: the ingress spreads it
                        batch.insert(1, ("jit", self._id, sorted(new)))
                if alone and epoch == self._started and batch[-1][0] == "body" and not batch[-1][2]:
                    alone = False  # the last message: count before the client can close and another start
                    self._count_reuse(before, hearth_app.engine_stats(self._registry))
                yield batch
        finally:
            self._ongoing -= 1

    def _count_reuse(self, before: dict, after: dict) -> None:
        """Per request, what share of its prompt came from the prefix cache: the counters' change over the
        request, known exactly when no other request ran beside it on this replica (always so with one
        slot, as in benchmarks/cluster.py). A hit reuses at least half of the prompt; a few shared
        template tokens, which the engine's `cache_hits` also counts, are not one."""
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("requests", "cached_prompt_tokens", "prefill_tokens")}
        if delta["requests"] != 1:
            return
        self._reuse["reuse_measured"] += 1
        self._reuse["reuse_hits"] += 2 * delta["cached_prompt_tokens"] >= delta["cached_prompt_tokens"] + \
            delta["prefill_tokens"] > 0

    async def ensure(self, key: str) -> bool:  # async: on the event loop, where loads start
        """Load `key` just in time unless it is loaded or loading here (another replica loaded it for a
        request); returns whether a load started."""
        return hearth_app.ensure_loaded(self._registry, key)

    def stats(self) -> dict:
        return {**hearth_app.engine_stats(self._registry), **self._reuse, "replica": self._id, "pid": os.getpid(),
                "at": time.time()}

    def record_routing_stats(self) -> dict:
        """Read by the ingress's router every `request_routing_stats_period_s`: the slot count sizes its
        model of this replica's cache; the rest is what GET /cluster/stats shows."""
        return self.stats()

    async def call(self, scope: dict, body: bytes) -> tuple:
        """The whole response to one request: (replica id, status, headers, body). The ingress calls it on
        every replica at once (`DeploymentHandle.broadcast`, past the slots) for model loads and unloads
        and for the routes it merges."""
        return (self._id, *await self._app.call(scope, body))

    async def __del__(self):  # Ray Serve calls it on a graceful shutdown: Hearth closes its engines
        await self._app.stop()
