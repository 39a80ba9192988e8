"""Ray Serve request routers for Hearth replicas (`RequestRouterConfig(request_router_class=...)`).

Both run inside the ingress's process, in the router of its deployment handle, and see the prefix the
ingress computed as the `prefix` keyword of each handle call (`PendingRequest.kwargs`). Load is what
the router itself sent and has not seen complete (`on_request_routed` / `on_request_completed`), plus
what it holds waiting for a replica; each replica's slot count comes from its routing stats
(`HearthReplica.record_routing_stats`). Why not Ray Serve LLM's `PrefixCacheAffinityRouter`: it needs
`ray[llm]` (vLLM's stack, pyarrow) to import, reads vLLM's request objects, asks a detached tree actor
with a blocking `ray.get` on every decision, and does not know how many prompts a replica's cache holds.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import List, Optional

from ray.serve.request_router import PendingRequest, ReplicaID, RequestRouter, RunningReplica

from hearth.cluster import policy as _policy
from hearth.cluster.policy import PrefixPolicy, RoundRobin
from hearth.cluster.prefix import EMPTY, Prefix


def _prefix(pending_request: Optional[PendingRequest]) -> Prefix:
    prefix = pending_request.kwargs.get("prefix") if pending_request is not None else None
    return Prefix(tuple(prefix[0]), prefix[1]) if prefix else EMPTY


def _key(pending_request: Optional[PendingRequest]):
    return pending_request.metadata.internal_request_id if pending_request is not None else None


class HearthRouter(RequestRouter):
    name = "?"

    def initialize_state(self, **kwargs):
        # Ray Serve pickles this module by value: the registry lives in one it imports by reference
        _policy.ROUTERS[self._deployment_id.app_name] = self

    def replica_stats(self) -> dict[str, dict]:
        """Each replica's last routing stats (its engine counters), by replica id."""
        return {rid.unique_id: dict(r.routing_stats or {}) for rid, r in list(self._replicas.items())}

    def _wait_between_tries(self, pending_request):
        if pending_request is not None:  # a replica of ours is chosen or none is free: wait, then ask again
            pending_request.routing_context.should_backoff = True


class PrefixAffinityRouter(HearthRouter):
    """Prefix affinity balanced against load: `hearth/cluster/policy.py`."""

    name = "prefix"

    def initialize_state(self, min_match_chars: int = 1024, imbalance: int = 4, **kwargs):
        super().initialize_state()
        self.policy = PrefixPolicy(min_match_chars=min_match_chars, imbalance=imbalance)
        self._changed: asyncio.Event | None = None  # set when a replica may have a free slot

    def _notify(self) -> None:
        if self._changed is not None:
            with contextlib.suppress(RuntimeError):
                self._event_loop.call_soon_threadsafe(self._changed.set)

    async def _until_free(self, replica: RunningReplica, timeout: float = 1.0) -> None:
        """A request held for a busy replica waits here for a completion rather than in Ray Serve's retry
        loop, which probes the replica's queue length every few milliseconds (and logs each 50 tries)."""
        model = self.policy.replicas.get(replica.replica_id.unique_id)
        if model is None or model.in_flight < replica.max_ongoing_requests:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        self._changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def update_replicas(self, replicas: List[RunningReplica]):
        super().update_replicas(replicas)
        self.policy.update(r.replica_id.unique_id for r in replicas)
        self._notify()

    def on_replica_actor_died(self, replica_id: ReplicaID):
        super().on_replica_actor_died(replica_id)
        self.policy.remove(replica_id.unique_id)
        self._notify()

    def _drop_stale_pins(self) -> None:
        waiting = {pr.metadata.internal_request_id for pr in getattr(self, "_pending_requests_to_fulfill", ())
                   if not pr.future.done()}
        for key in [k for k in self.policy.pins if k not in waiting]:
            self.policy.forget(key)

    async def choose_replicas(self, candidate_replicas: List[RunningReplica],
                              pending_request: Optional[PendingRequest] = None) -> List[List[RunningReplica]]:
        self._wait_between_tries(pending_request)
        self._drop_stale_pins()
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        for rid, r in by_id.items():
            slots = (r.routing_stats or {}).get("slots")
            if slots:  # a new request takes the lowest idle stream and copies its prefix there: one is spare
                self.policy.set_capacity(rid, max(1, int(slots) - 1))
        ranks = self.policy.choose(_prefix(pending_request), list(by_id), _key(pending_request))
        if len(ranks) == 1 and len(ranks[0]) == 1 and len(by_id) > 1:  # held for the replica with its prefix
            await self._until_free(by_id[ranks[0][0]])
        return [[by_id[i] for i in rank] for rank in ranks]

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result) -> None:
        self.policy.routed(_key(pending_request), replica_id.unique_id, _prefix(pending_request))

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        self.policy.completed(replica_id.unique_id)
        self._notify()


class RoundRobinRouter(HearthRouter):
    """The baseline: replicas in turn, as a plain load balancer spreads requests."""

    name = "round-robin"

    def initialize_state(self, **kwargs):
        super().initialize_state()
        self.turns = RoundRobin()

    async def choose_replicas(self, candidate_replicas: List[RunningReplica],
                              pending_request: Optional[PendingRequest] = None) -> List[List[RunningReplica]]:
        self._wait_between_tries(pending_request)
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        return [[by_id[i] for i in rank] for rank in self.turns.choose(list(by_id))]


ROUTER_CLASSES = {"prefix": PrefixAffinityRouter, "round-robin": RoundRobinRouter}
