"""The builder a replica calls to make its own Hearth app (models, registry, prefix cache, routes):
nothing of it is pickled, only these settings cross to the replica's process.

This is the one file that knows how `hearth serve` assembles the app (hearth/cli.py, `serve`); the
rest of hearth/cluster sees only the ASGI app it returns and the engine counters (`stats`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ReplicaSettings:
    """What `hearth serve` takes, for one replica (defaults: one llama.cpp thread, one sequence)."""

    model: str | None = None  # a .gguf path on the replica's node; None: the default model, fetched there once
    model_id: str | None = None
    models_dir: str | None = None
    ctx_size: int = 4096
    threads: int = 1
    parallel: int = 1
    slots: int | None = None  # KV streams: a replica's prefix cache holds slots - 1 distinct prompts
    gpu_layers: str | int = "auto"  # hearth/models/fit.py (with a GPU per replica: ClusterConfig.replica_gpus)
    max_queue: int = 64
    ttl: float = 3600.0
    max_loaded: int | None = None
    strict_models: bool = False
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ("*",)
    max_prompt_tokens: int | None = None
    max_request_tokens: int | None = None
    request_timeout: float | None = 600.0
    store: bool = True  # stored responses (the Responses API), in one SQLite file the node's replicas share
    store_path: str | None = None  # default: hearth serve's (~/.cache/hearth/responses.sqlite3 on the node)
    verbose: bool = False
    extra: dict = field(default_factory=dict)


def build_app(s: ReplicaSettings):
    """Hearth's ASGI app, its model registry and the instance ids it loads at start, as `hearth serve`
    makes them (no socket, no drain: Ray Serve owns the port and the replica's shutdown)."""
    from hearth import limits, startup
    from hearth.app import create_app
    from hearth.models import defaults
    from hearth.models.catalog import Catalog
    from hearth.models.registry import LoadDefaults, Registry

    models_dir = Path(s.models_dir) if s.models_dir else None
    model_path = startup.resolve_model(Path(s.model) if s.model else None, models_dir)
    registry = Registry(
        Catalog(models_dir or defaults.models_dir()),
        defaults=LoadDefaults(n_ctx=s.ctx_size, n_threads=s.threads, n_parallel=s.parallel, n_slots=s.slots,
                              max_queue=s.max_queue, verbose=s.verbose, gpu_layers=s.gpu_layers),
        jit_ttl=s.ttl or None, max_loaded=s.max_loaded, strict=s.strict_models,
    )
    at_start = registry.startup(model_path, s.model_id)
    request_limits = limits.Limits(s.max_prompt_tokens, s.max_request_tokens or limits.DEFAULT_REQUEST_TOKENS,
                                   s.request_timeout or None)
    store = None
    if s.store:
        from hearth.store import ResponseStore, default_path

        store = ResponseStore(s.store_path or default_path())
    app = create_app(registry, cors_origins=s.cors_origins, api_keys=s.api_keys, limits=request_limits,
                     startup=at_start, store=store)
    return app, registry, [instance_id or entry.key for entry, instance_id in at_start]


def state_of(registry, name: str) -> str:
    """"loading", "ready" or "failed" (with the reason from `load_error`)."""
    return registry.state_of(name)


def load_error(registry) -> str | None:
    return registry.snapshot().load_error


def engine_stats(registry) -> dict:
    """Every loaded model's engine counters, summed (what /metrics reads)."""
    return registry.snapshot().stats


def status(registry) -> dict:
    """What GET /status answers (the app's telemetry is the registry's hooks: hearth/app.py)."""
    return registry.hooks.status()


def metrics_text(registry) -> str:
    """What GET /metrics answers."""
    from prometheus_client import generate_latest

    return generate_latest(registry.hooks.metrics).decode()


def models_signature(registry) -> tuple:
    """Changes whenever an instance is added, changes state or goes: when the model lists change."""
    return tuple((iid, inst.state.value) for iid, inst in list(registry.instances.items()))


def instance_keys(registry) -> dict[str, str]:
    """Instance id -> catalog key, for every instance loading, loaded or unloading."""
    return {iid: inst.entry.key for iid, inst in list(registry.instances.items())}


def ensure_loaded(registry, key: str) -> bool:
    """Start loading `key` just in time, as a request naming it would, unless an instance of it is already
    loading or loaded here (another replica loaded it for a request: hearth/cluster/ingress.py)."""
    from hearth.models.lifecycle import State

    entry = registry.find(key)
    if entry is None or any(i.entry.key == entry.key and i.state is not State.UNLOADING
                            for i in list(registry.instances.values())):
        return False
    registry.start_load(entry, ttl=registry.jit_ttl)
    return True
