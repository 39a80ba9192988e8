"""`python -m hearth.cluster` (`scripts/cluster`): Hearth replicas on Ray Serve, one HTTP API on one port.

Without --address it starts a local Ray head with as many CPUs as the replicas' threads and stops it on
Ctrl-C; with --address (a cluster made by `ray start --head` / `ray start --address ...`) it deploys
there and, on Ctrl-C, removes only its own application.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time

APP_NAME = "hearth"


def _gpu_layers(value: str):
    from hearth.models import fit

    return fit.gpu_layers_value(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=2, help="Hearth replicas (default: 2)")
    p.add_argument("--host", default="127.0.0.1", help="bind address of the HTTP API (default: loopback)")
    p.add_argument("--port", type=int, default=1234)
    p.add_argument("--address", help="an existing Ray cluster (e.g. 'auto' after `ray start --head`); "
                   "default: start a local head for this command only")
    p.add_argument("--router", choices=("prefix", "round-robin"), default="prefix",
                   help="prefix affinity balanced against load (default), or round-robin")
    p.add_argument("--imbalance", type=int, default=4, help="prefix router: load gap (requests) at which a "
                   "request leaves the replica holding its prefix for the least loaded one (default: 4)")
    p.add_argument("--min-match-chars", type=int, default=1024,
                   help="prefix router: shortest shared prefix that binds a request to a replica (default: 1024)")
    p.add_argument("--max-queued", type=int, default=64, help="requests waiting for a replica beyond the "
                   "replicas' slots; more get 503 server_overloaded (default: 64)")
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads per replica (default: 1)")
    p.add_argument("--parallel", type=int, default=1, help="sequences decoded together per replica; Ray Serve "
                   "sends each replica at most this many requests at once (default: 1)")
    p.add_argument("--slots", type=int, help="KV streams per replica: its prefix cache holds slots - 1 distinct "
                   "prompts (default: Hearth's, from --parallel and memory)")
    p.add_argument("--gpus-per-replica", type=float, default=0, help="Ray GPUs each replica reserves; its layers "
                   "go to the GPU as --gpu-layers says (default: 0, CPU)")
    p.add_argument("--gpu-layers", type=_gpu_layers, default="auto", metavar="N|auto|max|off", help="as hearth serve's --gpu-layers (default: auto)")
    p.add_argument("--ctx-size", type=int, default=4096, help="context ceiling of one sequence, in tokens")
    p.add_argument("--model", help="a .gguf path present on every node (default: SmolLM2-135M-Instruct, "
                   "fetched by each node once)")
    p.add_argument("--model-id")
    p.add_argument("--models-dir", help="models on disk on every node (default: ~/.cache/hearth/models)")
    p.add_argument("--api-key", action="append", metavar="KEY", help="require 'Authorization: Bearer KEY'")
    p.add_argument("--max-prompt-tokens", type=int)
    p.add_argument("--request-timeout", type=float, default=600.0)
    p.add_argument("--ttl", type=float, default=3600.0)
    p.add_argument("--strict-models", action="store_true")
    p.add_argument("--store-path", help="stored responses (the Responses API): one SQLite file that every replica "
                   "on a node shares (default: hearth serve's, ~/.cache/hearth/responses.sqlite3)")
    p.add_argument("--no-store", action="store_true", help="keep no responses")
    p.add_argument("--verbose", action="store_true", help="Ray's and llama.cpp's logs")
    return p


def config_from(args):
    from hearth import auth
    from hearth.cluster.app import ReplicaSettings
    from hearth.cluster.builder import ClusterConfig

    replica = ReplicaSettings(
        model=args.model, model_id=args.model_id, models_dir=args.models_dir, ctx_size=args.ctx_size,
        threads=args.threads, parallel=args.parallel, slots=args.slots, gpu_layers=args.gpu_layers, ttl=args.ttl, strict_models=args.strict_models,
        api_keys=auth.configured_keys(args.api_key), max_prompt_tokens=args.max_prompt_tokens,
        request_timeout=args.request_timeout, store=not args.no_store, store_path=args.store_path,
        verbose=args.verbose)
    return ClusterConfig(replicas=args.replicas, router=args.router, imbalance=args.imbalance,
                         min_match_chars=args.min_match_chars, max_queued=args.max_queued,
                         replica_gpus=args.gpus_per_replica, replica=replica)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def start_ray(address: str | None, cpus: int, verbose: bool) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common = {"logging_level": "INFO" if verbose else "WARNING", "log_to_driver": verbose}
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, object_store_memory=200 * 1024 ** 2,
                 **common)


def deploy(config, host: str, port: int) -> None:
    from ray import serve

    from hearth.cluster.builder import build

    serve.start(http_options={"host": host, "port": port})
    serve.run(build(config), name=APP_NAME, route_prefix="/")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        import ray  # noqa: F401
        from ray import serve
    except ImportError:
        print("hearth: Ray is not installed: pip install -c constraints-ray.txt '.[ray]' (scripts/cluster does it)",
              file=sys.stderr)
        return 1
    if not args.address and not port_free(args.host, args.port):
        print(f"hearth: port {args.port} on {args.host} is already in use; choose another with --port.",
              file=sys.stderr)
        return 1
    config = config_from(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    t0 = time.monotonic()
    start_ray(args.address, args.replicas * args.threads, args.verbose)
    try:
        deploy(config, args.host, args.port)
        url = f"http://{args.host}:{args.port}"
        print(f"hearth cluster: {args.replicas} replicas ({args.router} routing) ready in "
              f"{time.monotonic() - t0:.1f} s\n  API      {url}/v1\n  stats    {url}/cluster/stats\n  stop     Ctrl+C",
              file=sys.stderr, flush=True)
        stop.wait()
        print("hearth cluster: stopping", file=sys.stderr, flush=True)
    finally:
        try:
            if args.address:
                serve.delete(APP_NAME)
            else:
                serve.shutdown()
        finally:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
