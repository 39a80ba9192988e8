"""The Serve application: one `HearthIngress` over N `HearthReplica`s, routed by `router`."""
from __future__ import annotations

from dataclasses import dataclass, field

from ray import serve
from ray.serve.config import RequestRouterConfig

from hearth.cluster.app import ReplicaSettings
from hearth.cluster.ingress import HearthIngress, IngressSettings
from hearth.cluster.replica import HearthReplica

ROUTERS = {"prefix": "hearth.cluster.router.PrefixAffinityRouter",
           "round-robin": "hearth.cluster.router.RoundRobinRouter"}


@dataclass(frozen=True)
class ClusterConfig:
    replicas: int = 2
    router: str = "prefix"  # or "round-robin"
    imbalance: int = 4  # prefix router: load difference at which affinity yields (policy.py)
    min_match_chars: int = 1024  # prefix router: shorter shared prefixes do not bind a request to a replica
    max_queued: int = 64  # requests the ingress holds for the replicas beyond their slots; more get 503
    stats_period_s: float = 0.5  # how often each replica reports its engine counters to the router
    replica_cpus: float | None = None  # Ray CPUs a replica reserves (default: its llama.cpp threads)
    replica_gpus: float = 0  # Ray GPUs a replica reserves (with ReplicaSettings.gpu_layers to offload to it)
    max_body_bytes: int = 8 * 1024 * 1024
    replica: ReplicaSettings = field(default_factory=ReplicaSettings)


def build(config: ClusterConfig):
    """The application, bound (not yet running): `serve.run(build(config), name=..., route_prefix="/")`."""
    if config.router not in ROUTERS:
        raise ValueError(f"unknown router {config.router!r}; choose from {', '.join(ROUTERS)}")
    kwargs = {"imbalance": config.imbalance, "min_match_chars": config.min_match_chars} \
        if config.router == "prefix" else {}
    replica = serve.deployment(HearthReplica).options(
        name="HearthReplica",
        num_replicas=config.replicas,
        max_ongoing_requests=max(1, config.replica.parallel),  # one per slot: the rest wait in the router
        max_queued_requests=config.max_queued,  # then BackPressureError: the ingress's 503 server_overloaded
        ray_actor_options={"num_cpus": config.replica_cpus if config.replica_cpus is not None
                           else config.replica.threads, "num_gpus": config.replica_gpus},
        request_router_config=RequestRouterConfig(
            request_router_class=ROUTERS[config.router], request_router_kwargs=kwargs,
            request_routing_stats_period_s=config.stats_period_s, request_routing_stats_timeout_s=5.0,
            initial_backoff_s=0.005, backoff_multiplier=2, max_backoff_s=0.05),
        health_check_period_s=2.0,
        graceful_shutdown_timeout_s=10.0,
    )
    ingress = serve.deployment(HearthIngress).options(
        name="HearthIngress", num_replicas=1, max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0})
    settings = IngressSettings(max_body_bytes=config.max_body_bytes, api_keys=config.replica.api_keys,
                               router=config.router)
    return ingress.bind(replica.bind(config.replica), settings)
