"""`hearth serve` starts the server; `hearth fetch-models` fetches the default models;
`hearth ls|ps|load|unload` manage the models of a running server (hearth/client.py).
The conformance suite is a command of its own: `hearth-conformance` (conformance/)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hearth import client, limits
from hearth.models import defaults, fit
from hearth.models.lifecycle import EngineFactory, default_factory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="A local, OpenAI-compatible LLM server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the OpenAI-compatible API")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    serve.add_argument("--port", type=int, default=1234)
    serve.add_argument("--model", type=Path, help="a .gguf file (default: SmolLM2-135M-Instruct, fetched once)")
    serve.add_argument("--model-id", help="the id /v1/models reports (default: the file name without .gguf)")
    serve.add_argument("--ctx-size", type=int, default=4096, help="context ceiling of one sequence, in tokens")
    serve.add_argument("--threads", type=int, help="CPU threads for inference (default: all cores)")
    serve.add_argument("--parallel", type=int, help="sequences decoded together (default: from cores and context)")
    serve.add_argument("--gpu-layers", type=fit.gpu_layers_value, default="auto", metavar="N|auto|max|off",
                       help="layers offloaded to a GPU (default: auto, as many as fit in free GPU memory with their "
                            "KV cache; a CPU build offloads none)")
    serve.add_argument("--max-queue", type=int, default=64, help="requests that may wait; more get 503")
    serve.add_argument("--cors-origin", action="append", help="allowed browser origin (repeatable; default: *)")
    serve.add_argument("--verbose", action="store_true", help="show llama.cpp's and uvicorn's logs")
    serve.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="request log lines (one per request) as text or JSON (default: text)")
    serve.add_argument("--api-key", action="append", metavar="KEY",
                       help="require 'Authorization: Bearer KEY' (repeatable; default: $HEARTH_API_KEY, else none)")
    serve.add_argument("--max-prompt-tokens", type=int, help="prompt tokens per request (default: the context ceiling)")
    serve.add_argument("--max-request-tokens", type=int, default=limits.DEFAULT_REQUEST_TOKENS,
                       help="generated tokens per request, n x max_tokens")
    serve.add_argument("--request-timeout", type=float, default=limits.DEFAULT_TIMEOUT,
                       help="seconds per request; then it ends with finish_reason 'length', or 503 queue_timeout "
                            "if it never left the queue (0: none)")
    serve.add_argument("--shutdown-timeout", type=float, default=10.0,
                       help="seconds running requests get to finish on SIGTERM / Ctrl-C")
    serve.add_argument("--models-dir", type=Path, help="models on disk, in LM Studio's layout publisher/model/file.gguf "
                       "(default: ~/.cache/hearth/models; an LM Studio models folder works)")
    serve.add_argument("--ttl", type=float, default=3600, help="idle seconds before a model loaded just in time is "
                       "unloaded (default: 3600; 0: never); a request's `ttl` field overrides it")
    serve.add_argument("--max-loaded", type=int, help="models loaded at once; a load evicts the least recently used "
                       "idle one (default: no limit)")
    serve.add_argument("--strict-models", action="store_true", help="a `model` naming no loaded or on-disk model "
                       "gets 404 model_not_found (default: the chat model loaded most recently serves it)")
    serve.add_argument("--store-path", type=Path, help="the SQLite file that keeps stored responses (the Responses "
                       "API's store / previous_response_id; default: <cache dir>/responses.sqlite3)")
    serve.add_argument("--no-store", action="store_true", help="keep no responses: store is ignored and "
                       "previous_response_id gets 400")
    serve.add_argument("--store-max-responses", type=int, default=10_000,
                       help="stored responses kept at most; the oldest are dropped first")
    serve.add_argument("--store-max-mb", type=float, default=256, help="megabytes of stored responses kept at most")
    sub.add_parser("fetch-model", help="fetch the default chat model into the models dir and print its path")
    fetch = sub.add_parser("fetch-models", help="fetch the default models (chat, embedding, a second chat model) "
                           "into the models dir, once, and print their paths")
    fetch.add_argument("--models-dir", type=Path, help="default: ~/.cache/hearth/models ($HEARTH_MODELS_DIR)")
    client.add_commands(sub)  # ls, ps, load, unload: talk to a running server
    return parser


def serve(args: argparse.Namespace, engine_factory: EngineFactory = default_factory) -> int:
    """Serve until interrupted; returns the exit status. `engine_factory` (default: the llama.cpp engines)
    makes each model's engine from its type and settings; tests pass their own to hold a model in states
    on demand (tests/hooked_server.py)."""
    import uvicorn

    from hearth import auth, shutdown, startup
    from hearth.app import create_app
    from hearth.models.catalog import Catalog
    from hearth.models.registry import LoadDefaults, Registry
    from hearth.web import requestlog
    from hearth.web.banner import banner

    try:  # every startup fault is one line and exit 1, before anything says "serving"
        model_path = startup.resolve_model(args.model, args.models_dir)
        placement = startup.check_model(model_path, args.ctx_size, args.parallel, args.gpu_layers)
        sock = startup.bind(args.host, args.port)
    except startup.StartupError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    keys = auth.configured_keys(args.api_key)
    if warning := auth.exposure_warning(args.host, keys):
        print(warning, file=sys.stderr)
    registry = Registry(
        Catalog(args.models_dir or defaults.models_dir()), factory=engine_factory,
        defaults=LoadDefaults(n_ctx=args.ctx_size, n_threads=args.threads, n_parallel=args.parallel,
                              max_queue=args.max_queue, verbose=args.verbose, gpu_layers=args.gpu_layers),
        jit_ttl=args.ttl or None, max_loaded=args.max_loaded, strict=args.strict_models,
    )
    at_start = registry.startup(model_path, args.model_id)
    drain = shutdown.Drain(args.shutdown_timeout)
    request_limits = limits.Limits(args.max_prompt_tokens, args.max_request_tokens, args.request_timeout or None)
    store = None
    if not args.no_store:
        import sqlite3

        from hearth.store import ResponseStore, default_path

        path = args.store_path or default_path()
        try:
            store = ResponseStore(path, max_responses=args.store_max_responses,
                                  max_bytes=int(args.store_max_mb * (1 << 20)))
        except (OSError, sqlite3.Error) as exc:
            print(f"hearth: cannot open the response store {path}: {exc} (--store-path elsewhere, or --no-store)",
                  file=sys.stderr)
            return 1
    app = create_app(registry, cors_origins=args.cors_origin or ("*",), api_keys=keys, limits=request_limits,
                     drain=drain, startup=at_start, store=store)
    requestlog.configure(args.log_format)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=args.host, port=port, log_level="info" if args.verbose else "warning",
                            access_log=False, timeout_graceful_shutdown=3)
    name = args.model_id or at_start[0][0].key

    def loaded() -> str:
        state = registry.state_of(name)
        return name if state == "ready" else f"{name} ({state}; a line follows when it is ready)"

    def announce() -> None:  # once uvicorn serves the bound socket
        text = banner(args.host, port, loaded(), placement.describe())
        if keys:
            text = text.replace("any api key", "API key required (Authorization: Bearer)")
        print(text, file=sys.stderr, flush=True)

    class Named:  # what exits 1 if it fails to load at start: the model this command was asked to serve
        state = property(lambda self: registry.state_of(name))
        load_error = property(lambda self: registry.snapshot().load_error)

    server = shutdown.Server(config, drain, Named(), on_started=announce)
    server.run(sockets=[sock])
    return server.exit_code


def main(argv: list[str] | None = None, engine_factory: EngineFactory = default_factory) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    if args.command == "fetch-model":
        print(defaults.default_model_path())
    elif args.command == "fetch-models":
        for path in defaults.fetch_all(args.models_dir):
            print(path)
    elif args.command == "serve":
        sys.exit(serve(args, engine_factory))
    else:
        sys.exit(client.run(args))


if __name__ == "__main__":
    main()
